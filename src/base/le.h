/* Little-endian integers in byte buffers: every file format zquant reads
 * or writes (safetensors, .zq, .npy, token files, llama2.c tokenizers,
 * GGUF) stores them so, whatever the host. Byte by byte, so any alignment
 * is fine. */
#ifndef ZQ_LE_H
#define ZQ_LE_H

#include <stdint.h>
#include <string.h>

/* The n-byte (1..8) little-endian unsigned integer at p. */
static inline uint64_t zq_load_le(const void *p, int n)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--) v = v << 8 | b[k];
    return v;
}

static inline uint32_t zq_load_le32(const void *p) { return (uint32_t)zq_load_le(p, 4); }
static inline uint64_t zq_load_le64(const void *p) { return zq_load_le(p, 8); }

static inline float zq_load_lef32(const void *p)
{
    uint32_t u = zq_load_le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void zq_store_le(void *p, uint64_t v, int n)
{
    unsigned char *b = p;
    for (int k = 0; k < n; k++) b[k] = (unsigned char)(v >> (8 * k));
}

static inline void zq_store_le16(void *p, uint16_t v) { zq_store_le(p, v, 2); }
static inline void zq_store_le32(void *p, uint32_t v) { zq_store_le(p, v, 4); }
static inline void zq_store_le64(void *p, uint64_t v) { zq_store_le(p, v, 8); }

static inline void zq_store_lef32(void *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    zq_store_le32(p, u);
}

#endif
