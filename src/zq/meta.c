/* The .zq header and tensor-table codec (see meta.h). */
#include "zq/meta.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "base/util.h"

void zq_header_encode(const zq_header *h, unsigned char out[ZQ_HEADER_SIZE])
{
    memcpy(out, ZQ_MAGIC, 8);
    zq_store_le32(out + 8, h->version);
    zq_store_le32(out + 12, h->metadata_crc32c);
    zq_store_le64(out + 16, h->metadata_len);
    zq_store_le64(out + 24, h->data_start);
}

int zq_header_decode(const unsigned char in[ZQ_HEADER_SIZE], zq_header *h)
{
    h->version = zq_load_le32(in + 8);
    h->metadata_crc32c = zq_load_le32(in + 12);
    h->metadata_len = zq_load_le64(in + 16);
    h->data_start = zq_load_le64(in + 24);
    return memcmp(in, ZQ_MAGIC, 8) == 0;
}

static const char *section_names[ZQ_SEC_COUNT] = {"data", "q", "scale", "min"};

const char *zq_section_name(zq_section_kind k) { return (unsigned)k < ZQ_SEC_COUNT ? section_names[k] : "?"; }

uint64_t zq_tensor_numel(const zq_tensor *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

void zq_tensor_matrix(const zq_tensor *t, uint64_t *rows, uint64_t *cols)
{
    uint64_t n = zq_tensor_numel(t);
    uint64_t r = t->ndim >= 2 ? (uint64_t)t->shape[0] : 1;
    uint64_t c = r ? n / r : 0;
    if (t->transposed) {
        uint64_t tmp = r;
        r = c;
        c = tmp;
    }
    *rows = r;
    *cols = c;
}

uint64_t zq_section_expected_size(const zq_tensor *t, zq_section_kind k)
{
    if (!zq_qspec_quantized(&t->spec)) return k == ZQ_SEC_DATA ? zq_tensor_numel(t) * 2 : 0;
    switch (k) {
    case ZQ_SEC_Q: return t->grid.rows * t->grid.row_bytes;
    case ZQ_SEC_SCALE: return t->grid.row_groups * t->grid.col_groups * 2;
    case ZQ_SEC_MIN: return t->spec.symmetric ? 0 : t->grid.row_groups * t->grid.col_groups * 2;
    default: return 0;
    }
}

uint64_t zq_tensor_bytes(const zq_tensor *t)
{
    uint64_t n = 0;
    for (int k = 0; k < ZQ_SEC_COUNT; k++) n += zq_section_expected_size(t, (zq_section_kind)k);
    return n;
}

cJSON *zq_activation_to_json(const zq_activation *a)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "bits", a->bits);
    cJSON_AddStringToObject(j, "granularity", a->granularity);
    cJSON_AddBoolToObject(j, "dynamic", a->dynamic);
    cJSON_AddBoolToObject(j, "symmetric", a->symmetric);
    return j;
}

cJSON *zq_tensor_to_json(const zq_tensor *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", t->name);
    cJSON_AddStringToObject(j, "role", zq_role_name(t->role));
    if (t->layer >= 0) cJSON_AddNumberToObject(j, "layer", t->layer);
    cJSON *shape = cJSON_AddArrayToObject(j, "shape");
    for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
    cJSON_AddStringToObject(j, "layout", t->transposed ? "in_out" : "out_in");
    cJSON_AddStringToObject(j, "source_dtype", zq_dtype_name(t->source_dtype));
    const zq_format *fmt = zq_format_get(t->spec.format);
    cJSON_AddStringToObject(j, "dtype", fmt->name);
    cJSON_AddNumberToObject(j, "bits", fmt->code_bits); /* for readers that predate dtype naming the format */
    if (zq_qspec_quantized(&t->spec)) {
        char spec[64];
        zq_qspec_format(&t->spec, spec, sizeof spec);
        cJSON_AddStringToObject(j, "spec", spec);
        cJSON_AddBoolToObject(j, "symmetric", t->spec.symmetric);
        cJSON *g = cJSON_AddObjectToObject(j, "group");
        cJSON_AddNumberToObject(g, "rows", (double)t->grid.group_rows);
        cJSON_AddNumberToObject(g, "cols", (double)t->grid.group_cols);
        cJSON_AddNumberToObject(j, "rel_rmse", t->rel_rmse);
        if (isfinite(t->sqnr_db)) cJSON_AddNumberToObject(j, "sqnr_db", t->sqnr_db);
        else cJSON_AddNullToObject(j, "sqnr_db");
    }
    cJSON *secs = cJSON_AddObjectToObject(j, "sections");
    for (int k = 0; k < ZQ_SEC_COUNT; k++) {
        const zq_section *s = &t->sec[k];
        if (!s->present) continue;
        cJSON *o = cJSON_AddObjectToObject(secs, section_names[k]);
        cJSON_AddNumberToObject(o, "offset", (double)s->offset);
        cJSON_AddNumberToObject(o, "length", (double)s->length);
        cJSON_AddNumberToObject(o, "size", (double)s->size);
        cJSON_AddNumberToObject(o, "crc32c", s->crc32c);
        cJSON_AddStringToObject(o, "compression", s->compressed ? "zstd" : "none");
    }
    return j;
}

static int get_uint(const cJSON *obj, const char *key, uint64_t *v)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *v = (uint64_t)d;
    return 1;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

#define BAD(...) zq_fail(err, ZQ_ERR_FORMAT, __VA_ARGS__)

static zq_status section_from_json(const cJSON *secs, zq_tensor *t, zq_section_kind k, const char *path,
                                   uint64_t data_start, uint64_t file_size, zq_error *err)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(secs, section_names[k]);
    uint64_t want = zq_section_expected_size(t, k);
    if (!o) {
        if (want) return BAD("'%s': tensor '%s': section '%s' missing", path, t->name, section_names[k]);
        return ZQ_OK;
    }
    if (!want) return BAD("'%s': tensor '%s': unexpected section '%s'", path, t->name, section_names[k]);
    zq_section *s = &t->sec[k];
    uint64_t crc;
    const char *comp = get_str(o, "compression");
    if (!get_uint(o, "offset", &s->offset) || !get_uint(o, "length", &s->length) || !get_uint(o, "size", &s->size) ||
        !get_uint(o, "crc32c", &crc) || crc > 0xffffffffu || !comp)
        return BAD("'%s': tensor '%s': section '%s' is incomplete", path, t->name, section_names[k]);
    s->crc32c = (uint32_t)crc;
    s->present = 1;
    if (strcmp(comp, "zstd") == 0) s->compressed = 1;
    else if (strcmp(comp, "none") != 0)
        return BAD("'%s': tensor '%s': unknown compression '%s'", path, t->name, comp);
    if (s->size != want)
        return BAD("'%s': tensor '%s': section '%s' holds %llu bytes, the tensor needs %llu", path, t->name,
                   section_names[k], (unsigned long long)s->size, (unsigned long long)want);
    if (!s->compressed && s->length != s->size)
        return BAD("'%s': tensor '%s': section '%s' length and size differ", path, t->name, section_names[k]);
    if (s->offset % ZQ_ALIGN || s->offset < data_start || s->offset > file_size || s->length > file_size - s->offset)
        return BAD("'%s': tensor '%s': section '%s' lies outside the data area", path, t->name, section_names[k]);
    return ZQ_OK;
}

static int parse_role(const char *s, zq_role *r)
{
    static const zq_role roles[] = {ZQ_ROLE_OTHER, ZQ_ROLE_ATTENTION, ZQ_ROLE_MLP, ZQ_ROLE_LINEAR};
    for (size_t k = 0; k < 4; k++)
        if (s && strcmp(s, zq_role_name(roles[k])) == 0) { *r = roles[k]; return 1; }
    return 0;
}

static int parse_source_dtype(const char *s, zq_dtype *dt)
{
    for (int k = 0; k < 4; k++)
        if (s && strcmp(s, zq_dtype_name((zq_dtype)k)) == 0) { *dt = (zq_dtype)k; return 1; }
    return 0;
}

/* The format is named by dtype; bits, when given, must be its width (files
 * of zquant 0.x name it by bits alone). */
static zq_status format_from_json(const cJSON *j, zq_format_id *id, const char *path, const char *name, zq_error *err)
{
    const char *dtype = get_str(j, "dtype");
    uint64_t bits;
    int has_bits = get_uint(j, "bits", &bits) && bits <= 64;
    if (dtype && !zq_format_named(dtype, id))
        return BAD("'%s': tensor '%s': unknown dtype '%s' (int4, int8 or f16)", path, name, dtype);
    if (!dtype && !(has_bits && zq_format_of_width((int)bits, id)))
        return BAD("'%s': tensor '%s': bits must be 4, 8 or 16", path, name);
    if (dtype && has_bits && (int)bits != zq_format_get(*id)->code_bits)
        return BAD("'%s': tensor '%s': dtype '%s' is %d bits wide, not %llu", path, name, dtype,
                   zq_format_get(*id)->code_bits, (unsigned long long)bits);
    return ZQ_OK;
}

zq_status zq_tensor_from_json(const cJSON *j, zq_tensor *t, const char *path, uint64_t data_start,
                              uint64_t file_size, zq_error *err)
{
    memset(t, 0, sizeof *t);
    t->layer = -1;
    const char *name = get_str(j, "name");
    if (!name) return BAD("'%s': a tensor entry has no name", path);
    if (!(t->name = strdup(name))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (!parse_role(get_str(j, "role"), &t->role)) return BAD("'%s': tensor '%s': bad role", path, name);
    uint64_t v;
    if (get_uint(j, "layer", &v)) t->layer = (int)(v < 1000000 ? v : 1000000);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > ZQ_MAX_DIMS)
        return BAD("'%s': tensor '%s': bad shape", path, name);
    uint64_t numel = 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, shape) {
        double d = it->valuedouble;
        if (!cJSON_IsNumber(it) || !(d >= 0 && d < 9007199254740992.0) || d != (double)(uint64_t)d)
            return BAD("'%s': tensor '%s': bad shape", path, name);
        if (d && numel > (UINT64_MAX / 16) / (uint64_t)d) return BAD("'%s': tensor '%s': shape overflows", path, name);
        numel *= (uint64_t)d;
        t->shape[t->ndim++] = (int64_t)d;
    }
    if (numel * 2 > file_size * 16 + 64 * 1024)
        return BAD("'%s': tensor '%s': shape is larger than the file can hold", path, name);
    const char *layout = get_str(j, "layout");
    if (!layout || (strcmp(layout, "out_in") && strcmp(layout, "in_out")))
        return BAD("'%s': tensor '%s': bad layout", path, name);
    t->transposed = strcmp(layout, "in_out") == 0;
    if (t->transposed && t->ndim != 2) return BAD("'%s': tensor '%s': in_out layout needs 2 dimensions", path, name);
    if (!parse_source_dtype(get_str(j, "source_dtype"), &t->source_dtype))
        return BAD("'%s': tensor '%s': bad source_dtype", path, name);
    ZQ_TRY(format_from_json(j, &t->spec.format, path, name, err));
    if (zq_qspec_quantized(&t->spec)) {
        const cJSON *sym = cJSON_GetObjectItemCaseSensitive(j, "symmetric");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "group");
        uint64_t gr, gc;
        if (!cJSON_IsBool(sym) || !get_uint(g, "rows", &gr) || !get_uint(g, "cols", &gc) || !gr || !gc)
            return BAD("'%s': tensor '%s': bad quantization parameters", path, name);
        t->spec.symmetric = cJSON_IsTrue(sym);
        uint64_t rows, cols;
        zq_tensor_matrix(t, &rows, &cols);
        t->grid.rows = rows;
        t->grid.cols = cols;
        t->grid.group_rows = gr;
        t->grid.group_cols = gc;
        t->grid.row_groups = zq_ceil_div(rows, gr);
        t->grid.col_groups = zq_ceil_div(cols, gc);
        t->grid.row_bytes = zq_format_row_bytes(zq_format_get(t->spec.format), cols);
        /* keep a spec that formats back to what the grid says */
        t->spec.gran = gr == 1 && gc >= cols ? ZQ_GRAN_ROW : gr == 1 ? ZQ_GRAN_GROUP
                     : gc >= cols && gr >= rows ? ZQ_GRAN_TENSOR : ZQ_GRAN_BLOCKS;
        t->spec.group_size = (uint32_t)(gc < 0xffffffffu ? gc : 0xffffffffu);
        t->spec.blocks = (uint32_t)t->grid.row_groups;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "rel_rmse");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "sqnr_db");
        t->rel_rmse = cJSON_IsNumber(r) ? r->valuedouble : NAN;
        t->sqnr_db = cJSON_IsNumber(q) ? q->valuedouble : INFINITY;
    }
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(j, "sections");
    if (!cJSON_IsObject(secs)) return BAD("'%s': tensor '%s': no sections", path, name);
    for (int k = 0; k < ZQ_SEC_COUNT; k++)
        ZQ_TRY(section_from_json(secs, t, (zq_section_kind)k, path, data_start, file_size, err));
    return ZQ_OK;
}

const char *const zq_model_files[] = {
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "generation_config.json",
    "vocab.json",     "merges.txt",            "added_tokens.json", "tokenizer.bin",         "chat_template.jinja",
    NULL};

cJSON *zq_attached_to_json(const zq_attached *a)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", a->name);
    cJSON_AddNumberToObject(j, "offset", (double)a->offset);
    cJSON_AddNumberToObject(j, "length", (double)a->length);
    cJSON_AddNumberToObject(j, "crc32c", a->crc32c);
    return j;
}

zq_status zq_attached_from_json(const cJSON *j, zq_attached *a, const char *path, uint64_t data_start,
                                uint64_t file_size, zq_error *err)
{
    memset(a, 0, sizeof *a);
    const char *name = get_str(j, "name");
    uint64_t crc;
    if (!name || !*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
        return BAD("'%s': an entry of \"files\" has no plain file name", path);
    if (!get_uint(j, "offset", &a->offset) || !get_uint(j, "length", &a->length) || !get_uint(j, "crc32c", &crc) ||
        crc > 0xffffffffu)
        return BAD("'%s': attached file '%s' is incomplete", path, name);
    if (a->offset % ZQ_ALIGN || a->offset < data_start || a->offset > file_size || a->length > file_size - a->offset)
        return BAD("'%s': attached file '%s' lies outside the data area", path, name);
    a->crc32c = (uint32_t)crc;
    return (a->name = strdup(name)) ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
}
