/* block_compare MODEL.zq TOKENS CTX: each block of MODEL run on the
 * integer backend against the same block dequantized (FP32 weights,
 * activation quantization emulated), both fed the reference path's input
 * to that block, the first CTX tokens of TOKENS (raw uint32) as one
 * sequence; prints on one line as JSON the largest relative output error
 * over the blocks, ||y_packed - y_ref|| / ||y_ref||, and the block it is
 * in. With the file's activation scheme when it is per token (as
 * generate runs it); none otherwise. */
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

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: block_compare MODEL.zq TOKENS CTX\n");
        return 2;
    }
    zq_error err = {0};
    zq_net *packed = NULL, *ref = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int T = atoi(argv[3]);
    if (zq_net_open(argv[1], 0, &packed, &err) || zq_net_open(argv[1], 0, &ref, &err) ||
        zq_tokens_read(argv[2], &ids, &n, &err))
        return fail(&err);
    zq_act_mode mode = zq_generate_act_mode(ref);
    if (zq_net_run_packed(packed, mode, &err)) return fail(&err);
    const zq_arch *a = zq_net_arch(ref);
    if (T < 1 || (size_t)T > n || T > a->max_pos) {
        fprintf(stderr, "block_compare: CTX must be 1..%zu\n", n);
        return 2;
    }
    zq_run rp, rr;
    zq_workspace *ws = zq_workspace_create(a, 1, T);
    if (!ws || zq_run_init(&rp, packed, mode, (size_t)T, &err) || zq_run_init(&rr, ref, mode, (size_t)T, &err) ||
        zq_net_embed(ref, ids, 1, T, 0, rr.x, &err))
        return fail(&err);
    size_t len = (size_t)T * a->hidden;
    double worst = 0;
    int worst_layer = 0;
    for (int l = 0; l < a->n_layers; l++) {
        memcpy(rp.x, rr.x, len * sizeof *rp.x); /* the same input to both */
        if (zq_run_block(&rp, l, ws, 1, T, &err) || zq_run_block(&rr, l, ws, 1, T, &err)) return fail(&err);
        double d = 0, r = 0;
        for (size_t k = 0; k < len; k++) {
            double e = (double)rp.x[k] - rr.x[k];
            d += e * e;
            r += (double)rr.x[k] * rr.x[k];
        }
        double rel = r > 0 ? sqrt(d / r) : sqrt(d);
        if (rel > worst || l == 0) worst = rel, worst_layer = l;
    }
    printf("{\"blocks\":%d,\"max_rel_err\":%.9g,\"block\":%d}\n", a->n_layers, worst, worst_layer);
    zq_run_free(&rp);
    zq_run_free(&rr);
    zq_workspace_free(ws);
    zq_net_close(packed);
    zq_net_close(ref);
    free(ids);
    return 0;
}
