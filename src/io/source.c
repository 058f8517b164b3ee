/* Opening a checkpoint whatever its form (file, folder, shards, HDF5),
 * reading blocks of tensors as float or FP16, and patched sources (a
 * checkpoint with some tensors replaced, as LKD writes them). */
#include "io/source_impl.h"
#include "zquant/crc32c.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/files.h"
#include "base/utf8.h"
#include "base/util.h"
#include "export/target.h"
#include "simd/kernels.h"
#include "zquant/fp16.h"
#include "zquant/zq.h"

#define CONFIG_LIMIT (16u << 20)

const char *zq_dtype_name(zq_dtype dt)
{
    static const char *names[] = {"F16", "BF16", "F32", "F64", "I8", "I32", "I64"};
    return (unsigned)dt < 7 ? names[dt] : "?";
}

size_t zq_dtype_size(zq_dtype dt)
{
    static const size_t sizes[] = {2, 2, 4, 8, 1, 4, 8};
    return (unsigned)dt < 7 ? sizes[dt] : 0;
}

zq_status zq_source_add(zq_source *src, const char *name, zq_dtype dtype, int ndim,
                        const int64_t *shape, size_t *index, zq_error *err)
{
    if (ndim < 0 || ndim > ZQ_MAX_DIMS)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %d dimensions (at most %d supported)",
                       src->path, name, ndim, ZQ_MAX_DIMS);
    if (src->count == src->cap) {
        size_t cap = src->cap ? src->cap * 2 : 64;
        zq_tensor_info *t = realloc(src->tensors, cap * sizeof *t);
        if (!t) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory listing tensors");
        src->tensors = t;
        src->cap = cap;
    }
    zq_tensor_info *t = &src->tensors[src->count];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory listing tensors");
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->numel *= (uint64_t)shape[d];
    }
    t->rows = ndim >= 1 ? (uint64_t)shape[0] : 1;
    t->cols = t->rows ? t->numel / t->rows : 0;
    if (ndim == 1) { t->rows = 1; t->cols = t->numel; }
    *index = src->count++;
    return ZQ_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static zq_status load_config_beside(zq_source *src, const char *dir, zq_error *err)
{
    char *path = zq_path_join(dir, "config.json");
    if (!path) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    if (access(path, F_OK) == 0) st = zq_read_input_file(path, CONFIG_LIMIT, &src->config, NULL, err);
    free(path);
    return st;
}

/* The config goes into .zq metadata and --json output as it is: it must be
 * valid UTF-8 throughout (one that is not JSON at all is reported where
 * it is used). */
static zq_status check_config(const zq_source *src, zq_error *err)
{
    cJSON *c = src->config ? cJSON_Parse(src->config) : NULL;
    int bad = c && zq_json_bad_utf8(c->child);
    cJSON_Delete(c);
    return bad ? zq_fail(err, ZQ_ERR_FORMAT, "'%s': its config is not valid UTF-8", src->path) : ZQ_OK;
}

static int has_pickle(const char *dir)
{
    static const char *const names[] = {"pytorch_model.bin", "pytorch_model.bin.index.json"};
    int yes = 0;
    for (size_t k = 0; k < 2 && !yes; k++) {
        char *p = zq_path_join(dir, names[k]);
        yes = p && access(p, F_OK) == 0;
        free(p);
    }
    return yes;
}

static zq_status open_folder(zq_source *src, const char *dir, zq_error *err)
{
    char *index = zq_path_join(dir, "model.safetensors.index.json");
    char *single = zq_path_join(dir, "model.safetensors");
    zq_status st;
    if (!index || !single) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    else if (access(index, F_OK) == 0) st = zq_safetensors_open_sharded(src, dir, index, err);
    else if (access(single, F_OK) == 0) st = zq_safetensors_open(src, single, err);
    else if (has_pickle(dir))
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': holds PyTorch pickles (pytorch_model*.bin), which zquant does not read "
                     "(loading one runs code): convert them to safetensors first, e.g. in Python with transformers: "
                     "AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True)", dir);
    else
        st = zq_fail(err, ZQ_ERR_FORMAT,
                     "'%s': no model.safetensors or model.safetensors.index.json in this folder", dir);
    free(index);
    free(single);
    if (st == ZQ_OK) st = load_config_beside(src, dir, err);
    for (int k = 1; st == ZQ_OK && k < ZQ_TARGET_COUNT; k++) { /* an export target's folder: its decoded model */
        const zq_target *t = zq_target_get((zq_target_id)k);
        if (t->claims && t->claims(src->config)) {
            st = t->open(src, dir, err);
            break;
        }
    }
    return st;
}

zq_status zq_source_open(const char *path, zq_source **out, zq_error *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot open", path);
    zq_source *src = calloc(1, sizeof *src);
    if (!src || !(src->path = strdup(path))) {
        free(src);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    zq_status st;
    zq_target_id target;
    if (S_ISREG(sb.st_mode) && zq_is_zq_file(path)) { /* a FIFO would block: its readers refuse it */
        st = zq_fail(err, ZQ_ERR_USAGE, "'%s': already quantized (a .zq file); give the FP checkpoint it was made "
                     "from", path);
    } else if (S_ISDIR(sb.st_mode)) {
        st = open_folder(src, path, err);
    } else if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) {
        st = zq_hdf5_open(src, path, err);
        if (st == ZQ_OK && !src->config) {
            char *dir = zq_path_dirname(path);
            st = dir ? load_config_beside(src, dir, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            free(dir);
        }
    } else if ((target = zq_target_of_output(path)) && zq_target_get(target)->extension) {
        st = zq_target_get(target)->open(src, path, err);
    } else {
        st = zq_safetensors_open(src, path, err);
        if (st == ZQ_OK) {
            char *dir = zq_path_dirname(path);
            st = dir ? load_config_beside(src, dir, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            free(dir);
        }
    }
    if (st == ZQ_OK) st = check_config(src, err);
    if (st != ZQ_OK) {
        zq_source_close(src);
        return st;
    }
    *out = src;
    return ZQ_OK;
}

void zq_source_close(zq_source *src)
{
    if (!src) return;
    if (src->ops && src->ops->close) src->ops->close(src);
    for (size_t i = 0; i < src->count; i++) free(src->tensors[i].name);
    free(src->tensors);
    free(src->config);
    free(src->path);
    free(src->act_quantized);
    free(src);
}

const zq_activation *zq_source_activation(const zq_source *src) { return src->act_quantized ? &src->act : NULL; }

int zq_source_act_quantized(const zq_source *src, size_t i) { return src->act_quantized && src->act_quantized[i]; }

const char *zq_source_path(const zq_source *src) { return src->path; }
size_t zq_source_count(const zq_source *src) { return src->count; }
const zq_tensor_info *zq_source_tensor(const zq_source *src, size_t i) { return &src->tensors[i]; }
const char *zq_source_config(const zq_source *src) { return src->config; }

/* A block request past the tensor is a caller's bug, reported as one. */
static zq_status check_block(const zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0,
                             uint64_t ncols, zq_error *err)
{
    const zq_tensor_info *t = &src->tensors[i];
    if (row0 + nrows > t->rows || col0 + ncols > t->cols)
        return zq_fail(err, ZQ_ERR_INTERNAL, "'%s': tensor '%s': read outside the tensor", src->path, t->name);
    return ZQ_OK;
}

zq_status zq_source_read(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0,
                         uint64_t ncols, float *out, zq_error *err)
{
    ZQ_TRY(check_block(src, i, row0, nrows, col0, ncols, err));
    if (nrows == 0 || ncols == 0) return ZQ_OK;
    return src->ops->read(src, i, row0, nrows, col0, ncols, out, err);
}

zq_status zq_source_read_columns(zq_source *src, size_t i, uint64_t col0, uint64_t ncols, float *out,
                                 zq_error *err)
{
    const zq_tensor_info *t = &src->tensors[i];
    ZQ_TRY(check_block(src, i, 0, t->rows, col0, ncols, err));
    const unsigned char *raw = src->ops->raw ? src->ops->raw(src, i) : NULL;
    if (raw && t->dtype == ZQ_DT_F16 && (uintptr_t)raw % 2 == 0) {
        zq_kernels_active()->transpose_f16_to_f32((const uint16_t *)raw + col0, t->cols, t->rows, ncols, out);
        return ZQ_OK;
    }
    enum { KB = 64, CB = 16 }; /* a tile small enough for the stack */
    float tile[KB * CB];
    for (uint64_t k0 = 0; k0 < t->rows; k0 += KB)
        for (uint64_t c0 = 0; c0 < ncols; c0 += CB) {
            uint64_t nk = t->rows - k0 < KB ? t->rows - k0 : KB, nc = ncols - c0 < CB ? ncols - c0 : CB;
            ZQ_TRY(zq_source_read(src, i, k0, nk, col0 + c0, nc, tile, err));
            for (uint64_t k = 0; k < nk; k++)
                for (uint64_t c = 0; c < nc; c++) out[(c0 + c) * t->rows + k0 + k] = tile[k * nc + c];
        }
    return ZQ_OK;
}

zq_status zq_source_read_stored(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, void *dst, zq_error *err)
{
    ZQ_TRY(check_block(src, i, row0, nrows, 0, src->tensors[i].cols, err));
    if (!src->ops->read_stored)
        return zq_fail(err, ZQ_ERR_INTERNAL, "'%s': tensor '%s': not stored in a file as it is", src->path,
                       src->tensors[i].name);
    return nrows ? src->ops->read_stored(src, i, row0, nrows, dst, err) : ZQ_OK;
}

zq_status zq_source_read_f16(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint16_t *out,
                             zq_error *err)
{
    const zq_tensor_info *t = &src->tensors[i];
    ZQ_TRY(check_block(src, i, row0, nrows, 0, t->cols, err));
    const unsigned char *raw = src->ops->raw ? src->ops->raw(src, i) : NULL;
    if (raw && t->dtype == ZQ_DT_F16) {
        memcpy(out, raw + row0 * t->cols * 2, nrows * t->cols * 2);
        return ZQ_OK;
    }
    enum { STEP = 4096 };
    float tmp[STEP];
    for (uint64_t r = 0; r < nrows; r++)
        for (uint64_t c = 0; c < t->cols; c += STEP) {
            uint64_t n = t->cols - c < STEP ? t->cols - c : STEP;
            ZQ_TRY(zq_source_read(src, i, row0 + r, 1, c, n, tmp, err));
            zq_f32_to_f16_n(tmp, out + r * t->cols + c, (size_t)n);
        }
    return ZQ_OK;
}

void zq_source_release_rows(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    if (src->ops->release) src->ops->release(src, i, row0, nrows);
}

zq_status zq_source_codes(zq_source *src, size_t i, zq_stored_codes *out, zq_error *err)
{
    memset(out, 0, sizeof *out);
    return src->ops->codes && i < src->count ? src->ops->codes(src, i, out, err) : ZQ_OK;
}

void zq_source_drop(zq_source *src, size_t i)
{
    if (src->ops->drop && i < src->count) src->ops->drop(src, i);
}

int zq_source_mapped(zq_source *src, size_t i)
{
    return i < src->count && src->ops->raw && src->ops->raw(src, i) != NULL;
}

void zq_source_prefetch_rows(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    if (src->ops->prefetch && nrows) src->ops->prefetch(src, i, row0, nrows);
}

void zq_source_release(zq_source *src, size_t i) { zq_source_release_rows(src, i, 0, src->tensors[i].rows); }

void zq_convert_to_f32(zq_dtype dt, const void *p, float *out, size_t n)
{
    /* Unaligned input (safetensors does not promise alignment) goes through a
     * small aligned bounce buffer so no path reads through a misaligned pointer. */
    enum { BOUNCE = 4096 };
    size_t es = zq_dtype_size(dt);
    if (((uintptr_t)p % es) != 0) {
        _Alignas(64) unsigned char tmp[BOUNCE * 8];
        const unsigned char *b = p;
        for (size_t done = 0; done < n;) {
            size_t k = n - done < BOUNCE ? n - done : BOUNCE;
            memcpy(tmp, b + done * es, k * es);
            zq_convert_to_f32(dt, tmp, out + done, k);
            done += k;
        }
        return;
    }
    switch (dt) {
    case ZQ_DT_F16: zq_f16_to_f32_n(p, out, n); break;
    case ZQ_DT_BF16: zq_bf16_to_f32_n(p, out, n); break;
    case ZQ_DT_F32: memcpy(out, p, n * 4); break;
    case ZQ_DT_F64:
        for (size_t k = 0; k < n; k++) out[k] = (float)((const double *)p)[k];
        break;
    case ZQ_DT_I8:
        for (size_t k = 0; k < n; k++) out[k] = (float)((const int8_t *)p)[k];
        break;
    case ZQ_DT_I32:
        for (size_t k = 0; k < n; k++) out[k] = (float)((const int32_t *)p)[k];
        break;
    case ZQ_DT_I64:
        for (size_t k = 0; k < n; k++) out[k] = (float)((const int64_t *)p)[k];
        break;
    }
}

/* ---- a source with patched tensors ---------------------------------------- */

typedef struct {
    zq_source **parts; /* [0] the base, then the patches */
    size_t nparts;
    size_t *part, *index; /* per tensor: which source, and its index there */
    int base_borrowed;    /* an overlay: parts[0] is the caller's */
} patched;

static zq_status read_patched(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0, uint64_t ncols,
                              float *out, zq_error *err)
{
    patched *p = src->impl;
    return zq_source_read(p->parts[p->part[i]], p->index[i], row0, nrows, col0, ncols, out, err);
}

static void release_patched(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    patched *p = src->impl;
    zq_source_release_rows(p->parts[p->part[i]], p->index[i], row0, nrows);
}

static const void *raw_patched(zq_source *src, size_t i)
{
    patched *p = src->impl;
    zq_source *s = p->parts[p->part[i]];
    return s->ops->raw ? s->ops->raw(s, p->index[i]) : NULL;
}

static void prefetch_patched(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    patched *p = src->impl;
    zq_source_prefetch_rows(p->parts[p->part[i]], p->index[i], row0, nrows);
}

static zq_status read_stored_patched(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, void *dst,
                                     zq_error *err)
{
    patched *p = src->impl;
    return zq_source_read_stored(p->parts[p->part[i]], p->index[i], row0, nrows, dst, err);
}

static void close_patched(zq_source *src)
{
    patched *p = src->impl;
    if (!p) return;
    for (size_t k = p->base_borrowed; k < p->nparts; k++) zq_source_close(p->parts[k]);
    free(p->parts);
    free(p->part);
    free(p->index);
    free(p);
    src->impl = NULL;
}

static const zq_source_ops patched_ops = {read_patched,     release_patched, close_patched,      raw_patched,
                                          prefetch_patched, NULL,            NULL, read_stored_patched};

/* The F16 table tensor `name` holds in src (any of a patched source's
 * parts, the last first), read back as FP16; *out NULL when none has it. */
static zq_status read_f16_table(zq_source *src, const char *name, uint16_t **out, size_t *n, zq_error *err)
{
    *out = NULL;
    if (src->ops == &patched_ops) {
        patched *p = src->impl;
        for (size_t k = p->nparts; k-- > 0 && !*out;) ZQ_TRY(read_f16_table(p->parts[k], name, out, n, err));
        return ZQ_OK;
    }
    for (size_t i = 0; i < src->count; i++) {
        const zq_tensor_info *t = &src->tensors[i];
        if (strcmp(t->name, name) != 0) continue;
        float *f = malloc((size_t)t->numel * sizeof *f + 1);
        uint16_t *h = malloc((size_t)t->numel * sizeof *h + 1);
        zq_status st = f && h ? zq_source_read(src, i, 0, t->rows, 0, t->cols, f, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        for (uint64_t k = 0; st == ZQ_OK && k < t->numel; k++) h[k] = zq_f32_to_f16(f[k]);
        free(f);
        if (st != ZQ_OK) {
            free(h);
            return st;
        }
        *out = h;
        *n = (size_t)t->numel;
        return ZQ_OK;
    }
    return ZQ_OK;
}

zq_status zq_source_group_params(zq_source *src, const char *tensor, uint16_t **scale, uint16_t **min, size_t *n,
                                 zq_error *err)
{
    char name[1024];
    size_t ns = 0, nm = 0;
    *scale = *min = NULL;
    *n = 0;
    snprintf(name, sizeof name, "%s#scale", tensor);
    ZQ_TRY(read_f16_table(src, name, scale, &ns, err));
    snprintf(name, sizeof name, "%s#min", tensor);
    zq_status st = *scale ? read_f16_table(src, name, min, &nm, err) : ZQ_OK;
    if (st == ZQ_OK && *min && nm != ns)
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %zu scales but %zu mins", src->path, tensor, ns, nm);
    if (st != ZQ_OK) {
        free(*scale), free(*min);
        *scale = *min = NULL;
        return st;
    }
    *n = ns;
    return ZQ_OK;
}

/* src's tensors: the base's, each from the last part that has it. */
static zq_status map_patches(zq_source *src, patched *p, const char *const *patch_names, zq_error *err)
{
    zq_status st = ZQ_OK;
    zq_source *base = p->parts[0];
    if (base->config && !(src->config = strdup(base->config))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) {
        p->part = calloc(base->count + 1, sizeof *p->part);
        p->index = calloc(base->count + 1, sizeof *p->index);
        if (!p->part || !p->index) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; st == ZQ_OK && i < base->count; i++) {
        const zq_tensor_info *t = &base->tensors[i];
        p->part[i] = 0;
        p->index[i] = i;
        for (size_t k = 1; k < p->nparts; k++) /* the last patch that has it wins */
            for (size_t j = 0; j < p->parts[k]->count; j++)
                if (strcmp(p->parts[k]->tensors[j].name, t->name) == 0) p->part[i] = k, p->index[i] = j;
        const zq_tensor_info *from = &p->parts[p->part[i]]->tensors[p->index[i]];
        if (from->ndim != t->ndim || memcmp(from->shape, t->shape, sizeof t->shape[0] * (size_t)t->ndim))
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': the patch's shape differs",
                         patch_names ? patch_names[p->part[i] - 1] : "memory", t->name);
        size_t idx;
        if (st == ZQ_OK) st = zq_source_add(src, t->name, from->dtype, t->ndim, t->shape, &idx, err);
    }
    return st;
}

zq_status zq_source_open_patched(const char *path, const char *const *patches, size_t npatches, zq_source **out,
                                 zq_error *err)
{
    *out = NULL;
    zq_source *src = calloc(1, sizeof *src);
    patched *p = calloc(1, sizeof *p);
    if (src) src->impl = p, src->ops = &patched_ops;
    zq_status st = src && p && (src->path = strdup(path)) ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK && !(p->parts = calloc(npatches + 1, sizeof *p->parts))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; st == ZQ_OK && k <= npatches; k++) {
        st = zq_source_open(k ? patches[k - 1] : path, &p->parts[k], err);
        if (st == ZQ_OK) p->nparts++;
    }
    if (st == ZQ_OK) st = map_patches(src, p, patches, err);
    if (st != ZQ_OK) {
        zq_source_close(src);
        return st;
    }
    *out = src;
    return ZQ_OK;
}

zq_status zq_source_fingerprint(zq_source *src, uint32_t *crc, zq_error *err)
{
    const char *config = zq_source_config(src);
    uint32_t c = config ? zq_crc32c(0, config, strlen(config)) : 0;
    enum { FLOATS = 1 << 20 };
    float *buf = malloc(FLOATS * sizeof *buf);
    if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    for (size_t i = 0; st == ZQ_OK && i < zq_source_count(src); i++) {
        const zq_tensor_info *t = zq_source_tensor(src, i);
        int64_t head[2 + ZQ_MAX_DIMS] = {t->dtype, t->ndim};
        memcpy(head + 2, t->shape, sizeof t->shape);
        c = zq_crc32c(zq_crc32c(c, t->name, strlen(t->name) + 1), head, sizeof head);
        uint64_t step = t->cols && t->cols <= FLOATS ? FLOATS / t->cols : 1;
        for (uint64_t r = 0; st == ZQ_OK && r < t->rows; r += step) {
            uint64_t n = t->rows - r < step ? t->rows - r : step;
            for (uint64_t c0 = 0; st == ZQ_OK && c0 < t->cols; c0 += FLOATS) { /* rows wider than the buffer too */
                uint64_t w = t->cols - c0 < FLOATS ? t->cols - c0 : FLOATS;
                st = zq_source_read(src, i, r, n, c0, w, buf, err);
                if (st == ZQ_OK) c = zq_crc32c(c, buf, (size_t)(n * w) * sizeof *buf);
            }
            zq_source_release_rows(src, i, r, n);
        }
    }
    free(buf);
    *crc = c;
    return st;
}

zq_status zq_source_overlay(zq_source *base, zq_source *patch, zq_source **out, zq_error *err)
{
    *out = NULL;
    zq_source *src = calloc(1, sizeof *src);
    patched *p = calloc(1, sizeof *p);
    if (src) src->impl = p, src->ops = &patched_ops;
    zq_status st = src && p && (src->path = strdup(base->path)) && (p->parts = calloc(2, sizeof *p->parts))
                       ? ZQ_OK
                       : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) {
        p->parts[0] = base, p->parts[1] = patch, p->nparts = 2, p->base_borrowed = 1;
        st = map_patches(src, p, NULL, err);
    } else {
        zq_source_close(patch);
    }
    if (st != ZQ_OK) {
        zq_source_close(src);
        return st;
    }
    *out = src;
    return ZQ_OK;
}

/* ---- tensors in memory ------------------------------------------------------ */

static zq_status read_memory(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0, uint64_t ncols,
                             float *out, zq_error *err)
{
    (void)err;
    const float *data = ((const float *const *)src->impl)[i];
    uint64_t cols = src->tensors[i].cols;
    for (uint64_t r = 0; r < nrows; r++) memcpy(out + r * ncols, data + (row0 + r) * cols + col0, ncols * sizeof *out);
    return ZQ_OK;
}

static void close_memory(zq_source *src)
{
    float **data = src->impl;
    for (size_t i = 0; data && i < src->count; i++) free(data[i]);
    free(data);
    src->impl = NULL;
}

static const zq_source_ops memory_ops = {read_memory, NULL, close_memory, NULL, NULL, NULL, NULL, NULL};

zq_status zq_source_memory(const char *path, zq_source **out, zq_error *err)
{
    *out = NULL;
    zq_source *src = calloc(1, sizeof *src);
    if (!src || !(src->path = strdup(path))) {
        free(src);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    src->ops = &memory_ops;
    *out = src;
    return ZQ_OK;
}

zq_status zq_source_memory_add(zq_source *src, const char *name, int ndim, const int64_t *shape, float *data,
                               zq_error *err)
{
    float **d = realloc(src->impl, (src->count + 1) * sizeof *d);
    if (!d) {
        free(data);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    src->impl = d;
    size_t index;
    zq_status st = zq_source_add(src, name, ZQ_DT_F32, ndim, shape, &index, err);
    if (st != ZQ_OK) {
        free(data);
        return st;
    }
    d[index] = data;
    return ZQ_OK;
}
