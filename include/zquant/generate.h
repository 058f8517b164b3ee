/* Text generation with a model on the CPU: greedy or sampled decoding with a
 * KV cache, the activation quantization a .zq file records emulated. */
#ifndef ZQUANT_GENERATE_H
#define ZQUANT_GENERATE_H

#include <stdint.h>

#include "zquant/error.h"
#include "zquant/net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Continues prompt (n_prompt >= 1 tokens) by n_new tokens into out: greedy
 * when temperature is 0, else sampled with the seed. */
zq_status zq_generate(zq_net *net, const int32_t *prompt, int n_prompt, int n_new, float temperature, uint64_t seed,
                      int32_t *out, zq_error *err);

typedef struct {
    float temperature; /* 0: greedy */
    uint64_t seed;
    int stop_at_eos;   /* stop after the first of the config's eos_token_id ids (it is kept in out) */
    /* each new token as it is chosen (NULL: none) */
    void (*on_token)(void *ctx, int32_t prev, int32_t id);
    void *ctx;
    /* sampling only from the top_k most likely tokens (0: all), and of
     * those the fewest whose probabilities sum to top_p or more (1: all),
     * ties in order of id */
    int top_k;
    float top_p;
} zq_generate_opts;

/* Whether id is one of the config's eos_token_id ids. */
int zq_is_eos(const zq_arch *a, int32_t id);

/* zq_generate with options; *n_out (may be NULL) gets the tokens in out,
 * the prompt's included (fewer than n_prompt + n_new after an EOS). */
zq_status zq_generate_with(zq_net *net, const int32_t *prompt, int n_prompt, int n_new, const zq_generate_opts *o,
                           int32_t *out, int *n_out, zq_error *err);

/* A speed measurement as llama.cpp's llama-bench makes it: one warm-up,
 * then reps repetitions, each the seconds of one forward pass over
 * `prefill` tokens (0: none) from an empty cache, and of `decode`
 * single-token steps from an empty cache (0: none), token ids drawn from
 * the vocabulary. The cache and buffers are made once and reused, as a
 * server's context is. prefill_s, decode_s: reps entries each. */
zq_status zq_bench(zq_net *net, int prefill, int decode, int reps, double *prefill_s, double *decode_s, zq_error *err);

/* The activation quantization generation runs a model with: the file's
 * dynamic (per-token) scheme; none for others (static ranges would need
 * calibration first). */
zq_act_mode zq_generate_act_mode(const zq_net *net);

#ifdef __cplusplus
}
#endif
#endif
