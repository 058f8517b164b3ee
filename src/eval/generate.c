/* Continuing a prompt: the prompt in one pass, then one token at a time
 * against a KV cache; greedy or sampled. */
#include "zquant/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    const zq_arch *a = zq_net_arch(net);
    int total = n_prompt + n_new;
    if (n_prompt < 1) return zq_fail(err, ZQ_ERR_USAGE, "generation needs at least one prompt token");
    if (total > a->max_pos)
        return zq_fail(err, ZQ_ERR_USAGE, "%d tokens exceed the model's context of %d", total, a->max_pos);
    if (!a->causal) return zq_fail(err, ZQ_ERR_USAGE, "'%s': an encoder does not generate", zq_net_path(net));
    zq_run s;
    zq_workspace *ws = zq_workspace_create(a, 1, total);
    size_t kv = (size_t)total * a->n_kv_heads * a->head_dim; /* one layer's cache */
    float *kc = malloc(kv * a->n_layers * sizeof *kc), *vc = malloc(kv * a->n_layers * sizeof *vc);
    zq_status st = ws && kc && vc ? zq_run_init(&s, net, ZQ_AQ_NONE, (size_t)total, err)
                                  : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) s.aq.mode = zq_generate_act_mode(net);
    uint64_t rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    memcpy(out, prompt, (size_t)n_prompt * sizeof *out);
    /* the prompt in one pass, then one token at a time against the cache */
    for (int pos = 0, cur = n_prompt; st == ZQ_OK && cur < total; pos = cur++) {
        int T = cur - pos;
        st = zq_net_embed(net, out + pos, 1, T, pos, s.x, err);
        for (int l = 0; st == ZQ_OK && l < a->n_layers; l++) {
            zq_workspace_set_cache(ws, kc + (size_t)l * kv, vc + (size_t)l * kv, pos);
            st = zq_run_block(&s, l, ws, 1, T, err);
        }
        if (st == ZQ_OK) st = zq_net_head(net, s.x + (size_t)(T - 1) * a->hidden, 1, s.logits, s.scratch, err);
        if (st != ZQ_OK) break;
        int next;
        if (temperature <= 0) {
            next = zq_argmax(s.logits, a->vocab);
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
    }
    free(kc);
    free(vc);
    if (ws) zq_run_free(&s);
    zq_workspace_free(ws);
    return st;
}
