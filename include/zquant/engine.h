/* A transformer forward pass on the CPU (OpenBLAS sgemm), for the
 * architectures zquant quantizes: gpt2, opt, gpt_neox, gptj, llama (mistral,
 * qwen2) and bert. Weights come from an FP checkpoint or from a .zq file
 * (dequantized exactly as a GPU runtime would); the paper's activation
 * quantization is emulated on the input of every quantized Linear.
 *
 * One block's forward is a function of (block weights, input activations)
 * with workspace owned by the caller, so a model is run block by block and
 * only one block's activations (and, when the model is larger than the
 * memory budget, one block's weights) are held at a time. */
#ifndef ZQUANT_ENGINE_H
#define ZQUANT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/arch.h"
#include "zquant/error.h"
#include "zquant/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A Linear layer: y = x W^T + b, W [out, in] row-major. quantized: its
 * weight was quantized, so its input is activation-quantized. id numbers
 * the Linear inputs for static calibration. */
typedef struct {
    const float *w, *b;
    int out, in;
    int quantized;
    int id;
} zq_linear;

typedef struct {
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    zq_linear q, k, v, o;
    zq_linear up, gate, down; /* gate only for SwiGLU */
} zq_block;

/* The activation quantization a forward pass emulates: mode, and for
 * static ranges the largest |input| of each Linear id. */
typedef struct {
    zq_act_mode mode;
    float *absmax;  /* per Linear id: ZQ_AQ_TENSOR reads it, ZQ_AQ_CALIBRATE raises it */
    int n_ids;
} zq_act_quant;

/* out (rows, L->out) = x W^T + b; when L is quantized and aq says so, its
 * input is first quantized into scratch (rows * L->in floats). */
void zq_block_linear(const zq_linear *L, const zq_act_quant *aq, float *scratch, const float *x, float *out, int rows);

/* Threads for the engine's own loops and for BLAS (0: one per core). */
void zq_engine_set_threads(int n);
int zq_engine_threads(void);

/* Scratch for one block over B sequences of T tokens, sized once. */
typedef struct zq_workspace zq_workspace;
zq_workspace *zq_workspace_create(const zq_arch *a, int batch, int seq);
/* train: also keep what zq_block_backward needs (attention probabilities
 * included: batch x heads x seq^2 floats) and its scratch. */
zq_workspace *zq_workspace_create_ex(const zq_arch *a, int batch, int seq, int train);
void zq_workspace_free(zq_workspace *ws);
/* Decoding (batch 1): the next forward's tokens sit at positions pos0..;
 * k and v (seq x kv heads x head dim each) hold the keys and values of the
 * positions before, and receive the new ones. NULL: no cache. */
void zq_workspace_set_cache(zq_workspace *ws, float *k, float *v, int pos0);

/* x [B*T, hidden] in, out (may equal x) [B*T, hidden]. Positions start at 0
 * in every sequence. */
void zq_block_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                      const float *x, float *out, int batch, int seq);

#ifdef __cplusplus
}
#endif
#endif
