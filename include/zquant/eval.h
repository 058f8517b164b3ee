/* What quantization costs: perplexity, and against an FP reference the KL
 * divergence of next-token distributions, top-1 agreement and each block's
 * relative output error. */
#ifndef ZQUANT_EVAL_H
#define ZQUANT_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/block.h"
#include "zquant/error.h"
#include "zquant/net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int ctx;             /* window length */
    int batch;           /* windows per forward */
    zq_act_mode act;     /* for the evaluated model (the reference runs in FP) */
    const int32_t *calib; /* ZQ_AQ_TENSOR: calibration tokens (NULL: the evaluated ones) */
    size_t ncalib;
    int per_layer;
    /* when set, each predicted position's log-probabilities go to this file
     * as float32 little-endian [positions, vocab], in evaluation order
     * (written atomically; an existing file is replaced only with force) */
    const char *logprobs_path;
    int logprobs_force;
    void (*progress)(void *ctx, uint64_t done, uint64_t total, const char *what);
    void *progress_ctx;
} zq_eval_opts;

typedef struct {
    uint64_t tokens;      /* predicted positions */
    double nll, ref_nll;  /* mean negative log-likelihood, nats */
    double kl;            /* mean KL(P_ref || P_model), nats */
    double top1;          /* fraction of positions whose argmax agrees */
    int n_layers;
    double *layer_rel_err; /* ||x - x_ref|| / ||x_ref|| after each block; malloc'd */
} zq_eval_result;

/* ref may be NULL. Windows of opts->ctx tokens, non-overlapping; every
 * position after the first of a window is predicted. For an encoder (bert),
 * every position predicts its own token (no masking). */
zq_status zq_eval(zq_net *net, zq_net *ref, const int32_t *tokens, size_t n, const zq_eval_opts *opts,
                  zq_eval_result *res, zq_error *err);
void zq_eval_result_free(zq_eval_result *res);

#ifdef __cplusplus
}
#endif
#endif
