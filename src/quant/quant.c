#include "zquant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/kernels.h"
#include "zquant/fp16.h"

/* Adding then subtracting 1.5 * 2^23 rounds a float to the nearest integer,
 * ties to even, for |x| < 2^22: exact, branch-free and vectorizable. Codes
 * are at most 2^8 in magnitude here. */
#define RNE_MAGIC 12582912.0f

static float rne(float x) { return (x + RNE_MAGIC) - RNE_MAGIC; }

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
    if (strcmp(tok, "fp16") == 0 || strcmp(tok, "f16") == 0) s.bits = 16;
    else if (strcmp(tok, "int8") == 0) s.bits = 8;
    else if (strcmp(tok, "int4") == 0) s.bits = 4;
    else return zq_fail(err, ZQ_ERR_USAGE, "'%s': spec must start with int8, int4 or fp16", text);
    while ((tok = strtok_r(NULL, ":", &save))) {
        uint32_t v;
        if (s.bits == 16) return zq_fail(err, ZQ_ERR_USAGE, "'%s': fp16 takes no options", text);
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
    if (s->bits == 16) {
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
    snprintf(buf, size, "int%d:%s:%s", s->bits, gran, s->symmetric ? "sym" : "asym");
}

void zq_grid_init(zq_grid *g, const zq_qspec *s, uint64_t rows, uint64_t cols)
{
    g->rows = rows;
    g->cols = cols;
    g->group_rows = 1;
    g->group_cols = cols;
    switch (s->gran) {
    case ZQ_GRAN_GROUP: g->group_cols = s->group_size < cols ? s->group_size : cols; break;
    case ZQ_GRAN_ROW: break;
    case ZQ_GRAN_TENSOR: g->group_rows = rows; break;
    case ZQ_GRAN_BLOCKS: g->group_rows = (rows + s->blocks - 1) / s->blocks; break;
    }
    if (g->group_rows == 0) g->group_rows = 1;
    if (g->group_cols == 0) g->group_cols = 1;
    g->row_groups = (rows + g->group_rows - 1) / g->group_rows;
    g->col_groups = (cols + g->group_cols - 1) / g->group_cols;
    g->row_bytes = s->bits == 4 ? (cols + 1) / 2 : cols;
}

int zq_range_f32_ref(const float *x, size_t n, float *lo, float *hi, size_t *bad_index)
{
    /* eight lanes so the compiler can keep them in one vector register */
    float mn[8], mx[8];
    uint32_t nonfinite = 0;
    for (int l = 0; l < 8; l++) mn[l] = INFINITY, mx[l] = -INFINITY;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) {
            float v = x[i + l];
            uint32_t b;
            memcpy(&b, &v, 4);
            nonfinite |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
            mn[l] = v < mn[l] ? v : mn[l];
            mx[l] = v > mx[l] ? v : mx[l];
        }
    }
    for (; i < n; i++) {
        float v = x[i];
        nonfinite |= (uint32_t)!isfinite(v);
        mn[0] = v < mn[0] ? v : mn[0];
        mx[0] = v > mx[0] ? v : mx[0];
    }
    if (nonfinite) {
        for (size_t k = 0; k < n; k++)
            if (!isfinite(x[k])) { *bad_index = k; break; }
        return 0;
    }
    float a = mn[0], b = mx[0];
    for (int l = 1; l < 8; l++) {
        a = mn[l] < a ? mn[l] : a;
        b = mx[l] > b ? mx[l] : b;
    }
    *lo = a;
    *hi = b;
    return 1;
}

int zq_group_params(const zq_qspec *spec, float lo, float hi, uint16_t *scale, uint16_t *min)
{
    float s;
    if (spec->symmetric) {
        float amax = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
        s = amax / (float)(1 << (spec->bits - 1));
        *min = 0;
    } else {
        s = (hi - lo) / (float)(1 << spec->bits);
        *min = zq_f32_to_f16(lo);
        if (!isfinite(zq_f16_to_f32(*min))) return 0;
    }
    *scale = zq_f32_to_f16(s);
    return isfinite(zq_f16_to_f32(*scale));
}

void zq_quantize_run_ref(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min,
                         uint8_t *q, zq_err_sums *sums)
{
    const float s = zq_f16_to_f32(scale);
    const float m = spec->symmetric ? 0.0f : zq_f16_to_f32(min);
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    const float qlo = spec->symmetric ? -(float)(1 << (spec->bits - 1)) : 0.0f;
    const float qhi = spec->symmetric ? (float)((1 << (spec->bits - 1)) - 1) : (float)((1 << spec->bits) - 1);
    float e2[8] = {0}, w2[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) {
            float v = x[i + l];
            float c = rne((v - m) * inv);
            c = c < qlo ? qlo : c;
            c = c > qhi ? qhi : c;
            float d = v - (c * s + m);
            e2[l] += d * d;
            w2[l] += v * v;
            q[i + l] = (uint8_t)(int)c; /* two's complement byte for negative codes */
        }
    }
    for (; i < n; i++) {
        float v = x[i];
        float c = rne((v - m) * inv);
        c = c < qlo ? qlo : c;
        c = c > qhi ? qhi : c;
        float d = v - (c * s + m);
        e2[0] += d * d;
        w2[0] += v * v;
        q[i] = (uint8_t)(int)c;
    }
    double se = 0, sw = 0;
    for (int l = 0; l < 8; l++) se += e2[l], sw += w2[l];
    sums->err2 += se;
    sums->signal2 += sw;
}

void zq_pack_row(int bits, const uint8_t *q, size_t n, uint8_t *out)
{
    if (bits == 8) {
        memcpy(out, q, n);
        return;
    }
    if (n >= 32 && zq_have_avx2()) {
        zq_pack_int4_avx2(q, n, out);
        return;
    }
    size_t k = 0;
    for (; k + 1 < n; k += 2) out[k / 2] = (uint8_t)((q[k] & 0x0f) | (q[k + 1] & 0x0f) << 4);
    if (k < n) out[k / 2] = (uint8_t)(q[k] & 0x0f);
}

void zq_dequantize_run(int bits, int symmetric, const uint8_t *row, uint64_t col0, size_t n, uint16_t scale,
                       uint16_t min, float *out)
{
    const float s = zq_f16_to_f32(scale);
    const float m = symmetric ? 0.0f : zq_f16_to_f32(min);
    for (size_t k = 0; k < n; k++) {
        uint64_t c = col0 + k;
        int code;
        if (bits == 8) {
            code = symmetric ? (int)(int8_t)row[c] : (int)row[c];
        } else {
            int nib = (row[c / 2] >> ((c & 1) * 4)) & 0x0f;
            code = symmetric ? (nib ^ 8) - 8 : nib;
        }
        out[k] = (float)code * s + m;
    }
}

/* The vector kernels compute the same bits as the references above (same
 * operations, same eight-lane sums); tests/unit/test_quant.c holds them to it. */
int zq_range_f32(const float *x, size_t n, float *lo, float *hi, size_t *bad_index)
{
    if (zq_have_avx2()) return zq_range_f32_avx2(x, n, lo, hi, bad_index);
    return zq_range_f32_ref(x, n, lo, hi, bad_index);
}

void zq_quantize_run(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min, uint8_t *q,
                     zq_err_sums *sums)
{
    if (zq_have_avx2()) zq_quantize_run_avx2(spec, x, n, scale, min, q, sums);
    else zq_quantize_run_ref(spec, x, n, scale, min, q, sums);
}

zq_status zq_fake_quant_matrix(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols, float *out,
                               zq_error *err)
{
    if (spec->bits == 16) {
        for (uint64_t i = 0; i < rows * cols; i++) out[i] = zq_f16_to_f32(zq_f32_to_f16(w[i]));
        return ZQ_OK;
    }
    zq_grid g;
    zq_grid_init(&g, spec, rows, cols);
    uint8_t *codes = malloc(g.group_cols + 1);
    if (!codes) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_err_sums ignore = {0, 0};
    for (uint64_t gi = 0; gi < g.row_groups; gi++)
        for (uint64_t gj = 0; gj < g.col_groups; gj++) {
            uint64_t r0 = gi * g.group_rows, r1 = r0 + g.group_rows < rows ? r0 + g.group_rows : rows;
            uint64_t c0 = gj * g.group_cols, n = cols - c0 < g.group_cols ? cols - c0 : g.group_cols;
            float lo = INFINITY, hi = -INFINITY, l, h;
            size_t bad;
            for (uint64_t r = r0; r < r1; r++) {
                if (!zq_range_f32(w + r * cols + c0, (size_t)n, &l, &h, &bad)) {
                    free(codes);
                    return zq_fail(err, ZQ_ERR_DATA, "NaN or Inf in a weight being tuned (row %llu)", (unsigned long long)r);
                }
                lo = l < lo ? l : lo;
                hi = h > hi ? h : hi;
            }
            uint16_t scale, min;
            if (!zq_group_params(spec, lo, hi, &scale, &min)) {
                free(codes);
                return zq_fail(err, ZQ_ERR_DATA, "a tuned weight outgrew an FP16 scale");
            }
            float s = zq_f16_to_f32(scale), m = spec->symmetric ? 0.0f : zq_f16_to_f32(min);
            for (uint64_t r = r0; r < r1; r++) {
                zq_quantize_run(spec, w + r * cols + c0, (size_t)n, scale, min, codes, &ignore);
                for (uint64_t k = 0; k < n; k++) {
                    int code = spec->symmetric ? (int)(int8_t)codes[k] : (int)codes[k];
                    out[r * cols + c0 + k] = (float)code * s + m;
                }
            }
        }
    free(codes);
    return ZQ_OK;
}
