/* The forward pass against PyTorch references (scripts/gen_engine_fixtures.py,
 * written from Hugging Face's modeling files): logits within 1e-4 of the
 * largest reference logit. The bound: both sides compute in float32, in
 * other orders; a sum of K terms errs by at most K u of its terms' size (u
 * = 2^-24), K at most 64 in these fixtures (3.8e-6), and a logit is about
 * ten such sums deep (two per sublayer, two blocks, the head): 4e-5,
 * within 1e-4 with room for the softmax and norms. */
#include <stdlib.h>
#include <unistd.h>

#include "eval/run.h"
#include "test.h"
#include "zquant/eval.h"
#include "zquant/net.h"
#include "zquant/source.h"
#include "zquant/tokenizer.h"

#define DIR "tests/fixtures/engine/"

static double forward_error(const char *name)
{
    char path[256];
    zq_error err = {0};
    zq_net *net = NULL;
    snprintf(path, sizeof path, DIR "%s", name);
    if (zq_net_open(path, 0, &net, &err) != ZQ_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return INFINITY;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, DIR "%s/tokens.bin", name);
    CHECK(zq_tokens_read(path, &ids, &n, &err) == ZQ_OK);
    const zq_arch *a = zq_net_arch(net);
    int T = (int)n;
    float *x = malloc((size_t)T * a->hidden * 4), *logits = malloc((size_t)T * a->vocab * 4);
    float *scratch = malloc((size_t)T * (a->hidden > a->emb_dim ? a->hidden : a->emb_dim) * 4);
    zq_workspace *ws = zq_workspace_create(a, 1, T);
    CHECK(zq_net_embed(net, ids, 1, T, 0, x, &err) == ZQ_OK);
    for (int l = 0; l < a->n_layers; l++) {
        zq_block blk;
        CHECK(zq_net_block(net, l, &blk, &err) == ZQ_OK);
        zq_block_forward(a, &blk, NULL, ws, x, x, 1, T);
    }
    CHECK(zq_net_head(net, x, T, logits, scratch, &err) == ZQ_OK);
    zq_source *ref = NULL;
    snprintf(path, sizeof path, DIR "%s/logits.safetensors", name);
    CHECK(zq_source_open(path, &ref, &err) == ZQ_OK);
    double worst = INFINITY;
    if (ref) {
        const zq_tensor_info *t = zq_source_tensor(ref, 0);
        float *want = malloc(t->numel * 4);
        CHECK(t->numel == (uint64_t)T * a->vocab);
        CHECK(zq_source_read(ref, 0, 0, t->rows, 0, t->cols, want, &err) == ZQ_OK);
        double big = 0, diff = 0;
        for (uint64_t k = 0; k < t->numel; k++) {
            big = fabs(want[k]) > big ? fabs(want[k]) : big;
            diff = fabs(want[k] - logits[k]) > diff ? fabs(want[k] - logits[k]) : diff;
        }
        worst = diff / big;
        free(want);
        zq_source_close(ref);
    }
    zq_workspace_free(ws);
    free(x), free(logits), free(scratch), free(ids);
    zq_net_close(net);
    return worst;
}

/* The same logits decoded one token at a time through the KV cache, as
 * generate runs (the sliding window counts positions, not cache rows):
 * the largest error against the reference, relative to its largest logit.
 * A fixture whose decoding is not its full forward (longrope's factors
 * switch as the positions pass the pretraining length, the keys cached
 * before keep theirs) has a reference of its own, decode-logits. */
static double decode_error(const char *name)
{
    char path[256];
    zq_error err = {0};
    zq_net *net = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    zq_source *ref = NULL;
    snprintf(path, sizeof path, DIR "%s", name);
    if (zq_net_open(path, 0, &net, &err) != ZQ_OK) return INFINITY;
    snprintf(path, sizeof path, DIR "%s/tokens.bin", name);
    CHECK(zq_tokens_read(path, &ids, &n, &err) == ZQ_OK);
    snprintf(path, sizeof path, DIR "%s/decode-logits.safetensors", name);
    if (access(path, F_OK)) snprintf(path, sizeof path, DIR "%s/logits.safetensors", name);
    CHECK(zq_source_open(path, &ref, &err) == ZQ_OK);
    const zq_arch *a = zq_net_arch(net);
    const zq_tensor_info *t = zq_source_tensor(ref, 0);
    float *want = malloc(t->numel * 4);
    CHECK(t->numel == (uint64_t)n * a->vocab && zq_source_read(ref, 0, 0, t->rows, 0, t->cols, want, &err) == ZQ_OK);
    zq_run s;
    zq_run_cache cache = {0};
    CHECK(zq_run_cache_init(&cache, a, (int)n, &err) == ZQ_OK && zq_run_init(&s, net, ZQ_AQ_NONE, n, &err) == ZQ_OK);
    double big = 0, diff = 0;
    for (uint64_t k = 0; k < t->numel; k++) big = fabs(want[k]) > big ? fabs(want[k]) : big;
    for (int pos = 0; pos < (int)n; pos++) {
        CHECK(zq_run_step(&s, &cache, ids + pos, pos, 1, &err) == ZQ_OK);
        for (int v = 0; v < a->vocab; v++) {
            double d = fabs(want[(size_t)pos * a->vocab + v] - s.logits[v]);
            diff = d > diff ? d : diff;
        }
    }
    zq_run_free(&s);
    zq_run_cache_free(&cache);
    zq_source_close(ref);
    free(want), free(ids);
    zq_net_close(net);
    return diff / big;
}

/* fn's error for fixture `name` within 1e-4 (the bound above) */
#define WITHIN_BOUND_TEST(test, fn, name)                                     \
    TEST(test##_##name)                                                       \
    {                                                                         \
        double e = fn(#name);                                                 \
        if (!(e <= 1e-4)) fprintf(stderr, "  %s: relative error %g\n", #name, e); \
        CHECK(e <= 1e-4);                                                     \
    }
#define ARCH_TEST(name) WITHIN_BOUND_TEST(forward_matches_pytorch, forward_error, name)
/* causal models: token by token through the cache */
#define DECODE_TEST(name) WITHIN_BOUND_TEST(decode_matches_pytorch, decode_error, name)

ARCH_TEST(gpt2)
ARCH_TEST(opt)
ARCH_TEST(gpt_neox)
ARCH_TEST(gptj)
ARCH_TEST(llama)
ARCH_TEST(qwen2)
ARCH_TEST(llama3) /* llama3 rope scaling, tied embeddings */
ARCH_TEST(qwen3)  /* head_dim apart from hidden / heads, q and k norms */
ARCH_TEST(mistral) /* a sliding window of 3 over 12 positions */
ARCH_TEST(gemma2)  /* post norms, (1 + w) norms, soft caps, GeGLU, scaled embeddings, alternating windows */
ARCH_TEST(gemma3_text) /* q/k norms, a local rotary base in sliding layers, linear rope scaling */
ARCH_TEST(phi3)   /* fused q/k/v of grouped-query sizes, fused gate/up, partial rotary */
ARCH_TEST(phi3_longrope) /* longrope's long factors and attention factor */
ARCH_TEST(mixtral) /* top-2 of 4 experts, renormalized */
ARCH_TEST(qwen3_moe) /* q/k norms of an explicit head size, top-2 of 4 experts */
ARCH_TEST(qwen3_moe_dense) /* a dense block between sparse ones, top-3 not renormalized */
ARCH_TEST(bert)
DECODE_TEST(gpt2)
DECODE_TEST(opt)
DECODE_TEST(gpt_neox)
DECODE_TEST(gptj)
DECODE_TEST(llama3)
DECODE_TEST(qwen3)
DECODE_TEST(mistral)
DECODE_TEST(gemma2)
DECODE_TEST(gemma3_text)
DECODE_TEST(phi3)
DECODE_TEST(phi3_longrope) /* short factors up to position 8, long after */
DECODE_TEST(mixtral)
DECODE_TEST(qwen3_moe)
DECODE_TEST(qwen3_moe_dense)

TEST(token_wise_fake_quant_by_hand)
{
    /* row [-1, 0, 0.5, 2]: scale 3/255, zero point round(1/scale) = 85 */
    float x[4] = {-1.0f, 0.0f, 0.5f, 2.0f};
    zq_fake_quant_tokens(x, 1, 4);
    float s = 3.0f / 255.0f;
    CHECK_NEAR(x[0], -85 * s, 1e-6); /* q = -85 + 85 = 0 */
    CHECK(x[1] == 0.0f);             /* zero is exact */
    CHECK_NEAR(x[2], 42 * s, 1e-6);  /* 0.5 / s = 42.5 rounds to even: 42 */
    CHECK_NEAR(x[3], 170 * s, 1e-6); /* q = 255, the top of the range */
    float c[3] = {0.25f, 0.25f, 0.25f};
    zq_fake_quant_tokens(c, 1, 3); /* a constant row stays as it is */
    CHECK(c[0] == 0.25f && c[2] == 0.25f);
}

/* A model larger than the weight budget is run block by block from the
 * mapped file; the numbers must not change. */
TEST(streamed_weights_give_the_same_result)
{
    int32_t *ids = NULL;
    size_t n = 0;
    zq_error err = {0};
    CHECK(zq_tokens_read("tests/fixtures/real/tokens-int64.npy", &ids, &n, &err) == ZQ_OK);
    double nll[2] = {0, 0};
    for (int k = 0; ids && k < 2; k++) {
        zq_net *net = NULL;
        CHECK(zq_net_open("data/models/stories260K", k ? 1 : 0, &net, &err) == ZQ_OK);
        zq_eval_opts o = {.ctx = 128, .batch = 2, .act = ZQ_AQ_NONE};
        zq_eval_result r;
        CHECK(net && zq_eval(net, NULL, ids, n, &o, &r, &err) == ZQ_OK);
        nll[k] = r.nll;
        zq_eval_result_free(&r);
        zq_net_close(net);
    }
    CHECK(nll[0] > 1.0 && nll[0] == nll[1]);
    free(ids);
}
