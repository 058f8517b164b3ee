/* AdamW over a trainee's tensors, as ZeroQuant's LKD runs it. */
#include <math.h>
#include <string.h>

#include "lkd/lkd_impl.h"

/* AdamW: bias-corrected moments, decoupled weight decay */
void lkd_adam_step(trainee *tr, float lr, float wd)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    tr->t++;
    float c1 = 1.0f - powf(b1, (float)tr->t), c2 = 1.0f - powf(b2, (float)tr->t);
    for (int k = 0; k < tr->np; k++) {
        param *p = &tr->p[k];
        for (size_t i = 0; i < p->n; i++) {
            float g = p->grad[i];
            p->m[i] = b1 * p->m[i] + (1 - b1) * g;
            p->v[i] = b2 * p->v[i] + (1 - b2) * g * g;
            /* no decay on biases and norms, as the paper's AdamW */
            p->master[i] -= lr * ((p->m[i] / c1) / (sqrtf(p->v[i] / c2) + eps) + (p->u.vector ? 0 : wd) * p->master[i]);
        }
        memset(p->grad, 0, p->n * sizeof(float));
    }
}
