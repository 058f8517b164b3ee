/* A .zq file as a zq_source: its tensors decoded to float in the layout of
 * the checkpoint they came from, its config, and its activation scheme
 * with every quantized Linear marked as quantizing its input, as a
 * compressed-tensors folder's are. The engine then reads every model the
 * same way. A tensor is decoded whole on its first partial read and kept
 * until another is read (the engine reads one tensor at a time). */
#include <stdlib.h>
#include <string.h>

#include "io/source_impl.h"
#include "zquant/zq.h"

typedef struct {
    zq_file *f;
    float *cached; /* tensor cached_index, decoded whole */
    size_t cached_index;
} zq_source_impl;

static zq_status read_zq(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0, uint64_t ncols,
                         float *out, zq_error *err)
{
    zq_source_impl *x = src->impl;
    const zq_tensor_info *t = &src->tensors[i];
    if (row0 == 0 && nrows == t->rows && col0 == 0 && ncols == t->cols) /* whole: no copy */
        return zq_file_read_float(x->f, i, out, err);
    if (!x->cached || x->cached_index != i) {
        free(x->cached);
        x->cached = malloc((t->numel ? t->numel : 1) * sizeof *x->cached);
        if (!x->cached) return zq_fail(err, ZQ_ERR_NOMEM, "'%s': out of memory decoding '%s'", src->path, t->name);
        zq_status st = zq_file_read_float(x->f, i, x->cached, err);
        if (st != ZQ_OK) {
            free(x->cached);
            x->cached = NULL;
            return st;
        }
        x->cached_index = i;
    }
    for (uint64_t r = 0; r < nrows; r++)
        memcpy(out + r * ncols, x->cached + (row0 + r) * t->cols + col0, (size_t)ncols * sizeof *out);
    return ZQ_OK;
}

static void release_zq(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    zq_source_impl *x = src->impl;
    if (row0 + nrows < src->tensors[i].rows) return;
    if (x->cached && x->cached_index == i) { /* read to its end: done with it */
        free(x->cached);
        x->cached = NULL;
    }
    zq_file_release(x->f, i);
}

static void close_zq(zq_source *src)
{
    zq_source_impl *x = src->impl;
    if (!x) return;
    free(x->cached);
    zq_file_close(x->f);
    free(x);
    src->impl = NULL;
}

static zq_status codes_zq(zq_source *src, size_t i, zq_stored_codes *out, zq_error *err)
{
    zq_source_impl *x = src->impl;
    const zq_tensor *t = zq_file_tensor(x->f, i);
    const void *q, *scale = NULL, *min = NULL;
    size_t len;
    if (!zq_qspec_quantized(&t->spec)) {
        /* FP16 values as stored: a matrix the engine can multiply with as
         * it is (not a Conv1D's [in, out]) */
        if (t->transposed || t->ndim != 2) return ZQ_OK;
        ZQ_TRY(zq_file_section(x->f, i, ZQ_SEC_DATA, &q, &len, err));
        zq_qspec spec = {ZQ_FORMAT_F16, 1, ZQ_GRAN_TENSOR, 0, 0};
        zq_grid g;
        zq_grid_init(&g, &spec, (uint64_t)t->shape[0], (uint64_t)t->shape[1]);
        *out = (zq_stored_codes){spec, g, q, NULL, NULL};
        return ZQ_OK;
    }
    ZQ_TRY(zq_file_section(x->f, i, ZQ_SEC_Q, &q, &len, err));
    ZQ_TRY(zq_file_section(x->f, i, ZQ_SEC_SCALE, &scale, &len, err));
    if (!t->spec.symmetric) ZQ_TRY(zq_file_section(x->f, i, ZQ_SEC_MIN, &min, &len, err));
    *out = (zq_stored_codes){t->spec, t->grid, q, scale, min};
    return ZQ_OK;
}

static void drop_zq(zq_source *src, size_t i)
{
    zq_source_impl *x = src->impl;
    for (int k = 0; k < ZQ_SEC_COUNT; k++) zq_file_drop(x->f, i, (zq_section_kind)k, UINT64_MAX);
}

static const zq_source_ops zq_ops = {read_zq, release_zq, close_zq, NULL, NULL, codes_zq, drop_zq, NULL};

static zq_status open_zq(const char *path, zq_source **out, zq_error *err)
{
    *out = NULL;
    zq_source *src = calloc(1, sizeof *src);
    zq_source_impl *x = calloc(1, sizeof *x);
    if (!src || !x || !(src->path = strdup(path))) {
        free(src ? src->path : NULL);
        free(src);
        free(x);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    src->impl = x;
    src->ops = &zq_ops;
    zq_status st = zq_file_open(path, ZQ_VERIFY_ALL, &x->f, err);
    const char *config = st == ZQ_OK ? zq_file_config(x->f) : NULL;
    if (config && strcmp(config, "{}") != 0 && !(src->config = strdup(config)))
        st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    size_t n = st == ZQ_OK ? zq_file_count(x->f) : 0;
    if (st == ZQ_OK && !(src->act_quantized = calloc(n + 1, 1))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == ZQ_OK && i < n; i++) {
        const zq_tensor *t = zq_file_tensor(x->f, i);
        size_t index;
        st = zq_source_add(src, t->name, ZQ_DT_F32, t->ndim, t->shape, &index, err);
        src->act_quantized[i] = (unsigned char)zq_qspec_quantized(&t->spec);
    }
    if (st == ZQ_OK) src->act = *zq_file_activation(x->f);
    if (st != ZQ_OK) {
        zq_source_close(src);
        return st;
    }
    *out = src;
    return ZQ_OK;
}

zq_status zq_source_open_model(const char *path, zq_source **out, zq_error *err)
{
    size_t len = strlen(path);
    if (len > 3 && strcmp(path + len - 3, ".zq") == 0) return open_zq(path, out, err);
    return zq_source_open(path, out, err);
}
