/* One block's forward. */
#include "zquant/engine.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "nn/nn.h"
#include "base/pool.h"

/* ---- threads ----------------------------------------------------------------- */

static int engine_threads;

void zq_engine_set_threads(int n)
{
    engine_threads = n;
    zq_blas_set_threads(zq_engine_threads());
}

int zq_engine_threads(void)
{
    if (engine_threads > 0) return engine_threads;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

/* ---- one block ------------------------------------------------------------ */

#include "nn/workspace.h"

static float *buf(zq_workspace *ws, size_t floats)
{
    float *p = malloc((floats ? floats : 1) * sizeof *p);
    if (!p) ws->failed = 1;
    else ws->owned[ws->nowned++] = p;
    return p;
}

zq_workspace *zq_workspace_create_ex(const zq_arch *a, int batch, int seq, int train)
{
    zq_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    size_t bt = (size_t)batch * seq, C = (size_t)a->hidden, qd = (size_t)a->n_heads * a->head_dim;
    size_t kvd = (size_t)a->n_kv_heads * a->head_dim, I = (size_t)a->inter;
    size_t widest = C > qd ? C : qd;
    widest = widest > I ? widest : I;
    ws->batch = batch;
    ws->seq = seq;
    ws->train = train;
    ws->threads = zq_engine_threads();
    ws->pool = zq_pool_create(ws->threads);
    ws->xn = buf(ws, bt * C), ws->xn2 = buf(ws, bt * C), ws->mid = buf(ws, bt * C), ws->mid2 = buf(ws, bt * C);
    ws->q = buf(ws, bt * qd), ws->k = buf(ws, bt * kvd), ws->v = buf(ws, bt * kvd), ws->att = buf(ws, bt * qd);
    ws->ao = buf(ws, bt * C), ws->mo = buf(ws, bt * C);
    ws->up = buf(ws, bt * I), ws->gate = buf(ws, bt * I), ws->act = buf(ws, bt * I), ws->aq = buf(ws, bt * widest);
    ws->scores = buf(ws, (size_t)ws->threads * seq * seq);
    size_t half = (size_t)(a->rotary_dims ? a->rotary_dims / 2 : 1);
    ws->cos_t = buf(ws, (size_t)seq * half), ws->sin_t = buf(ws, (size_t)seq * half);
    if (train) { /* what the backward pass reads, and its own scratch */
        ws->probs = buf(ws, bt * a->n_heads * seq);
        ws->dq = buf(ws, bt * qd), ws->dk = buf(ws, bt * kvd), ws->dv = buf(ws, bt * kvd), ws->datt = buf(ws, bt * qd);
        ws->dh1 = buf(ws, bt * C), ws->dh2 = buf(ws, bt * C), ws->dx1 = buf(ws, bt * C), ws->dtmp = buf(ws, bt * C);
        ws->dup = buf(ws, bt * I), ws->dgate = buf(ws, bt * I), ws->dact = buf(ws, bt * I);
        ws->dscores = buf(ws, (size_t)ws->threads * seq * seq);
    }
    if (ws->failed || !ws->pool) {
        zq_workspace_free(ws);
        return NULL;
    }
    if (a->rotary_dims) zq_rope_table(ws->cos_t, ws->sin_t, seq, a->rotary_dims, a->rope_theta);
    return ws;
}

zq_workspace *zq_workspace_create(const zq_arch *a, int batch, int seq) { return zq_workspace_create_ex(a, batch, seq, 0); }

void zq_workspace_set_cache(zq_workspace *ws, float *k, float *v, int pos0)
{
    ws->kcache = k;
    ws->vcache = v;
    ws->pos0 = pos0;
}

void zq_workspace_free(zq_workspace *ws)
{
    if (!ws) return;
    for (int k = 0; k < ws->nowned; k++) free(ws->owned[k]);
    zq_pool_free(ws->pool);
    free(ws);
}

/* out (rows, L->out) = x L.W^T + b, its input quantized as the mode says */
void zq_block_linear(const zq_linear *L, const zq_act_quant *aq, float *scratch, const float *x, float *out, int rows)
{
    const float *in = x;
    size_t n = (size_t)rows * L->in;
    if (L->quantized && aq && aq->mode != ZQ_AQ_NONE) {
        if (aq->mode == ZQ_AQ_CALIBRATE) {
            float m = aq->absmax[L->id];
            for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
            aq->absmax[L->id] = m;
        } else {
            memcpy(scratch, x, n * sizeof *x);
            if (aq->mode == ZQ_AQ_TOKEN) zq_fake_quant_tokens(scratch, rows, L->in);
            else zq_fake_quant_tensor(scratch, n, aq->absmax[L->id]);
            in = scratch;
        }
    }
    zq_gemm_nt(rows, L->out, L->in, in, L->in, L->w, L->in, 0.0f, out, L->out);
    if (L->b)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < L->out; c++) out[(size_t)r * L->out + c] += L->b[c];
}

static void norm(const zq_arch *a, float *out, const float *x, const float *w, const float *b, int rows)
{
    if (a->rms_norm) zq_rmsnorm(out, x, w, rows, a->hidden, a->norm_eps);
    else zq_layernorm(out, x, w, b, rows, a->hidden, a->norm_eps);
}

static void head_task(void *ctx, size_t task, int worker)
{
    heads_job *j = ctx;
    const zq_arch *a = j->a;
    zq_workspace *ws = j->ws;
    int b = (int)(task / (size_t)a->n_heads), h = (int)(task % (size_t)a->n_heads), hd = a->head_dim;
    size_t qo = (size_t)b * j->T * a->n_heads * hd, ko = (size_t)b * j->T * a->n_kv_heads * hd;
    float *scores = ws->train ? ws->probs + ((size_t)b * a->n_heads + h) * j->T * j->T
                              : ws->scores + (size_t)worker * ws->seq * ws->seq;
    if (ws->kcache) /* the keys so far and these */
        zq_attention_head(ws->att + qo, ws->q + qo, ws->kcache, ws->vcache, j->T, ws->pos0 + j->T, a->n_heads,
                          a->n_kv_heads, hd, h, a->causal, scores);
    else
        zq_attention_head(ws->att + qo, ws->q + qo, ws->k + ko, ws->v + ko, j->T, j->T, a->n_heads, a->n_kv_heads,
                          hd, h, a->causal, scores);
}

/* attention sublayer: ws->ao (BT, C) from its input h */
static void attention(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                      const float *h, int B, int T)
{
    int BT = B * T, hd = a->head_dim, nh = a->n_heads, nkv = a->n_kv_heads;
    zq_block_linear(&blk->q, aq, ws->aq, h, ws->q, BT);
    zq_block_linear(&blk->k, aq, ws->aq, h, ws->k, BT);
    zq_block_linear(&blk->v, aq, ws->aq, h, ws->v, BT);
    size_t half = (size_t)(a->rotary_dims / 2), past = (size_t)(ws->kcache ? ws->pos0 : 0);
    const float *cos_t = ws->cos_t + past * half, *sin_t = ws->sin_t + past * half; /* from position pos0 */
    for (int b = 0; a->rotary_dims && b < B; b++) {
        size_t qo = (size_t)b * T * nh * hd, ko = (size_t)b * T * nkv * hd;
        zq_rope_apply(ws->q + qo, nh * hd, T, nh, hd, a->rotary_dims, a->rope_interleaved, cos_t, sin_t);
        zq_rope_apply(ws->k + ko, nkv * hd, T, nkv, hd, a->rotary_dims, a->rope_interleaved, cos_t, sin_t);
    }
    if (ws->kcache) {
        memcpy(ws->kcache + past * nkv * hd, ws->k, (size_t)T * nkv * hd * sizeof(float));
        memcpy(ws->vcache + past * nkv * hd, ws->v, (size_t)T * nkv * hd * sizeof(float));
    }
    /* many small products: one BLAS thread each, heads side by side */
    heads_job job = {a, ws, T};
    zq_blas_set_threads(1);
    zq_pool_submit(ws->pool, (size_t)B * nh, head_task, &job);
    zq_pool_wait(ws->pool);
    zq_blas_set_threads(ws->threads);
    zq_block_linear(&blk->o, aq, ws->aq, ws->att, ws->ao, BT);
}

/* MLP sublayer: ws->mo (BT, C) from its input h; the pre-activations stay
 * in ws->up and ws->gate for the backward pass */
static void mlp(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws, const float *h,
                int BT)
{
    size_t n = (size_t)BT * a->inter;
    zq_block_linear(&blk->up, aq, ws->aq, h, ws->up, BT);
    if (a->act == ZQ_SILU_GLU) {
        zq_block_linear(&blk->gate, aq, ws->aq, h, ws->gate, BT);
        memcpy(ws->act, ws->gate, n * sizeof(float));
        zq_activate(a->act, ws->act, ws->up, n);
    } else {
        memcpy(ws->act, ws->up, n * sizeof(float));
        zq_activate(a->act, ws->act, NULL, n);
    }
    zq_block_linear(&blk->down, aq, ws->aq, ws->act, ws->mo, BT);
}

static void add(float *out, const float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = x[i] + y[i];
}

/* Every intermediate lands in its own buffer (the backward pass reads them):
 * pre-LN:   h1 = norm1(x) [xn]; ao = attn(h1); x1 = x + ao [mid];
 *           h2 = norm2(x1) [xn2]; mo = mlp(h2); out = x1 + mo
 * parallel: out = x + attn(norm1(x)) + mlp(norm2(x)), norm2 = norm1 in GPT-J
 * post-LN:  ao = attn(x); x1 = x + ao [mid]; x1n = norm1(x1) [xn];
 *           mo = mlp(x1n); x2 = x1n + mo [mid2]; out = norm2(x2) */
void zq_block_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                      const float *x, float *out, int B, int T)
{
    int BT = B * T;
    size_t n = (size_t)BT * a->hidden;
    if (!a->pre_ln) {
        attention(a, blk, aq, ws, x, B, T);
        add(ws->mid, x, ws->ao, n);
        norm(a, ws->xn, ws->mid, blk->norm1_w, blk->norm1_b, BT);
        mlp(a, blk, aq, ws, ws->xn, BT);
        add(ws->mid2, ws->xn, ws->mo, n);
        norm(a, out, ws->mid2, blk->norm2_w, blk->norm2_b, BT);
        return;
    }
    norm(a, ws->xn, x, blk->norm1_w, blk->norm1_b, BT);
    attention(a, blk, aq, ws, ws->xn, B, T);
    if (a->parallel) {
        const float *h2 = ws->xn;
        if (!a->shared_norm) {
            norm(a, ws->xn2, x, blk->norm2_w, blk->norm2_b, BT);
            h2 = ws->xn2;
        }
        mlp(a, blk, aq, ws, h2, BT);
        for (size_t i = 0; i < n; i++) out[i] = ws->ao[i] + ws->mo[i] + x[i];
        return;
    }
    add(ws->mid, x, ws->ao, n);
    norm(a, ws->xn2, ws->mid, blk->norm2_w, blk->norm2_b, BT);
    mlp(a, blk, aq, ws, ws->xn2, BT);
    add(out, ws->mid, ws->mo, n);
}
