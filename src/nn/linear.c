/* A Linear layer, y = act_quant(x) W^T + b, forward and backward. The
 * quantizers pass gradients straight through: the weight gradient uses the
 * input as quantized, the input gradient is that of the quantized input. */
#include <math.h>
#include <string.h>

#include "base/blas.h"
#include "base/tree.h"
#include "nn/nn.h"
#include "nn/packed.h"
#include "nn/workspace.h"

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
    else if (aq->mode == ZQ_AQ_TOKEN_SYM) zq_fake_quant_tokens_sym(scratch, rows, L->in);
    else zq_fake_quant_tensor(scratch, n, aq->absmax[L->id]);
    return scratch;
}

static const float *linear_weights(const zq_linear *L) { return L->weights ? L->weights(L->weights_ctx, L->w) : L->w; }

void zq_linear_forward(const zq_linear *L, const zq_act_quant *aq, float *scratch, const float *x, float *out, int rows,
                       int seq)
{
    if (L->packed && L->quantized && zq_packed_integer(L->packed, aq, L->id)) {
        zq_packed_forward_integer(L->packed, aq, L->id, x, rows, out, scratch);
        return;
    }
    const float *in = quantized_input(L, aq, scratch, x, rows);
    if (aq && aq->observe && L->quantized) aq->observe(aq->observe_ctx, L, in, rows, seq);
    if (L->packed) {
        zq_packed_forward_float(L->packed, in, rows, out);
        return;
    }
    zq_gemm_nt(rows, L->out, L->in, in, L->in, linear_weights(L), L->in, 0.0f, out, L->out, seq);
    if (L->b)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < L->out; c++) out[(size_t)r * L->out + c] += L->b[c];
}

void zq_col_sums(zq_workspace *ws, int slot, const float *x, int rows, int seq, int cols, float *acc)
{
    if (seq <= 0 || seq > rows) seq = rows > 0 ? rows : 1;
    zq_tree_f32 t;
    zq_tree_f32_init(&t, ws->sums + (size_t)slot * ws->sums_per_tree, (size_t)cols);
    for (int r0 = 0; r0 < rows; r0 += seq) {
        float *part = zq_tree_f32_next(&t);
        memset(part, 0, (size_t)cols * sizeof *part);
        for (int r = r0; r < rows && r < r0 + seq; r++)
            for (int c = 0; c < cols; c++) part[c] += x[(size_t)r * cols + c];
        zq_tree_f32_add(&t);
    }
    const float *sum = zq_tree_f32_sum(&t);
    for (int c = 0; c < cols; c++) acc[c] += sum[c];
}

void zq_linear_backward(const zq_linear *L, const zq_linear_grad *g, const zq_act_quant *aq, zq_workspace *ws,
                        const float *x, const float *dy, float *dx, float dx_beta, int rows, int seq)
{
    /* forward: y = xq W^T + b, so dW += dy^T xq, db += colsum(dy), dx = dy W */
    if (g && g->w) {
        const float *xq = quantized_input(L, aq, ws->aq, x, rows);
        zq_gemm_tn(L->out, L->in, rows, dy, L->out, xq, L->in, 1.0f, g->w, L->in, seq, ws->gemm_sums,
                   ws->gemm_sums_len);
    }
    if (g && g->b) zq_col_sums(ws, 0, dy, rows, seq, L->out, g->b);
    if (dx) zq_gemm_nn(rows, L->in, L->out, dy, L->out, linear_weights(L), L->in, dx_beta, dx, L->in, seq);
}
