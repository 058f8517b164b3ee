/* The block workspace, shared by the forward (engine.c) and backward
 * (backward.c) passes. Shapes: BT = batch * seq rows. */
#ifndef ZQ_WORKSPACE_H
#define ZQ_WORKSPACE_H

#include "base/pool.h"
#include "zquant/engine.h"

struct zq_workspace {
    int batch, seq, train, threads, failed;
    zq_pool *pool; /* attention runs one (sequence, head) per task */
    float *owned[40];
    int nowned;
    /* forward: norm outputs, residuals, attention, MLP (BT x width) */
    float *xn, *xn2, *mid, *mid2, *q, *k, *v, *att, *ao, *mo, *up, *gate, *act, *aq;
    float *scores;        /* threads x seq x seq scratch */
    float *cos_t, *sin_t; /* seq x rotary/2 */
    /* decoding with a KV cache (batch 1): this layer's keys and values for
     * positions [0, pos0) are in kcache/vcache (seq rows each) */
    float *kcache, *vcache;
    int pos0;
    /* training only */
    float *probs;         /* B x heads x seq x seq attention probabilities */
    float *dq, *dk, *dv, *datt, *dh1, *dh2, *dx1, *dtmp, *dup, *dgate, *dact, *dscores;
};

/* The attention heads of a batch, handed to the pool. */
typedef struct {
    const zq_arch *a;
    zq_workspace *ws;
    int T;
} heads_job;

#endif
