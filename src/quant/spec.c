/* Quantization specs as the command line and .zq recipes spell them. */
#include <stdio.h>
#include <string.h>

#include "zquant/quant.h"

int zq_qspec_quantized(const zq_qspec *spec)
{
    return zq_format_get(spec->format)->codes_per_byte != 0;
}

static int parse_uint(const char *s, uint32_t *v)
{
    if (*s < '0' || *s > '9') return 0;
    unsigned long long x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        x = x * 10 + (unsigned)(*s - '0');
        if (x > 0xffffffffull) return 0;
    }
    *v = (uint32_t)x;
    return 1;
}

zq_status zq_qspec_parse(const char *text, zq_qspec *out, zq_error *err)
{
    zq_qspec s = *out;
    char buf[128];
    if (snprintf(buf, sizeof buf, "%s", text) >= (int)sizeof buf)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': spec too long", text);
    char *save = NULL;
    char *tok = strtok_r(buf, ":", &save);
    if (!tok) return zq_fail(err, ZQ_ERR_USAGE, "empty quantization spec");
    if (!strcmp(tok, "fp16")) s.format = ZQ_FORMAT_F16; /* the command line's spelling of f16 */
    else if (!zq_format_named(tok, &s.format))
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': spec must start with int8, int4 or fp16", text);
    const zq_format *f = zq_format_get(s.format);
    while ((tok = strtok_r(NULL, ":", &save))) {
        uint32_t v;
        if (!f->codes_per_byte) return zq_fail(err, ZQ_ERR_USAGE, "'%s': fp16 takes no options", text);
        if (strcmp(tok, "sym") == 0) s.symmetric = 1;
        else if (strcmp(tok, "asym") == 0) s.symmetric = 0;
        else if (strcmp(tok, "row") == 0) s.gran = ZQ_GRAN_ROW;
        else if (strcmp(tok, "tensor") == 0) s.gran = ZQ_GRAN_TENSOR;
        else if (tok[0] == 'g' && parse_uint(tok + 1, &v)) {
            if (v == 0 || v > ZQ_MAX_GROUP_SIZE)
                return zq_fail(err, ZQ_ERR_USAGE, "'%s': group size must be 1 to %u", text, ZQ_MAX_GROUP_SIZE);
            s.gran = ZQ_GRAN_GROUP;
            s.group_size = v;
        } else if (strncmp(tok, "blocks", 6) == 0 && parse_uint(tok + 6, &v)) {
            if (v == 0 || v > ZQ_MAX_GROUP_SIZE)
                return zq_fail(err, ZQ_ERR_USAGE, "'%s': block count must be 1 to %u", text, ZQ_MAX_GROUP_SIZE);
            s.gran = ZQ_GRAN_BLOCKS;
            s.blocks = v;
        } else
            return zq_fail(err, ZQ_ERR_USAGE, "'%s': unknown spec part '%s' (gN, row, tensor, blocksN, sym, asym)",
                           text, tok);
    }
    *out = s;
    return ZQ_OK;
}

void zq_qspec_format(const zq_qspec *s, char *buf, size_t size)
{
    if (!zq_qspec_quantized(s)) {
        snprintf(buf, size, "fp16");
        return;
    }
    char gran[32];
    switch (s->gran) {
    case ZQ_GRAN_GROUP: snprintf(gran, sizeof gran, "g%u", s->group_size); break;
    case ZQ_GRAN_ROW: snprintf(gran, sizeof gran, "row"); break;
    case ZQ_GRAN_TENSOR: snprintf(gran, sizeof gran, "tensor"); break;
    case ZQ_GRAN_BLOCKS: snprintf(gran, sizeof gran, "blocks%u", s->blocks); break;
    }
    snprintf(buf, size, "%s:%s:%s", zq_format_get(s->format)->name, gran, s->symmetric ? "sym" : "asym");
}
