/* One transformer block on the CPU (OpenBLAS sgemm), forward and backward,
 * for every architecture of zquant/arch.h: gpt2, opt, gpt_neox, gptj,
 * llama (mistral, qwen2, qwen3), gemma2, gemma3_text, phi3, mixtral and bert. The paper's activation quantization is
 * emulated on the input of every quantized Linear; the backward pass lets
 * gradients through every quantizer unchanged (straight-through).
 *
 * A block's forward is a function of (block weights, input activations)
 * with workspace owned by the caller, so a model runs block by block and
 * only one block's activations are held at a time. A training workspace
 * also keeps what the backward pass reads.
 *
 * Engine API: what zquant's own commands build on; it may change between
 * versions (the stable API is error, source, quant, zq, quantize, export). */
#ifndef ZQUANT_BLOCK_H
#define ZQUANT_BLOCK_H

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
 * the Linear inputs for static calibration. packed: the weight as stored
 * codes, run by the integer backend (then w is NULL; forward only). */
typedef struct zq_packed_linear zq_packed_linear;
typedef struct {
    const float *w, *b;
    int out, in;
    int quantized;
    int id;
    const zq_packed_linear *packed;
    /* Weights made when the Linear computes, not kept: when set, each
     * product uses weights(weights_ctx, w) in place of w (the floats at w
     * being what they are made from), valid until the next call. LKD's
     * student makes its fake-quantized weights a matrix at a time so. */
    const float *(*weights)(void *ctx, const float *w);
    void *weights_ctx;
} zq_linear;

typedef struct {
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    const float *q_norm_w, *k_norm_w; /* per-head RMSNorm of q and k (qk_norm) */
    const float *post_norm1_w, *post_norm2_w; /* of the attention's and the MLP's outputs (post_norms) */
    zq_linear q, k, v, o;
    zq_linear up, gate, down; /* gate only for SwiGLU */
    /* a mixture of experts in place of the MLP (n_experts > 0): the router
     * (its logits pick each token's experts) and every expert's gate, up
     * and down, experts[3 e + 0, 1, 2] */
    zq_linear router;
    int n_experts;
    zq_linear *experts;
    /* routing fixed from outside: each token's moe_topk experts and their
     * weights, as another block chose them (LKD's student takes its FP
     * block's); NULL: the router chooses */
    const int *route_sel;
    const float *route_w;
    int window; /* sliding-window attention: a query sees the last `window` positions, its own included (0: all) */
    int local_rope; /* rotary positions from the local base (rope_local_theta: Gemma 3's sliding layers) */
} zq_block;

/* The activation quantization a forward pass emulates: mode, and for
 * static ranges the largest |input| of each Linear id. */
typedef struct {
    zq_act_mode mode;
    float *absmax;  /* per Linear id: ZQ_AQ_TENSOR reads it, ZQ_AQ_CALIBRATE raises it */
    int n_ids;
    /* When set, shown every quantized Linear's input (rows x L->in, in
     * runs of seq rows, one sequence each) as the Linear computes with it,
     * quantized: GPTQ gathers its Hessians here. */
    void (*observe)(void *ctx, const zq_linear *L, const float *x, int rows, int seq);
    void *observe_ctx;
} zq_act_quant;

/* out (rows, L->out) = x W^T + b; when L is quantized and aq says so, its
 * input is first quantized into scratch (rows * L->in floats). Rows come
 * in runs of seq (one sequence each; 0: one run), which the product never
 * mixes: a sequence's outputs do not depend on the others in the batch. */
void zq_linear_forward(const zq_linear *L, const zq_act_quant *aq, float *scratch, const float *x, float *out,
                       int rows, int seq);

/* Threads for the engine's loops, its products included (0: one per
 * core). No result depends on the count. */
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

/* The routing of a mixture block's last zq_block_forward on ws: rows x
 * moe_topk experts and weights, as zq_block's route_sel and route_w take them. */
void zq_block_routes(const zq_arch *a, const zq_workspace *ws, int rows, int *sel, float *w);

/* Gradient buffers shaped like the weights, accumulated (+=) into:
 * callers zero them. NULL: not wanted. */
typedef struct {
    float *w, *b;
} zq_linear_grad;

typedef struct {
    float *norm1_w, *norm1_b, *norm2_w, *norm2_b, *q_norm_w, *k_norm_w, *post_norm1_w, *post_norm2_w;
    zq_linear_grad q, k, v, o, up, gate, down;
    zq_linear_grad *experts; /* a mixture's: 3 per expert as zq_block's (the router gets none) */
} zq_block_grads;

/* After zq_block_forward(a, blk, aq, ws, x, ...) with a training workspace:
 * dout (B*T, hidden) in; dx (may be NULL) gets the input gradient. */
void zq_block_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                       const float *x, const float *dout, float *dx, zq_block_grads *g, int B, int T);

#ifdef __cplusplus
}
#endif
#endif
