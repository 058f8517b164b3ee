/* Perplexity, and against an FP reference the KL divergence of the next-token
 * distributions, top-1 agreement and each block's relative output error. */
#include "zquant/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "eval/run.h"
#include "io/atomic.h"

/* log-softmax pieces of one row: max and log-sum-exp */
static double logsumexp(const float *z, int V)
{
    float mx = z[0];
    for (int i = 1; i < V; i++) mx = z[i] > mx ? z[i] : mx;
    double s = 0;
    for (int i = 0; i < V; i++) s += expf(z[i] - mx);
    return mx + log(s);
}


typedef struct {
    double nll, ref_nll, kl;
    uint64_t count, agree;
    double *lerr, *lref; /* per layer: sum (x - x_ref)^2, sum x_ref^2 */
    zq_atomic *logprobs;  /* NULL: not asked for */
    unsigned char *lpbuf; /* one position's, little-endian */
} sums;

static zq_status put_logprobs(sums *acc, const float *z, int V, double lse, zq_error *err)
{
    for (int i = 0; i < V; i++) zq_store_lef32(acc->lpbuf + 4 * (size_t)i, (float)(z[i] - lse));
    return zq_atomic_write(acc->logprobs, acc->lpbuf, 4 * (size_t)V, err);
}

/* One batch of B windows of T tokens through both models. */
static zq_status run_batch(zq_run *m, zq_run *r, zq_workspace *ws, const int32_t *tok, int B, int T, int per_layer,
                           sums *acc, zq_error *err)
{
    const zq_arch *a = zq_net_arch(m->net);
    size_t n = (size_t)B * T * a->hidden;
    ZQ_TRY(zq_net_embed(m->net, tok, B, T, 0, m->x, err));
    if (r) ZQ_TRY(zq_net_embed(r->net, tok, B, T, 0, r->x, err));
    for (int l = 0; l < a->n_layers; l++) {
        ZQ_TRY(zq_run_block(m, l, ws, B, T, err));
        if (!r) continue;
        ZQ_TRY(zq_run_block(r, l, ws, B, T, err));
        if (!per_layer) continue;
        for (size_t i = 0; i < n; i++) {
            double d = (double)m->x[i] - r->x[i];
            acc->lerr[l] += d * d;
            acc->lref[l] += (double)r->x[i] * r->x[i];
        }
    }
    int V = a->vocab, causal = a->causal;
    for (int b = 0; b < B; b++) {
        /* decoders: row t predicts token t+1; encoders: row t its own token */
        int rows = causal ? T - 1 : T;
        for (int t0 = 0; t0 < rows; t0 += HEAD_ROWS) {
            int nr = rows - t0 < HEAD_ROWS ? rows - t0 : HEAD_ROWS;
            size_t off = ((size_t)b * T + t0) * a->hidden;
            ZQ_TRY(zq_net_head(m->net, m->x + off, nr, m->logits, m->scratch, err));
            if (r) ZQ_TRY(zq_net_head(r->net, r->x + off, nr, r->logits, r->scratch, err));
            for (int k = 0; k < nr; k++) {
                int target = tok[(size_t)b * T + t0 + k + (causal ? 1 : 0)];
                const float *zm = m->logits + (size_t)k * V;
                double lse = logsumexp(zm, V);
                acc->nll += lse - zm[target];
                if (acc->logprobs) ZQ_TRY(put_logprobs(acc, zm, V, lse, err));
                acc->count++;
                if (!r) continue;
                const float *zr = r->logits + (size_t)k * V;
                double lser = logsumexp(zr, V), kl = 0;
                acc->ref_nll += lser - zr[target];
                for (int i = 0; i < V; i++) {
                    float lpr = (float)(zr[i] - lser), lpm = (float)(zm[i] - lse);
                    kl += expf(lpr) * (lpr - lpm);
                }
                acc->kl += kl;
                acc->agree += zq_argmax(zm, V) == zq_argmax(zr, V);
            }
        }
    }
    return ZQ_OK;
}

/* Static per-tensor baseline: the largest |input| of each quantized Linear
 * over the calibration tokens, weights quantized, activations in FP. */
static zq_status calibrate(zq_run *m, zq_workspace *ws, const int32_t *tok, size_t n, int ctx, int batch, zq_error *err)
{
    const zq_arch *a = zq_net_arch(m->net);
    m->aq.mode = ZQ_AQ_CALIBRATE;
    size_t windows = n / (size_t)ctx;
    for (size_t w = 0; w < windows; w += (size_t)batch) {
        int B = (int)(windows - w < (size_t)batch ? windows - w : (size_t)batch);
        ZQ_TRY(zq_net_embed(m->net, tok + w * ctx, B, ctx, 0, m->x, err));
        for (int l = 0; l < a->n_layers; l++) ZQ_TRY(zq_run_block(m, l, ws, B, ctx, err));
    }
    m->aq.mode = ZQ_AQ_TENSOR;
    return ZQ_OK;
}

zq_status zq_eval(zq_net *net, zq_net *ref, const int32_t *tokens, size_t n, const zq_eval_opts *o,
                  zq_eval_result *res, zq_error *err)
{
    memset(res, 0, sizeof *res);
    const zq_arch *a = zq_net_arch(net);
    if (ref) {
        const zq_arch *b = zq_net_arch(ref);
        if (a->desc != b->desc || a->hidden != b->hidden || a->n_layers != b->n_layers || a->vocab != b->vocab ||
            a->n_heads != b->n_heads || a->inter != b->inter)
            return zq_fail(err, ZQ_ERR_USAGE, "'%s' and '%s': the models' configs do not match", zq_net_path(net),
                           zq_net_path(ref));
    }
    int ctx = o->ctx, batch = o->batch > 0 ? o->batch : 1;
    if (ctx < 2) return zq_fail(err, ZQ_ERR_USAGE, "a context of %d tokens predicts nothing", ctx);
    if (ctx > a->max_pos)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': a context of %d tokens is longer than the model's %d", zq_net_path(net),
                       ctx, a->max_pos);
    if (n < 2) return zq_fail(err, ZQ_ERR_USAGE, "%zu tokens: nothing to predict", n);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= a->vocab)
            return zq_fail(err, ZQ_ERR_DATA, "token %zu: id %d is outside the vocabulary (0..%d)", i, tokens[i], a->vocab - 1);
    zq_run m = {0}, r = {0};
    zq_workspace *ws = zq_workspace_create(a, batch, ctx);
    sums acc = {0};
    acc.lerr = calloc((size_t)a->n_layers, sizeof(double));
    acc.lref = calloc((size_t)a->n_layers, sizeof(double));
    zq_atomic lp;
    zq_status st = ws && acc.lerr && acc.lref ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK && o->logprobs_path) {
        acc.lpbuf = malloc(4 * (size_t)a->vocab);
        st = acc.lpbuf ? zq_atomic_open(&lp, o->logprobs_path, o->logprobs_force, err)
                       : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK) acc.logprobs = &lp;
    }
    if (st == ZQ_OK) st = zq_run_init(&m, net, o->act == ZQ_AQ_TENSOR ? ZQ_AQ_NONE : o->act, (size_t)batch * ctx, err);
    if (st == ZQ_OK && ref) st = zq_run_init(&r, ref, ZQ_AQ_NONE, (size_t)batch * ctx, err);
    if (st == ZQ_OK && o->act == ZQ_AQ_TENSOR)
        st = o->calib ? calibrate(&m, ws, o->calib, o->ncalib, ctx, batch, err)
                      : calibrate(&m, ws, tokens, n, ctx, batch, err);
    size_t full = n / (size_t)ctx, tail = n % (size_t)ctx;
    uint64_t total = full + (tail >= 2);
    for (size_t w = 0; st == ZQ_OK && w < full; w += (size_t)batch) {
        int B = (int)(full - w < (size_t)batch ? full - w : (size_t)batch);
        st = run_batch(&m, ref ? &r : NULL, ws, tokens + w * ctx, B, ctx, o->per_layer, &acc, err);
        if (o->progress) o->progress(o->progress_ctx, w + (size_t)B, total, "windows");
    }
    if (st == ZQ_OK && tail >= 2) /* the short last window */
        st = run_batch(&m, ref ? &r : NULL, ws, tokens + full * ctx, 1, (int)tail, o->per_layer, &acc, err);
    if (st == ZQ_OK) {
        res->tokens = acc.count;
        res->nll = acc.nll / (double)acc.count;
        if (ref) {
            res->ref_nll = acc.ref_nll / (double)acc.count;
            res->kl = acc.kl / (double)acc.count;
            res->top1 = (double)acc.agree / (double)acc.count;
        }
        if (ref && o->per_layer) {
            res->n_layers = a->n_layers;
            res->layer_rel_err = malloc((size_t)a->n_layers * sizeof(double));
            for (int l = 0; res->layer_rel_err && l < a->n_layers; l++)
                res->layer_rel_err[l] = acc.lref[l] > 0 ? sqrt(acc.lerr[l] / acc.lref[l]) : 0;
        }
    }
    if (acc.logprobs && st == ZQ_OK) st = zq_atomic_commit(&lp, err);
    else if (acc.logprobs) zq_atomic_abort(&lp);
    free(acc.lpbuf);
    zq_run_free(&m);
    if (ref) zq_run_free(&r);
    free(acc.lerr);
    free(acc.lref);
    zq_workspace_free(ws);
    return st;
}

void zq_eval_result_free(zq_eval_result *res)
{
    free(res->layer_rel_err);
    res->layer_rel_err = NULL;
}
