/* A model being run block by block for evaluation or generation: its
 * activation quantization, hidden states and logits. */
#ifndef ZQ_RUN_H
#define ZQ_RUN_H

#include "zquant/net.h"

/* Rows of logits computed at once: bounds memory for large vocabularies. */
#define HEAD_ROWS 64

typedef struct {
    zq_net *net;
    zq_act_quant aq;
    float *x, *logits, *scratch; /* (rows, hidden), (HEAD_ROWS, vocab), (HEAD_ROWS, max(hidden, emb)) */
} zq_run;

zq_status zq_run_init(zq_run *s, zq_net *net, zq_act_mode mode, size_t rows, zq_error *err);
void zq_run_free(zq_run *s);
/* s->x through block `layer` (loaded, then released if the net streams) */
zq_status zq_run_block(zq_run *s, int layer, zq_workspace *ws, int B, int T, zq_error *err);
int zq_argmax(const float *z, int V);

/* Decoding with a KV cache (batch 1): the cache of every layer, sized for
 * total positions. */
typedef struct {
    zq_workspace *ws;
    float *k, *v;
    size_t per_layer; /* floats of one layer's cache */
} zq_run_cache;
zq_status zq_run_cache_init(zq_run_cache *c, const zq_arch *a, int total, zq_error *err);
void zq_run_cache_free(zq_run_cache *c);
/* tokens at positions pos..pos+T-1 through every block against the
 * cache, then the head on the last: s->logits (vocab) */
zq_status zq_run_step(zq_run *s, zq_run_cache *c, const int32_t *tokens, int pos, int T, zq_error *err);

#endif
