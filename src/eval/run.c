/* A model being run block by block (see eval/run.h). */
#include "eval/run.h"

#include <stdlib.h>
#include <string.h>

zq_status zq_run_init(zq_run *s, zq_net *net, zq_act_mode mode, size_t rows, zq_error *err)
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

void zq_run_free(zq_run *s)
{
    free(s->aq.absmax);
    free(s->x);
    free(s->logits);
    free(s->scratch);
}

zq_status zq_run_block(zq_run *s, int layer, zq_workspace *ws, int B, int T, zq_error *err)
{
    zq_block blk;
    ZQ_TRY(zq_net_block(s->net, layer, &blk, err));
    zq_block_forward(zq_net_arch(s->net), &blk, &s->aq, ws, s->x, s->x, B, T);
    zq_net_release_block(s->net, layer);
    return ZQ_OK;
}

int zq_argmax(const float *z, int V)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (z[i] > z[best]) best = i;
    return best;
}

zq_status zq_run_cache_init(zq_run_cache *c, const zq_arch *a, int total, zq_error *err)
{
    c->per_layer = (size_t)total * a->n_kv_heads * a->head_dim;
    c->ws = zq_workspace_create(a, 1, total);
    c->k = malloc(c->per_layer * a->n_layers * sizeof *c->k);
    c->v = malloc(c->per_layer * a->n_layers * sizeof *c->v);
    if (c->ws && c->k && c->v) return ZQ_OK;
    zq_run_cache_free(c);
    return zq_fail(err, ZQ_ERR_NOMEM, "out of memory for a KV cache of %d positions", total);
}

void zq_run_cache_free(zq_run_cache *c)
{
    zq_workspace_free(c->ws);
    free(c->k);
    free(c->v);
    memset(c, 0, sizeof *c);
}

zq_status zq_run_step(zq_run *s, zq_run_cache *c, const int32_t *tokens, int pos, int T, zq_error *err)
{
    const zq_arch *a = zq_net_arch(s->net);
    ZQ_TRY(zq_net_embed(s->net, tokens, 1, T, pos, s->x, err));
    for (int l = 0; l < a->n_layers; l++) {
        zq_workspace_set_cache(c->ws, c->k + (size_t)l * c->per_layer, c->v + (size_t)l * c->per_layer, pos);
        ZQ_TRY(zq_run_block(s, l, c->ws, 1, T, err));
    }
    return zq_net_head(s->net, s->x + (size_t)(T - 1) * a->hidden, 1, s->logits, s->scratch, err);
}
