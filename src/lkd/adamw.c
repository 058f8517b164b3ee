/* AdamW over a trainee's tensors, as ZeroQuant's LKD runs it. */
#include <math.h>
#include <string.h>

#include "lkd/lkd_impl.h"

static void adamw(float *x, float *g, float *m, float *v, size_t n, float lr, float wd, float c1, float c2)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        x[i] -= lr * ((m[i] / c1) / (sqrtf(v[i] / c2) + eps) + wd * x[i]);
    }
    memset(g, 0, n * sizeof *g);
}

/* AdamW: bias-corrected moments, decoupled weight decay (none on biases,
 * norms and clipping multipliers, as the paper's AdamW spares vectors) */
void zq_lkd_adam_step(trainee *tr, float lr, float wd, float clip_lr)
{
    tr->t++;
    float c1 = 1.0f - powf(0.9f, (float)tr->t), c2 = 1.0f - powf(0.999f, (float)tr->t);
    for (int k = 0; k < tr->np; k++) {
        param *p = &tr->p[k];
        adamw(p->u.w, p->grad, p->m, p->v, p->n, lr, p->u.vector ? 0 : wd, c1, c2);
        if (p->alpha) adamw(p->alpha, p->alpha_grad, p->alpha_m, p->alpha_v, p->ngroups, clip_lr, 0, c1, c2);
    }
}
