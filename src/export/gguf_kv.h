/* GGUF's key-value metadata, built in memory (it is small next to the
 * tensors): every value is little-endian, strings are a u64 length and the
 * bytes, arrays an element type, a u64 count and the elements. */
#ifndef ZQ_GGUF_KV_H
#define ZQ_GGUF_KV_H

#include <stddef.h>
#include <stdint.h>

#include "io/gguf_read.h" /* the format's value and tensor types */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    uint64_t count; /* keys */
    int oom;        /* an append failed: the buffer is unusable */
} gguf_kv;

void gguf_kv_free(gguf_kv *kv);

/* Raw pieces: a string, a scalar of 1, 2, 4 or 8 bytes. */
void gguf_put_str(gguf_kv *kv, const char *s, size_t n);
void gguf_put_int(gguf_kv *kv, uint64_t v, int bytes);
void gguf_put_f32(gguf_kv *kv, float f);
void gguf_put_bytes(gguf_kv *kv, const void *p, size_t n);

/* One key with its value. */
void gguf_kv_u32(gguf_kv *kv, const char *key, uint32_t v);
void gguf_kv_f32(gguf_kv *kv, const char *key, float v);
void gguf_kv_bool(gguf_kv *kv, const char *key, int v);
void gguf_kv_str(gguf_kv *kv, const char *key, const char *v);
/* An array's key and header; its count elements follow with gguf_put_*. */
void gguf_kv_array(gguf_kv *kv, const char *key, int elem_type, uint64_t count);

#endif
