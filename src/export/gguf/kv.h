/* GGUF's key-value metadata, built in memory (it is small next to the
 * tensors): every value is little-endian, strings are a u64 length and the
 * bytes, arrays an element type, a u64 count and the elements. */
#ifndef ZQ_GGUF_KV_H
#define ZQ_GGUF_KV_H

#include <stddef.h>
#include <stdint.h>

#include "export/gguf/read.h" /* the format's value and tensor types */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    uint64_t count; /* keys */
    int oom;        /* an append failed: the buffer is unusable */
} zq_gguf_keys;

void zq_gguf_kv_free(zq_gguf_keys *kv);

/* Raw pieces: a string, a scalar of 1, 2, 4 or 8 bytes. */
void zq_gguf_put_str(zq_gguf_keys *kv, const char *s, size_t n);
void zq_gguf_put_int(zq_gguf_keys *kv, uint64_t v, int bytes);
void zq_gguf_put_f32(zq_gguf_keys *kv, float f);
void zq_gguf_put_bytes(zq_gguf_keys *kv, const void *p, size_t n);

/* One key with its value. */
void zq_gguf_kv_u32(zq_gguf_keys *kv, const char *key, uint32_t v);
void zq_gguf_kv_f32(zq_gguf_keys *kv, const char *key, float v);
void zq_gguf_kv_bool(zq_gguf_keys *kv, const char *key, int v);
void zq_gguf_kv_str(zq_gguf_keys *kv, const char *key, const char *v);
/* An array's key and header; its count elements follow with zq_gguf_put_*. */
void zq_gguf_kv_array(zq_gguf_keys *kv, const char *key, int elem_type, uint64_t count);

#endif
