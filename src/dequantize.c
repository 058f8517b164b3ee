#include "zquant/dequantize.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "zq_meta.h"
#include "zquant/fp16.h"
#include "zquant/zq.h"

/* The safetensors header: offsets follow the .zq table order; padded with
 * spaces to a multiple of 8 so the data area is aligned, as the reference
 * writer does. */
static char *build_header(const zq_file *f, size_t esize, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    uint64_t at = 0;
    for (size_t i = 0; i < zq_file_count(f); i++) {
        const zq_tensor *t = zq_file_tensor(f, i);
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", esize == 2 ? "F16" : "F32");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        uint64_t n = zq_tensor_numel(t) * esize;
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(at + n)));
        at += n;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return NULL;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = 0;
    *len = padded;
    return out;
}

zq_status zq_dequantize_file(const char *zq_path, const char *out_path, int dtype_f16, int force, zq_error *err)
{
    zq_file *f = NULL;
    ZQ_TRY(zq_file_open(zq_path, 1, &f, err));
    size_t esize = dtype_f16 ? 2 : 4, hlen = 0;
    char *header = build_header(f, esize, &hlen);
    zq_atomic out;
    zq_status st = header ? zq_atomic_open(&out, out_path, force, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (!header) {
        zq_file_close(f);
        return st;
    }
    if (st != ZQ_OK) {
        free(header);
        zq_file_close(f);
        return st;
    }
    unsigned char lenbuf[8];
    for (int b = 0; b < 8; b++) lenbuf[b] = (unsigned char)((uint64_t)hlen >> (8 * b));
    st = zq_atomic_write(&out, lenbuf, 8, err);
    if (st == ZQ_OK) st = zq_atomic_write(&out, header, hlen, err);
    /* one tensor in memory at a time */
    for (size_t i = 0; st == ZQ_OK && i < zq_file_count(f); i++) {
        uint64_t n = zq_tensor_numel(zq_file_tensor(f, i));
        if (n == 0) continue;
        float *buf = malloc(n * sizeof *buf);
        if (!buf) {
            st = zq_fail(err, ZQ_ERR_NOMEM, "'%s': tensor '%s': out of memory", zq_path, zq_file_tensor(f, i)->name);
            break;
        }
        st = zq_file_dequantize(f, i, buf, err);
        if (st == ZQ_OK && dtype_f16) {
            uint16_t *h = malloc(n * 2);
            if (!h) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            else {
                zq_f32_to_f16_n(buf, h, n);
                st = zq_atomic_write(&out, h, n * 2, err);
                free(h);
            }
        } else if (st == ZQ_OK) {
            st = zq_atomic_write(&out, buf, n * 4, err);
        }
        free(buf);
    }
    free(header);
    zq_file_close(f);
    if (st == ZQ_OK) return zq_atomic_commit(&out, err);
    zq_atomic_abort(&out);
    return st;
}
