/* The block workspace: every intermediate of a forward pass has a buffer,
 * so a training forward leaves what its backward reads. Shapes: BT = batch
 * * seq rows. */
#ifndef ZQ_WORKSPACE_H
#define ZQ_WORKSPACE_H

#include "base/pool.h"
#include "nn/nn.h"

struct zq_workspace {
    int batch, seq, train, threads, failed;
    zq_pool *pool; /* attention runs one (sequence, head) per task */
    void *owned[48];
    int nowned;
    /* forward: norm outputs, residuals, attention, MLP (BT x width) */
    float *xn, *xn2, *mid, *mid2, *q, *k, *v, *att, *ao, *mo, *up, *gate, *act, *aq;
    float *scores;        /* threads x seq x seq scratch */
    float *cos_t, *sin_t; /* seq x rotary/2 */
    /* decoding with a KV cache (batch 1): this layer's keys and values for
     * positions [0, pos0) are in kcache/vcache (seq rows each) */
    float *kcache, *vcache;
    int pos0;
    /* training only: what the backward pass reads, and its scratch */
    zq_norm_stats norm1, norm2; /* of the block's two norms */
    float *probs;               /* B x heads x seq x seq attention probabilities */
    float *dq, *dk, *dv, *datt, *dh1, *dh2, *dx1, *dtmp, *dup, *dgate, *dact, *dscores;
};

#endif
