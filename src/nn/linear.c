/* A Linear layer, y = act_quant(x) W^T + b, forward and backward. The
 * quantizers pass gradients straight through: the weight gradient uses the
 * input as quantized, the input gradient is that of the quantized input. */
#include <math.h>
#include <string.h>

#include "base/blas.h"
#include "nn/nn.h"

/* The input as the Linear sees it: quantized into scratch, or x itself.
 * ZQ_AQ_CALIBRATE sees x as it is and only records its largest |value|. */
static const float *quantized_input(const zq_linear *L, const zq_act_quant *aq, float *scratch, const float *x,
                                    int rows)
{
    size_t n = (size_t)rows * L->in;
    if (!L->quantized || !aq || aq->mode == ZQ_AQ_NONE) return x;
    if (aq->mode == ZQ_AQ_CALIBRATE) {
        float m = aq->absmax[L->id];
        for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
        aq->absmax[L->id] = m;
        return x;
    }
    memcpy(scratch, x, n * sizeof *x);
    if (aq->mode == ZQ_AQ_TOKEN) zq_fake_quant_tokens(scratch, rows, L->in);
    else zq_fake_quant_tensor(scratch, n, aq->absmax[L->id]);
    return scratch;
}

void zq_linear_forward(const zq_linear *L, const zq_act_quant *aq, float *scratch, const float *x, float *out, int rows)
{
    const float *in = quantized_input(L, aq, scratch, x, rows);
    if (aq && aq->observe && L->quantized) aq->observe(aq->observe_ctx, L, in, rows);
    zq_gemm_nt(rows, L->out, L->in, in, L->in, L->w, L->in, 0.0f, out, L->out);
    if (L->b)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < L->out; c++) out[(size_t)r * L->out + c] += L->b[c];
}

void zq_linear_backward(const zq_linear *L, const zq_linear_grad *g, const zq_act_quant *aq, float *scratch,
                        const float *x, const float *dy, float *dx, float dx_beta, int rows)
{
    /* forward: y = xq W^T + b, so dW += dy^T xq, db += colsum(dy), dx = dy W */
    if (g && g->w) {
        const float *xq = quantized_input(L, aq, scratch, x, rows);
        zq_gemm_tn(L->out, L->in, rows, dy, L->out, xq, L->in, 1.0f, g->w, L->in);
    }
    if (g && g->b)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < L->out; c++) g->b[c] += dy[(size_t)r * L->out + c];
    if (dx) zq_gemm_nn(rows, L->in, L->out, dy, L->out, L->w, L->in, dx_beta, dx, L->in);
}
