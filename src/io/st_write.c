/* The safetensors header, for writers that stream the data after it. */
#include "io/st_write.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"

unsigned char *zq_st_header(const zq_st_entry *e, size_t n, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_AddObjectToObject(root, e[i].name);
        cJSON_AddStringToObject(o, "dtype", e[i].dtype);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        uint64_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e[i].shape[d]));
            numel *= (uint64_t)e[i].shape[d];
        }
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(at + numel * e[i].esize)));
        at += numel * e[i].esize;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return NULL;
    size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;
    unsigned char *out = malloc(8 + padded);
    if (out) {
        zq_store_le64(out, padded);
        memcpy(out + 8, text, tl);
        memset(out + 8 + tl, ' ', padded - tl);
        *len = 8 + padded;
    }
    free(text);
    return out;
}
