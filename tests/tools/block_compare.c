/* block_compare MODEL.zq TOKENS CTX: each block of MODEL run on the
 * integer backend against the same block dequantized (FP32 weights,
 * activation quantization emulated), both fed the reference path's input
 * to that block, the first CTX tokens of TOKENS (raw uint32) as one
 * sequence. With the file's activation scheme when it is per token (as
 * generate runs it); none otherwise.
 *
 * Prints on one line as JSON, per block b, rel_b = ||y_packed - y_ref|| /
 * ||y_ref|| and act_b, the same for y_ref against the block run without
 * activation quantization (its own error): the largest rel_b, its block,
 * and the largest ratio rel_b / max(1e-5, act_b / 4), which a test holds
 * to 1. Why that allowance: the two paths' Linear outputs differ by float
 * rounding (~1e-7), and where that moves an input across a rounding
 * boundary of the next Linear's token codes the code moves one step s; k
 * such flips among the N codes of a block add ~s sqrt(k) against the
 * quantization's own ~s sqrt(N / 12), so act_b / 4 allows k up to N / 192
 * (one code in 192 flipped), and 1e-5 bounds the float rounding where
 * nothing flips or nothing is quantized. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/run.h"
#include "zquant/generate.h"
#include "zquant/tokenizer.h"

static int fail(const zq_error *err)
{
    fprintf(stderr, "block_compare: %s\n", err->msg);
    return 1;
}

/* ||x - y|| / ||y|| (||x - y|| where y is 0) */
static double relative_distance(const float *x, const float *y, size_t n)
{
    double d = 0, r = 0;
    for (size_t k = 0; k < n; k++) {
        double e = (double)x[k] - y[k];
        d += e * e;
        r += (double)y[k] * y[k];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: block_compare MODEL.zq TOKENS CTX\n");
        return 2;
    }
    zq_error err = {0};
    zq_net *packed = NULL, *ref = NULL, *plain = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int T = atoi(argv[3]);
    if (zq_net_open(argv[1], 0, &packed, &err) || zq_net_open(argv[1], 0, &ref, &err) ||
        zq_net_open(argv[1], 0, &plain, &err) ||
        zq_tokens_read(argv[2], &ids, &n, &err))
        return fail(&err);
    zq_act_mode mode = zq_generate_act_mode(ref);
    if (zq_net_run_packed(packed, mode, &err)) return fail(&err);
    const zq_arch *a = zq_net_arch(ref);
    if (T < 1 || (size_t)T > n || T > a->max_pos) {
        fprintf(stderr, "block_compare: CTX must be 1..%zu\n", n);
        return 2;
    }
    zq_run rp, rr, rn;
    zq_workspace *ws = zq_workspace_create(a, 1, T);
    if (!ws || zq_run_init(&rp, packed, mode, (size_t)T, &err) || zq_run_init(&rr, ref, mode, (size_t)T, &err) ||
        zq_run_init(&rn, plain, ZQ_AQ_NONE, (size_t)T, &err) ||
        zq_net_embed(ref, ids, 1, T, 0, rr.x, &err))
        return fail(&err);
    size_t len = (size_t)T * a->hidden;
    double worst = 0, worst_ratio = 0;
    int worst_layer = 0;
    for (int l = 0; l < a->n_layers; l++) {
        memcpy(rp.x, rr.x, len * sizeof *rp.x); /* the same input to all three */
        memcpy(rn.x, rr.x, len * sizeof *rn.x);
        if (zq_run_block(&rp, l, ws, 1, T, &err) || zq_run_block(&rn, l, ws, 1, T, &err) ||
            zq_run_block(&rr, l, ws, 1, T, &err))
            return fail(&err);
        double rel = relative_distance(rp.x, rr.x, len), act = relative_distance(rn.x, rr.x, len);
        double ratio = rel / fmax(1e-5, act / 4);
        if (rel > worst || l == 0) worst = rel, worst_layer = l;
        if (ratio > worst_ratio) worst_ratio = ratio;
    }
    printf("{\"blocks\":%d,\"max_rel_err\":%.9g,\"block\":%d,\"max_ratio\":%.6g}\n", a->n_layers, worst,
           worst_layer, worst_ratio);
    zq_run_free(&rp);
    zq_run_free(&rr);
    zq_run_free(&rn);
    zq_workspace_free(ws);
    zq_net_close(packed);
    zq_net_close(ref);
    zq_net_close(plain);
    free(ids);
    return 0;
}
