/* Reading GGUF files (llama.cpp's format, as zquant export writes it and
 * llama.cpp's own tools do): the header's key-value metadata and tensor
 * table, every length and offset checked against the file, and the ggml
 * block types zquant knows decoded to float. */
#ifndef ZQ_GGUF_READ_H
#define ZQ_GGUF_READ_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"

/* zquant's own key: config.json's rope_scaling (JSON text), beside the
 * rope_freqs.weight tensor llama.cpp runs, which does not give it back. */
#define ZQ_GGUF_ROPE_SCALING_KEY "zquant.rope_scaling"
/* zquant's own key: the members of config.json that llama.cpp's keys do
 * not carry (a JSON object): model_type, where llama.cpp's architecture
 * stands for several (mistral runs as llama), the sliding window's keys as
 * the config gives them, Gemma 2's query_pre_attn_scalar. */
#define ZQ_GGUF_CONFIG_KEY "zquant.config"

/* Whether llama.cpp applies <arch>.attention.sliding_window (its llama,
 * qwen2 and qwen3 attend over the whole context). */
int zq_gguf_runs_windows(const char *arch);

/* The types of GGUF's key-value metadata. */
enum { GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING,
       GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64 };
/* ggml's tensor types that zquant writes or reads. */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q8_0 = 8, GGML_BF16 = 30 };
#define GGML_QK 32 /* values per block of the quantized types */

typedef struct {
    char *name;
    int ndim;
    uint64_t ne[4]; /* ne[0] contiguous */
    int type;       /* ggml type */
    uint64_t bytes;
    const unsigned char *data;
} zq_gguf_tensor;

typedef struct {
    char *key;
    int type; /* GGUF value type; arrays: 9 */
    const unsigned char *val; /* the value (arrays: after element type and count) */
    int elem_type;            /* arrays */
    uint64_t count;           /* arrays */
} zq_gguf_kv;

typedef struct {
    char *path;
    unsigned char *map;
    uint64_t size;
    int map_slot;
    uint32_t version, alignment;
    zq_gguf_kv *kv;
    size_t nkv;
    zq_gguf_tensor *t;
    size_t nt;
} zq_gguf;

zq_status zq_gguf_open(const char *path, zq_gguf **out, zq_error *err);
void zq_gguf_close(zq_gguf *g); /* accepts NULL */

/* A key's value: integers of any width and sign (when they fit), f32 or
 * f64, a string (malloc'd). 0 when the key is absent or of another kind. */
int zq_gguf_uint(const zq_gguf *g, const char *key, uint64_t *v);
int zq_gguf_float(const zq_gguf *g, const char *key, double *v);
char *zq_gguf_string(const zq_gguf *g, const char *key);
const zq_gguf_kv *zq_gguf_find(const zq_gguf *g, const char *key);
const zq_gguf_tensor *zq_gguf_tensor_named(const zq_gguf *g, const char *name);

/* ggml's name of a type ("Q4_0"), NULL for a type zquant cannot decode. */
const char *zq_ggml_type_name(int type);
/* Bytes of a row of n values of type (n a multiple of its block). */
uint64_t zq_ggml_row_bytes(int type, uint64_t n);
/* Decodes n values of a row of type into out. */
void zq_ggml_decode_row(int type, const unsigned char *row, uint64_t n, float *out);

#endif
