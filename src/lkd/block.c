/* One block's trainable tensors, and the work directory of a run. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomic.h"
#include "lkd/lkd_impl.h"
#include "io/source_impl.h"
#include "io/st_write.h"
#include "base/util.h"

/* ---- one block's trainable tensors -------------------------------------------- */

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

/* ---- the work directory: patches and progress --------------------------------- */

char *lkd_patch_path(const workdir *w, int layer)
{
    char name[64];
    snprintf(name, sizeof name, "block-%d.safetensors", layer);
    return zq_path_join(w->dir, name);
}

/* The tuned weights of one block, in the checkpoint's names and layouts. */
zq_status lkd_write_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err)
{
    zq_st_entry e[32];
    int64_t shapes[32][2];
    for (int k = 0; k < tr->np; k++) {
        const zq_net_tensor *u = &tr->p[k].u;
        shapes[k][0] = u->conv1d ? u->cols : u->rows;
        shapes[k][1] = u->conv1d ? u->rows : u->cols;
        e[k] = (zq_st_entry){u->name, u->vector ? 1 : 2, shapes[k]};
    }
    size_t hlen;
    unsigned char *header = zq_st_header(e, (size_t)tr->np, 4, &hlen);
    char *path = lkd_patch_path(w, layer);
    zq_atomic f;
    zq_status st = header && path ? zq_atomic_open(&f, path, 1, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_atomic_write(&f, header, hlen, err);
    for (int k = 0; st == ZQ_OK && k < tr->np; k++) {
        const param *p = &tr->p[k];
        float *disk = malloc(p->n * sizeof *disk);
        if (!disk) { st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory"); break; }
        zq_net_tensor_layout(&p->u, a->n_heads, p->master, disk, 1);
        st = zq_atomic_write(&f, disk, p->n * sizeof *disk, err);
        free(disk);
    }
    if (st == ZQ_OK) st = zq_atomic_commit(&f, err);
    else if (header && path) zq_atomic_abort(&f);
    free(header);
    free(path);
    return st;
}

/* Reads a block's tuned weights back into its masters (a resumed run). */
zq_status lkd_read_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err)
{
    char *path = lkd_patch_path(w, layer);
    zq_source *src = NULL;
    zq_status st = path ? zq_source_open(path, &src, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int k = 0; st == ZQ_OK && k < tr->np; k++) {
        param *p = &tr->p[k];
        long idx = -1;
        for (size_t i = 0; i < zq_source_count(src); i++)
            if (!strcmp(zq_source_tensor(src, i)->name, p->u.name)) idx = (long)i;
        if (idx < 0) { st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': no tensor '%s'", path, p->u.name); break; }
        float *disk = malloc(p->n * sizeof *disk);
        const zq_tensor_info *t = zq_source_tensor(src, (size_t)idx);
        st = disk ? zq_source_read(src, (size_t)idx, 0, t->rows, 0, t->cols, disk, err)
                  : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK) zq_net_tensor_layout(&p->u, a->n_heads, disk, p->master, 0);
        free(disk);
    }
    zq_source_close(src);
    free(path);
    return st;
}

zq_status lkd_save_state(const workdir *w, const unsigned char *done, int n, zq_error *err)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "signature", w->signature);
    cJSON *arr = cJSON_AddArrayToObject(j, "done");
    for (int k = 0; k < n; k++)
        if (done[k]) cJSON_AddItemToArray(arr, cJSON_CreateNumber(k));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    zq_atomic f;
    zq_status st = text ? zq_atomic_open(&f, w->state, 1, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_atomic_write(&f, text, strlen(text), err);
    if (st == ZQ_OK) st = zq_atomic_commit(&f, err);
    else if (text) zq_atomic_abort(&f);
    free(text);
    return st;
}

/* done[] from a state file whose signature matches; a missing file is a
 * fresh start, a different signature an error. */
zq_status lkd_load_state(const workdir *w, unsigned char *done, int n, zq_error *err)
{
    memset(done, 0, (size_t)n);
    if (access(w->state, F_OK) != 0) return ZQ_OK;
    char *text;
    ZQ_TRY(zq_read_small_file(w->state, 1 << 20, &text, NULL, err));
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(j, "signature"), *arr = cJSON_GetObjectItemCaseSensitive(j, "done");
    zq_status st = ZQ_OK;
    if (!cJSON_IsString(sig) || !cJSON_IsArray(arr)) st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': not an lkd state file", w->state);
    else if (strcmp(sig->valuestring, w->signature) != 0)
        st = zq_fail(err, ZQ_ERR_USAGE, "'%s': made with other options; rerun without --resume to start over", w->state);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) if (st == ZQ_OK && cJSON_IsNumber(it) && it->valueint >= 0 && it->valueint < n) done[it->valueint] = 1;
    cJSON_Delete(j);
    return st;
}

char *lkd_make_signature(const zq_lkd_opts *o)
{
    cJSON *j = cJSON_CreateObject();
    char spec[64];
    zq_qspec_format(&o->q.base, spec, sizeof spec);
    cJSON_AddStringToObject(j, "input", o->q.input);
    cJSON_AddStringToObject(j, "preset", o->q.preset ? o->q.preset : "w8a8");
    cJSON_AddStringToObject(j, "base", spec);
    cJSON_AddStringToObject(j, "act", o->q.act_given ? zq_act_mode_name(o->q.act) : "");
    cJSON *r = cJSON_AddArrayToObject(j, "rules");
    for (size_t k = 0; k < o->q.nrules; k++) {
        cJSON_AddItemToArray(r, cJSON_CreateString(o->q.rules[k].glob));
        cJSON_AddItemToArray(r, cJSON_CreateString(o->q.rules[k].spec));
    }
    for (size_t k = 0; k < o->q.ninclude; k++) cJSON_AddItemToArray(r, cJSON_CreateString(o->q.include[k]));
    for (size_t k = 0; k < o->q.nexclude; k++) cJSON_AddItemToArray(r, cJSON_CreateString(o->q.exclude[k]));
    cJSON_AddStringToObject(j, "layers", o->layers ? o->layers : "all");
    cJSON_AddNumberToObject(j, "steps", o->steps);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "seq_len", o->seq_len);
    cJSON_AddNumberToObject(j, "data_batches", o->data_batches);
    cJSON_AddStringToObject(j, "data", o->data ? o->data : "random");
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddBoolToObject(j, "input_quantized", o->input_quantized);
    cJSON_AddBoolToObject(j, "train_norms", o->train_norms);
    cJSON_AddNumberToObject(j, "threads", o->q.threads);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

