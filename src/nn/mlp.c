/* The MLP sublayer, forward and backward: up (and gate: act(gate) * up, as
 * SwiGLU and GeGLU), activation, down.
 * The forward keeps the pre-activations (ws->up, ws->gate) and the
 * activation (ws->act) for the backward. */
#include <math.h>

#include "base/engine.h"
#include "nn/nn.h"
#include "nn/workspace.h"
#include "simd/kernels.h"

static float act_value(zq_mlp_fn fn, float v)
{
    switch (fn) {
    case ZQ_GELU_TANH: return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case ZQ_GELU_ERF: return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    case ZQ_RELU: return v > 0 ? v : 0;
    case ZQ_SILU: break;
    }
    return v / (1.0f + zq_exp(-v));
}

void zq_silu_ref(float *out, const float *x, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = up ? act_value(ZQ_SILU, x[i]) * up[i] : act_value(ZQ_SILU, x[i]);
}

/* d act / dv */
static float act_slope(zq_mlp_fn fn, float v)
{
    switch (fn) {
    case ZQ_GELU_TANH: {
        float k = 0.7978845608028654f, t = tanhf(k * (v + 0.044715f * v * v * v));
        return 0.5f * (1 + t) + 0.5f * v * (1 - t * t) * k * (1 + 3 * 0.044715f * v * v);
    }
    case ZQ_GELU_ERF: return 0.5f * (1 + erff(v * 0.7071067811865476f)) + v * 0.3989422804014327f * expf(-0.5f * v * v);
    case ZQ_RELU: return v > 0 ? 1.0f : 0.0f;
    case ZQ_SILU: break;
    }
    float s = 1.0f / (1.0f + zq_exp(-v));
    return s * (1 + v * (1 - s));
}

/* Elementwise, so cut into fixed chunks for the engine's threads: no value
 * depends on which thread computed it. */
enum { ACT_CHUNK = 16384 };

typedef struct {
    zq_mlp_fn fn;
    float *out;
    const float *x, *up;
    size_t n;
} act_job;

static void act_task(void *ctx, size_t t, int worker)
{
    (void)worker;
    const act_job *j = ctx;
    size_t start = t * ACT_CHUNK, end = (t + 1) * ACT_CHUNK < j->n ? (t + 1) * ACT_CHUNK : j->n;
    if (j->fn == ZQ_SILU) {
        zq_kernels_active()->silu(j->out + start, j->x + start, j->up ? j->up + start : NULL, end - start);
        return;
    }
    for (size_t i = start; i < end; i++)
        j->out[i] = j->up ? act_value(j->fn, j->x[i]) * j->up[i] : act_value(j->fn, j->x[i]);
}

void zq_activate(zq_mlp_fn fn, float *out, const float *x, const float *up, size_t n)
{
    act_job j = {fn, out, x, up, n};
    zq_engine_run((n + ACT_CHUNK - 1) / ACT_CHUNK, 0, act_task, &j);
}

void zq_activate_backward(zq_mlp_fn fn, const float *u, const float *gate, const float *dact, float *du, float *dg,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (gate) {
            du[i] = dact[i] * act_value(fn, gate[i]);
            dg[i] = dact[i] * u[i] * act_slope(fn, gate[i]);
        } else {
            du[i] = dact[i] * act_slope(fn, u[i]);
        }
    }
}

void zq_mlp_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws, const float *h,
                    int BT, int T)
{
    size_t n = (size_t)BT * a->inter;
    if (blk->n_experts) {
        zq_moe_forward(a, blk, aq, ws, h, BT, T);
        return;
    }
    zq_linear_forward(&blk->up, aq, ws->aq, h, ws->up, BT, T);
    if (a->gated) {
        zq_linear_forward(&blk->gate, aq, ws->aq, h, ws->gate, BT, T);
        zq_activate(a->act, ws->act, ws->gate, ws->up, n);
    } else {
        zq_activate(a->act, ws->act, ws->up, NULL, n);
    }
    zq_linear_forward(&blk->down, aq, ws->aq, ws->act, ws->mo, BT, T);
}

void zq_mlp_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                     const zq_block_grads *g, const float *h, const float *dmo, float *dh, float dh_beta, int BT, int T)
{
    size_t n = (size_t)BT * a->inter;
    if (blk->n_experts) {
        zq_moe_backward(a, blk, aq, ws, g, dmo, dh, dh_beta, BT, T);
        return;
    }
    zq_linear_backward(&blk->down, &g->down, aq, ws, ws->act, dmo, ws->dact, 0.0f, BT, T);
    zq_activate_backward(a->act, ws->up, a->gated ? ws->gate : NULL, ws->dact, ws->dup, ws->dgate, n);
    zq_linear_backward(&blk->up, &g->up, aq, ws, h, ws->dup, dh, dh_beta, BT, T);
    if (a->gated) zq_linear_backward(&blk->gate, &g->gate, aq, ws, h, ws->dgate, dh, 1.0f, BT, T);
}
