/* The layers a block is made of, each a forward and a backward side by side
 * (linear.c, norm.c, attention.c, mlp.c), composed in block.c. Backward
 * passes accumulate (+=) into caller-zeroed gradients and read what their
 * forward kept in the workspace. Shapes in comments: (rows, cols),
 * row-major; BT = batch * seq. Rows come in runs of T (seq), one
 * sequence each: products never mix two (base/blas.h), and sums over rows
 * (parameter gradients) are a sum per sequence, the sequences' added as a
 * tree (zquant/sum.h), so a slice of a batch computes its part of them as
 * the whole batch does. */
#ifndef ZQ_NN_H
#define ZQ_NN_H

#include <stddef.h>

#include "zquant/block.h"

/* ---- linear.c ---------------------------------------------------------- */

/* After zq_linear_forward(L, aq, ws->aq, x, ...): dx = dy W (into dx with
 * dx_beta 0, added with 1; NULL: not wanted), g->w += dy^T xq (xq: x as
 * quantized), g->b += column sums of dy. */
void zq_linear_backward(const zq_linear *L, const zq_linear_grad *g, const zq_act_quant *aq, zq_workspace *ws,
                        const float *x, const float *dy, float *dx, float dx_beta, int rows, int seq);
/* acc[cols] += the column sums of x (rows, cols), a tree over its runs of
 * seq rows, on ws's tree stack number slot (0 or 1). */
void zq_col_sums(zq_workspace *ws, int slot, const float *x, int rows, int seq, int cols, float *acc);

/* ---- norm.c ------------------------------------------------------------------ */

/* Per row of a norm's input: the mean (0 for RMSNorm) and 1/std, in double,
 * as the forward computed them. */
typedef struct {
    double *mean, *rstd; /* (rows) */
} zq_norm_stats;

/* out (rows, hidden) = norm(x) * w (+ b): RMSNorm or LayerNorm as a says;
 * keep (NULL in inference) receives the statistics the backward needs. */
void zq_norm_forward(const zq_arch *a, float *out, const float *x, const float *w, const float *b, int rows,
                     zq_norm_stats *keep);
/* dx += the input gradient; dw, db += the parameter gradients (NULL: not
 * wanted), on ws's tree stacks; x is the forward's input. */
void zq_norm_backward(const zq_arch *a, const zq_norm_stats *st, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, int rows, int seq, zq_workspace *ws);
/* RMSNorm of each head (rows = tokens x heads of head_dim values), weights
 * of head_dim shared by the heads: Qwen3's q_norm and k_norm. */
void zq_head_norm_forward(const zq_arch *a, float *out, const float *x, const float *w, int rows, zq_norm_stats *keep);
/* seq: rows per sequence (tokens x heads) */
void zq_head_norm_backward(const zq_arch *a, const zq_norm_stats *st, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, int rows, int seq, zq_workspace *ws);
/* LayerNorm of any width (BERT's embedding and MLM-head norms). */
void zq_layernorm(float *out, const float *x, const float *w, const float *b, int rows, int C, float eps);

/* ---- mlp.c ---------------------------------------------------------------------- */

/* out[i] = act(x[i]), gated (up not NULL) act(x[i]) * up[i], for n values
 * (out may be x), on the engine's threads */
void zq_activate(zq_mlp_fn fn, float *out, const float *x, const float *up, size_t n);
/* gated (act = f(gate) * u): du and dg from dact; else (gate NULL) du from
 * the pre-activation u */
void zq_activate_backward(zq_mlp_fn fn, const float *u, const float *gate, const float *dact, float *du, float *dg,
                          size_t n);
/* ws->mo (BT, hidden) = mlp(h); the pre-activations stay in ws->up and
 * ws->gate, the activation in ws->act */
void zq_mlp_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws, const float *h,
                    int BT, int T);
/* dh (into with dh_beta 0, added with 1) from dmo, given the input h */
void zq_mlp_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                     const zq_block_grads *g, const float *h, const float *dmo, float *dh, float dh_beta, int BT,
                     int T);

/* ---- moe.c: a mixture of experts, the MLP of zq_mlp_forward when the block has one */

void zq_moe_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws, const float *h,
                    int BT, int T);
void zq_moe_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                     const zq_block_grads *g, const float *dmo, float *dh, float dh_beta, int BT, int T);

/* ---- attention.c ------------------------------------------------------------------ */

/* cos/sin (T, rotary_dims/2) of positions 0..T-1, with a's rope scaling:
 * the global base's (with longrope, its short factors), the sliding
 * layers' own base (rope_local_theta, unscaled), or longrope's long factors */
typedef enum { ZQ_ROPE_SET_GLOBAL, ZQ_ROPE_SET_LOCAL, ZQ_ROPE_SET_LONG } zq_rope_set;
void zq_rope_table(float *cos_t, float *sin_t, int T, const zq_arch *a, zq_rope_set set);
/* One rotary frequency under a's llama3 rope scaling (rope_factor > 0). */
float zq_rope_llama3(const zq_arch *a, float inv_freq);
/* ws->ao (BT, hidden) = attention(h), through the KV cache when set; the
 * probabilities stay in a training workspace */
void zq_attention_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                          const float *h, int B, int T);
/* dh (into with dh_beta 0, added with 1) from dao, given the input h */
void zq_attention_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                           const zq_block_grads *g, const float *h, const float *dao, float *dh, float dh_beta, int B,
                           int T);

#endif
