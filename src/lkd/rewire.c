/* LKD's student: a block whose weights are other buffers (fake-quantized
 * copies) with gradient slots beside them, the rest shared with the FP
 * block it comes from. */
#include <string.h>

#include "zquant/lkd.h"

/* The buffer among units that holds p, and p's offset in it; -1 if none. */
static int owner(const float *p, const zq_net_tensor *units, int n, size_t *off)
{
    for (int k = 0; p && k < n; k++)
        if (p >= units[k].w && p < units[k].w + (size_t)units[k].rows * units[k].cols) {
            *off = (size_t)(p - units[k].w);
            return k;
        }
    return -1;
}

/* Redirects *p (a weight the block reads) into w_bufs and sets *g to its
 * gradient slot in g_bufs, when units hold it. */
static void rewire_ptr(const float **p, float **g, const zq_net_tensor *units, int n, float *const *w_bufs,
                       float *const *g_bufs)
{
    size_t off;
    int k = owner(*p, units, n, &off);
    *g = NULL;
    if (k < 0) return;
    if (w_bufs) *p = w_bufs[k] + off;
    if (g_bufs) *g = g_bufs[k] + off;
}

static void rewire_linear(zq_linear *l, zq_linear_grad *g, const zq_net_tensor *units, int n, float *const *w_bufs,
                          float *const *g_bufs)
{
    rewire_ptr(&l->w, &g->w, units, n, w_bufs, g_bufs);
    rewire_ptr(&l->b, &g->b, units, n, w_bufs, g_bufs);
}

void zq_block_rewire(const zq_block *fp, const zq_net_tensor *units, int n, float *const *w_bufs,
                     float *const *g_bufs, zq_block *student, zq_block_grads *g, zq_linear *experts,
                     zq_linear_grad *expert_grads)
{
    *student = *fp;
    memset(g, 0, sizeof *g);
    if (fp->n_experts) {
        student->experts = experts;
        g->experts = expert_grads;
        for (int k = 0; k < 3 * fp->n_experts; k++) {
            experts[k] = fp->experts[k];
            rewire_linear(&experts[k], &expert_grads[k], units, n, w_bufs, g_bufs);
        }
    }
    rewire_ptr(&student->norm1_w, &g->norm1_w, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->norm1_b, &g->norm1_b, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->norm2_w, &g->norm2_w, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->norm2_b, &g->norm2_b, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->q_norm_w, &g->q_norm_w, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->k_norm_w, &g->k_norm_w, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->post_norm1_w, &g->post_norm1_w, units, n, w_bufs, g_bufs);
    rewire_ptr(&student->post_norm2_w, &g->post_norm2_w, units, n, w_bufs, g_bufs);
    rewire_linear(&student->q, &g->q, units, n, w_bufs, g_bufs);
    rewire_linear(&student->k, &g->k, units, n, w_bufs, g_bufs);
    rewire_linear(&student->v, &g->v, units, n, w_bufs, g_bufs);
    rewire_linear(&student->o, &g->o, units, n, w_bufs, g_bufs);
    rewire_linear(&student->up, &g->up, units, n, w_bufs, g_bufs);
    rewire_linear(&student->gate, &g->gate, units, n, w_bufs, g_bufs);
    rewire_linear(&student->down, &g->down, units, n, w_bufs, g_bufs);
}
