/* The elementwise and row-wise pieces of a transformer block. Shapes in
 * comments: (rows, cols), row-major. */
#ifndef ZQ_NN_H
#define ZQ_NN_H

#include <stddef.h>

#include "zquant/engine.h"

/* out (rows, C) = norm(x) * w (+ b); b may be NULL */
void zq_layernorm(float *out, const float *x, const float *w, const float *b, int rows, int C, float eps);
void zq_rmsnorm(float *out, const float *x, const float *w, int rows, int C, float eps);
/* in place over n values; SwiGLU: gate[i] = silu(gate[i]) * up[i] */
void zq_activate(zq_mlp_fn fn, float *x, const float *up, size_t n);
/* cos/sin (T, rot/2) of positions 0..T-1 */
void zq_rope_table(float *cos_t, float *sin_t, int T, int rot, float theta);
/* rotates the first rot dims of each of `heads` heads of hd dims in x (T, ld) */
void zq_rope_apply(float *x, int ld, int T, int heads, int hd, int rot, int interleaved, const float *cos_t,
                   const float *sin_t);
/* the transpose of zq_rope_apply (rotation by the opposite angles), for
 * gradients */
void zq_rope_apply_inverse(float *x, int ld, int T, int heads, int hd, int rot, int interleaved, const float *cos_t,
                           const float *sin_t);
/* one head h of one sequence: Tq queries (the last Tq of Tk positions)
 * against Tk keys; out (Tq, nh*hd), columns of head h =
 * softmax(q_h k_g^T / sqrt(hd) [causal]) v_g with g = h / (nh / nkv) the
 * key/value head it shares; scores: Tq*Tk scratch */
void zq_attention_head(float *out, const float *q, const float *k, const float *v, int Tq, int Tk, int nh, int nkv,
                       int hd, int h, int causal, float *scores);

#endif
