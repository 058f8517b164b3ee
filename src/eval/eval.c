#include "zquant/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows of logits computed at once: bounds memory for large vocabularies. */
#define HEAD_ROWS 64

typedef struct {
    zq_net *net;
    zq_act_quant aq;
    float *x, *logits, *scratch;
} side;

static zq_status side_init(side *s, zq_net *net, zq_act_mode mode, size_t rows, zq_error *err)
{
    const zq_arch *a = zq_net_arch(net);
    memset(s, 0, sizeof *s);
    s->net = net;
    s->aq.mode = mode;
    s->aq.n_ids = zq_net_linear_ids(net);
    s->aq.absmax = calloc((size_t)s->aq.n_ids + 1, sizeof(float));
    size_t wide = (size_t)(a->hidden > a->emb_dim ? a->hidden : a->emb_dim);
    s->x = malloc(rows * a->hidden * sizeof(float));
    s->logits = malloc((size_t)HEAD_ROWS * a->vocab * sizeof(float));
    s->scratch = malloc((size_t)HEAD_ROWS * wide * sizeof(float));
    if (!s->aq.absmax || !s->x || !s->logits || !s->scratch) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    return ZQ_OK;
}

static void side_free(side *s)
{
    free(s->aq.absmax);
    free(s->x);
    free(s->logits);
    free(s->scratch);
}

static zq_status run_block(side *s, int layer, zq_workspace *ws, int B, int T, zq_error *err)
{
    zq_block blk;
    ZQ_TRY(zq_net_block(s->net, layer, &blk, err));
    zq_block_forward(zq_net_arch(s->net), &blk, &s->aq, ws, s->x, s->x, B, T);
    zq_net_release_block(s->net, layer);
    return ZQ_OK;
}

/* log-softmax pieces of one row: max and log-sum-exp */
static double logsumexp(const float *z, int V)
{
    float mx = z[0];
    for (int i = 1; i < V; i++) mx = z[i] > mx ? z[i] : mx;
    double s = 0;
    for (int i = 0; i < V; i++) s += expf(z[i] - mx);
    return mx + log(s);
}

static int argmax(const float *z, int V)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (z[i] > z[best]) best = i;
    return best;
}

typedef struct {
    double nll, ref_nll, kl;
    uint64_t count, agree;
    double *lerr, *lref; /* per layer: sum (x - x_ref)^2, sum x_ref^2 */
} sums;

/* One batch of B windows of T tokens through both models. */
static zq_status run_batch(side *m, side *r, zq_workspace *ws, const int32_t *tok, int B, int T, int per_layer,
                           sums *acc, zq_error *err)
{
    const zq_arch *a = zq_net_arch(m->net);
    size_t n = (size_t)B * T * a->hidden;
    ZQ_TRY(zq_net_embed(m->net, tok, B, T, 0, m->x, err));
    if (r) ZQ_TRY(zq_net_embed(r->net, tok, B, T, 0, r->x, err));
    for (int l = 0; l < a->n_layers; l++) {
        ZQ_TRY(run_block(m, l, ws, B, T, err));
        if (!r) continue;
        ZQ_TRY(run_block(r, l, ws, B, T, err));
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
                acc->agree += argmax(zm, V) == argmax(zr, V);
            }
        }
    }
    return ZQ_OK;
}

/* Static per-tensor baseline: the largest |input| of each quantized Linear
 * over the calibration tokens, weights quantized, activations in FP. */
static zq_status calibrate(side *m, zq_workspace *ws, const int32_t *tok, size_t n, int ctx, int batch, zq_error *err)
{
    const zq_arch *a = zq_net_arch(m->net);
    m->aq.mode = ZQ_AQ_CALIBRATE;
    size_t windows = n / (size_t)ctx;
    for (size_t w = 0; w < windows; w += (size_t)batch) {
        int B = (int)(windows - w < (size_t)batch ? windows - w : (size_t)batch);
        ZQ_TRY(zq_net_embed(m->net, tok + w * ctx, B, ctx, 0, m->x, err));
        for (int l = 0; l < a->n_layers; l++) ZQ_TRY(run_block(m, l, ws, B, ctx, err));
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
    side m = {0}, r = {0};
    zq_workspace *ws = zq_workspace_create(a, batch, ctx);
    sums acc = {0};
    acc.lerr = calloc((size_t)a->n_layers, sizeof(double));
    acc.lref = calloc((size_t)a->n_layers, sizeof(double));
    zq_status st = ws && acc.lerr && acc.lref ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = side_init(&m, net, o->act == ZQ_AQ_TENSOR ? ZQ_AQ_NONE : o->act, (size_t)batch * ctx, err);
    if (st == ZQ_OK && ref) st = side_init(&r, ref, ZQ_AQ_NONE, (size_t)batch * ctx, err);
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
    side_free(&m);
    if (ref) side_free(&r);
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

/* xorshift64*: small, seedable, the same everywhere */
static double uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

zq_status zq_generate(zq_net *net, const int32_t *prompt, int n_prompt, int n_new, float temperature, uint64_t seed,
                      int32_t *out, zq_error *err)
{
    const zq_arch *a = zq_net_arch(net);
    int total = n_prompt + n_new;
    if (n_prompt < 1) return zq_fail(err, ZQ_ERR_USAGE, "generation needs at least one prompt token");
    if (total > a->max_pos)
        return zq_fail(err, ZQ_ERR_USAGE, "%d tokens exceed the model's context of %d", total, a->max_pos);
    if (!a->causal) return zq_fail(err, ZQ_ERR_USAGE, "'%s': an encoder does not generate", zq_net_path(net));
    side s;
    zq_workspace *ws = zq_workspace_create(a, 1, total);
    size_t kv = (size_t)total * a->n_kv_heads * a->head_dim; /* one layer's cache */
    float *kc = malloc(kv * a->n_layers * sizeof *kc), *vc = malloc(kv * a->n_layers * sizeof *vc);
    zq_status st = ws && kc && vc ? side_init(&s, net, ZQ_AQ_NONE, (size_t)total, err)
                                  : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    const zq_activation *act = zq_net_activation(net);
    /* static ranges would need calibration first; generation runs dynamic ones only */
    if (st == ZQ_OK && act && zq_act_mode_of(act) == ZQ_AQ_TOKEN) s.aq.mode = ZQ_AQ_TOKEN;
    uint64_t rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    memcpy(out, prompt, (size_t)n_prompt * sizeof *out);
    /* the prompt in one pass, then one token at a time against the cache */
    for (int pos = 0, cur = n_prompt; st == ZQ_OK && cur < total; pos = cur++) {
        int T = cur - pos;
        st = zq_net_embed(net, out + pos, 1, T, pos, s.x, err);
        for (int l = 0; st == ZQ_OK && l < a->n_layers; l++) {
            zq_workspace_set_cache(ws, kc + (size_t)l * kv, vc + (size_t)l * kv, pos);
            st = run_block(&s, l, ws, 1, T, err);
        }
        if (st == ZQ_OK) st = zq_net_head(net, s.x + (size_t)(T - 1) * a->hidden, 1, s.logits, s.scratch, err);
        if (st != ZQ_OK) break;
        int next;
        if (temperature <= 0) {
            next = argmax(s.logits, a->vocab);
        } else {
            double lse = 0, mx = s.logits[argmax(s.logits, a->vocab)];
            for (int i = 0; i < a->vocab; i++) lse += exp((s.logits[i] - mx) / temperature);
            double u = uniform(&rng) * lse, c = 0;
            next = a->vocab - 1;
            for (int i = 0; i < a->vocab; i++) {
                c += exp((s.logits[i] - mx) / temperature);
                if (c > u) { next = i; break; }
            }
        }
        out[cur] = next;
    }
    free(kc);
    free(vc);
    if (ws) side_free(&s);
    zq_workspace_free(ws);
    return st;
}
