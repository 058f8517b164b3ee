/* GPTQ for one block inside the LKD driver: the Linears are taken in the
 * order the block computes them, a stage at a time (q/k/v share an input,
 * as do up/gate, and each expert's gate/up the tokens routed to it), so
 * each stage's Hessian is gathered with the stages before it already
 * quantized ("true sequential"), over every batch of the block's input,
 * activations quantized as the runtime will, a mixture routed as its FP
 * block. */
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
 * batches' are then added in order, in double. A mixture's expert sees
 * its tokens of a sequence at a time, in sequence order. */
typedef struct {
    const zq_linear *L; /* the student's Linear whose input is gathered */
    int params[3], n;   /* the tensors this input's Hessian quantizes */
    double *H;          /* the batches' sum */
    double tokens;      /* rows seen, every rank's */
} target;

typedef struct {
    target *t;
    int n;
    float *part;     /* [cols, cols]: one batch's x^T x */
    float *sums;     /* zq_gemm_tn's tree stacks */
    size_t sums_len;
    const run *r;
} gather;

static void observe(void *ctx, const zq_linear *L, const float *x, int rows, int seq)
{
    gather *g = ctx;
    for (int i = 0; i < g->n; i++) {
        target *t = &g->t[i];
        if (t->L != L) continue;
        int cols = L->in;
        size_t nn = (size_t)cols * cols;
        zq_gemm_tn(cols, cols, rows, x, cols, x, cols, 0.0f, g->part, cols, seq, g->sums, g->sums_len);
        if (g->r->ranks > 1) g->r->o->sum_f32(g->r->o->reduce_ctx, g->part, nn); /* the whole batch's */
        for (size_t k = 0; k < nn; k++) t->H[k] += g->part[k];
        t->tokens += (double)rows * g->r->ranks;
    }
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

/* The stage's targets: Linears of the block sharing an input, with the
 * quantized tensors each one's Hessian serves (a fused q/k/v is one). */
static zq_status stage_targets(trainee *tr, zq_linear *const *lin, const int *slots, int n_slots, target *t, int *nt,
                               zq_error *err)
{
    target *cur = NULL;
    for (int i = 0; i < n_slots; i++) {
        const zq_linear *L = lin[slots[i]];
        int k = zq_lkd_param_of(tr, L->w);
        if (k < 0 || !L->quantized || (cur && cur->params[cur->n - 1] == k)) continue;
        if (tr->p[k].spec.gran != ZQ_GRAN_GROUP && tr->p[k].spec.gran != ZQ_GRAN_ROW)
            return zq_fail(err, ZQ_ERR_USAGE, "tensor '%s': GPTQ needs groups along the input (--group-size) or "
                           "per-row scales", tr->p[k].u.name);
        if (!cur) cur = &t[(*nt)++], *cur = (target){L, {0}, 0, NULL, 0};
        cur->params[cur->n++] = k;
    }
    return ZQ_OK;
}

/* GPTQ of targets t[0..n), their Hessians gathered in one pass over the data. */
static zq_status gptq_targets(run *r, trainee *tr, const zq_batches *in, target *t, int n, zq_error *err)
{
    int widest = 0;
    for (int i = 0; i < n; i++) widest = t[i].L->in > widest ? t[i].L->in : widest;
    gather g = {t, n, malloc((size_t)widest * widest * sizeof *g.part), NULL,
                zq_gemm_tn_scratch(widest, widest, r->B * r->T, r->T), r};
    g.sums = malloc((g.sums_len ? g.sums_len : 1) * sizeof *g.sums);
    zq_status st = g.part && g.sums ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int i = 0; st == ZQ_OK && i < n; i++)
        if (!(t[i].H = calloc((size_t)t[i].L->in * t[i].L->in, sizeof *t[i].H)))
            st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_lkd_calibrate(r, &tr->student, in, err);
    if (st == ZQ_OK) {
        r->aq.observe = observe;
        r->aq.observe_ctx = &g;
        for (int b = 0; st == ZQ_OK && b < r->nb; b++) {
            const float *x;
            st = zq_batch_read(in, b, r->in_buf, &x, err);
            if (st == ZQ_OK) zq_lkd_forward(r, &tr->student, b, x, r->out);
        }
        r->aq.observe = NULL;
        r->aq.observe_ctx = NULL;
    }
    for (int i = 0; st == ZQ_OK && i < n; i++) {
        if (!t[i].tokens) continue; /* an expert no token chose: round to nearest, as no data says otherwise */
        int cols = t[i].L->in;
        size_t nn = (size_t)cols * cols;
        float *H = g.part; /* H = 2 X^T X / n, as the paper, in float from here */
        for (size_t k = 0; k < nn; k++) H[k] = (float)(t[i].H[k] * 2.0 / t[i].tokens);
        zq_gptq_hessian h; /* one factor for the matrices of the input */
        st = zq_gptq_prepare(H, cols, r->o->damp, r->o->act_order, &h, err);
        if (st != ZQ_OK) /* name what the Hessian belongs to */
            st = zq_fail_context(err, "tensor '%s'%s", tr->p[t[i].params[0]].u.name,
                                 t[i].n > 1 ? " and the others of its input" : "");
        for (int j = 0; st == ZQ_OK && j < t[i].n; j++) st = gptq_param(&tr->p[t[i].params[j]], r->a, &h, err);
        zq_gptq_hessian_free(&h);
    }
    for (int i = 0; i < n; i++) free(t[i].H), t[i].H = NULL;
    free(g.part), free(g.sums);
    return st;
}

/* Hessians gathered in one pass, a mixture's experts' included: at most
 * this many bytes of them (or one) */
#define GPTQ_HESSIAN_BYTES ((size_t)256 << 20)

zq_status zq_lkd_gptq_block(run *r, trainee *tr, const zq_batches *in, zq_error *err)
{
    /* the dense Linears by ZQ_PART slot, then a mixture's experts by
     * their place in an expert's three (gate, up, down) */
    static const int stages[6][3] = {{ZQ_PART_Q, ZQ_PART_K, ZQ_PART_V}, {ZQ_PART_O, -1, -1},
                                     {ZQ_PART_UP, ZQ_PART_GATE, -1},    {ZQ_PART_DOWN, -1, -1},
                                     {0, 1, -1},                        {2, -1, -1}};
    int E = tr->student.n_experts, nl;
    zq_linear **lin = malloc((ZQ_LINEAR_SLOTS + 3 * (size_t)E) * sizeof *lin);
    target *t = malloc(((size_t)E + 1) * sizeof *t);
    zq_status st = lin && t ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) zq_lkd_block_linears(&tr->student, lin, &nl), st = zq_lkd_fake_quantize(tr, r->a, err);
    for (int s = 0; st == ZQ_OK && s < 6; s++) {
        int nt = 0, slots[3], ns = 0;
        for (int e = 0; st == ZQ_OK && e < (s < 4 ? 1 : E); e++) { /* an expert stage: one target an expert */
            for (ns = 0; ns < 3 && stages[s][ns] >= 0; ns++)
                slots[ns] = s < 4 ? stages[s][ns] : ZQ_LINEAR_SLOTS + 3 * e + stages[s][ns];
            st = stage_targets(tr, lin, slots, ns, t, &nt, err);
        }
        for (int i = 0; st == ZQ_OK && i < nt;) { /* as many as the budget holds a pass */
            size_t bytes = 0;
            int j = i;
            while (j < nt && (j == i || bytes + (size_t)t[j].L->in * t[j].L->in * sizeof(double) <= GPTQ_HESSIAN_BYTES))
                bytes += (size_t)t[j].L->in * t[j].L->in * sizeof(double), j++;
            st = gptq_targets(r, tr, in, t + i, j - i, err);
            if (st == ZQ_OK) st = zq_lkd_fake_quantize(tr, r->a, err); /* what comes after sees them quantized */
            i = j;
        }
    }
    free(lin), free(t);
    return st;
}
