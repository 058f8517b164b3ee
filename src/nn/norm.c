/* LayerNorm and RMSNorm, forward and backward. Row statistics are summed in
 * double; the forward keeps them (mean, 1/std) for the backward. */
#include <math.h>

#include "nn/nn.h"

/* mean (0 when rms) and 1/std of one row of C values */
static void row_stats(const float *x, int C, float eps, int rms, double *mean_out, double *rstd_out)
{
    double mean = 0, var = 0;
    if (rms) {
        for (int c = 0; c < C; c++) var += (double)x[c] * x[c]; /* (x - 0)^2, without the subtraction */
    } else {
        for (int c = 0; c < C; c++) mean += x[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
    }
    *mean_out = mean;
    *rstd_out = 1.0 / sqrt(var / C + eps);
}

static void norm_rows(int rms, float *out, const float *x, const float *w, const float *b, int rows, int C, float eps,
                      zq_norm_stats *keep)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C;
        double mean, rstd_d;
        row_stats(xr, C, eps, rms, &mean, &rstd_d);
        if (keep) keep->mean[r] = mean, keep->rstd[r] = rstd_d;
        float rstd = (float)rstd_d, m = (float)mean;
        if (rms)
            for (int c = 0; c < C; c++) o[c] = xr[c] * rstd * w[c];
        else
            for (int c = 0; c < C; c++) o[c] = (xr[c] - m) * rstd * w[c] + (b ? b[c] : 0.0f);
    }
}

void zq_layernorm(float *out, const float *x, const float *w, const float *b, int rows, int C, float eps)
{
    norm_rows(0, out, x, w, b, rows, C, eps, NULL);
}

void zq_norm_forward(const zq_arch *a, float *out, const float *x, const float *w, const float *b, int rows,
                     zq_norm_stats *keep)
{
    norm_rows(a->rms_norm, out, x, w, b, rows, a->hidden, a->norm_eps, keep);
}

void zq_norm_backward(const zq_arch *a, const zq_norm_stats *st, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, int rows)
{
    /* forward: y = xhat * w + b with xhat = (x - mean) * rstd (mean 0 for RMSNorm) */
    int C = a->hidden;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C, *g = dy + (size_t)r * C;
        float *o = dx + (size_t)r * C;
        double mean = st->mean[r], rstd = st->rstd[r];
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
