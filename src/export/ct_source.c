/* A compressed-tensors folder read back as a checkpoint: each quantized
 * Linear's pieces (weight_packed or I8 weight, weight_scale, zero point,
 * weight_shape) become one float tensor P.weight in the checkpoint's layout,
 * decoded as compressed-tensors defines it, w = (q - zp) * scale per group;
 * every other tensor passes through. So `zquant eval DIR` runs what vLLM
 * loads, and the export's inverse can be checked against the .zq. The
 * scheme of each module is read off its pieces' shapes (bits from the packed
 * width, the group from the scale's width). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "export/export_impl.h"
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

static const zq_source_ops ct_ops = {read_ct, release_ct, close_ct, NULL, NULL};

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
    x->scale = inner_find(in, module, "weight_scale");
    x->zero = inner_find(in, module, "weight_zero_point");
    int layer;
    char wname[640];
    snprintf(wname, sizeof wname, "%s.weight", module);
    const zq_arch_tensor *row = zq_export_row(d, wname, &layer);
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
    x->out = zq_load_le64(sp);
    x->in = zq_load_le64(sp + 8);
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

zq_status zq_ct_source_wrap(zq_source *src, zq_error *err)
{
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
    return st;
}
