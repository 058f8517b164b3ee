/* LayerNorm and RMSNorm, forward and backward. Row statistics are summed in
 * double; the forward keeps them (mean, 1/std) for the backward. Gemma's
 * RMSNorm scales by 1 + w: `offset` is added to every weight. */
#include <math.h>
#include <string.h>

#include "base/tree.h"
#include "nn/nn.h"
#include "nn/workspace.h"

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

static void norm_rows(int rms, float offset, float *out, const float *x, const float *w, const float *b, int rows,
                      int C, float eps, zq_norm_stats *keep)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C;
        double mean, rstd_d;
        row_stats(xr, C, eps, rms, &mean, &rstd_d);
        if (keep) keep->mean[r] = mean, keep->rstd[r] = rstd_d;
        float rstd = (float)rstd_d, m = (float)mean;
        if (rms)
            for (int c = 0; c < C; c++) o[c] = xr[c] * rstd * (offset + w[c]);
        else
            for (int c = 0; c < C; c++) o[c] = (xr[c] - m) * rstd * (offset + w[c]) + (b ? b[c] : 0.0f);
    }
}

void zq_layernorm(float *out, const float *x, const float *w, const float *b, int rows, int C, float eps)
{
    norm_rows(0, 0.0f, out, x, w, b, rows, C, eps, NULL);
}

void zq_norm_forward(const zq_arch *a, float *out, const float *x, const float *w, const float *b, int rows,
                     zq_norm_stats *keep)
{
    norm_rows(a->rms_norm, a->norm_offset, out, x, w, b, rows, a->hidden, a->norm_eps, keep);
}

void zq_head_norm_forward(const zq_arch *a, float *out, const float *x, const float *w, int rows, zq_norm_stats *keep)
{
    norm_rows(1, a->norm_offset, out, x, w, NULL, rows, a->head_dim, a->norm_eps, keep);
}

/* One row's input gradient into o (+=); its parameter gradient terms into
 * dw and db (+=, either may be NULL). */
static void norm_row_backward(int rms, float offset, int C, double mean, double rstd, const float *xr, const float *w,
                              const float *g, float *o, float *dw, float *db)
{
    /* forward: y = xhat * (offset + w) + b with xhat = (x - mean) * rstd (mean 0 for RMSNorm) */
    double sum_g = 0, sum_gx = 0; /* of dxhat and dxhat * xhat */
    for (int c = 0; c < C; c++) {
        double xhat = (xr[c] - mean) * rstd, dxhat = (double)g[c] * (offset + w[c]);
        if (dw) dw[c] += (float)(g[c] * xhat);
        if (db) db[c] += g[c];
        sum_g += dxhat;
        sum_gx += dxhat * xhat;
    }
    for (int c = 0; c < C; c++) {
        double xhat = (xr[c] - mean) * rstd, dxhat = (double)g[c] * (offset + w[c]);
        double d = rms ? dxhat - xhat * sum_gx / C : dxhat - sum_g / C - xhat * sum_gx / C;
        o[c] += (float)(rstd * d);
    }
}

/* rows of C values in runs of seq, one sequence each */
static void norm_backward(int rms, float offset, size_t C, const zq_norm_stats *st, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db, int rows, int seq, zq_workspace *ws)
{
    /* the parameter gradients: a sum per sequence, the sequences' as a tree */
    if (seq <= 0 || seq > rows) seq = rows > 0 ? rows : 1;
    zq_tree_f32 tw, tb;
    zq_tree_f32_init(&tw, ws->sums, C);
    zq_tree_f32_init(&tb, ws->sums + ws->sums_per_tree, C);
    for (int r0 = 0; r0 < rows; r0 += seq) {
        float *pw = dw ? zq_tree_f32_next(&tw) : NULL, *pb = db ? zq_tree_f32_next(&tb) : NULL;
        if (pw) memset(pw, 0, C * sizeof *pw);
        if (pb) memset(pb, 0, C * sizeof *pb);
        for (int r = r0; r < rows && r < r0 + seq; r++)
            norm_row_backward(rms, offset, (int)C, st->mean[r], st->rstd[r], x + (size_t)r * C, w, dy + (size_t)r * C,
                              dx + (size_t)r * C, pw, pb);
        if (pw) zq_tree_f32_add(&tw);
        if (pb) zq_tree_f32_add(&tb);
    }
    const float *sw = dw ? zq_tree_f32_sum(&tw) : NULL, *sb = db ? zq_tree_f32_sum(&tb) : NULL;
    for (size_t c = 0; c < C; c++) {
        if (dw) dw[c] += sw[c];
        if (db) db[c] += sb[c];
    }
}

void zq_norm_backward(const zq_arch *a, const zq_norm_stats *st, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, int rows, int seq, zq_workspace *ws)
{
    norm_backward(a->rms_norm, a->norm_offset, (size_t)a->hidden, st, x, w, dy, dx, dw, db, rows, seq, ws);
}

void zq_head_norm_backward(const zq_arch *a, const zq_norm_stats *st, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, int rows, int seq, zq_workspace *ws)
{
    norm_backward(1, a->norm_offset, (size_t)a->head_dim, st, x, w, dy, dx, dw, NULL, rows, seq, ws);
}
