/* One block, forward and backward, in the three shapes transformers come in.
 * Every intermediate lands in its own workspace buffer; the backward reads
 * them (and the norms' statistics) instead of recomputing. */
#include <string.h>

#include "nn/nn.h"
#include "nn/workspace.h"

static void add(float *out, const float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = x[i] + y[i];
}

/* A norm in a training workspace keeps its row statistics. */
static zq_norm_stats *keep(zq_workspace *ws, zq_norm_stats *st) { return ws->train ? st : NULL; }

/* pre-LN:   h1 = norm1(x) [xn]; ao = attn(h1); x1 = x + ao [mid];
 *           h2 = norm2(x1) [xn2]; mo = mlp(h2); out = x1 + mo
 *   with post norms (Gemma 2): x1 = x + post1(ao) [post1(ao) in mid2]; out = x1 + post2(mo)
 * parallel: out = x + attn(norm1(x)) + mlp(norm2(x)), norm2 = norm1 in GPT-J
 * post-LN:  ao = attn(x); x1 = x + ao [mid]; x1n = norm1(x1) [xn];
 *           mo = mlp(x1n); x2 = x1n + mo [mid2]; out = norm2(x2) */
void zq_block_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                      const float *x, float *out, int B, int T)
{
    int BT = B * T;
    size_t n = (size_t)BT * a->hidden;
    zq_norm_stats *s1 = keep(ws, &ws->norm1), *s2 = keep(ws, &ws->norm2);
    if (!a->pre_ln) {
        zq_attention_forward(a, blk, aq, ws, x, B, T);
        add(ws->mid, x, ws->ao, n);
        zq_norm_forward(a, ws->xn, ws->mid, blk->norm1_w, blk->norm1_b, BT, s1);
        zq_mlp_forward(a, blk, aq, ws, ws->xn, BT, T);
        add(ws->mid2, ws->xn, ws->mo, n);
        zq_norm_forward(a, out, ws->mid2, blk->norm2_w, blk->norm2_b, BT, s2);
        return;
    }
    zq_norm_forward(a, ws->xn, x, blk->norm1_w, blk->norm1_b, BT, s1);
    zq_attention_forward(a, blk, aq, ws, ws->xn, B, T);
    if (a->parallel) {
        const float *h2 = ws->xn;
        if (!a->shared_norm) {
            zq_norm_forward(a, ws->xn2, x, blk->norm2_w, blk->norm2_b, BT, s2);
            h2 = ws->xn2;
        }
        zq_mlp_forward(a, blk, aq, ws, h2, BT, T);
        for (size_t i = 0; i < n; i++) out[i] = ws->ao[i] + ws->mo[i] + x[i];
        return;
    }
    const float *ao = ws->ao;
    if (a->post_norms) {
        zq_norm_forward(a, ws->mid2, ws->ao, blk->post_norm1_w, NULL, BT, keep(ws, &ws->post1));
        ao = ws->mid2;
    }
    add(ws->mid, x, ao, n);
    zq_norm_forward(a, ws->xn2, ws->mid, blk->norm2_w, blk->norm2_b, BT, s2);
    zq_mlp_forward(a, blk, aq, ws, ws->xn2, BT, T);
    if (a->post_norms) { /* x is not read past this point: out may be x */
        zq_norm_forward(a, out, ws->mo, blk->post_norm2_w, NULL, BT, keep(ws, &ws->post2));
        add(out, ws->mid, out, n);
        return;
    }
    add(out, ws->mid, ws->mo, n);
}

/* d (the gradient of a post norm's output) through post norm `st` of the
 * sublayer output y: its input gradient into ws->dtmp, which is free until
 * the block's input gradient is written last */
static const float *through_post_norm(const zq_arch *a, zq_workspace *ws, const zq_norm_stats *st, const float *y,
                                      const float *w, float *dw, const float *d, int BT, int T)
{
    memset(ws->dtmp, 0, (size_t)BT * a->hidden * sizeof(float));
    zq_norm_backward(a, st, y, w, d, ws->dtmp, dw, NULL, BT, T, ws);
    return ws->dtmp;
}

void zq_block_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                       const float *x, const float *dout, float *dx, zq_block_grads *g, int B, int T)
{
    int BT = B * T;
    size_t n = (size_t)BT * a->hidden;
    float *d = dx ? dx : ws->dtmp; /* the input gradient is needed inside anyway */
    if (!a->pre_ln) { /* out = norm2(x2); x2 = x1n + mlp(x1n); x1n = norm1(x1); x1 = x + attn(x) */
        memset(ws->dh2, 0, n * sizeof(float));
        zq_norm_backward(a, &ws->norm2, ws->mid2, blk->norm2_w, dout, ws->dh2, g->norm2_w, g->norm2_b, BT, T, ws); /* dx2 */
        memcpy(ws->dh1, ws->dh2, n * sizeof(float));                                                     /* dx1n */
        zq_mlp_backward(a, blk, aq, ws, g, ws->xn, ws->dh2, ws->dh1, 1.0f, BT, T);
        memset(ws->dx1, 0, n * sizeof(float));
        zq_norm_backward(a, &ws->norm1, ws->mid, blk->norm1_w, ws->dh1, ws->dx1, g->norm1_w, g->norm1_b, BT, T, ws);
        memcpy(d, ws->dx1, n * sizeof(float));
        zq_attention_backward(a, blk, aq, ws, g, x, ws->dx1, d, 1.0f, B, T);
        return;
    }
    if (a->parallel) { /* out = x + attn(h1) + mlp(h2), h1 = norm1(x), h2 = norm2(x) or h1 */
        const float *h2 = a->shared_norm ? ws->xn : ws->xn2;
        zq_mlp_backward(a, blk, aq, ws, g, h2, dout, ws->dh2, 0.0f, BT, T);
        zq_attention_backward(a, blk, aq, ws, g, ws->xn, dout, ws->dh1, 0.0f, B, T);
        memcpy(d, dout, n * sizeof(float));
        if (a->shared_norm)
            for (size_t i = 0; i < n; i++) ws->dh1[i] += ws->dh2[i];
        else
            zq_norm_backward(a, &ws->norm2, x, blk->norm2_w, ws->dh2, d, g->norm2_w, g->norm2_b, BT, T, ws);
        zq_norm_backward(a, &ws->norm1, x, blk->norm1_w, ws->dh1, d, g->norm1_w, g->norm1_b, BT, T, ws);
        return;
    }
    /* out = x1 + mlp(norm2(x1)); x1 = x + attn(norm1(x)) (with post norms
     * on the mlp's and the attention's outputs) */
    const float *dmo = a->post_norms ? through_post_norm(a, ws, &ws->post2, ws->mo, blk->post_norm2_w, g->post_norm2_w,
                                                         dout, BT, T)
                                     : dout;
    zq_mlp_backward(a, blk, aq, ws, g, ws->xn2, dmo, ws->dh2, 0.0f, BT, T);
    memcpy(ws->dx1, dout, n * sizeof(float));
    zq_norm_backward(a, &ws->norm2, ws->mid, blk->norm2_w, ws->dh2, ws->dx1, g->norm2_w, g->norm2_b, BT, T, ws);
    const float *dao = a->post_norms ? through_post_norm(a, ws, &ws->post1, ws->ao, blk->post_norm1_w, g->post_norm1_w,
                                                         ws->dx1, BT, T)
                                     : ws->dx1;
    zq_attention_backward(a, blk, aq, ws, g, ws->xn, dao, ws->dh1, 0.0f, B, T);
    memcpy(d, ws->dx1, n * sizeof(float));
    zq_norm_backward(a, &ws->norm1, x, blk->norm1_w, ws->dh1, d, g->norm1_w, g->norm1_b, BT, T, ws);
}
