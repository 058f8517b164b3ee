/* A mixture of experts in place of the MLP (Mixtral, Qwen3-MoE), forward
 * and backward: the router's softmax picks each token's top-k experts, their
 * weights renormalized where the model does; each expert (a SwiGLU MLP)
 * runs once per sequence on the tokens routed to it, so a token's result
 * depends on its sequence alone (as every other product of the engine);
 * the outputs are summed per token in expert order, as Hugging Face's
 * index_add. The backward holds the routing fixed: gradients reach the
 * experts and the input through them, never the router. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/workspace.h"

/* Each token's experts and weights (sel, w: k per token), then the pairs
 * grouped by (sequence, expert): group g = b * E + e holds pairs
 * [start[g], start[g + 1]) in token order. */
static void route(const zq_arch *a, const zq_block *blk, zq_workspace *ws, int BT, int T)
{
    int E = blk->n_experts, k = a->moe_topk, B = BT / T;
    if (blk->route_sel) {
        memcpy(ws->route_sel, blk->route_sel, (size_t)BT * k * sizeof *ws->route_sel);
        memcpy(ws->route_w, blk->route_w, (size_t)BT * k * sizeof *ws->route_w);
    }
    for (int t = 0; !blk->route_sel && t < BT; t++) {
        const float *z = ws->router_logits + (size_t)t * E;
        float *p = ws->router_probs + (size_t)t * E, mx = -INFINITY, sum = 0;
        for (int e = 0; e < E; e++) mx = z[e] > mx ? z[e] : mx;
        for (int e = 0; e < E; e++) sum += p[e] = expf(z[e] - mx);
        for (int e = 0; e < E; e++) p[e] /= sum;
        int *sel = ws->route_sel + (size_t)t * k;
        float *w = ws->route_w + (size_t)t * k, total = 0;
        for (int j = 0; j < k; j++) { /* the j-th largest; ties to the lower expert */
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int i = 0; i < j; i++) taken |= sel[i] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            sel[j] = best;
            total += w[j] = p[best];
        }
        for (int j = 0; a->moe_norm_topk && j < k; j++) w[j] /= total;
    }
    int *start = ws->group_start;
    memset(start, 0, ((size_t)B * E + 1) * sizeof *start);
    for (int t = 0; t < BT; t++)
        for (int j = 0; j < k; j++) start[(t / T) * E + ws->route_sel[(size_t)t * k + j] + 1]++;
    for (int g = 0; g < B * E; g++) start[g + 1] += start[g];
    int *fill = ws->group_fill;
    memcpy(fill, start, (size_t)B * E * sizeof *fill);
    for (int t = 0; t < BT; t++)
        for (int j = 0; j < k; j++) {
            int g = (t / T) * E + ws->route_sel[(size_t)t * k + j], at = fill[g]++;
            ws->pair_token[at] = t;
            ws->pair_w[at] = ws->route_w[(size_t)t * k + j];
        }
}

void zq_moe_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws, const float *h,
                    int BT, int T)
{
    int E = blk->n_experts, B = BT / T, C = a->hidden, I = a->moe_inter;
    if (!blk->route_sel) zq_linear_forward(&blk->router, aq, ws->aq, h, ws->router_logits, BT, T);
    route(a, blk, ws, BT, T);
    int pairs = ws->group_start[B * E];
    for (int i = 0; i < pairs; i++)
        memcpy(ws->moe_in + (size_t)i * C, h + (size_t)ws->pair_token[i] * C, (size_t)C * sizeof *h);
    for (int g = 0; g < B * E; g++) {
        int at = ws->group_start[g], n = ws->group_start[g + 1] - at;
        if (!n) continue;
        const zq_linear *ex = blk->experts + 3 * (g % E);
        size_t ri = (size_t)at * I;
        zq_linear_forward(&ex[0], aq, ws->aq, ws->moe_in + (size_t)at * C, ws->moe_gate + ri, n, n);
        zq_linear_forward(&ex[1], aq, ws->aq, ws->moe_in + (size_t)at * C, ws->moe_up + ri, n, n);
        zq_activate(a->act, ws->moe_act + ri, ws->moe_gate + ri, ws->moe_up + ri, (size_t)n * I);
        zq_linear_forward(&ex[2], aq, ws->aq, ws->moe_act + ri, ws->moe_y + (size_t)at * C, n, n);
    }
    memset(ws->mo, 0, (size_t)BT * C * sizeof(float));
    for (int g = 0; g < B * E; g++) /* per token, the experts' outputs in expert order */
        for (int i = ws->group_start[g]; i < ws->group_start[g + 1]; i++) {
            float *o = ws->mo + (size_t)ws->pair_token[i] * C, w = ws->pair_w[i];
            const float *y = ws->moe_y + (size_t)i * C;
            for (int c = 0; c < C; c++) o[c] += w * y[c];
        }
}

void zq_moe_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                     const zq_block_grads *g, const float *dmo, float *dh, float dh_beta, int BT, int T)
{
    int E = blk->n_experts, B = BT / T, C = a->hidden, I = a->moe_inter;
    if (dh_beta == 0.0f) memset(dh, 0, (size_t)BT * C * sizeof *dh);
    for (int grp = 0; grp < B * E; grp++) {
        int at = ws->group_start[grp], n = ws->group_start[grp + 1] - at, e = grp % E;
        if (!n) continue;
        const zq_linear *ex = blk->experts + 3 * e;
        const zq_linear_grad *ge = g->experts ? g->experts + 3 * e : NULL;
        size_t ri = (size_t)at * I, rc = (size_t)at * C;
        for (int i = 0; i < n; i++) { /* d y = w d out: moe_y is free by now */
            const float *d = dmo + (size_t)ws->pair_token[at + i] * C;
            float *dy = ws->moe_y + rc + (size_t)i * C, w = ws->pair_w[at + i];
            for (int c = 0; c < C; c++) dy[c] = w * d[c];
        }
        zq_linear_backward(&ex[2], ge ? &ge[2] : NULL, aq, ws, ws->moe_act + ri, ws->moe_y + rc, ws->moe_dact + ri, 0.0f,
                           n, n);
        zq_activate_backward(a->act, ws->moe_up + ri, ws->moe_gate + ri, ws->moe_dact + ri, ws->moe_dup + ri,
                             ws->moe_dgate + ri, (size_t)n * I);
        zq_linear_backward(&ex[1], ge ? &ge[1] : NULL, aq, ws, ws->moe_in + rc, ws->moe_dup + ri, ws->moe_dx + rc, 0.0f,
                           n, n);
        zq_linear_backward(&ex[0], ge ? &ge[0] : NULL, aq, ws, ws->moe_in + rc, ws->moe_dgate + ri, ws->moe_dx + rc,
                           1.0f, n, n);
    }
    for (int grp = 0; grp < B * E; grp++) /* into each token's gradient in expert order */
        for (int i = ws->group_start[grp]; i < ws->group_start[grp + 1]; i++) {
            float *d = dh + (size_t)ws->pair_token[i] * C;
            const float *dx = ws->moe_dx + (size_t)i * C;
            for (int c = 0; c < C; c++) d[c] += dx[c];
        }
}

void zq_block_routes(const zq_arch *a, const zq_workspace *ws, int rows, int *sel, float *w)
{
    memcpy(sel, ws->route_sel, (size_t)rows * a->moe_topk * sizeof *sel);
    memcpy(w, ws->route_w, (size_t)rows * a->moe_topk * sizeof *w);
}
