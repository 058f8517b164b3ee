/* The LKD driver. Activations of every data batch at the current depth are
 * the only state that spans blocks (batches x batch x seq x hidden floats,
 * whatever the number of layers); each block's tuned weights go to a patch
 * file as soon as it is done, so a killed run resumes after its last block,
 * and the final .zq is quantized from the checkpoint with its patches. */
#include "zquant/lkd.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/tree.h"
#include "lkd/lkd_impl.h"
#include "quant/job.h"
#include "base/util.h"
#include "io/atomic.h"
#include "io/source_impl.h"
#include "zquant/arch.h"
#include "zquant/generate.h"
#include "zquant/net.h"
#include "zquant/tokenizer.h"

void zq_lkd_opts_init(zq_lkd_opts *o)
{
    memset(o, 0, sizeof *o);
    zq_quantize_opts_init(&o->q);
    o->steps = 100;
    o->lr = 3e-4f;
    o->lr_cosine = 1;
    o->weight_decay = 0.01f;
    o->batch = 4;
    o->seq_len = 128;
    o->data_batches = 16;
    o->seed = 1;
    o->damp = 0.01f;
    o->clip_lr = 1e-3f;
    /* the best setting measured at a reasonable cost (README, "lkd's
     * defaults"): on the bundled model, W4/8-A8 in groups of 32, KL 0.40x
     * round to nearest's, data-free, against 0.79x for random ids, FP
     * inputs and a constant 1e-4, in 1.3x the time */
    o->generated = 1;
    o->input_quantized = 1;
    o->learn_clip = 1;
}

void zq_lkd_report_free(zq_lkd_report *r)
{
    for (int k = 0; r->layers && k < r->n; k++) free(r->layers[k].curve);
    free(r->layers), r->layers = NULL;
    free(r->discarded), r->discarded = NULL;
}

/* A block number: digits only (strtol would take " 1", "+1" or "-1"). */
static const char *layer_number(const char *p, long *v)
{
    if (*p < '0' || *p > '9') return NULL;
    *v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((*v = *v * 10 + (*p - '0')) > 1000000) return NULL;
    return p;
}

zq_status zq_parse_layers(const char *spec, int n, unsigned char *mask, zq_error *err)
{
    memset(mask, 0, (size_t)n);
    if (!spec || !strcmp(spec, "all")) {
        memset(mask, 1, (size_t)n);
        return ZQ_OK;
    }
    const char *p = spec;
    do { /* N or N-M, separated by commas: at least one */
        long a, b;
        if (!(p = layer_number(p, &a))) return zq_fail(err, ZQ_ERR_USAGE, "'%s': layers are like 0-5,8 or all", spec);
        b = a;
        if (*p == '-' && !(p = layer_number(p + 1, &b))) return zq_fail(err, ZQ_ERR_USAGE, "'%s': bad range", spec);
        if (b < a) return zq_fail(err, ZQ_ERR_USAGE, "'%s': bad range", spec);
        if (b >= n) return zq_fail(err, ZQ_ERR_USAGE, "'%s': the model has layers 0 to %d", spec, n - 1);
        for (long k = a; k <= b; k++) mask[k] = 1;
    } while (*p == ',' && ++p);
    if (*p) return zq_fail(err, ZQ_ERR_USAGE, "'%s': layers are like 0-5,8 or all", spec);
    return ZQ_OK;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- data ------------------------------------------------------------------------ */

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* The BOS id sequences start with: the config's (its language model's), else llama2.c's 1. */
static int32_t bos_id(const zq_arch *a) { return a->bos_id >= 0 ? a->bos_id : a->vocab > 1 ? 1 : 0; }

/* n sequences of T tokens sampled from the FP model itself (temperature 1,
 * from BOS): data-free, yet text-like where random ids are not. The model
 * is opened again with its blocks cached while it fits in memory, as
 * sampling visits every block once per token. */
static zq_status generate_data(const zq_lkd_opts *o, int32_t bos, size_t n, int T, int32_t *ids, zq_error *err)
{
    zq_net *net = NULL;
    ZQ_TRY(zq_net_open(o->q.input, 0, &net, err));
    zq_status st = ZQ_OK;
    for (size_t s = 0; st == ZQ_OK && s < n; s++)
        st = zq_generate(net, &bos, 1, T - 1, 1.0f, o->seed * 1000003u + s + 1, ids + s * (size_t)T, err);
    zq_net_close(net);
    return st;
}

/* nb batches of B x T ids: windows of a token file, sequences the model
 * samples, or uniform random ids (the paper's data-free setting) */
static zq_status make_data(const zq_lkd_opts *o, const zq_arch *a, int32_t bos, int32_t **out, int *nb, zq_error *err)
{
    size_t per = (size_t)o->batch * o->seq_len;
    *nb = o->data_batches > 0 ? o->data_batches : 1;
    if (*nb > o->steps && o->steps > 0) *nb = o->steps;
    int32_t *ids = malloc((size_t)*nb * per * sizeof *ids);
    if (!ids) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (o->data || o->data_ids) {
        int32_t *file = NULL;
        size_t n = o->n_data_ids;
        zq_status st = o->data ? zq_tokens_read(o->data, &file, &n, err) : ZQ_OK;
        if (st == ZQ_OK && !o->data && !(file = malloc(n * sizeof *file + 1))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK && !o->data) memcpy(file, o->data_ids, n * sizeof *file);
        const char *from = o->data ? o->data : "the calibration text";
        if (st == ZQ_OK && n < per) st = zq_fail(err, ZQ_ERR_DATA, "'%s': %zu tokens; one batch needs %zu", from, n, per);
        for (size_t i = 0; st == ZQ_OK && i < n; i++)
            if (file[i] >= a->vocab) st = zq_fail(err, ZQ_ERR_DATA, "'%s': token %zu (id %d) is outside the vocabulary", from, i, file[i]);
        if (st == ZQ_OK) {
            if ((size_t)*nb * per > n) *nb = (int)(n / per); /* what the file holds */
            memcpy(ids, file, (size_t)*nb * per * sizeof *ids);
        }
        free(file);
        if (st != ZQ_OK) free(ids);
        ZQ_TRY(st);
    } else if (o->generated) {
        zq_status st = generate_data(o, bos, (size_t)*nb * o->batch, o->seq_len, ids, err);
        if (st != ZQ_OK) free(ids);
        ZQ_TRY(st);
    } else {
        uint64_t s = o->seed * 0x9e3779b97f4a7c15ull + 1;
        for (size_t i = 0; i < (size_t)*nb * per; i++) ids[i] = (int32_t)(next_rand(&s) % (uint64_t)a->vocab);
    }
    *out = ids;
    return ZQ_OK;
}

/* ---- the run ------------------------------------------------------------------- */

/* The whole batch's mean squared error of a against b (this rank's slice
 * of it): a sum per sequence, the sequences' added as a tree, the ranks'
 * subtrees combined by the same rule (zquant/sum.h), so every rank and a
 * serial run get the same bits. grad (NULL: not wanted): its gradient. */
static double batch_mse(const run *r, const float *a, const float *b, float *grad)
{
    size_t per_seq = r->per / (size_t)r->B;
    double n = (double)r->per * r->ranks, stack[64];
    zq_tree_f64 t;
    zq_tree_f64_init(&t, stack, 1);
    for (int j = 0; j < r->B; j++) {
        double s = 0;
        for (size_t i = (size_t)j * per_seq; i < (size_t)(j + 1) * per_seq; i++) {
            double d = (double)a[i] - b[i];
            s += d * d;
            if (grad) grad[i] = (float)(2.0 * d / n);
        }
        *zq_tree_f64_next(&t) = s;
        zq_tree_f64_add(&t);
    }
    double s = *zq_tree_f64_sum(&t);
    if (r->ranks > 1) r->o->sum_f64(r->o->reduce_ctx, &s, 1);
    return s / n;
}

void zq_lkd_forward(run *r, zq_block *student, int b, const float *x, float *out)
{
    size_t routes = (size_t)b * r->B * r->T * r->a->moe_topk;
    int fixed = r->fp_routes && student->n_experts;
    student->route_sel = fixed ? r->route_sel + routes : NULL;
    student->route_w = fixed ? r->route_w + routes : NULL;
    zq_block_forward(r->a, student, &r->aq, r->ws, x, out, r->B, r->T);
}

/* Batch b of in and of the teacher's outputs, where they lie or read back. */
static zq_status batch_pair(run *r, const zq_batches *in, int b, const float **x, const float **y, zq_error *err)
{
    ZQ_TRY(zq_batch_read(in, b, r->in_buf, x, err));
    return zq_batch_read(&r->y, b, r->y_buf, y, err);
}

/* *loss: the mean loss of the student (fake-quantized as it now is) over every batch */
static zq_status data_loss(run *r, zq_block *student, const zq_batches *in, double *loss, zq_error *err)
{
    double s = 0;
    for (int b = 0; b < r->nb; b++) {
        const float *x, *y;
        ZQ_TRY(batch_pair(r, in, b, &x, &y, err));
        zq_lkd_forward(r, student, b, x, r->out);
        s += batch_mse(r, r->out, y, NULL);
    }
    *loss = s / r->nb;
    return ZQ_OK;
}

static zq_status distill(run *r, trainee *tr, int layer, const zq_batches *in, zq_lkd_layer *rep, zq_error *err)
{
    const zq_lkd_opts *o = r->o;
    for (int k = 0; o->learn_clip && k < tr->np; k++)
        if (!tr->p[k].u.vector && zq_qspec_quantized(&tr->p[k].spec)) ZQ_TRY(zq_lkd_clip_init(&tr->p[k], err));
    ZQ_TRY(zq_lkd_fake_quantize(tr, r->a, err));
    rep->index = layer;
    rep->steps = o->steps;
    ZQ_TRY(data_loss(r, &tr->student, in, &rep->loss_start, err));
    free(rep->curve);
    rep->curve = calloc((size_t)o->steps + 1, sizeof *rep->curve);
    if (!rep->curve) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    double loss = rep->loss_start, t0 = now(); /* the steps alone are timed */
    for (int s = 0; s < o->steps; s++) {
        int b = s % r->nb;
        const float *x, *y;
        ZQ_TRY(batch_pair(r, in, b, &x, &y, err));
        if (s) ZQ_TRY(zq_lkd_fake_quantize(tr, r->a, err));
        zq_lkd_forward(r, &tr->student, b, x, r->out);
        loss = batch_mse(r, r->out, y, r->dout);
        zq_block_backward(r->a, &tr->student, &r->aq, r->ws, x, r->dout, NULL, &tr->g, r->B, r->T);
        if (r->ranks > 1) /* the ranks' subtrees of the batch's gradient sums */
            for (int k = 0; k < tr->np; k++) o->sum_f32(o->reduce_ctx, tr->p[k].grad, tr->p[k].n);
        if (o->learn_clip) ZQ_TRY(zq_lkd_clip_gradients(tr, r->a, err)); /* from the whole batch's gradients */
        /* cosine: from the full rate down to 0 at the last step */
        float f = o->lr_cosine ? 0.5f * (1.0f + cosf((float)M_PI * (float)s / (float)o->steps)) : 1.0f;
        zq_lkd_adam_step(tr, o->lr * f, o->weight_decay, o->clip_lr * f);
        rep->curve[s] = loss;
        if (o->progress) {
            zq_lkd_progress p = {layer, r->a->n_layers, s + 1, o->steps, loss, now() - t0};
            o->progress(o->progress_ctx, &p);
        }
    }
    rep->seconds = now() - t0;
    ZQ_TRY(zq_lkd_fake_quantize(tr, r->a, err));
    for (int k = 0; k < tr->np; k++) /* the trained scales are the block's from now on */
        if (tr->p[k].alpha) ZQ_TRY(zq_lkd_clip_finish(&tr->p[k], err));
    ZQ_TRY(data_loss(r, &tr->student, in, &rep->loss_end, err));
    if (o->layer_done) o->layer_done(o->progress_ctx, rep);
    return ZQ_OK;
}

/* static activation ranges (int8-tensor recipes): the student's inputs,
 * calibrated on the data before each block is tuned */
zq_status zq_lkd_calibrate(run *r, zq_block *student, const zq_batches *in, zq_error *err)
{
    if (r->aq.mode != ZQ_AQ_TENSOR) return ZQ_OK;
    r->aq.mode = ZQ_AQ_CALIBRATE;
    memset(r->aq.absmax, 0, (size_t)r->aq.n_ids * sizeof(float));
    zq_status st = ZQ_OK;
    for (int b = 0; st == ZQ_OK && b < r->nb; b++) {
        const float *x;
        st = zq_batch_read(in, b, r->in_buf, &x, err);
        if (st == ZQ_OK) zq_lkd_forward(r, student, b, x, r->out);
    }
    if (st == ZQ_OK && r->ranks > 1) r->o->max_f32(r->o->reduce_ctx, r->aq.absmax, (size_t)r->aq.n_ids);
    r->aq.mode = ZQ_AQ_TENSOR;
    return st;
}

/* Distils block k (listed, not done) unless, sharing the work directory,
 * another process did it meanwhile: then its patch is read. The block's
 * lock is held throughout. */
/* Block k tuned: GPTQ's start when asked, the data's activation ranges,
 * the distillation steps; reported. */
static zq_status tune(run *r, trainee *tr, int k, const zq_batches *in, zq_lkd_report *rep, zq_error *err)
{
    r->fp_routes = 1; /* a mixture's student routes as its FP block did */
    zq_status st = ZQ_OK;
    if (r->o->init == ZQ_INIT_GPTQ) st = zq_lkd_gptq_block(r, tr, in, err);
    if (st == ZQ_OK && r->o->init == ZQ_INIT_GPTQ && r->o->progress) {
        zq_lkd_progress p = {k, r->a->n_layers, 0, r->o->steps, 0, 0};
        r->o->progress(r->o->progress_ctx, &p);
    }
    if (st == ZQ_OK) st = zq_lkd_fake_quantize(tr, r->a, err); /* the ranges are the quantized student's */
    if (st == ZQ_OK) st = zq_lkd_calibrate(r, &tr->student, in, err);
    zq_lkd_layer *l = &rep->layers[rep->n];
    if (st == ZQ_OK) st = distill(r, tr, k, in, l, err);
    if (st == ZQ_OK) rep->n++;
    else free(l->curve), l->curve = NULL; /* not reported: the report frees only the first n */
    r->fp_routes = 0;
    return st;
}

/* Block k's tuned tensors (and chosen scales) straight into the output. */
static zq_status block_to_job(run *r, trainee *tr, zq_source *src, zq_quantize_job *job, zq_error *err)
{
    zq_source *mem = NULL, *view = NULL;
    ZQ_TRY(zq_lkd_patch_source(tr, r->a, zq_source_path(src), &mem, err));
    ZQ_TRY(zq_source_overlay(src, mem, &view, err)); /* the same tensor indices as src */
    zq_status st = ZQ_OK;
    for (int k = 0; st == ZQ_OK && k < tr->np; k++) {
        const char *name = tr->p[k].u.name;
        size_t i = 0;
        while (i < zq_source_count(src) && strcmp(zq_source_tensor(src, i)->name, name)) i++;
        st = i < zq_source_count(src) ? zq_quantize_job_tensor(job, i, view, i, err)
                                      : zq_fail(err, ZQ_ERR_INTERNAL, "tuned tensor '%s' is not in the model", name);
    }
    zq_source_close(view);
    return st;
}

static zq_status tune_into_job(run *r, trainee *tr, int k, const zq_batches *in, zq_source *src, zq_quantize_job *job,
                               zq_lkd_report *rep, zq_error *err)
{
    ZQ_TRY(tune(r, tr, k, in, rep, err));
    return block_to_job(r, tr, src, job, err);
}

static zq_status distill_or_read(run *r, trainee *tr, workdir *w, int k, const zq_batches *in, unsigned char *done,
                                 zq_lkd_report *rep, zq_error *err)
{
    /* data-parallel ranks are one job: they share every block, unlocked */
    int parallel = r->ranks > 1, fd = parallel ? -1 : zq_lkd_block_lock(w, k, err), ok = 0, damaged = 0;
    if (!parallel && fd < 0) return err->code;
    zq_status st = !parallel && (r->o->resume || r->o->work) ? zq_lkd_block_done(w, k, &ok, &damaged, err) : ZQ_OK;
    if (st == ZQ_OK && ok) {
        st = zq_lkd_read_patch(w, k, tr, r->a, err);
        if (st == ZQ_OK) st = zq_lkd_fake_quantize(tr, r->a, err);
    } else if (st == ZQ_OK) {
        st = tune(r, tr, k, in, rep, err);
        if (st == ZQ_OK && r->o->data_rank == 0) st = zq_lkd_write_patch(w, k, tr, r->a, err);
    }
    if (st == ZQ_OK) done[k] = 1;
    zq_lkd_block_unlock(fd);
    return st;
}

static zq_status layers(run *r, zq_net *net, zq_source *src, const zq_model *model, workdir *w, unsigned char *mask,
                        unsigned char *done, zq_lkd_report *rep, zq_quantize_job *job, zq_error *err)
{
    const zq_arch *a = r->a;
    int last = -1, quantized_in = r->o->input_quantized;
    for (int k = 0; k < a->n_layers; k++)
        if (mask[k]) last = k;
    /* a block not distilled here needs only the stream through it (the
     * quantized one with quantized inputs), and none is needed past the
     * last listed block: --layers 0 of a 7B model runs one block, not 32 */
    for (int k = 0; k <= last; k++) {
        zq_block fp;
        ZQ_TRY(zq_net_block(net, k, &fp, err));
        size_t routes = (size_t)r->B * r->T * a->moe_topk;
        zq_status st = ZQ_OK;
        for (int b = 0; st == ZQ_OK && b < r->nb; b++) { /* the teacher's output (and routing), once per batch */
            const float *x;
            float *y = zq_batch_slot(&r->y, b, r->y_buf);
            st = zq_batch_read(&r->x, b, r->in_buf, &x, err);
            if (st == ZQ_OK) zq_block_forward(a, &fp, NULL, r->ws, x, y, r->B, r->T);
            if (st == ZQ_OK) st = zq_batch_write(&r->y, b, y, err);
            if (st == ZQ_OK && fp.n_experts)
                zq_block_routes(a, r->ws, r->B * r->T, r->route_sel + b * routes, r->route_w + b * routes);
        }
        const zq_batches *in = quantized_in ? &r->xq : &r->x;
        trainee tr;
        int student = st == ZQ_OK && (mask[k] || quantized_in);
        if (student)
            st = zq_lkd_trainee_init(&tr, net, k, &fp, &r->o->q, r->o->train_norms, r->o->steps > 0, src, model, err);
        if (st == ZQ_OK && mask[k] && done[k] && quantized_in) {
            st = zq_lkd_read_patch(w, k, &tr, a, err);
            if (st == ZQ_OK) st = zq_lkd_fake_quantize(&tr, a, err);
        } else if (st == ZQ_OK && mask[k] && !done[k] && job) {
            st = tune_into_job(r, &tr, k, in, src, job, rep, err);
            if (st == ZQ_OK) done[k] = 1;
        } else if (st == ZQ_OK && mask[k] && !done[k]) {
            st = distill_or_read(r, &tr, w, k, in, done, rep, err);
        } else if (st == ZQ_OK && quantized_in && !mask[k]) {
            st = zq_lkd_fake_quantize(&tr, a, err); /* round to nearest */
        }
        if (st == ZQ_OK && quantized_in) /* the next block's input: this one, quantized */
            st = zq_lkd_calibrate(r, &tr.student, &r->xq, err);
        for (int b = 0; st == ZQ_OK && quantized_in && b < r->nb; b++) {
            const float *x;
            st = zq_batch_read(&r->xq, b, r->in_buf, &x, err);
            if (st == ZQ_OK) zq_lkd_forward(r, &tr.student, b, x, r->out);
            if (st == ZQ_OK) st = zq_batch_write(&r->xq, b, r->out, err);
        }
        if (student) zq_lkd_trainee_free(&tr);
        zq_net_release_block(net, k);
        ZQ_TRY(st);
        zq_batches t = r->x; /* the FP stream moves one block down */
        r->x = r->y;
        r->y = t;
    }
    return ZQ_OK;
}

/* Which of the blocks to distil a killed run already did: those whose work
 * files check out; damaged ones are done again, and reported. */
static zq_status resume_state(const workdir *w, const unsigned char *mask, unsigned char *done, zq_lkd_report *rep,
                              int n, zq_error *err)
{
    for (int k = 0; k < n; k++) {
        int ok = 0, damaged = 0;
        if (mask[k]) ZQ_TRY(zq_lkd_block_done(w, k, &ok, &damaged, err));
        done[k] = (unsigned char)ok;
        if (damaged) rep->discarded[rep->n_discarded++] = k;
    }
    return ZQ_OK;
}

static zq_status final_quantize(const zq_lkd_opts *o, workdir *w, const unsigned char *done, int n,
                                zq_lkd_report *rep, zq_error *err)
{
    char **paths = calloc((size_t)n + 1, sizeof *paths);
    size_t np = 0;
    zq_status st = paths ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int k = 0; st == ZQ_OK && k < n; k++)
        if (done[k] && !(paths[np++] = zq_lkd_patch_path(w, k))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_source *src = NULL;
    if (st == ZQ_OK) st = zq_source_open_patched(o->q.input, (const char *const *)paths, np, &src, err);
    if (st == ZQ_OK) st = zq_quantize_source(&o->q, src, &rep->quant, err);
    zq_source_close(src);
    if (st == ZQ_OK && !o->work) zq_lkd_workdir_remove(w, n); /* done: the output has it all */
    for (size_t k = 0; k < np; k++) free(paths[k]);
    free(paths);
    return st;
}

/* Keeps share `share` of `shares` of the listed blocks: the listed ones
 * numbered [share*n/shares, (share+1)*n/shares) in order. Blocks of a
 * transformer cost the same, so equal counts balance the work. */
static void keep_share(unsigned char *mask, int n_layers, int share, int shares)
{
    int listed = 0, at = 0;
    for (int k = 0; k < n_layers; k++) listed += mask[k];
    int lo = (int)((long)share * listed / shares), hi = (int)((long)(share + 1) * listed / shares);
    for (int k = 0; k < n_layers; k++) {
        if (!mask[k]) continue;
        mask[k] = at >= lo && at < hi;
        at++;
    }
}

/* --work DIR -o OUT: the output from the blocks distilled there, every
 * listed one of which must be done; which are not is the error. */
static zq_status assemble(const zq_lkd_opts *o, zq_lkd_report *rep, zq_error *err)
{
    zq_source *src = NULL;
    zq_model model;
    workdir w = {0};
    unsigned char *mask = NULL, *done = NULL;
    int stream, n = 0;
    zq_status st = zq_output_check(o->q.output, o->q.force, &stream, err);
    if (st == ZQ_OK) st = zq_source_open(o->q.input, &src, err);
    if (st == ZQ_OK) st = zq_model_detect(zq_source_config(src), o->q.input, &model, err);
    if (st == ZQ_OK && (n = model.n_layers) <= 0)
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': its config does not say how many blocks it has", o->q.input);
    if (st == ZQ_OK && (!(mask = calloc((size_t)n, 1)) || !(done = calloc((size_t)n, 1))))
        st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_parse_layers(o->layers, n, mask, err);
    if (st == ZQ_OK) st = zq_lkd_workdir_open(&w, o, 0, src, err);
    zq_source_close(src);
    char missing[512] = "";
    size_t at = 0;
    for (int k = 0; st == ZQ_OK && k < n; k++) {
        int ok = 0, damaged = 0;
        if (mask[k]) st = zq_lkd_block_done(&w, k, &ok, &damaged, err);
        done[k] = (unsigned char)ok;
        if (st == ZQ_OK && mask[k] && !ok && at < sizeof missing)
            at += (size_t)snprintf(missing + at, sizeof missing - at, "%s%d%s", at ? ", " : "", k, damaged ? " (damaged)" : "");
    }
    if (st == ZQ_OK && at)
        st = zq_fail(err, ZQ_ERR_USAGE, "'%s': block%s %s not distilled there yet (zquant lkd %s --work %s --layers ...)",
                     o->work, strchr(missing, ',') ? "s" : "", missing, o->q.input, o->work);
    if (st == ZQ_OK) st = final_quantize(o, &w, done, n, rep, err);
    free(mask), free(done);
    zq_lkd_workdir_close(&w);
    return st;
}

/* Where the data's activations go past the data memory: the work
 * directory, else beside the output, on the disk the user writes to
 * (/tmp may be memory); a stream's: $TMPDIR's. *tmp: what to free. */
static const char *spill_dir(const workdir *w, const char *output, int stream, char **tmp)
{
    if (w->dir) return w->dir;
    if (!output || stream) return zq_tmpdir();
    const char *slash = strrchr(output, '/');
    if (!slash) return ".";
    if (slash == output) return "/";
    if ((*tmp = strndup(output, (size_t)(slash - output)))) return *tmp;
    return NULL;
}

/* direct: no work directory; each tuned block goes straight into the
 * output as it is done (GPTQ: nothing to resume, no patch files) */
static zq_status lkd_run(const zq_lkd_opts *o, zq_lkd_report *rep, int direct, zq_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (o->steps < 0 || o->batch < 1 || o->seq_len < 1 || !(o->lr > 0))
        return zq_fail(err, ZQ_ERR_USAGE, "steps, batch, seq-len and lr must be positive");
    if (!o->q.output && !o->work) return zq_fail(err, ZQ_ERR_USAGE, "no output and no work directory");
    if (o->shares > 1 && (!o->work || o->q.output || o->share < 0 || o->share >= o->shares))
        return zq_fail(err, ZQ_ERR_USAGE, "a share of the blocks is distilled into a work directory, without output");
    if (o->data_ranks > 1 && (!o->input_quantized || o->data_rank < 0 || o->data_rank >= o->data_ranks ||
                              !o->sum_f32 || !o->sum_f64 || !o->max_f32))
        return zq_fail(err, ZQ_ERR_USAGE, "data-parallel LKD runs --input quantized, with every rank's sums combined");
    /* each rank's share of a batch must be a subtree of its sums (zquant/sum.h) */
    int share = o->data_ranks > 1 ? o->batch / o->data_ranks : 1;
    if (o->data_ranks > 1 && (o->batch % o->data_ranks || (share & (share - 1))))
        return zq_fail(err, ZQ_ERR_USAGE,
                       "data-parallel LKD splits each batch evenly, a power of two of sequences per process (so that "
                       "the sums are the serial run's): --batch %d does not split over %d processes", o->batch,
                       o->data_ranks);
    struct stat ws, os;
    if (o->work && o->q.output &&
        (!strcmp(o->work, o->q.output) ||
         (stat(o->work, &ws) == 0 && stat(o->q.output, &os) == 0 && ws.st_dev == os.st_dev && ws.st_ino == os.st_ino)))
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': is both the work directory and the output; give the output another name",
                       o->q.output);
    if (o->work && o->q.output) return assemble(o, rep, err);

    if (o->q.threads) zq_engine_set_threads(o->q.threads);
    zq_net *net = NULL;
    zq_source *src = NULL;
    zq_model model;
    run r = {0};
    r.o = o;
    r.x.fd = r.y.fd = r.xq.fd = -1; /* closed at the end, whether opened or not */
    const char *spill = NULL; /* where the data's activations go when they outgrow --data-memory */
    char *spill_tmp = NULL;
    workdir w = {0};
    unsigned char *mask = NULL, *done = NULL;
    int32_t *ids = NULL;
    zq_status st = zq_net_open(o->q.input, 1, &net, err); /* one block in memory at a time */
    if (st == ZQ_OK && zq_net_activation(net)) st = zq_fail(err, ZQ_ERR_USAGE, "'%s': lkd needs the FP checkpoint, not a quantized model", o->q.input);
    if (st == ZQ_OK) st = zq_source_open(o->q.input, &src, err);
    if (st == ZQ_OK) st = zq_model_detect(zq_source_config(src), o->q.input, &model, err);
    int stream = 0;
    if (st == ZQ_OK && o->q.output) st = zq_output_check(o->q.output, o->q.force, &stream, err); /* now, not after the work */
    const zq_arch *a = st == ZQ_OK ? zq_net_arch(net) : NULL;
    if (st == ZQ_OK && a->n_experts && o->data_ranks > 1) /* each rank's experts see other tokens: no tree to share */
        st = zq_fail(err, ZQ_ERR_USAGE, "'%s': data-parallel lkd and gptq of a mixture of experts are not supported "
                     "yet; run it in one process (blocks may still be shared, --share)", o->q.input);
    if (st == ZQ_OK && o->seq_len > a->max_pos)
        st = zq_fail(err, ZQ_ERR_USAGE, "--seq-len %d is longer than the model's %d positions", o->seq_len, a->max_pos);
    if (st == ZQ_OK) {
        r.a = a;
        mask = calloc((size_t)a->n_layers, 1);
        done = calloc((size_t)a->n_layers, 1);
        rep->layers = calloc((size_t)a->n_layers, sizeof *rep->layers);
        rep->discarded = calloc((size_t)a->n_layers, sizeof *rep->discarded);
        if (!mask || !done || !rep->layers || !rep->discarded) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    if (st == ZQ_OK) st = zq_parse_layers(o->layers, a->n_layers, mask, err);
    if (st == ZQ_OK && o->shares > 1) keep_share(mask, a->n_layers, o->share, o->shares);
    zq_quantize_job *job = NULL;
    if (st == ZQ_OK && direct) st = zq_quantize_job_begin(&o->q, src, &job, err);
    if (st == ZQ_OK && !direct) st = zq_lkd_workdir_open(&w, o, stream, src, err);
    if (st == ZQ_OK && (o->resume || o->work)) st = resume_state(&w, mask, done, rep, a->n_layers, err);
    if (st == ZQ_OK) {
        zq_tensor *plan = NULL; /* every tensor planned now: a rule that names none fails before the work */
        st = zq_quantize_plan_source(&o->q, src, &plan, &r.aq.mode, err);
        free(plan);
        r.aq.n_ids = zq_net_linear_ids(net);
        r.aq.absmax = calloc((size_t)r.aq.n_ids + 1, sizeof(float));
        if (!r.aq.absmax) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    if (st == ZQ_OK) st = make_data(o, a, bos_id(a), &ids, &r.nb, err);
    if (st == ZQ_OK) {
        r.ranks = o->data_ranks > 1 ? o->data_ranks : 1;
        r.B = o->batch / r.ranks;
        r.T = o->seq_len;
        r.per = (size_t)r.B * r.T * a->hidden;
        size_t bytes = (o->input_quantized ? 3 : 2) * (size_t)r.nb * r.per * sizeof(float);
        if (bytes > o->q.data_memory && !(spill = spill_dir(&w, o->q.output, stream, &spill_tmp)))
            st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK) st = zq_batches_open(&r.x, r.nb, r.per, spill, err);
        if (st == ZQ_OK) st = zq_batches_open(&r.y, r.nb, r.per, spill, err);
        if (st == ZQ_OK && o->input_quantized) st = zq_batches_open(&r.xq, r.nb, r.per, spill, err);
        r.in_buf = spill ? malloc(r.per * sizeof(float)) : NULL;
        r.y_buf = spill ? malloc(r.per * sizeof(float)) : NULL;
        r.out = malloc(r.per * sizeof(float));
        r.dout = malloc(r.per * sizeof(float));
        r.ws = zq_workspace_create_ex(a, r.B, r.T, o->steps > 0); /* backward's buffers only for steps */
        size_t routes = (size_t)r.nb * r.B * r.T * a->moe_topk;
        r.route_sel = a->n_experts ? malloc(routes * sizeof *r.route_sel) : NULL;
        r.route_w = a->n_experts ? malloc(routes * sizeof *r.route_w) : NULL;
        if (st == ZQ_OK && ((spill && (!r.in_buf || !r.y_buf)) || !r.out || !r.dout || !r.ws ||
                            (a->n_experts && (!r.route_sel || !r.route_w))))
            st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory for %d batches of activations", r.nb);
    }
    for (int b = 0; st == ZQ_OK && b < r.nb; b++) { /* this rank's slice of batch b */
        float *x = zq_batch_slot(&r.x, b, r.in_buf);
        st = zq_net_embed(net, ids + ((size_t)b * o->batch + (size_t)o->data_rank * r.B) * r.T, r.B, r.T, 0, x, err);
        if (st == ZQ_OK) st = zq_batch_write(&r.x, b, x, err);
        if (st == ZQ_OK && o->input_quantized) st = zq_batch_write(&r.xq, b, x, err);
    }
    if (st == ZQ_OK) zq_net_drop_outer(net); /* the data is embedded: blocks alone from here */
    if (st == ZQ_OK) st = layers(&r, net, src, &model, &w, mask, done, rep, job, err);
    int n_layers = a ? a->n_layers : 0;
    zq_net_close(net); /* the quantize pass streams from the files again */
    net = NULL;
    if (job) {
        if (st == ZQ_OK) st = zq_quantize_job_finish(job, &rep->quant, err); /* the rest, round to nearest */
        else zq_quantize_job_abort(job);
    } else if (st == ZQ_OK && o->q.output && o->data_rank == 0) {
        st = final_quantize(o, &w, done, n_layers, rep, err);
    }
    int any_done = 0;
    for (int k = 0; done && k < n_layers; k++) any_done |= done[k];
    if (st != ZQ_OK && !o->work && w.dir && !any_done) zq_lkd_workdir_remove(&w, n_layers); /* nothing to resume */
    zq_batches_close(&r.x), zq_batches_close(&r.y), zq_batches_close(&r.xq);
    free(ids), free(mask), free(done), free(r.aq.absmax), free(r.in_buf), free(r.y_buf), free(r.out), free(r.dout);
    free(spill_tmp);
    free(r.route_sel), free(r.route_w);
    zq_workspace_free(r.ws);
    zq_source_close(src);
    zq_net_close(net);
    zq_lkd_workdir_close(&w);
    return st;
}

/* The run with the recipe's method filled in from o. An encoder does not
 * generate: its data, unless given, is random ids. */
static zq_status lkd_recorded(const zq_lkd_opts *o, zq_lkd_report *rep, int direct, zq_error *err)
{
    zq_lkd_opts with = *o;
    if (with.generated && !with.data && !with.data_ids) {
        zq_source *src;
        zq_arch a;
        zq_error ignore = {0};
        if (zq_source_open(o->q.input, &src, &ignore) == ZQ_OK) {
            if (zq_arch_from_config(zq_source_config(src), o->q.input, &a, &ignore) == ZQ_OK && !a.causal)
                with.generated = 0;
            zq_source_close(src);
        }
    }
    char *method = zq_lkd_recipe_method(&with);
    if (!method) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    with.q.recipe_method = method;
    zq_status st = lkd_run(&with, rep, direct, err);
    free(method);
    return st;
}

zq_status zq_lkd(const zq_lkd_opts *o, zq_lkd_report *rep, zq_error *err) { return lkd_recorded(o, rep, 0, err); }

typedef struct {
    const zq_quantize_opts *q;
} gptq_progress_ctx;

static void gptq_progress(void *ctx, const zq_lkd_progress *p)
{
    const zq_quantize_opts *q = ((gptq_progress_ctx *)ctx)->q;
    q->progress(q->progress_ctx, (uint64_t)p->layer + 1, (uint64_t)p->n_layers, "block");
}

/* GPTQ is the block-wise driver with GPTQ as each block's start and no
 * distillation steps: inputs from the quantized prefix (activations
 * quantized as the recipe says), one calibration sequence a batch. */
zq_status zq_quantize_gptq(const zq_quantize_opts *q, zq_quantize_report *rep, zq_error *err)
{
    if (!!q->calib + !!q->calib_ids + !!q->calib_generated != 1)
        return zq_fail(err, ZQ_ERR_USAGE, "GPTQ needs calibration data: a token file, tokens or generated ones, one of them");
    if (q->calib_samples < 1 || q->seq_len < 2 || !(q->damp > 0) || q->damp > 1)
        return zq_fail(err, ZQ_ERR_USAGE, "GPTQ needs at least one sequence of 2 tokens and a damp in (0, 1]");
    zq_lkd_opts o;
    zq_lkd_opts_init(&o);
    o.q = *q;
    o.q.progress = NULL; /* the final pass is quick next to the blocks */
    o.q.method = ZQ_METHOD_RTN;
    o.steps = 0;
    o.learn_clip = 0;
    o.init = ZQ_INIT_GPTQ;
    o.input_quantized = 1;
    o.batch = 1;
    o.seq_len = q->seq_len;
    o.data_batches = q->calib_samples;
    o.data = q->calib;
    o.data_ids = q->calib_ids;
    o.n_data_ids = q->n_calib_ids;
    o.generated = q->calib_generated;
    o.damp = q->damp;
    o.act_order = q->act_order;
    gptq_progress_ctx ctx = {q};
    if (q->progress) o.progress = gptq_progress, o.progress_ctx = &ctx;
    zq_lkd_report lr = {0};
    zq_status st = lkd_recorded(&o, &lr, 1, err);
    if (st == ZQ_OK) *rep = lr.quant;
    zq_lkd_report_free(&lr); /* a failed run has its report too */
    return st;
}
