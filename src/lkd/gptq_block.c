/* GPTQ for one block inside the LKD driver: the Linears are taken in the
 * order the block computes them, a stage at a time (q/k/v share an input,
 * as do up/gate), so each stage's Hessian is gathered with the stages
 * before it already quantized ("true sequential"), over every batch of the
 * block's input, activations quantized as the runtime will. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "lkd/lkd_impl.h"
#include "zquant/gptq.h"

enum { GPTQ_BLOCK_COLUMNS = 128 }; /* columns per lazy update, as the paper */

/* A batch's x^T x is a tree over its sequences (zquant/sum.h), the
 * data-parallel ranks' slices of it combined by the same rule, so every
 * rank and a serial run hold the same float product of each batch; the
 * batches' are then added in order, in double. */
typedef struct {
    int id;          /* the Linear whose input is gathered */
    int cols;
    float *part;     /* [cols, cols]: one batch's x^T x */
    float *sums;     /* zq_gemm_tn's tree stacks */
    size_t sums_len;
    double *H;       /* the batches' sum */
    double tokens;   /* rows seen, every rank's */
    const run *r;
} gather;

static void observe(void *ctx, const zq_linear *L, const float *x, int rows, int seq)
{
    gather *g = ctx;
    if (L->id != g->id) return;
    size_t nn = (size_t)g->cols * g->cols;
    zq_gemm_tn(g->cols, g->cols, rows, x, g->cols, x, g->cols, 0.0f, g->part, g->cols, seq, g->sums, g->sums_len);
    if (g->r->ranks > 1) g->r->o->sum_f32(g->r->o->reduce_ctx, g->part, nn); /* the whole batch's */
    for (size_t i = 0; i < nn; i++) g->H[i] += g->part[i];
    g->tokens += (double)rows * g->r->ranks;
}

/* Quantizes p's master with GPTQ against the stage's prepared Hessian: p keeps the
 * scales, and the master becomes GPTQ's error-compensated weights, each
 * column as it was when GPTQ rounded it, so rounding it again with those
 * scales gives GPTQ's codes. Distillation then starts from GPTQ's result
 * with weights inside their rounding intervals, free to cross them, as
 * round to nearest's start is (the dequantized values would sit on the
 * grid, a half step from any change). The grid is the checkpoint's, so
 * NeoX's regrouped rows go back to the file's order. */
static zq_status gptq_param(param *p, const zq_arch *a, const zq_gptq_hessian *h, zq_error *err)
{
    uint64_t rows = (uint64_t)p->u.rows, cols = (uint64_t)p->u.cols;
    zq_grid g;
    zq_grid_init(&g, &p->spec, rows, cols);
    size_t ng = (size_t)(g.row_groups * g.col_groups);
    float *W = malloc(p->n * sizeof *W);
    uint8_t *codes = malloc(p->n);
    if (!p->scale) p->scale = malloc(ng * sizeof *p->scale);
    if (!p->min) p->min = calloc(ng, sizeof *p->min);
    zq_status st = W && codes && p->scale && p->min ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) {
        p->ngroups = ng;
        if (p->u.neox_qkv) zq_net_tensor_layout(&p->u, a->n_heads, p->u.w, W, 1);
        else memcpy(W, p->u.w, p->n * sizeof *W);
        st = zq_gptq_run(&p->spec, W, rows, cols, h, GPTQ_BLOCK_COLUMNS, codes, p->scale, p->min, err);
        if (st != ZQ_OK) st = zq_fail_context(err, "tensor '%s'", p->u.name);
    }
    if (st == ZQ_OK && p->u.neox_qkv) zq_net_tensor_layout(&p->u, a->n_heads, W, p->u.w, 0);
    else if (st == ZQ_OK) memcpy(p->u.w, W, p->n * sizeof *W);
    free(W), free(codes);
    return st;
}

zq_status zq_lkd_gptq_block(run *r, trainee *tr, const float *in, zq_error *err)
{
    static const int stages[4][3] = {{ZQ_PART_Q, ZQ_PART_K, ZQ_PART_V},
                                     {ZQ_PART_O, -1, -1},
                                     {ZQ_PART_UP, ZQ_PART_GATE, -1},
                                     {ZQ_PART_DOWN, -1, -1}};
    zq_linear *lin[ZQ_LINEAR_SLOTS];
    zq_lkd_block_linears(&tr->student, lin);
    ZQ_TRY(zq_lkd_fake_quantize(tr, r->a, err));
    for (int s = 0; s < 4; s++) {
        int todo[3], n = 0;
        gather g = {-1, 0, NULL, NULL, 0, NULL, 0, r};
        for (int i = 0; i < 3 && stages[s][i] >= 0; i++) {
            const zq_linear *L = lin[stages[s][i]];
            int k = zq_lkd_param_of(tr, L->w);
            if (k < 0 || !L->quantized || (n && todo[n - 1] == k)) continue; /* a fused q/k/v is one tensor */
            if (tr->p[k].spec.gran != ZQ_GRAN_GROUP && tr->p[k].spec.gran != ZQ_GRAN_ROW)
                return zq_fail(err, ZQ_ERR_USAGE, "tensor '%s': GPTQ needs groups along the input (--group-size) or per-row scales",
                               tr->p[k].u.name);
            todo[n++] = k;
            if (g.id < 0) g.id = L->id, g.cols = L->in;
        }
        if (!n) continue;
        size_t nn = (size_t)g.cols * g.cols;
        g.sums_len = zq_gemm_tn_scratch(g.cols, g.cols, r->B * r->T, r->T);
        g.H = calloc(nn, sizeof *g.H);
        g.part = malloc(nn * sizeof *g.part);
        g.sums = malloc((g.sums_len ? g.sums_len : 1) * sizeof *g.sums);
        if (!g.H || !g.part || !g.sums) {
            free(g.H), free(g.part), free(g.sums);
            return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        }
        zq_lkd_calibrate(r, &tr->student, in);
        r->aq.observe = observe;
        r->aq.observe_ctx = &g;
        for (int b = 0; b < r->nb; b++)
            zq_block_forward(r->a, &tr->student, &r->aq, r->ws, in + (size_t)b * r->per, r->out, r->B, r->T);
        r->aq.observe = NULL;
        r->aq.observe_ctx = NULL;
        free(g.sums);
        float *H = g.part; /* H = 2 X^T X / n, as the paper, in float from here */
        for (size_t i = 0; i < nn; i++) H[i] = (float)(g.H[i] * 2.0 / g.tokens);
        free(g.H);
        zq_gptq_hessian h; /* one factor for the stage's matrices: they share the input */
        zq_status st = zq_gptq_prepare(H, g.cols, r->o->damp, r->o->act_order, &h, err);
        if (st != ZQ_OK) /* name what the Hessian belongs to */
            st = zq_fail_context(err, "tensor '%s'%s", tr->p[todo[0]].u.name, n > 1 ? " and the others of its input" : "");
        for (int i = 0; st == ZQ_OK && i < n; i++) st = gptq_param(&tr->p[todo[i]], r->a, &h, err);
        zq_gptq_hessian_free(&h);
        free(H);
        ZQ_TRY(st);
        ZQ_TRY(zq_lkd_fake_quantize(tr, r->a, err)); /* the next stage sees these weights quantized */
    }
    return ZQ_OK;
}
