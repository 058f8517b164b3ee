/* The block workspace: every intermediate of a forward pass has a buffer,
 * so a training forward leaves what its backward reads. Shapes: BT = batch
 * * seq rows. */
#ifndef ZQ_WORKSPACE_H
#define ZQ_WORKSPACE_H

#include "nn/nn.h"

struct zq_workspace {
    int batch, seq, train, threads, failed;
    /* threads: the engine's when it was made: attention's scratch has one
     * seq x seq square per thread */
    void *owned[80];
    int nowned;
    /* forward: norm outputs, residuals, attention, MLP (BT x width) */
    float *xn, *xn2, *mid, *mid2, *q, *k, *v, *att, *ao, *mo, *up, *gate, *act, *aq;
    float *scores;        /* threads x seq x seq scratch */
    float *cos_t, *sin_t; /* seq x rotary/2 */
    float *cos_l, *sin_l; /* the same of the local base (rope_local_theta), else NULL */
    float *cos_long, *sin_long; /* longrope's long factors', else NULL */
    /* decoding with a KV cache (batch 1): this layer's keys and values for
     * positions [0, pos0) are in kcache/vcache (seq rows each) */
    float *kcache, *vcache;
    int pos0;
    /* a mixture of experts (moe.c): router logits and softmax (BT x E),
     * each token's top-k experts and weights, the (token, expert) pairs
     * grouped by (sequence, expert) from group_start, and their rows */
    float *router_logits, *router_probs, *route_w, *pair_w;
    int *route_sel, *pair_token, *group_start, *group_fill;
    float *moe_in, *moe_gate, *moe_up, *moe_act, *moe_y;    /* pairs x hidden or x expert width */
    float *moe_dact, *moe_dup, *moe_dgate, *moe_dx;         /* training */
    /* training only: what the backward pass reads, and its scratch */
    zq_norm_stats norm1, norm2; /* of the block's two norms */
    zq_norm_stats post1, post2; /* post_norms: of the attention's and the MLP's outputs */
    zq_norm_stats qnorm, knorm; /* qk_norm: of each head's, and q, k before them */
    float *qpre, *kpre;
    float *probs;               /* B x heads x seq x seq attention probabilities */
    float *cap_slope;           /* attn_softcap: d capped / d score, shaped as probs */
    float *dq, *dk, *dv, *datt, *dh1, *dh2, *dx1, *dtmp, *dup, *dgate, *dact, *dscores;
    float *sums; /* 2 tree stacks (base/tree.h) of sums_per_tree floats: parameter gradients of vectors */
    size_t sums_per_tree;
    float *gemm_sums; /* zq_gemm_tn's tree stacks for weight gradients (gemm_sums_len floats) */
    size_t gemm_sums_len;
};

#endif
