/* Writing a .zq file in one streaming pass: the tensor table is declared
 * first, which bounds the metadata's size, so the data area can start at a
 * fixed offset; the metadata is filled in once every section's offset, CRC
 * and error figures are known. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "io/atomic.h"
#include "base/util.h"
#include "zq/meta.h"
#include "zquant/crc32c.h"

/* Room left beyond the placeholder metadata, for number formats that come out
 * a little longer than the placeholders. */
#define METADATA_SLACK 1024

struct zq_writer {
    zq_atomic file;
    int zstd_level;
    ZSTD_CCtx *cctx;
    unsigned char *zbuf;
    size_t zbuf_size;
    char *model_type;
    cJSON *config, *recipe;
    zq_activation act;
    zq_tensor *tensors;
    size_t count, cap;
    uint64_t data_start; /* 0 until the first section begins */
    uint64_t pos;
    zq_section *open; /* section being written */
    zq_attached *files; /* written after the last section, at commit */
    void **file_data;
    size_t nfiles;
};

zq_status zq_writer_open(const char *path, int force, int zstd_level, zq_writer **out, zq_error *err)
{
    *out = NULL;
    zq_writer *w = calloc(1, sizeof *w);
    if (!w) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    w->file.fd = -1;
    w->file.slot = -1;
    w->zstd_level = zstd_level;
    if (zstd_level) {
        w->cctx = ZSTD_createCCtx();
        w->zbuf_size = ZSTD_CStreamOutSize();
        w->zbuf = malloc(w->zbuf_size);
        if (!w->cctx || !w->zbuf) {
            zq_writer_abort(w);
            return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        }
    }
    zq_status st = zq_atomic_open(&w->file, path, force, err);
    if (st != ZQ_OK) {
        zq_writer_abort(w);
        return st;
    }
    *out = w;
    return ZQ_OK;
}

zq_status zq_writer_set_info(zq_writer *w, const char *model_type, const char *config_json,
                             const char *recipe_json, const zq_activation *act, zq_error *err)
{
    free(w->model_type);
    cJSON_Delete(w->config);
    cJSON_Delete(w->recipe);
    w->model_type = strdup(model_type ? model_type : "");
    w->config = config_json ? cJSON_Parse(config_json) : cJSON_CreateObject();
    w->recipe = recipe_json ? cJSON_Parse(recipe_json) : cJSON_CreateObject();
    if (!w->model_type || !w->config || !w->recipe)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': config or recipe is not valid JSON", w->file.final);
    w->act = *act;
    return ZQ_OK;
}

zq_status zq_writer_add_tensor(zq_writer *w, const zq_tensor *t, zq_error *err)
{
    if (w->data_start) return zq_fail(err, ZQ_ERR_INTERNAL, "tensor '%s' declared after data began", t->name);
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        zq_tensor *n = realloc(w->tensors, cap * sizeof *n);
        if (!n) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        w->tensors = n;
        w->cap = cap;
    }
    zq_tensor *c = &w->tensors[w->count];
    *c = *t;
    memset(c->sec, 0, sizeof c->sec);
    if (!(c->name = strdup(t->name))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    w->count++;
    return ZQ_OK;
}

zq_status zq_writer_attach(zq_writer *w, const char *name, const void *data, size_t len, zq_error *err)
{
    if (w->data_start) return zq_fail(err, ZQ_ERR_INTERNAL, "file '%s' attached after data began", name);
    for (size_t k = 0; k < w->nfiles; k++)
        if (!strcmp(w->files[k].name, name)) return zq_fail(err, ZQ_ERR_INTERNAL, "file '%s' attached twice", name);
    zq_attached *f = realloc(w->files, (w->nfiles + 1) * sizeof *f);
    if (f) w->files = f;
    void **d = f ? realloc(w->file_data, (w->nfiles + 1) * sizeof *d) : NULL;
    if (d) w->file_data = d;
    void *copy = d ? malloc(len ? len : 1) : NULL;
    char *nm = copy ? strdup(name) : NULL;
    if (!nm) {
        free(copy);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    memcpy(copy, data, len);
    w->files[w->nfiles] = (zq_attached){nm, 0, len, zq_crc32c(0, data, len)};
    w->file_data[w->nfiles++] = copy;
    return ZQ_OK;
}

static char *render_metadata(const zq_writer *w, int placeholders)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "zquant");
    cJSON_AddNumberToObject(root, "version", ZQ_FORMAT_VERSION);
    cJSON_AddStringToObject(root, "generator", "zquant " ZQ_VERSION);
    cJSON_AddStringToObject(root, "model_type", w->model_type ? w->model_type : "");
    cJSON_AddItemToObject(root, "config", w->config ? cJSON_Duplicate(w->config, 1) : cJSON_CreateObject());
    cJSON_AddItemToObject(root, "recipe", w->recipe ? cJSON_Duplicate(w->recipe, 1) : cJSON_CreateObject());
    cJSON_AddItemToObject(root, "activation", zq_activation_to_json(&w->act));
    cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < w->count; i++) {
        zq_tensor t = w->tensors[i];
        if (placeholders) {
            /* the widest values each field can print as */
            t.rel_rmse = -1.2345678901234567e-300;
            t.sqnr_db = -1.2345678901234567e-300;
            for (int k = 0; k < ZQ_SEC_COUNT; k++) {
                t.sec[k].present = zq_section_expected_size(&t, (zq_section_kind)k) != 0;
                t.sec[k].offset = t.sec[k].length = t.sec[k].size = 9007199254740991ull;
                t.sec[k].crc32c = 0xffffffffu;
                t.sec[k].compressed = 1;
            }
        }
        cJSON_AddItemToArray(arr, zq_tensor_to_json(&t));
    }
    if (w->nfiles) {
        cJSON *files = cJSON_AddArrayToObject(root, "files");
        for (size_t k = 0; k < w->nfiles; k++) {
            zq_attached a = w->files[k];
            if (placeholders) a.offset = 9007199254740991ull, a.crc32c = 0xffffffffu;
            cJSON_AddItemToArray(files, zq_attached_to_json(&a));
        }
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static zq_status start_data(zq_writer *w, zq_error *err)
{
    char *text = render_metadata(w, 1);
    if (!text) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    w->data_start = zq_align_up(ZQ_HEADER_SIZE + strlen(text) + METADATA_SLACK, ZQ_ALIGN);
    free(text);
    w->pos = w->data_start;
    return zq_atomic_seek(&w->file, w->pos, err);
}

static zq_status emit(zq_writer *w, const void *data, size_t len, zq_error *err)
{
    w->open->crc32c = zq_crc32c(w->open->crc32c, data, len);
    w->open->length += len;
    w->pos += len;
    return zq_atomic_write(&w->file, data, len, err);
}

zq_status zq_writer_begin_section(zq_writer *w, size_t tensor, zq_section_kind kind, zq_error *err)
{
    if (tensor >= w->count || w->open) return zq_fail(err, ZQ_ERR_INTERNAL, "section begun out of order");
    if (!w->data_start) ZQ_TRY(start_data(w, err));
    static const unsigned char zeros[ZQ_ALIGN];
    uint64_t pad = zq_align_up(w->pos, ZQ_ALIGN) - w->pos;
    if (pad) ZQ_TRY(zq_atomic_write(&w->file, zeros, (size_t)pad, err));
    w->pos += pad;
    zq_section *s = &w->tensors[tensor].sec[kind];
    memset(s, 0, sizeof *s);
    s->present = 1;
    s->offset = w->pos;
    s->compressed = w->zstd_level != 0;
    w->open = s;
    if (s->compressed) {
        ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->zstd_level);
    }
    return ZQ_OK;
}

static zq_status compress_step(zq_writer *w, const void *data, size_t len, ZSTD_EndDirective mode, zq_error *err)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->zbuf, w->zbuf_size, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(left))
            return zq_fail(err, ZQ_ERR_INTERNAL, "'%s': zstd: %s", w->file.final, ZSTD_getErrorName(left));
        if (out.pos) ZQ_TRY(emit(w, w->zbuf, out.pos, err));
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return ZQ_OK;
    }
}

zq_status zq_writer_write(zq_writer *w, const void *data, size_t len, zq_error *err)
{
    if (!w->open) return zq_fail(err, ZQ_ERR_INTERNAL, "write outside a section");
    w->open->size += len;
    if (w->open->compressed) return compress_step(w, data, len, ZSTD_e_continue, err);
    return emit(w, data, len, err);
}

zq_status zq_writer_write_crc(zq_writer *w, const void *data, size_t len, uint32_t crc32c, zq_error *err)
{
    if (!w->open) return zq_fail(err, ZQ_ERR_INTERNAL, "write outside a section");
    if (w->open->compressed) return zq_writer_write(w, data, len, err); /* the CRC is of the stored bytes */
    w->open->crc32c = zq_crc32c_combine(w->open->crc32c, crc32c, len);
    w->open->length += len;
    w->open->size += len;
    w->pos += len;
    return zq_atomic_write(&w->file, data, len, err);
}

zq_status zq_writer_end_section(zq_writer *w, zq_error *err)
{
    if (!w->open) return zq_fail(err, ZQ_ERR_INTERNAL, "no section to end");
    zq_status st = w->open->compressed ? compress_step(w, NULL, 0, ZSTD_e_end, err) : ZQ_OK;
    w->open = NULL;
    return st;
}

void zq_writer_set_error_stats(zq_writer *w, size_t tensor, double rel_rmse, double sqnr_db)
{
    if (tensor >= w->count) return;
    w->tensors[tensor].rel_rmse = rel_rmse;
    w->tensors[tensor].sqnr_db = sqnr_db;
}

static void free_writer(zq_writer *w)
{
    for (size_t k = 0; k < w->nfiles; k++) free(w->files[k].name), free(w->file_data[k]);
    free(w->files);
    free(w->file_data);
    for (size_t i = 0; i < w->count; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->model_type);
    cJSON_Delete(w->config);
    cJSON_Delete(w->recipe);
    ZSTD_freeCCtx(w->cctx);
    free(w->zbuf);
    free(w);
}

/* Attached files follow the last section, raw and aligned as sections are,
 * so a runtime maps them the same way. */
static zq_status write_attached(zq_writer *w, size_t k, zq_error *err)
{
    static const unsigned char zeros[ZQ_ALIGN];
    uint64_t pad = zq_align_up(w->pos, ZQ_ALIGN) - w->pos;
    if (pad) ZQ_TRY(zq_atomic_write(&w->file, zeros, (size_t)pad, err));
    w->pos += pad;
    w->files[k].offset = w->pos;
    w->pos += w->files[k].length;
    return zq_atomic_write(&w->file, w->file_data[k], (size_t)w->files[k].length, err);
}

zq_status zq_writer_commit(zq_writer *w, uint64_t *size, zq_error *err)
{
    zq_status st = ZQ_OK;
    if (w->open) st = zq_fail(err, ZQ_ERR_INTERNAL, "'%s': commit with a section open", w->file.final);
    if (st == ZQ_OK && !w->data_start) st = start_data(w, err);
    for (size_t i = 0; st == ZQ_OK && i < w->count; i++)
        for (int k = 0; k < ZQ_SEC_COUNT; k++)
            if (!w->tensors[i].sec[k].present && zq_section_expected_size(&w->tensors[i], (zq_section_kind)k))
                st = zq_fail(err, ZQ_ERR_INTERNAL, "'%s': tensor '%s': section '%s' never written", w->file.final,
                             w->tensors[i].name, zq_section_name((zq_section_kind)k));
    for (size_t k = 0; st == ZQ_OK && k < w->nfiles; k++) st = write_attached(w, k, err);
    char *text = st == ZQ_OK ? render_metadata(w, 0) : NULL;
    if (st == ZQ_OK && !text) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) {
        size_t len = strlen(text);
        if (ZQ_HEADER_SIZE + len > w->data_start)
            st = zq_fail(err, ZQ_ERR_INTERNAL, "'%s': metadata outgrew its reserved room", w->file.final);
        unsigned char header[ZQ_HEADER_SIZE];
        zq_header h = {ZQ_FORMAT_VERSION, zq_crc32c(0, text, len), len, w->data_start};
        zq_header_encode(&h, header);
        if (st == ZQ_OK) st = zq_atomic_pwrite(&w->file, header, sizeof header, 0, err);
        if (st == ZQ_OK) st = zq_atomic_pwrite(&w->file, text, len, ZQ_HEADER_SIZE, err);
        /* the padding between the metadata and the data is written, not left
         * a hole: a file with no sections still reaches its data start, and a
         * device or FIFO output has no holes */
        static const unsigned char zeros[ZQ_ALIGN];
        for (uint64_t at = ZQ_HEADER_SIZE + len; st == ZQ_OK && at < w->data_start;) {
            size_t k = w->data_start - at < ZQ_ALIGN ? (size_t)(w->data_start - at) : ZQ_ALIGN;
            st = zq_atomic_pwrite(&w->file, zeros, k, at, err);
            at += k;
        }
    }
    free(text);
    if (size) *size = w->pos > w->data_start ? w->pos : w->data_start;
    if (st == ZQ_OK) st = zq_atomic_commit(&w->file, err);
    else zq_atomic_abort(&w->file);
    free_writer(w);
    return st;
}

void zq_writer_abort(zq_writer *w)
{
    if (!w) return;
    zq_atomic_abort(&w->file);
    free_writer(w);
}
