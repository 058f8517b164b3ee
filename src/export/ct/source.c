/* A compressed-tensors folder read back as a checkpoint: each quantized
 * Linear's pieces (weight_packed or I8 weight, weight_scale, zero point,
 * weight_shape) become one float tensor P.weight in the checkpoint's layout,
 * decoded as compressed-tensors defines it, w = (q - zp) * scale per group;
 * every other tensor passes through. So `zquant eval DIR` runs what vLLM
 * loads (with the input_activations it says), and the export's inverse can
 * be checked against the .zq. The scheme of each module is read off its
 * pieces' shapes (bits from the packed width, the group from the scale's
 * width) and must be what quantization_config says of that module. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "export/export_impl.h"
#include "export/target.h"
#include "io/source_impl.h"
#include "zquant/fp16.h"

enum { CT_PASS, CT_PACKED, CT_INT8 };

typedef struct {
    int kind;
    size_t base;                    /* CT_PASS: the inner tensor; else the codes */
    long scale, zero;               /* inner tensors, -1 when absent */
    int bits;                       /* CT_PACKED */
    uint64_t out, in, group;        /* the [out, in] matrix; group: columns per scale */
    int conv1d;                     /* the checkpoint stores it [in, out] */
    float *whole;                   /* conv1d: decoded [out, in], until released */
    char module[512];               /* quantized kinds: the module the pieces belong to */
} ct_tensor;

typedef struct {
    zq_source *inner;
    ct_tensor *t;
    pthread_mutex_t lock;
} ct_impl;

static long inner_find(const zq_source *s, const char *module, const char *leaf)
{
    char name[640];
    snprintf(name, sizeof name, "%s.%s", module, leaf);
    for (size_t i = 0; i < zq_source_count(s); i++)
        if (!strcmp(zq_source_tensor(s, i)->name, name)) return (long)i;
    return -1;
}

static const unsigned char *raw(const ct_impl *im, long i)
{
    return im->inner->ops->raw(im->inner, (size_t)i);
}

/* Row r of the [out, in] matrix, columns [c0, c0 + n). */
static void decode_row(const ct_impl *im, const ct_tensor *x, uint64_t r, uint64_t c0, uint64_t n, float *out)
{
    const unsigned char *codes = raw(im, (long)x->base), *scales = raw(im, x->scale);
    uint64_t groups = x->group ? x->in / x->group : 1;
    if (x->kind == CT_INT8) {
        float s = zq_f16_to_f32((uint16_t)zq_load_le(scales + 2 * r, 2));
        for (uint64_t c = 0; c < n; c++) out[c] = (float)(int8_t)codes[r * x->in + c0 + c] * s;
        return;
    }
    int pf = 32 / x->bits;
    uint32_t mask = (1u << x->bits) - 1, half = 1u << (x->bits - 1);
    uint64_t words = (x->in + (uint64_t)pf - 1) / (uint64_t)pf;
    const unsigned char *zp = x->zero >= 0 ? raw(im, x->zero) : NULL;
    for (uint64_t c = c0; c < c0 + n; c++) {
        uint64_t g = x->group ? c / x->group : 0;
        uint32_t w = zq_load_le32(codes + 4 * (r * words + c / (uint64_t)pf));
        int q = (int)((w >> ((c % (uint64_t)pf) * (uint64_t)x->bits)) & mask) - (int)half, z = 0;
        if (zp) {
            uint32_t zw = zq_load_le32(zp + 4 * ((r / (uint64_t)pf) * groups + g));
            z = (int)((zw >> ((r % (uint64_t)pf) * (uint64_t)x->bits)) & mask) - (int)half;
        }
        float s = zq_f16_to_f32((uint16_t)zq_load_le(scales + 2 * (r * groups + g), 2));
        out[c - c0] = (float)(q - z) * s;
    }
}

static zq_status read_ct(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0, uint64_t ncols,
                         float *out, zq_error *err)
{
    ct_impl *im = src->impl;
    ct_tensor *x = &im->t[i];
    if (x->kind == CT_PASS) return zq_source_read(im->inner, x->base, row0, nrows, col0, ncols, out, err);
    if (!x->conv1d) {
        for (uint64_t r = 0; r < nrows; r++) decode_row(im, x, row0 + r, col0, ncols, out + r * ncols);
        return ZQ_OK;
    }
    if (x->kind == CT_INT8) { /* stored [in, out] like the checkpoint: scale per column */
        const unsigned char *codes = raw(im, (long)x->base), *scales = raw(im, x->scale);
        for (uint64_t r = 0; r < nrows; r++)
            for (uint64_t c = 0; c < ncols; c++)
                out[r * ncols + c] = (float)(int8_t)codes[(row0 + r) * x->out + col0 + c] *
                                     zq_f16_to_f32((uint16_t)zq_load_le(scales + 2 * (col0 + c), 2));
        return ZQ_OK;
    }
    pthread_mutex_lock(&im->lock); /* packed [out, in] seen as [in, out]: decode once */
    if (!x->whole && (x->whole = malloc(x->out * x->in * sizeof *x->whole)))
        for (uint64_t r = 0; r < x->out; r++) decode_row(im, x, r, 0, x->in, x->whole + r * x->in);
    pthread_mutex_unlock(&im->lock);
    if (!x->whole) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (uint64_t r = 0; r < nrows; r++)
        for (uint64_t c = 0; c < ncols; c++) out[r * ncols + c] = x->whole[(col0 + c) * x->in + row0 + r];
    return ZQ_OK;
}

static void release_ct(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    ct_impl *im = src->impl;
    ct_tensor *x = &im->t[i];
    if (x->kind == CT_PASS) {
        zq_source_release_rows(im->inner, x->base, row0, nrows);
        return;
    }
    pthread_mutex_lock(&im->lock);
    free(x->whole);
    x->whole = NULL;
    pthread_mutex_unlock(&im->lock);
}

static void close_ct(zq_source *src)
{
    ct_impl *im = src->impl;
    if (!im) return;
    for (size_t i = 0; im->t && i < src->count; i++) free(im->t[i].whole);
    free(im->t);
    zq_source_close(im->inner);
    pthread_mutex_destroy(&im->lock);
    free(im);
    src->impl = NULL;
}

static const zq_source_ops ct_ops = {read_ct, release_ct, close_ct, NULL, NULL, NULL, NULL, NULL};

int zq_ct_config(const char *config)
{
    cJSON *c = config ? cJSON_Parse(config) : NULL;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantization_config");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
    int yes = cJSON_IsString(m) && !strcmp(m->valuestring, "compressed-tensors");
    cJSON_Delete(c);
    return yes;
}

/* What module's pieces hold, checked against each other's shapes. */
static zq_status describe(const ct_impl *im, const char *path, const char *module, long base, ct_tensor *x,
                          const zq_arch_desc *d, zq_error *err)
{
    const zq_source *in = im->inner;
    const zq_tensor_info *b = zq_source_tensor(in, (size_t)base), *s;
    x->base = (size_t)base;
    snprintf(x->module, sizeof x->module, "%s", module);
    if (inner_find(in, module, "weight_g_idx") >= 0)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': weight_g_idx (activation reordering) is not read by zquant", path,
                       module);
    x->scale = inner_find(in, module, "weight_scale");
    x->zero = inner_find(in, module, "weight_zero_point");
    int layer;
    char wname[640];
    snprintf(wname, sizeof wname, "%s.weight", module);
    const zq_arch_tensor *row = zq_export_row(d, wname, &layer, NULL);
    x->conv1d = row && (row->flags & ZQ_T_CONV1D);
    if (x->scale < 0 || (s = zq_source_tensor(in, (size_t)x->scale))->dtype != ZQ_DT_F16 || s->ndim != 2 || b->ndim != 2)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': no FP16 [out, groups] weight_scale beside its codes", path, module);
    if (x->kind == CT_INT8) {
        x->out = (uint64_t)(x->conv1d ? b->shape[1] : b->shape[0]);
        x->in = (uint64_t)(x->conv1d ? b->shape[0] : b->shape[1]);
        if (b->dtype != ZQ_DT_I8 || (uint64_t)s->shape[0] != x->out || s->shape[1] != 1 || x->zero >= 0)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': an int-quantized weight is I8 with one FP16 scale per "
                           "output row and no zero point", path, module);
        return ZQ_OK;
    }
    long shape = inner_find(in, module, "weight_shape");
    const unsigned char *sp = shape >= 0 && zq_source_tensor(in, (size_t)shape)->dtype == ZQ_DT_I64 &&
                                      zq_source_tensor(in, (size_t)shape)->numel == 2 ? raw(im, shape) : NULL;
    if (!sp || b->dtype != ZQ_DT_I32)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': weight_packed needs I32 codes and an I64 weight_shape", path, module);
    /* sizes from the file, checked before any arithmetic on them: the
     * codes' own rows and words bound them */
    int64_t rows = (int64_t)zq_load_le64(sp), cols = (int64_t)zq_load_le64(sp + 8);
    if (rows < 1 || cols < 1 || rows != b->shape[0] || cols > b->shape[1] * 32)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': weight_shape [%lld, %lld] does not fit its %lld x %lld packed words",
                       path, module, (long long)rows, (long long)cols, (long long)b->shape[0], (long long)b->shape[1]);
    x->out = (uint64_t)rows;
    x->in = (uint64_t)cols;
    for (x->bits = 8; x->bits >= 2; x->bits /= 2) /* the width whose packing gives the stored words */
        if ((uint64_t)b->shape[1] == (x->in * (uint64_t)x->bits + 31) / 32) break;
    uint64_t groups = (uint64_t)s->shape[1];
    x->group = groups > 1 ? x->in / groups : 0;
    int pf = x->bits ? 32 / x->bits : 1;
    if (x->bits < 2 || (uint64_t)b->shape[0] != x->out || (uint64_t)s->shape[0] != x->out || !groups ||
        x->in % groups ||
        (x->zero >= 0 && (zq_source_tensor(in, (size_t)x->zero)->dtype != ZQ_DT_I32 ||
                          (uint64_t)zq_source_tensor(in, (size_t)x->zero)->shape[0] != (x->out + (uint64_t)pf - 1) / (uint64_t)pf ||
                          (uint64_t)zq_source_tensor(in, (size_t)x->zero)->shape[1] != groups)))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': weight_packed, weight_scale, weight_zero_point and weight_shape "
                       "do not agree", path, module);
    return ZQ_OK;
}

/* ---- what quantization_config says ----------------------------------------- */

/* Whether a config group's target names module: its own name, "Linear"
 * (every Linear: all quantized modules are), or "re:" and a regular
 * expression matched from the name's start, as compressed-tensors does. */
static int targets(const char *target, const char *module)
{
    if (!strcmp(target, module) || !strcmp(target, "Linear")) return 1;
    if (strncmp(target, "re:", 3)) return 0;
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(target + 3), PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED, &code, &at, NULL);
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    int yes = md && pcre2_match(re, (PCRE2_SPTR)module, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return yes;
}

static int is_ignored(const cJSON *ignore, const char *module)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, ignore) if (cJSON_IsString(e) && targets(e->valuestring, module)) return 1;
    return 0;
}

/* The config group whose targets name module (NULL: none). */
static const cJSON *group_of(const cJSON *groups, const cJSON *ignore, const char *module)
{
    const cJSON *g, *t;
    if (is_ignored(ignore, module)) return NULL;
    cJSON_ArrayForEach(g, groups) {
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(g, "targets")) if (cJSON_IsString(t) &&
                                                                                   targets(t->valuestring, module)) return g;
    }
    return NULL;
}

static int number_is(const cJSON *o, const char *key, double v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) && x->valuedouble == v;
}

static int string_is(const cJSON *o, const char *key, const char *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) && !strcmp(x->valuestring, v);
}

static int null_or_absent(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return !x || cJSON_IsNull(x);
}

/* A module's weights as its pieces hold them against its group's
 * "weights"; its input_activations: none, or ones zquant runs. */
static zq_status check_module(const char *path, const ct_tensor *x, const cJSON *g, const char *format, zq_activation *act,
                              int *quantizes_input, zq_error *err)
{
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
    const char *want = x->kind == CT_INT8 ? "int-quantized" : "pack-quantized";
    const char *f = string_is(g, "format", want) ? want : format;
    if (strcmp(f, want) && strcmp(f, "mixed-precision"))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': stored as %s, but its format is '%s'", path, x->module, want, f);
    int bits = x->kind == CT_INT8 ? 8 : x->bits;
    if (!string_is(w, "type", "int"))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': weights of type other than int are not read by zquant", path, x->module);
    if (!number_is(w, "num_bits", bits))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': its config says num_bits other than the %d its packing holds", path,
                       x->module, bits);
    int grouped = x->group != 0;
    if (grouped ? !(string_is(w, "strategy", "group") && number_is(w, "group_size", (double)x->group))
                : !string_is(w, "strategy", "channel"))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': its config's strategy and group_size are not its scales' (%s)", path,
                       x->module, grouped ? "groups" : "one per row");
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(w, "symmetric");
    if (!cJSON_IsBool(sym) || cJSON_IsTrue(sym) != (x->zero < 0))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': its config's symmetric does not match its zero point", path,
                       x->module);
    if (!null_or_absent(w, "actorder") || !null_or_absent(w, "block_structure") || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "dynamic")))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': actorder, block_structure or dynamic weights are not read by zquant",
                       path, x->module);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(g, "input_activations");
    *quantizes_input = a && !cJSON_IsNull(a);
    if (!*quantizes_input) return ZQ_OK;
    zq_activation rec = {8, "token", 1, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "symmetric"))};
    if (!string_is(a, "type", "int") || !number_is(a, "num_bits", 8) || !string_is(a, "strategy", "token") ||
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "dynamic")))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': input_activations other than dynamic per-token INT8 are not run by "
                       "zquant", path, x->module);
    if (act->bits && !zq_activation_equal(act, &rec))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s': input_activations differ between modules", path, x->module);
    *act = rec;
    return ZQ_OK;
}

/* Every quantized module is described by quantization_config, as its pieces
 * hold it; what the config says of inputs becomes the source's activation
 * scheme. */
static zq_status check_config(zq_source *src, const ct_impl *im, zq_error *err)
{
    cJSON *c = cJSON_Parse(src->config);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantization_config");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(q, "config_groups"), *ignore = cJSON_GetObjectItemCaseSensitive(q, "ignore");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(q, "format");
    const char *format = cJSON_IsString(fmt) ? fmt->valuestring : "";
    static const char *const known[] = {"pack-quantized", "int-quantized", "mixed-precision", "dense"};
    int ok_format = 0;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok_format |= !strcmp(format, known[k]);
    zq_status st = ok_format ? ZQ_OK
                             : zq_fail(err, ZQ_ERR_FORMAT, "'%s': quantization_config.format '%s' is not one zquant reads "
                                       "(pack-quantized, int-quantized, mixed-precision)", src->path, format);
    zq_activation act = {0};
    unsigned char *flags = calloc(src->count + 1, 1);
    int any = 0;
    if (st == ZQ_OK && !flags) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == ZQ_OK && i < src->count; i++) {
        const ct_tensor *x = &im->t[i];
        if (x->kind == CT_PASS) continue;
        const cJSON *g = group_of(groups, ignore, x->module);
        int quantizes_input = 0;
        if (!g)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s' holds quantized weights that no config group of "
                         "quantization_config targets", src->path, x->module);
        else st = check_module(src->path, x, g, format, &act, &quantizes_input, err);
        flags[i] = (unsigned char)quantizes_input;
        any |= quantizes_input;
    }
    cJSON_Delete(c);
    if (st == ZQ_OK && any) src->act = act, src->act_quantized = flags;
    else free(flags);
    return st;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const zq_tensor_info *)a)->name, ((const zq_tensor_info *)b)->name);
}

/* One tensor per name: a module holding both a plain and a packed weight
 * would otherwise be read twice under one name. */
static zq_status distinct_names(const zq_source *src, zq_error *err)
{
    zq_tensor_info *v = malloc((src->count + 1) * sizeof *v);
    if (!v) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    memcpy(v, src->tensors, src->count * sizeof *v);
    qsort(v, src->count, sizeof *v, by_name);
    zq_status st = ZQ_OK;
    for (size_t k = 1; st == ZQ_OK && k < src->count; k++)
        if (!strcmp(v[k - 1].name, v[k].name))
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s' is stored twice (a plain and a packed weight?)", src->path, v[k].name);
    free(v);
    return st;
}

zq_status zq_ct_source_wrap(zq_source *src, const char *dir, zq_error *err)
{
    (void)dir; /* src was opened from it */
    ct_impl *im = calloc(1, sizeof *im);
    zq_source *inner = calloc(1, sizeof *inner);
    if (!im || !inner) {
        free(im);
        free(inner);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    *inner = *src; /* the folder's tensors as stored */
    inner->path = strdup(src->path);
    inner->config = NULL;
    src->ops = &ct_ops;
    src->impl = im;
    src->tensors = NULL;
    src->count = src->cap = 0;
    im->inner = inner;
    pthread_mutex_init(&im->lock, NULL);
    im->t = calloc(zq_source_count(inner) + 1, sizeof *im->t);
    if (!im->t || !inner->path) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    cJSON *c = cJSON_Parse(src->config);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    const zq_arch_desc *d = cJSON_IsString(mt) ? zq_arch_find(mt->valuestring) : NULL;
    cJSON_Delete(c);
    zq_status st = ZQ_OK;
    for (size_t i = 0; st == ZQ_OK && i < zq_source_count(inner); i++) {
        const zq_tensor_info *t = zq_source_tensor(inner, i);
        char module[512];
        const char *dot = strrchr(t->name, '.');
        const char *leaf = dot ? dot + 1 : t->name;
        snprintf(module, sizeof module, "%.*s", dot ? (int)(dot - t->name) : 0, t->name);
        if (!strcmp(leaf, "weight_scale") || !strcmp(leaf, "weight_zero_point") || !strcmp(leaf, "weight_shape"))
            continue; /* read with their module's codes */
        ct_tensor *x = &im->t[src->count];
        int packed = !strcmp(leaf, "weight_packed"), int8 = !strcmp(leaf, "weight") && t->dtype == ZQ_DT_I8;
        x->kind = packed ? CT_PACKED : int8 ? CT_INT8 : CT_PASS;
        x->base = i;
        size_t index;
        if (x->kind == CT_PASS) {
            st = zq_source_add(src, t->name, t->dtype, t->ndim, t->shape, &index, err);
            continue;
        }
        st = describe(im, src->path, module, (long)i, x, d, err);
        char name[640];
        snprintf(name, sizeof name, "%s.weight", module);
        int64_t shape[2] = {(int64_t)(x->conv1d ? x->in : x->out), (int64_t)(x->conv1d ? x->out : x->in)};
        if (st == ZQ_OK) st = zq_source_add(src, name, ZQ_DT_F32, 2, shape, &index, err);
    }
    if (st == ZQ_OK) st = distinct_names(src, err);
    if (st == ZQ_OK) st = check_config(src, im, err);
    return st;
}
