/* Continuing a prompt: the prompt in one pass, then one token at a time
 * against a KV cache; greedy or sampled. */
#include "zquant/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/run.h"

/* xorshift64*: small, seedable, the same everywhere */
static double uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

zq_act_mode zq_generate_act_mode(const zq_net *net)
{
    const zq_activation *act = zq_net_activation(net);
    return act && zq_act_mode_per_token(zq_act_mode_of(act)) ? zq_act_mode_of(act) : ZQ_AQ_NONE;
}

zq_status zq_generate(zq_net *net, const int32_t *prompt, int n_prompt, int n_new, float temperature, uint64_t seed,
                      int32_t *out, zq_error *err)
{
    zq_generate_opts o = {temperature, seed, 0, NULL, NULL, 0, 1.0f};
    return zq_generate_with(net, prompt, n_prompt, n_new, &o, out, NULL, err);
}

static const float *sort_logits; /* for by_logit: qsort has no context */

static int by_logit(const void *x, const void *y)
{
    int32_t i = *(const int32_t *)x, j = *(const int32_t *)y;
    float a = sort_logits[i], b = sort_logits[j];
    return a > b ? -1 : a < b ? 1 : (i > j) - (i < j);
}

/* A token drawn from softmax(z / T) restricted to the top_k most likely
 * and, of those, the fewest reaching probability top_p; order and weights
 * in buffers of V. */
static int32_t sample_top(const float *z, int V, float T, int top_k, float top_p, uint64_t *rng, int32_t *order,
                          double *w)
{
    for (int i = 0; i < V; i++) order[i] = i;
    sort_logits = z;
    qsort(order, (size_t)V, sizeof *order, by_logit);
    int keep = top_k > 0 && top_k < V ? top_k : V;
    double sum = 0;
    for (int k = 0; k < keep; k++) sum += w[k] = exp((z[order[k]] - z[order[0]]) / T);
    if (top_p < 1) {
        double c = 0;
        int k = 0;
        while (k < keep && (k == 0 || c < top_p * sum)) c += w[k++];
        keep = k, sum = c;
    }
    double u = uniform(rng) * sum, c = 0;
    for (int k = 0; k < keep; k++)
        if ((c += w[k]) > u) return order[k];
    return order[keep - 1];
}

int zq_is_eos(const zq_arch *a, int32_t id)
{
    for (int k = 0; k < a->n_eos; k++)
        if (a->eos_ids[k] == id) return 1;
    return 0;
}

zq_status zq_generate_with(zq_net *net, const int32_t *prompt, int n_prompt, int n_new, const zq_generate_opts *o,
                           int32_t *out, int *n_out, zq_error *err)
{
    float temperature = o->temperature;
    uint64_t seed = o->seed;
    if (n_out) *n_out = n_prompt;
    const zq_arch *a = zq_net_arch(net);
    int total = n_prompt + n_new;
    if (n_prompt < 1) return zq_fail(err, ZQ_ERR_USAGE, "generation needs at least one prompt token");
    if (total > a->max_pos)
        return zq_fail(err, ZQ_ERR_USAGE, "%d tokens exceed the model's context of %d", total, a->max_pos);
    if (!a->causal) return zq_fail(err, ZQ_ERR_USAGE, "'%s': an encoder does not generate", zq_net_path(net));
    zq_run s;
    zq_run_cache cache;
    zq_status st = zq_run_cache_init(&cache, a, total, err);
    if (st == ZQ_OK) st = zq_run_init(&s, net, zq_generate_act_mode(net), (size_t)total, err);
    uint64_t rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    int filtered = temperature > 0 && (o->top_k > 0 || o->top_p < 1);
    int32_t *order = filtered ? malloc((size_t)a->vocab * sizeof *order) : NULL;
    double *weight = filtered ? malloc((size_t)a->vocab * sizeof *weight) : NULL;
    if (st == ZQ_OK && filtered && (!order || !weight)) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    memcpy(out, prompt, (size_t)n_prompt * sizeof *out);
    /* the prompt in one pass, then one token at a time against the cache */
    for (int pos = 0, cur = n_prompt; st == ZQ_OK && cur < total; pos = cur++) {
        st = zq_run_step(&s, &cache, out + pos, pos, cur - pos, err);
        if (st != ZQ_OK) break;
        int next;
        if (temperature <= 0) {
            next = zq_argmax(s.logits, a->vocab);
        } else if (o->top_k > 0 || o->top_p < 1) {
            next = sample_top(s.logits, a->vocab, temperature, o->top_k, o->top_p, &rng, order, weight);
        } else {
            double lse = 0, mx = s.logits[zq_argmax(s.logits, a->vocab)];
            for (int i = 0; i < a->vocab; i++) lse += exp((s.logits[i] - mx) / temperature);
            double u = uniform(&rng) * lse, c = 0;
            next = a->vocab - 1;
            for (int i = 0; i < a->vocab; i++) {
                c += exp((s.logits[i] - mx) / temperature);
                if (c > u) { next = i; break; }
            }
        }
        out[cur] = next;
        if (n_out) *n_out = cur + 1;
        if (o->on_token) o->on_token(o->ctx, out[cur - 1], next);
        if (o->stop_at_eos && zq_is_eos(a, next)) break;
    }
    free(order);
    free(weight);
    if (cache.ws) zq_run_free(&s);
    zq_run_cache_free(&cache);
    return st;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One prefill from an empty cache and decode steps from an empty cache. */
static zq_status bench_pass(zq_run *s, zq_run_cache *cache, const int32_t *ids, int prefill, int decode,
                            double *prefill_s, double *decode_s, zq_error *err)
{
    zq_status st = ZQ_OK;
    double t0 = now();
    if (prefill) st = zq_run_step(s, cache, ids, 0, prefill, err);
    *prefill_s = now() - t0;
    t0 = now();
    for (int pos = 0; st == ZQ_OK && pos < decode; pos++) st = zq_run_step(s, cache, ids + pos, pos, 1, err);
    *decode_s = now() - t0;
    return st;
}

zq_status zq_bench(zq_net *net, int prefill, int decode, int reps, double *prefill_s, double *decode_s, zq_error *err)
{
    const zq_arch *a = zq_net_arch(net);
    int total = prefill > decode ? prefill : decode;
    for (int r = 0; r < reps; r++) prefill_s[r] = decode_s[r] = 0;
    if (total < 1) return ZQ_OK;
    if (total > a->max_pos)
        return zq_fail(err, ZQ_ERR_USAGE, "%d tokens exceed the model's context of %d", total, a->max_pos);
    if (!a->causal) return zq_fail(err, ZQ_ERR_USAGE, "'%s': an encoder does not decode", zq_net_path(net));
    int32_t *ids = malloc((size_t)total * sizeof *ids);
    zq_run s;
    zq_run_cache cache = {0};
    zq_status st = ids ? zq_run_cache_init(&cache, a, total, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_run_init(&s, net, zq_generate_act_mode(net), (size_t)total, err);
    double ignore;
    /* the warm-up touches the cache and the buffers the repetitions reuse,
     * as a server keeps its context from one request to the next */
    for (int r = -1; st == ZQ_OK && r < reps; r++) {
        uint64_t rng = (uint64_t)r + 2;
        for (int i = 0; i < total; i++) ids[i] = (int32_t)(uniform(&rng) * a->vocab);
        st = bench_pass(&s, &cache, ids, prefill, decode, r < 0 ? &ignore : &prefill_s[r], r < 0 ? &ignore : &decode_s[r],
                        err);
    }
    if (cache.ws) zq_run_free(&s);
    zq_run_cache_free(&cache);
    free(ids);
    return st;
}
