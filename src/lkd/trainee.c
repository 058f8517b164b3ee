/* One block's trainable tensors in LKD: the FP masters Adam updates, their
 * moments, and the fake-quantized copies the student block computes with. */
#include <stdlib.h>
#include <string.h>

#include "lkd/lkd_impl.h"

/* Quantization sees a tensor as the checkpoint stores it ([out, in] for
 * Conv1D too, as quantize transposes it): NeoX's regrouped rows go back to the
 * file's order first. */
zq_status lkd_fake_quantize(trainee *tr, const zq_arch *a, zq_error *err)
{
    for (int k = 0; k < tr->np; k++) {
        param *p = &tr->p[k];
        if (!p->u.neox_qkv) {
            ZQ_TRY(zq_fake_quant_matrix(&p->spec, p->master, (uint64_t)p->u.rows, (uint64_t)p->u.cols, p->fq, err));
            continue;
        }
        float *tmp = malloc(p->n * sizeof *tmp), *q = malloc(p->n * sizeof *q);
        zq_status st = tmp && q ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK) {
            zq_net_tensor_layout(&p->u, a->n_heads, p->master, tmp, 1);
            st = zq_fake_quant_matrix(&p->spec, tmp, (uint64_t)p->u.rows, (uint64_t)p->u.cols, q, err);
            if (st == ZQ_OK) zq_net_tensor_layout(&p->u, a->n_heads, q, p->fq, 0);
        }
        free(tmp);
        free(q);
        ZQ_TRY(st);
    }
    return ZQ_OK;
}

void lkd_trainee_free(trainee *tr)
{
    for (int k = 0; k < tr->np; k++) {
        free(tr->p[k].master), free(tr->p[k].grad), free(tr->p[k].m), free(tr->p[k].v), free(tr->p[k].fq);
    }
    tr->np = 0;
}

zq_status lkd_trainee_init(trainee *tr, zq_net *net, int layer, const zq_block *fp, const zq_quantize_opts *q,
                          int vectors, zq_source *src, const zq_model *model, zq_error *err)
{
    memset(tr, 0, sizeof *tr);
    const zq_net_tensor *units;
    int nu = zq_net_block_tensors(net, layer, &units);
    zq_net_tensor chosen[32];
    for (int k = 0; k < nu; k++) {
        if (units[k].vector && !vectors) continue;
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
        p->master = malloc(p->n * sizeof(float));
        p->grad = calloc(p->n, sizeof(float));
        p->m = calloc(p->n, sizeof(float));
        p->v = calloc(p->n, sizeof(float));
        p->fq = malloc(p->n * sizeof(float));
        if (!p->master || !p->grad || !p->m || !p->v || !p->fq) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        memcpy(p->master, p->u.w, p->n * sizeof(float));
    }
    float *fq[32], *grads[32];
    for (int k = 0; k < tr->np; k++) fq[k] = tr->p[k].fq, grads[k] = tr->p[k].grad;
    zq_block_rewire(fp, chosen, tr->np, fq, grads, &tr->student, &tr->g);
    return ZQ_OK;
}
