/* One block's trainable tensors in LKD: the FP masters Adam updates, their
 * moments, and the fake quantization the student block computes with. */
#include <stdlib.h>
#include <string.h>

#include "base/engine.h"
#include "lkd/lkd_impl.h"
#include "zquant/fp16.h"

static int is_matrix(const param *p) { return !p->u.vector; }

/* A matrix's weights in the checkpoint's row order: the master, or (NeoX's
 * regrouped rows) the trainee's room holding them so reordered. */
static const float *checkpoint_order(trainee *tr, const param *p, int heads)
{
    if (!p->u.neox_qkv) return p->u.w;
    zq_net_tensor_layout(&p->u, heads, p->u.w, tr->neox, 1);
    return tr->neox;
}

/* Quantization sees a tensor as the checkpoint stores it ([out, in] for
 * Conv1D too, as quantize transposes it): NeoX's regrouped rows go back to
 * the file's order first. */
zq_status zq_lkd_fake_quantize(trainee *tr, const zq_arch *a, zq_error *err)
{
    tr->made_of = -1; /* the masters changed */
    for (int k = 0; k < tr->np; k++) {
        param *p = &tr->p[k];
        uint64_t rows = (uint64_t)p->u.rows, cols = (uint64_t)p->u.cols;
        if (!is_matrix(p)) {
            ZQ_TRY(zq_fake_quant_matrix_with(&p->spec, p->u.w, rows, cols, NULL, NULL, p->fq, err));
            continue;
        }
        if (!zq_qspec_quantized(&p->spec)) continue;
        if (p->scale) { /* chosen (GPTQ's, trained ones) */
            memcpy(p->eff, p->scale, p->ngroups * sizeof *p->eff);
            if (p->min) memcpy(p->eff_min, p->min, p->ngroups * sizeof *p->eff_min);
            else memset(p->eff_min, 0, p->ngroups * sizeof *p->eff_min);
        } else {
            ZQ_TRY(zq_matrix_group_params(&p->spec, checkpoint_order(tr, p, a->n_heads), rows, cols, p->eff,
                                          p->eff_min, err));
        }
        if (p->alpha) ZQ_TRY(zq_lkd_clip_scales(p, err));
    }
    return ZQ_OK;
}

typedef struct {
    const param *p;
    zq_grid g;
    const float *w;
    float *out;
    uint8_t *codes; /* a group's columns per worker */
    uint64_t rows_per_task;
} make_job;

static void make_task(void *ctx, size_t t, int worker)
{
    const make_job *j = ctx;
    uint64_t r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task < j->g.rows ? r0 + j->rows_per_task : j->g.rows;
    const param *p = j->p;
    if (!zq_qspec_quantized(&p->spec)) { /* a matrix the recipe keeps in FP16 */
        for (size_t i = r0 * j->g.cols; i < r1 * j->g.cols; i++) j->out[i] = zq_f16_to_f32(zq_f32_to_f16(j->w[i]));
        return;
    }
    zq_fake_quant_rows(&p->spec, &j->g, j->w, r0, r1, p->eff, p->eff_min, j->out,
                       j->codes + (size_t)worker * (j->g.group_cols + 1));
}

/* A Linear of the student computes with param k's weights rounded onto
 * its grid: made into tr->made (rows split among the engine's threads,
 * each row its own), unless they are there already. */
static const float *student_weights(void *ctx, const float *w)
{
    trainee *tr = ctx;
    int k = zq_lkd_param_of(tr, w);
    param *p = &tr->p[k];
    if (tr->made_of != k) {
        make_job j = {p, {0}, NULL, NULL, tr->codes, 64};
        zq_grid_init(&j.g, &p->spec, (uint64_t)p->u.rows, (uint64_t)p->u.cols);
        j.w = checkpoint_order(tr, p, tr->heads);
        j.out = p->u.neox_qkv ? tr->neox : tr->made; /* in place, then to the block's order */
        zq_engine_run((size_t)((j.g.rows + 63) / 64), tr->workers, make_task, &j);
        if (p->u.neox_qkv) zq_net_tensor_layout(&p->u, tr->heads, tr->neox, tr->made, 0);
        tr->made_of = k;
    }
    return tr->made + (w - p->u.w);
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
        free(tr->p[k].scale), free(tr->p[k].min), free(tr->p[k].eff), free(tr->p[k].eff_min);
        zq_lkd_clip_free(&tr->p[k]);
    }
    free(tr->p), free(tr->experts), free(tr->expert_grads), free(tr->made), free(tr->neox), free(tr->codes);
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
        zq_grid g;
        zq_grid_init(&g, &p->spec, (uint64_t)p->u.rows, (uint64_t)p->u.cols);
        int grid = is_matrix(p) && zq_qspec_quantized(&p->spec);
        p->ngroups = grid ? (size_t)(g.row_groups * g.col_groups) : 0;
        if (!is_matrix(p)) p->fq = malloc(p->n * sizeof(float));
        if (grid) p->eff = calloc(p->ngroups, sizeof *p->eff), p->eff_min = calloc(p->ngroups, sizeof *p->eff_min);
        if (train) { /* gradient and Adam's moments: three more copies of the block, for steps only */
            p->grad = calloc(p->n, sizeof(float));
            p->m = calloc(p->n, sizeof(float));
            p->v = calloc(p->n, sizeof(float));
        }
        if ((!is_matrix(p) && !p->fq) || (grid && (!p->eff || !p->eff_min)) || (train && (!p->grad || !p->m || !p->v)))
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
    /* a matrix's Linears keep pointing at its master, which they make
     * their weights from; a vector's read its copy */
    for (int k = 0; st == ZQ_OK && k < tr->np; k++)
        fq[k] = is_matrix(&tr->p[k]) ? tr->p[k].u.w : tr->p[k].fq, grads[k] = tr->p[k].grad;
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
    size_t largest = 0, largest_neox = 0, widest = 0;
    for (int k = 0; k < tr->np; k++) {
        param *p = &tr->p[k];
        if (!is_matrix(p)) continue;
        largest = p->n > largest ? p->n : largest;
        if (p->u.neox_qkv) largest_neox = p->n > largest_neox ? p->n : largest_neox;
        widest = (size_t)p->u.cols > widest ? (size_t)p->u.cols : widest;
    }
    for (int s = 0; s < nl; s++) {
        int k = zq_lkd_param_of(tr, lin[s]->w);
        lin[s]->quantized = k >= 0 && zq_qspec_quantized(&tr->p[k].spec);
        if (k >= 0) lin[s]->weights = student_weights, lin[s]->weights_ctx = tr;
    }
    free(lin);
    tr->made_of = -1;
    tr->heads = zq_net_arch(net)->n_heads;
    tr->workers = zq_engine_threads();
    tr->made = malloc((largest ? largest : 1) * sizeof *tr->made);
    tr->neox = largest_neox ? malloc(largest_neox * sizeof *tr->neox) : NULL;
    tr->codes = malloc((size_t)tr->workers * (widest + 1));
    if (!tr->made || (largest_neox && !tr->neox) || !tr->codes) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
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
        if (is_matrix(&tr->p[k]) && w >= tr->p[k].u.w && w < tr->p[k].u.w + tr->p[k].n) return k;
    return -1;
}
