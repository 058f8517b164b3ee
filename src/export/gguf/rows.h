/* Where llama.cpp wants a tensor's rows: the one reordering shared by the
 * GGUF writer and reader, so that each is the other's inverse.
 *  - Llama's q and k (rotate-halves in Hugging Face, rotate-pairs in
 *    llama.cpp): within a head of hd rows, GGUF row 2i+j is Hugging Face's
 *    row j*hd/2 + i.
 *  - GPT-NeoX's fused query_key_value, grouped per head ([h][q|k|v][hd]) in
 *    Hugging Face, all q rows then all k then all v in llama.cpp: GGUF row
 *    p*H*hd + h*hd + i is Hugging Face's h*3*hd + p*hd + i.
 * Whole rows move, so quantized rows keep their scales. */
#ifndef ZQ_GGUF_ROWS_H
#define ZQ_GGUF_ROWS_H

#include <stdint.h>

#include "zquant/arch.h"
#include "zquant/error.h"

typedef struct {
    enum { ROWS_SAME, ROWS_ROPE_PAIRS, ROWS_QKV_SPLIT } kind;
    uint64_t rows, hd; /* rows of the tensor (a vector: its length), of one head */
    uint64_t heads;
} zq_gguf_rows;

/* The reordering table entry t asks for, checked against the tensor's rows. */
static inline zq_status zq_gguf_rows_init(zq_gguf_rows *m, const zq_arch_tensor *t, uint64_t rows, int heads, int kv_heads,
                                       const char *path, const char *name, zq_error *err)
{
    m->kind = t->flags & ZQ_T_ROPE_HALVES ? ROWS_ROPE_PAIRS : t->flags & ZQ_T_QKV_PER_HEAD ? ROWS_QKV_SPLIT : ROWS_SAME;
    m->rows = rows;
    m->heads = (uint64_t)(m->kind == ROWS_ROPE_PAIRS && t->part == ZQ_PART_K ? kv_heads : heads);
    if (m->kind == ROWS_SAME) return ZQ_OK;
    uint64_t per = m->kind == ROWS_QKV_SPLIT ? 3 * m->heads : m->heads;
    m->hd = per ? rows / per : 0;
    if (!per || rows % per || !m->hd || (m->kind == ROWS_ROPE_PAIRS && m->hd % 2))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %llu rows do not split into %llu heads%s", path, name,
                       (unsigned long long)rows, (unsigned long long)m->heads,
                       m->kind == ROWS_QKV_SPLIT ? " of q, k and v" : " of an even size");
    return ZQ_OK;
}

/* The Hugging Face row GGUF row gr holds. */
static inline uint64_t zq_gguf_rows_source(const zq_gguf_rows *m, uint64_t gr)
{
    if (m->kind == ROWS_ROPE_PAIRS) {
        uint64_t h = gr / m->hd, r = gr % m->hd;
        return h * m->hd + (r % 2) * (m->hd / 2) + r / 2;
    }
    if (m->kind == ROWS_QKV_SPLIT) {
        uint64_t per = m->heads * m->hd, p = gr / per, h = gr % per / m->hd, i = gr % m->hd;
        return h * 3 * m->hd + p * m->hd + i;
    }
    return gr;
}

/* The GGUF row that holds Hugging Face row hr. */
static inline uint64_t zq_gguf_rows_target(const zq_gguf_rows *m, uint64_t hr)
{
    if (m->kind == ROWS_ROPE_PAIRS) {
        uint64_t h = hr / m->hd, k = hr % m->hd, half = m->hd / 2;
        return h * m->hd + 2 * (k % half) + k / half;
    }
    if (m->kind == ROWS_QKV_SPLIT) {
        uint64_t h = hr / (3 * m->hd), p = hr % (3 * m->hd) / m->hd, i = hr % m->hd;
        return p * m->heads * m->hd + h * m->hd + i;
    }
    return hr;
}

/* GGUF rows [0, gr) come from Hugging Face rows below this: how far a
 * streaming writer may release its source. */
static inline uint64_t zq_gguf_rows_done(const zq_gguf_rows *m, uint64_t gr)
{
    if (m->kind == ROWS_ROPE_PAIRS) return gr / m->hd * m->hd; /* rows move within a head */
    if (m->kind == ROWS_QKV_SPLIT) return 0;                   /* across the whole tensor */
    return gr;
}

#endif
