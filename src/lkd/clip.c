/* Learnable clipping for LKD (--learn-clip): every group's scale is a
 * base (round to nearest's from the master, or GPTQ's fixed one) times a
 * trained multiplier, so distillation can trade the clipping of a group's
 * outliers against the resolution of its other weights (as OmniQuant's
 * learnable weight clipping does). The gradient through the scale follows
 * LSQ (Esser et al., 2020) with straight-through rounding: for a weight
 * inside the grid, d w'/d s = q - (w - m)/s; for a clamped one, q. The
 * scale that trains is the FP16 one the file stores. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lkd/lkd_impl.h"
#include "zquant/fp16.h"

zq_status zq_lkd_clip_init(param *p, zq_error *err)
{
    zq_grid g;
    zq_grid_init(&g, &p->spec, (uint64_t)p->u.rows, (uint64_t)p->u.cols);
    size_t n = (size_t)(g.row_groups * g.col_groups);
    p->ngroups = n;
    p->alpha = malloc(n * sizeof *p->alpha);
    p->alpha_grad = calloc(n, sizeof *p->alpha_grad);
    p->alpha_m = calloc(n, sizeof *p->alpha_m);
    p->alpha_v = calloc(n, sizeof *p->alpha_v);
    p->base = malloc(n * sizeof *p->base);
    if (!p->alpha || !p->alpha_grad || !p->alpha_m || !p->alpha_v || !p->base)
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) p->alpha[i] = 1.0f;
    return ZQ_OK;
}

void zq_lkd_clip_free(param *p)
{
    free(p->alpha), free(p->alpha_grad), free(p->alpha_m), free(p->alpha_v), free(p->base);
    p->alpha = p->alpha_grad = p->alpha_m = p->alpha_v = p->base = NULL;
}

zq_status zq_lkd_clip_scales(param *p, zq_error *err)
{
    for (size_t i = 0; i < p->ngroups; i++) {
        p->base[i] = zq_f16_to_f32(p->eff[i]);
        p->eff[i] = zq_f32_to_f16(p->alpha[i] * p->base[i]);
        if (!isfinite(zq_f16_to_f32(p->eff[i]))) return zq_fail(err, ZQ_ERR_DATA, "tensor '%s': a learned scale outgrew FP16", p->u.name);
    }
    return ZQ_OK;
}

void zq_lkd_clip_grad(param *p, const float *w, const float *g)
{
    const zq_qspec *spec = &p->spec;
    zq_grid grid;
    uint64_t cols = (uint64_t)p->u.cols;
    zq_grid_init(&grid, spec, (uint64_t)p->u.rows, cols);
    float qlo, qhi;
    zq_code_range(spec, &qlo, &qhi);
    for (uint64_t gi = 0; gi < grid.row_groups; gi++)
        for (uint64_t gj = 0; gj < grid.col_groups; gj++) {
            zq_group q = zq_grid_group(&grid, gi * grid.group_rows, gj);
            float s = zq_f16_to_f32(p->eff[q.index]);
            if (!(s > 0)) continue; /* an all-zero group has no scale to learn */
            float m = spec->symmetric ? 0.0f : zq_f16_to_f32(p->eff_min[q.index]), inv = 1.0f / s;
            double ds = 0;
            for (uint64_t r = q.row0; r < q.row0 + q.nrows; r++)
                for (uint64_t c = q.col0; c < q.col0 + q.ncols; c++) {
                    float v = (w[r * cols + c] - m) * inv, code = nearbyintf(v);
                    float d = code < qlo ? qlo : code > qhi ? qhi : code - v;
                    ds += (double)g[r * cols + c] * d;
                }
            p->alpha_grad[q.index] += (float)(ds * p->base[q.index]);
        }
}

zq_status zq_lkd_clip_finish(param *p, zq_error *err)
{
    if (!p->scale && !(p->scale = malloc(p->ngroups * sizeof *p->scale))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (!p->min && !(p->min = calloc(p->ngroups, sizeof *p->min))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    memcpy(p->scale, p->eff, p->ngroups * sizeof *p->scale);
    memcpy(p->min, p->eff_min, p->ngroups * sizeof *p->min);
    zq_lkd_clip_free(p);
    return ZQ_OK;
}
