/* The backward twin of engine.c's block forward. Each piece reads what the
 * forward left in the workspace (see workspace.h) and accumulates into the
 * gradient buffers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "nn/nn.h"
#include "nn/workspace.h"
#include "zquant/train.h"

/* forward: y = xq W^T + b with xq = act_quant(x). dx = dy W; dW += dy^T xq;
 * db += column sums of dy. */
static void linear_back(const zq_linear *L, const zq_linear_grad *g, const zq_act_quant *aq, float *scratch,
                        const float *x, const float *dy, float *dx, float dx_beta, int rows)
{
    const float *xq = x;
    if (L->quantized && aq && (aq->mode == ZQ_AQ_TOKEN || aq->mode == ZQ_AQ_TENSOR)) {
        memcpy(scratch, x, (size_t)rows * L->in * sizeof *x);
        if (aq->mode == ZQ_AQ_TOKEN) zq_fake_quant_tokens(scratch, rows, L->in);
        else zq_fake_quant_tensor(scratch, (size_t)rows * L->in, aq->absmax[L->id]);
        xq = scratch;
    }
    if (g && g->w) zq_gemm_tn(L->out, L->in, rows, dy, L->out, xq, L->in, 1.0f, g->w, L->in);
    if (g && g->b)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < L->out; c++) g->b[c] += dy[(size_t)r * L->out + c];
    if (dx) zq_gemm_nn(rows, L->in, L->out, dy, L->out, L->w, L->in, dx_beta, dx, L->in);
}

/* forward: y = (x - mean) * rstd * w + b (or x * rstd * w for RMSNorm);
 * dx += the input gradient */
static void norm_back(const zq_arch *a, const float *x, const float *w, const float *dy, float *dx, float *dw,
                      float *db, int rows)
{
    int C = a->hidden;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C, *g = dy + (size_t)r * C;
        float *o = dx + (size_t)r * C;
        double mean = 0, var = 0;
        if (!a->rms_norm) {
            for (int c = 0; c < C; c++) mean += xr[c];
            mean /= C;
        }
        for (int c = 0; c < C; c++) var += (xr[c] - mean) * (xr[c] - mean);
        double rstd = 1.0 / sqrt(var / C + a->norm_eps);
        double sum_g = 0, sum_gx = 0; /* of dxhat and dxhat * xhat */
        for (int c = 0; c < C; c++) {
            double xhat = (xr[c] - mean) * rstd, dxhat = (double)g[c] * w[c];
            if (dw) dw[c] += (float)(g[c] * xhat);
            if (db) db[c] += g[c];
            sum_g += dxhat;
            sum_gx += dxhat * xhat;
        }
        for (int c = 0; c < C; c++) {
            double xhat = (xr[c] - mean) * rstd, dxhat = (double)g[c] * w[c];
            double d = a->rms_norm ? dxhat - xhat * sum_gx / C : dxhat - sum_g / C - xhat * sum_gx / C;
            o[c] += (float)(rstd * d);
        }
    }
}

static void activation_back(zq_mlp_fn fn, const float *u, const float *gate, const float *dact, float *du,
                            float *dg, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = u[i], d = dact[i];
        switch (fn) {
        case ZQ_GELU_TANH: {
            float k = 0.7978845608028654f, inner = k * (x + 0.044715f * x * x * x), t = tanhf(inner);
            du[i] = d * (0.5f * (1 + t) + 0.5f * x * (1 - t * t) * k * (1 + 3 * 0.044715f * x * x));
            break;
        }
        case ZQ_GELU_ERF:
            du[i] = d * (0.5f * (1 + erff(x * 0.7071067811865476f)) + x * 0.3989422804014327f * expf(-0.5f * x * x));
            break;
        case ZQ_RELU: du[i] = x > 0 ? d : 0; break;
        case ZQ_SILU_GLU: { /* act = silu(g) * u */
            float gv = gate[i], s = 1.0f / (1.0f + expf(-gv)), silu = gv * s;
            du[i] = d * silu;
            dg[i] = d * x * s * (1 + gv * (1 - s));
            break;
        }
        }
    }
}

/* MLP sublayer: dh (= input gradient) from dmo, given its input h */
static void mlp_back(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                     const zq_block_grads *g, const float *h, const float *dmo, float *dh, float dh_beta, int BT)
{
    size_t n = (size_t)BT * a->inter;
    linear_back(&blk->down, &g->down, aq, ws->aq, ws->act, dmo, ws->dact, 0.0f, BT);
    activation_back(a->act, ws->up, ws->gate, ws->dact, ws->dup, ws->dgate, n);
    linear_back(&blk->up, &g->up, aq, ws->aq, h, ws->dup, dh, dh_beta, BT);
    if (a->act == ZQ_SILU_GLU) linear_back(&blk->gate, &g->gate, aq, ws->aq, h, ws->dgate, dh, 1.0f, BT);
}

/* One (sequence, key/value head): every query head that shares it, so the
 * accumulation into dk and dv never races. */
static void head_back_task(void *ctx, size_t task, int worker)
{
    heads_job *j = ctx;
    const zq_arch *a = j->a;
    zq_workspace *ws = j->ws;
    int T = j->T, hd = a->head_dim, nh = a->n_heads, nkv = a->n_kv_heads, group = nh / nkv;
    int b = (int)(task / (size_t)nkv), kvh = (int)(task % (size_t)nkv);
    int qld = nh * hd, kld = nkv * hd;
    size_t qo = (size_t)b * T * qld, ko = (size_t)b * T * kld;
    float *dS = ws->dscores + (size_t)worker * ws->seq * ws->seq;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *k = ws->k + ko + (size_t)kvh * hd, *v = ws->v + ko + (size_t)kvh * hd;
    float *dk = ws->dk + ko + (size_t)kvh * hd, *dv = ws->dv + ko + (size_t)kvh * hd;
    for (int r = 0; r < T; r++) {
        memset(dk + (size_t)r * kld, 0, (size_t)hd * sizeof(float));
        memset(dv + (size_t)r * kld, 0, (size_t)hd * sizeof(float));
    }
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const float *P = ws->probs + ((size_t)b * nh + h) * T * T;
        const float *dO = ws->datt + qo + (size_t)h * hd, *q = ws->q + qo + (size_t)h * hd;
        float *dq = ws->dq + qo + (size_t)h * hd;
        zq_gemm_tn(T, hd, T, P, T, dO, qld, 1.0f, dv, kld); /* dV += P^T dO */
        zq_gemm_nt(T, T, hd, dO, qld, v, kld, 0.0f, dS, T); /* dP = dO V^T */
        for (int t = 0; t < T; t++) { /* dS = P (dP - rowsum(dP P)) * scale */
            float *row = dS + (size_t)t * T;
            const float *p = P + (size_t)t * T;
            float dot = 0;
            for (int s = 0; s < T; s++) dot += row[s] * p[s];
            for (int s = 0; s < T; s++) row[s] = p[s] * (row[s] - dot) * scale;
        }
        zq_gemm_nn(T, hd, T, dS, T, k, kld, 0.0f, dq, qld); /* dQ = dS K */
        zq_gemm_tn(T, hd, T, dS, T, q, qld, 1.0f, dk, kld); /* dK += dS^T Q */
    }
}

/* attention sublayer: dh (input gradient) from dao, given its input h */
static void attention_back(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                           const zq_block_grads *g, const float *h, const float *dao, float *dh, float dh_beta, int B,
                           int T)
{
    int BT = B * T, hd = a->head_dim, nh = a->n_heads, nkv = a->n_kv_heads;
    linear_back(&blk->o, &g->o, aq, ws->aq, ws->att, dao, ws->datt, 0.0f, BT);
    heads_job job = {a, ws, T};
    zq_blas_set_threads(1);
    zq_pool_submit(ws->pool, (size_t)B * nkv, head_back_task, &job);
    zq_pool_wait(ws->pool);
    zq_blas_set_threads(ws->threads);
    for (int b = 0; a->rotary_dims && b < B; b++) { /* RoPE is a rotation: its transpose turns back */
        size_t qo = (size_t)b * T * nh * hd, ko = (size_t)b * T * nkv * hd;
        zq_rope_apply_inverse(ws->dq + qo, nh * hd, T, nh, hd, a->rotary_dims, a->rope_interleaved, ws->cos_t, ws->sin_t);
        zq_rope_apply_inverse(ws->dk + ko, nkv * hd, T, nkv, hd, a->rotary_dims, a->rope_interleaved, ws->cos_t, ws->sin_t);
    }
    linear_back(&blk->q, &g->q, aq, ws->aq, h, ws->dq, dh, dh_beta, BT);
    linear_back(&blk->k, &g->k, aq, ws->aq, h, ws->dk, dh, 1.0f, BT);
    linear_back(&blk->v, &g->v, aq, ws->aq, h, ws->dv, dh, 1.0f, BT);
}

void zq_block_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                       const float *x, const float *dout, float *dx, zq_block_grads *g, int B, int T)
{
    int BT = B * T;
    size_t n = (size_t)BT * a->hidden;
    float *d = dx ? dx : ws->dtmp; /* the input gradient is needed inside anyway */
    if (!a->pre_ln) { /* out = norm2(x2); x2 = x1n + mlp(x1n); x1n = norm1(x1); x1 = x + attn(x) */
        memset(ws->dh2, 0, n * sizeof(float));
        norm_back(a, ws->mid2, blk->norm2_w, dout, ws->dh2, g->norm2_w, g->norm2_b, BT); /* dx2 */
        memcpy(ws->dh1, ws->dh2, n * sizeof(float));                                    /* dx1n */
        mlp_back(a, blk, aq, ws, g, ws->xn, ws->dh2, ws->dh1, 1.0f, BT);
        memset(ws->dx1, 0, n * sizeof(float));
        norm_back(a, ws->mid, blk->norm1_w, ws->dh1, ws->dx1, g->norm1_w, g->norm1_b, BT);
        memcpy(d, ws->dx1, n * sizeof(float));
        attention_back(a, blk, aq, ws, g, x, ws->dx1, d, 1.0f, B, T);
        return;
    }
    if (a->parallel) { /* out = x + attn(h1) + mlp(h2), h1 = norm1(x), h2 = norm2(x) or h1 */
        const float *h2 = a->shared_norm ? ws->xn : ws->xn2;
        mlp_back(a, blk, aq, ws, g, h2, dout, ws->dh2, 0.0f, BT);
        attention_back(a, blk, aq, ws, g, ws->xn, dout, ws->dh1, 0.0f, B, T);
        memcpy(d, dout, n * sizeof(float));
        if (a->shared_norm)
            for (size_t i = 0; i < n; i++) ws->dh1[i] += ws->dh2[i];
        else
            norm_back(a, x, blk->norm2_w, ws->dh2, d, g->norm2_w, g->norm2_b, BT);
        norm_back(a, x, blk->norm1_w, ws->dh1, d, g->norm1_w, g->norm1_b, BT);
        return;
    }
    /* out = x1 + mlp(norm2(x1)); x1 = x + attn(norm1(x)) */
    mlp_back(a, blk, aq, ws, g, ws->xn2, dout, ws->dh2, 0.0f, BT);
    memcpy(ws->dx1, dout, n * sizeof(float));
    norm_back(a, ws->mid, blk->norm2_w, ws->dh2, ws->dx1, g->norm2_w, g->norm2_b, BT);
    attention_back(a, blk, aq, ws, g, ws->xn, ws->dx1, ws->dh1, 0.0f, B, T);
    memcpy(d, ws->dx1, n * sizeof(float));
    norm_back(a, x, blk->norm1_w, ws->dh1, d, g->norm1_w, g->norm1_b, BT);
}

/* The buffer among units that holds p, and p's offset in it; -1 if none. */
static int owner(const float *p, const zq_net_tensor *units, int n, size_t *off)
{
    for (int k = 0; p && k < n; k++)
        if (p >= units[k].w && p < units[k].w + (size_t)units[k].rows * units[k].cols) {
            *off = (size_t)(p - units[k].w);
            return k;
        }
    return -1;
}

/* Redirects *p (a weight the block reads) into w_bufs and sets *g to its
 * gradient slot in g_bufs, when units hold it. */
static void rewire_ptr(const float **p, float **g, const zq_net_tensor *units, int n, float *const *w_bufs,
                       float *const *g_bufs)
{
    size_t off;
    int k = owner(*p, units, n, &off);
    *g = NULL;
    if (k < 0) return;
    if (w_bufs) *p = w_bufs[k] + off;
    if (g_bufs) *g = g_bufs[k] + off;
}

static void rewire_linear(zq_linear *l, zq_linear_grad *g, const zq_net_tensor *units, int n, float *const *w_bufs,
                          float *const *g_bufs)
{
    rewire_ptr(&l->w, &g->w, units, n, w_bufs, g_bufs);
    rewire_ptr(&l->b, &g->b, units, n, w_bufs, g_bufs);
}

void zq_block_rewire(const zq_block *fp, const zq_net_tensor *units, int n, float *const *w_bufs,
                     float *const *g_bufs, zq_block *student, zq_block_grads *g)
{
    *student = *fp;
    memset(g, 0, sizeof *g);
    rewire_ptr(&student->norm1_w, &g->norm1_w, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->norm1_b, &g->norm1_b, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->norm2_w, &g->norm2_w, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->norm2_b, &g->norm2_b, units, n, w_bufs, g_bufs);
    rewire_linear(&student->q, &g->q, units, n, w_bufs, g_bufs);
    rewire_linear(&student->k, &g->k, units, n, w_bufs, g_bufs);
    rewire_linear(&student->v, &g->v, units, n, w_bufs, g_bufs);
    rewire_linear(&student->o, &g->o, units, n, w_bufs, g_bufs);
    rewire_linear(&student->up, &g->up, units, n, w_bufs, g_bufs);
    rewire_linear(&student->gate, &g->gate, units, n, w_bufs, g_bufs);
    rewire_linear(&student->down, &g->down, units, n, w_bufs, g_bufs);
}
