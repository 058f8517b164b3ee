/* One block's trainable tensors in LKD: the FP masters Adam updates, their
 * moments, and the fake-quantized copies the student block computes with. */
#include <stdlib.h>
#include <string.h>

#include "lkd/lkd_impl.h"

/* Quantization sees a tensor as the checkpoint stores it ([out, in] for
 * Conv1D too, as quantize transposes it): NeoX's regrouped rows go back to the
 * file's order first. */
zq_status zq_lkd_fake_quantize(trainee *tr, const zq_arch *a, zq_error *err)
{
    for (int k = 0; k < tr->np; k++) {
        param *p = &tr->p[k];
        uint64_t rows = (uint64_t)p->u.rows, cols = (uint64_t)p->u.cols;
        float *tmp = NULL, *q = NULL;
        if (p->u.neox_qkv && (!(tmp = malloc(p->n * sizeof *tmp)) || !(q = malloc(p->n * sizeof *q)))) {
            free(tmp);
            return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        }
        if (tmp) zq_net_tensor_layout(&p->u, a->n_heads, p->u.w, tmp, 1);
        const float *w = tmp ? tmp : p->u.w;
        zq_status st = p->alpha ? zq_lkd_clip_scales(p, w, err) : ZQ_OK;
        const uint16_t *scale = p->alpha ? p->eff : p->scale, *min = p->alpha ? p->eff_min : p->min;
        if (st == ZQ_OK) st = zq_fake_quant_matrix_with(&p->spec, w, rows, cols, scale, min, q ? q : p->fq, err);
        if (st == ZQ_OK && q) zq_net_tensor_layout(&p->u, a->n_heads, q, p->fq, 0);
        free(tmp);
        free(q);
        ZQ_TRY(st);
    }
    return ZQ_OK;
}

zq_status zq_lkd_clip_gradients(trainee *tr, const zq_arch *a, zq_error *err)
{
    for (int k = 0; k < tr->np; k++) {
        param *p = &tr->p[k];
        if (!p->alpha) continue;
        if (!p->u.neox_qkv) {
            zq_lkd_clip_grad(p, p->u.w, p->grad);
            continue;
        }
        float *w = malloc(p->n * sizeof *w), *g = malloc(p->n * sizeof *g);
        if (w && g) {
            zq_net_tensor_layout(&p->u, a->n_heads, p->u.w, w, 1);
            zq_net_tensor_layout(&p->u, a->n_heads, p->grad, g, 1);
            zq_lkd_clip_grad(p, w, g);
        }
        free(w), free(g);
        if (!w || !g) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    return ZQ_OK;
}

void zq_lkd_trainee_free(trainee *tr)
{
    for (int k = 0; k < tr->np; k++) {
        free(tr->p[k].grad), free(tr->p[k].m), free(tr->p[k].v), free(tr->p[k].fq);
        free(tr->p[k].scale), free(tr->p[k].min);
        zq_lkd_clip_free(&tr->p[k]);
    }
    free(tr->p), free(tr->experts), free(tr->expert_grads);
    memset(tr, 0, sizeof *tr);
}

/* The trainable tensors of the block: its Linears, and with vectors its
 * biases and norms; never a mixture's router, whose choices the student
 * takes from the FP block. */
static zq_status trainee_params(trainee *tr, const zq_net_tensor *units, int nu, const zq_block *fp,
                                const zq_quantize_opts *q, int vectors, int train, zq_source *src,
                                const zq_model *model, zq_net_tensor *chosen, zq_error *err)
{
    for (int k = 0; k < nu; k++) {
        if ((units[k].vector && !vectors) || (fp->n_experts && units[k].w == fp->router.w)) continue;
        chosen[tr->np] = units[k];
        param *p = &tr->p[tr->np++];
        p->u = units[k];
        p->n = (size_t)units[k].rows * units[k].cols;
        const zq_tensor_info *info = NULL;
        for (size_t i = 0; i < zq_source_count(src) && !info; i++)
            if (!strcmp(zq_source_tensor(src, i)->name, units[k].name)) info = zq_source_tensor(src, i);
        if (!info) return zq_fail(err, ZQ_ERR_INTERNAL, "tensor '%s' vanished", units[k].name);
        zq_act_mode act;
        ZQ_TRY(zq_quantize_plan(q, model, info, &p->spec, &act, err));
        p->fq = malloc(p->n * sizeof(float));
        if (train) { /* gradient and Adam's moments: three more copies of the block, for steps only */
            p->grad = calloc(p->n, sizeof(float));
            p->m = calloc(p->n, sizeof(float));
            p->v = calloc(p->n, sizeof(float));
        }
        if (!p->fq || (train && (!p->grad || !p->m || !p->v)))
            return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    return ZQ_OK;
}

zq_status zq_lkd_trainee_init(trainee *tr, zq_net *net, int layer, const zq_block *fp, const zq_quantize_opts *q,
                          int vectors, int train, zq_source *src, const zq_model *model, zq_error *err)
{
    memset(tr, 0, sizeof *tr);
    const zq_net_tensor *units;
    int nu = zq_net_block_tensors(net, layer, &units), E = fp->n_experts;
    zq_net_tensor *chosen = malloc((size_t)nu * sizeof *chosen);
    float **fq = malloc((size_t)nu * sizeof *fq), **grads = malloc((size_t)nu * sizeof *grads);
    tr->p = calloc((size_t)nu, sizeof *tr->p);
    tr->experts = calloc(3 * (size_t)E + 1, sizeof *tr->experts);
    tr->expert_grads = calloc(3 * (size_t)E + 1, sizeof *tr->expert_grads);
    zq_status st = chosen && fq && grads && tr->p && tr->experts && tr->expert_grads
                       ? trainee_params(tr, units, nu, fp, q, vectors, train, src, model, chosen, err)
                       : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int k = 0; st == ZQ_OK && k < tr->np; k++) fq[k] = tr->p[k].fq, grads[k] = tr->p[k].grad;
    if (st == ZQ_OK)
        zq_block_rewire(fp, chosen, tr->np, fq, grads, &tr->student, &tr->g, tr->experts, tr->expert_grads);
    free(chosen), free(fq), free(grads);
    ZQ_TRY(st);
    /* the student's Linears with quantized weights quantize their inputs,
     * as the runtime will (an FP checkpoint's block marks none) */
    zq_linear **lin = malloc((ZQ_LINEAR_SLOTS + 3 * (size_t)E) * sizeof *lin);
    if (!lin) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    int nl;
    zq_lkd_block_linears(&tr->student, lin, &nl);
    for (int s = 0; s < nl; s++) {
        int k = zq_lkd_param_of(tr, lin[s]->w);
        lin[s]->quantized = k >= 0 && zq_qspec_quantized(&tr->p[k].spec);
    }
    free(lin);
    return ZQ_OK;
}

void zq_lkd_block_linears(zq_block *b, zq_linear **lin, int *n)
{
    zq_linear *all[ZQ_LINEAR_SLOTS] = {&b->q, &b->k, &b->v, &b->o, &b->up, &b->gate, &b->down};
    memcpy(lin, all, sizeof all);
    *n = ZQ_LINEAR_SLOTS;
    for (int k = 0; k < 3 * b->n_experts; k++) lin[(*n)++] = &b->experts[k];
}

int zq_lkd_param_of(const trainee *tr, const float *w)
{
    for (int k = 0; w && k < tr->np; k++)
        if (!tr->p[k].u.vector && w >= tr->p[k].fq && w < tr->p[k].fq + tr->p[k].n) return k;
    return -1;
}
