/* One block's backward pass, for layer-by-layer distillation. Gradients are
 * accumulated (+=) into caller-zeroed buffers shaped like the weights. The
 * quantizers (weights and activations) pass gradients straight through. */
#ifndef ZQUANT_TRAIN_H
#define ZQUANT_TRAIN_H

#include "zquant/engine.h"
#include "zquant/net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float *w, *b; /* NULL: not wanted */
} zq_linear_grad;

typedef struct {
    float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    zq_linear_grad q, k, v, o, up, gate, down;
} zq_block_grads;

/* Points a block's weights, biases and norms at other buffers shaped like
 * the tensors in units (some of zq_net_block_tensors'): student reads
 * w_bufs[u] (or keeps fp's buffers where w_bufs is NULL) and g gets
 * gradient slots in g_bufs[u]; a fused q/k/v tensor feeds three Linears.
 * What units do not hold stays fp's, with no gradient. */
void zq_block_rewire(const zq_block *fp, const zq_net_tensor *units, int n, float *const *w_bufs,
                     float *const *g_bufs, zq_block *student, zq_block_grads *g);

/* After zq_block_forward(a, blk, aq, ws, x, ...) with a training workspace:
 * dout (B*T, hidden) in; dx (may be NULL) gets the input gradient. */
void zq_block_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                       const float *x, const float *dout, float *dx, zq_block_grads *g, int B, int T);

#ifdef __cplusplus
}
#endif
#endif
