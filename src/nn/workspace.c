/* Block workspaces, sized once for B sequences of T tokens. */
#include <stdlib.h>

#include "base/blas.h"
#include "base/tree.h"
#include "nn/workspace.h"

static void *own(zq_workspace *ws, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ws->failed = 1;
    else ws->owned[ws->nowned++] = p;
    return p;
}

static float *floats(zq_workspace *ws, size_t n) { return own(ws, n * sizeof(float)); }

static void norm_stats(zq_workspace *ws, zq_norm_stats *st, size_t rows)
{
    st->mean = own(ws, rows * sizeof(double));
    st->rstd = own(ws, rows * sizeof(double));
}

zq_workspace *zq_workspace_create_ex(const zq_arch *a, int batch, int seq, int train)
{
    zq_error ignore = {0};
    if (zq_blas_load(&ignore) != ZQ_OK) return NULL; /* it may lower the thread count: first */
    zq_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    size_t bt = (size_t)batch * seq, C = (size_t)a->hidden, qd = (size_t)a->n_heads * a->head_dim;
    size_t kvd = (size_t)a->n_kv_heads * a->head_dim, I = (size_t)a->inter;
    size_t widest = C > qd ? C : qd, MI = (size_t)a->moe_inter, E = (size_t)a->n_experts;
    widest = widest > I ? widest : I;
    widest = widest > MI ? widest : MI;
    ws->batch = batch;
    ws->seq = seq;
    ws->train = train;
    ws->threads = zq_engine_threads();
    ws->xn = floats(ws, bt * C), ws->xn2 = floats(ws, bt * C), ws->mid = floats(ws, bt * C), ws->mid2 = floats(ws, bt * C);
    ws->q = floats(ws, bt * qd), ws->k = floats(ws, bt * kvd), ws->v = floats(ws, bt * kvd), ws->att = floats(ws, bt * qd);
    ws->ao = floats(ws, bt * C), ws->mo = floats(ws, bt * C);
    ws->up = floats(ws, bt * I), ws->gate = floats(ws, bt * I), ws->act = floats(ws, bt * I), ws->aq = floats(ws, bt * widest);
    ws->scores = floats(ws, (size_t)ws->threads * seq * seq);
    if (E) { /* every token's k (token, expert) pairs */
        size_t pairs = bt * (size_t)a->moe_topk, groups = (size_t)batch * E;
        ws->router_logits = floats(ws, bt * E), ws->router_probs = floats(ws, bt * E);
        ws->route_w = floats(ws, pairs), ws->pair_w = floats(ws, pairs);
        ws->route_sel = own(ws, pairs * sizeof(int)), ws->pair_token = own(ws, pairs * sizeof(int));
        ws->group_start = own(ws, (groups + 1) * sizeof(int)), ws->group_fill = own(ws, groups * sizeof(int));
        ws->moe_in = floats(ws, pairs * C), ws->moe_y = floats(ws, pairs * C);
        ws->moe_gate = floats(ws, pairs * MI), ws->moe_up = floats(ws, pairs * MI);
        ws->moe_act = floats(ws, pairs * MI);
        if (train) {
            ws->moe_dact = floats(ws, pairs * MI), ws->moe_dup = floats(ws, pairs * MI);
            ws->moe_dgate = floats(ws, pairs * MI), ws->moe_dx = floats(ws, pairs * C);
        }
    }
    size_t half = (size_t)(a->rotary_dims ? a->rotary_dims / 2 : 1);
    ws->cos_t = floats(ws, (size_t)seq * half), ws->sin_t = floats(ws, (size_t)seq * half);
    if (a->rope_local_theta > 0) ws->cos_l = floats(ws, (size_t)seq * half), ws->sin_l = floats(ws, (size_t)seq * half);
    if (a->rope_longrope) ws->cos_long = floats(ws, (size_t)seq * half), ws->sin_long = floats(ws, (size_t)seq * half);
    if (train) {
        norm_stats(ws, &ws->norm1, bt);
        norm_stats(ws, &ws->norm2, bt);
        if (a->post_norms) norm_stats(ws, &ws->post1, bt), norm_stats(ws, &ws->post2, bt);
        if (a->qk_norm) {
            norm_stats(ws, &ws->qnorm, bt * a->n_heads);
            norm_stats(ws, &ws->knorm, bt * a->n_kv_heads);
            ws->qpre = floats(ws, bt * qd), ws->kpre = floats(ws, bt * kvd);
        }
        ws->probs = floats(ws, bt * a->n_heads * seq);
        if (a->attn_softcap > 0) ws->cap_slope = floats(ws, bt * a->n_heads * seq);
        ws->dq = floats(ws, bt * qd), ws->dk = floats(ws, bt * kvd), ws->dv = floats(ws, bt * kvd), ws->datt = floats(ws, bt * qd);
        ws->dh1 = floats(ws, bt * C), ws->dh2 = floats(ws, bt * C), ws->dx1 = floats(ws, bt * C), ws->dtmp = floats(ws, bt * C);
        ws->dup = floats(ws, bt * I), ws->dgate = floats(ws, bt * I), ws->dact = floats(ws, bt * I);
        ws->dscores = floats(ws, (size_t)ws->threads * seq * seq);
        /* sums over the batch's sequences: two tree stacks of the widest
         * row (norm weight and bias), and the weight gradients' per tile */
        ws->sums_per_tree = (size_t)zq_tree_levels(batch) * widest;
        ws->sums = floats(ws, 2 * ws->sums_per_tree);
        ws->gemm_sums_len = zq_gemm_tn_scratch((int)widest, (int)widest, (int)bt, seq);
        ws->gemm_sums = floats(ws, ws->gemm_sums_len);
    }
    if (ws->failed) {
        zq_workspace_free(ws);
        return NULL;
    }
    if (a->rotary_dims) zq_rope_table(ws->cos_t, ws->sin_t, seq, a, ZQ_ROPE_SET_GLOBAL);
    if (a->rotary_dims && ws->cos_l) zq_rope_table(ws->cos_l, ws->sin_l, seq, a, ZQ_ROPE_SET_LOCAL);
    if (a->rotary_dims && ws->cos_long) zq_rope_table(ws->cos_long, ws->sin_long, seq, a, ZQ_ROPE_SET_LONG);
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
    free(ws);
}
