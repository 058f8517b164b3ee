/* The MLP sublayer, forward and backward: up (and gate), activation, down.
 * The forward keeps the pre-activations (ws->up, ws->gate) and the
 * activation (ws->act) for the backward. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/workspace.h"

void zq_activate(zq_mlp_fn fn, float *x, const float *up, size_t n)
{
    switch (fn) {
    case ZQ_GELU_TANH: /* GPT-2's "gelu_new" */
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
        break;
    case ZQ_GELU_ERF:
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
        break;
    case ZQ_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case ZQ_SILU_GLU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * up[i];
        break;
    }
}

/* du (and for SwiGLU dg) from dact; u: the pre-activation (the up
 * projection for SwiGLU), gate: SwiGLU's gate pre-activation */
static void activate_backward(zq_mlp_fn fn, const float *u, const float *gate, const float *dact, float *du, float *dg,
                              size_t n)
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

void zq_mlp_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws, const float *h,
                    int BT, int T)
{
    size_t n = (size_t)BT * a->inter;
    zq_linear_forward(&blk->up, aq, ws->aq, h, ws->up, BT, T);
    if (a->act == ZQ_SILU_GLU) {
        zq_linear_forward(&blk->gate, aq, ws->aq, h, ws->gate, BT, T);
        memcpy(ws->act, ws->gate, n * sizeof(float));
        zq_activate(a->act, ws->act, ws->up, n);
    } else {
        memcpy(ws->act, ws->up, n * sizeof(float));
        zq_activate(a->act, ws->act, NULL, n);
    }
    zq_linear_forward(&blk->down, aq, ws->aq, ws->act, ws->mo, BT, T);
}

void zq_mlp_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                     const zq_block_grads *g, const float *h, const float *dmo, float *dh, float dh_beta, int BT, int T)
{
    size_t n = (size_t)BT * a->inter;
    zq_linear_backward(&blk->down, &g->down, aq, ws, ws->act, dmo, ws->dact, 0.0f, BT, T);
    activate_backward(a->act, ws->up, ws->gate, ws->dact, ws->dup, ws->dgate, n);
    zq_linear_backward(&blk->up, &g->up, aq, ws, h, ws->dup, dh, dh_beta, BT, T);
    if (a->act == ZQ_SILU_GLU) zq_linear_backward(&blk->gate, &g->gate, aq, ws, h, ws->dgate, dh, 1.0f, BT, T);
}
