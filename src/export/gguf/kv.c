/* GGUF metadata in a growing buffer; an allocation failure is remembered
 * and reported once, when the buffer is used. */
#include "export/gguf/kv.h"

#include <stdlib.h>
#include <string.h>

#include "base/le.h"

void zq_gguf_kv_free(zq_gguf_keys *kv)
{
    free(kv->p);
    memset(kv, 0, sizeof *kv);
}

static unsigned char *room(zq_gguf_keys *kv, size_t n)
{
    if (kv->oom) return NULL;
    if (kv->len + n > kv->cap) {
        size_t cap = kv->cap ? kv->cap : 4096;
        while (cap < kv->len + n) cap *= 2;
        unsigned char *p = realloc(kv->p, cap);
        if (!p) {
            kv->oom = 1;
            return NULL;
        }
        kv->p = p;
        kv->cap = cap;
    }
    unsigned char *at = kv->p + kv->len;
    kv->len += n;
    return at;
}

void zq_gguf_put_int(zq_gguf_keys *kv, uint64_t v, int bytes)
{
    unsigned char *at = room(kv, (size_t)bytes);
    if (at) zq_store_le(at, v, bytes);
}

void zq_gguf_put_f32(zq_gguf_keys *kv, float f)
{
    unsigned char *at = room(kv, 4);
    if (at) zq_store_lef32(at, f);
}

void zq_gguf_put_bytes(zq_gguf_keys *kv, const void *p, size_t n)
{
    unsigned char *at = room(kv, n);
    if (at && n) memcpy(at, p, n);
}

void zq_gguf_put_str(zq_gguf_keys *kv, const char *s, size_t n)
{
    zq_gguf_put_int(kv, n, 8);
    zq_gguf_put_bytes(kv, s, n);
}

static void key(zq_gguf_keys *kv, const char *k, int type)
{
    zq_gguf_put_str(kv, k, strlen(k));
    zq_gguf_put_int(kv, (uint64_t)type, 4);
    kv->count++;
}

void zq_gguf_kv_u32(zq_gguf_keys *kv, const char *k, uint32_t v)
{
    key(kv, k, GGUF_U32);
    zq_gguf_put_int(kv, v, 4);
}

void zq_gguf_kv_f32(zq_gguf_keys *kv, const char *k, float v)
{
    key(kv, k, GGUF_F32);
    zq_gguf_put_f32(kv, v);
}

void zq_gguf_kv_bool(zq_gguf_keys *kv, const char *k, int v)
{
    key(kv, k, GGUF_BOOL);
    zq_gguf_put_int(kv, v ? 1 : 0, 1);
}

void zq_gguf_kv_str(zq_gguf_keys *kv, const char *k, const char *v)
{
    key(kv, k, GGUF_STRING);
    zq_gguf_put_str(kv, v, strlen(v));
}

void zq_gguf_kv_array(zq_gguf_keys *kv, const char *k, int elem_type, uint64_t count)
{
    key(kv, k, GGUF_ARRAY);
    zq_gguf_put_int(kv, (uint64_t)elem_type, 4);
    zq_gguf_put_int(kv, count, 8);
}
