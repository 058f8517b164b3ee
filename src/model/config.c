/* config.json to the sizes and switches the forward pass needs, read as
 * the architecture's row of the table says. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "zquant/arch.h"

static int num(const cJSON *o, const char *key, double *v)
{
    const cJSON *j = key ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!cJSON_IsNumber(j)) return 0;
    *v = j->valuedouble;
    return 1;
}

static int get_int(const cJSON *o, const char *key, int def)
{
    double v;
    return num(o, key, &v) && v >= 0 && v < 1e9 ? (int)v : def;
}

static double get_num(const cJSON *o, const char *key, double def)
{
    double v;
    return num(o, key, &v) ? v : def;
}

/* A key the row does not name keeps the row's default. */
static int get_flag(const cJSON *o, const char *key, int def)
{
    const cJSON *j = key ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

static const char *get_str(const cJSON *o, const char *key, const char *def)
{
    const cJSON *j = key ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(j) ? j->valuestring : def;
}

static int parse_act(const char *s, zq_mlp_fn *fn)
{
    if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast")) *fn = ZQ_GELU_TANH;
    else if (!strcmp(s, "gelu")) *fn = ZQ_GELU_ERF;
    else if (!strcmp(s, "relu")) *fn = ZQ_RELU;
    else if (!strcmp(s, "silu") || !strcmp(s, "swish")) *fn = ZQ_SILU_GLU;
    else return 0;
    return 1;
}

#define BAD(...) zq_fail(err, ZQ_ERR_FORMAT, __VA_ARGS__)

static zq_status fill(const cJSON *c, const char *mt, const char *origin, zq_arch *a, zq_error *err)
{
    const zq_arch_desc *d = zq_arch_find(mt);
    if (!d)
        return BAD("'%s': model_type '%s' has no forward pass in zquant (gpt2, opt, gpt_neox, gptj, llama, "
                   "mistral, qwen2, bert)", origin, mt);
    a->desc = d;
    a->hidden = get_int(c, d->hidden_key, 0);
    a->n_heads = get_int(c, d->heads_key, 0);
    a->n_layers = get_int(c, d->layers_key, 0);
    a->inter = get_int(c, d->inter_key, d->inter_per_hidden * a->hidden);
    a->max_pos = get_int(c, d->max_pos_key, d->max_pos_default);
    a->norm_eps = (float)get_num(c, d->eps_key, d->eps_default);
    const char *act = get_str(c, d->act_key, d->act_default);
    a->pre_ln = get_flag(c, d->pre_ln_key, (d->flags & ZQ_ARCH_PRE_LN) != 0);
    a->causal = (d->flags & ZQ_ARCH_CAUSAL) != 0;
    a->final_norm = (d->flags & ZQ_ARCH_FINAL_NORM) && a->pre_ln && !get_flag(c, d->no_final_norm_key, 0);
    a->parallel = get_flag(c, d->parallel_key, (d->flags & ZQ_ARCH_PARALLEL) != 0);
    a->shared_norm = (d->flags & ZQ_ARCH_SHARED_NORM) != 0;
    a->rope_interleaved = (d->flags & ZQ_ARCH_ROPE_PAIRS) != 0;
    a->rms_norm = (d->flags & ZQ_ARCH_RMS_NORM) != 0;
    a->token_types = (d->flags & ZQ_ARCH_TOKEN_TYPES) != 0;
    a->mlm_head = (d->flags & ZQ_ARCH_MLM_HEAD) != 0;
    a->pos_offset = d->pos_offset;
    a->rope_theta = (float)get_num(c, d->rope_theta_key, 10000);
    a->n_kv_heads = get_int(c, d->kv_heads_key, a->n_heads);
    a->head_dim = get_int(c, d->head_dim_key, 0);
    a->emb_dim = get_int(c, d->emb_dim_key, a->hidden);
    a->emb_proj = a->emb_dim != a->hidden;
    const cJSON *unsupported = d->unsupported_key ? cJSON_GetObjectItemCaseSensitive(c, d->unsupported_key) : NULL;
    if (unsupported && !cJSON_IsNull(unsupported)) return BAD("'%s': %s is not supported", origin, d->unsupported_key);
    if (!parse_act(act, &a->act)) return BAD("'%s': activation '%s' is not supported", origin, act);
    if (d->flags & ZQ_ARCH_GATED_MLP) {
        if (a->act != ZQ_SILU_GLU) return BAD("'%s': llama-style MLPs need silu", origin);
    } else if (a->act == ZQ_SILU_GLU) {
        return BAD("'%s': silu is only supported in llama-style gated MLPs", origin);
    }
    a->vocab = get_int(c, "vocab_size", 0);
    if (!a->n_kv_heads) a->n_kv_heads = a->n_heads;
    if (a->hidden <= 0 || a->n_heads <= 0 || a->n_layers <= 0 || a->vocab <= 0 || a->inter <= 0)
        return BAD("'%s': config lacks the model's sizes (hidden, heads, layers, vocab, intermediate)", origin);
    if (!a->head_dim) {
        if (a->hidden % a->n_heads) return BAD("'%s': hidden size %d is not a multiple of %d heads", origin, a->hidden, a->n_heads);
        a->head_dim = a->hidden / a->n_heads;
    }
    if (a->n_heads % a->n_kv_heads) return BAD("'%s': %d heads do not share %d key/value heads evenly", origin, a->n_heads, a->n_kv_heads);
    if (!a->emb_dim) a->emb_dim = a->hidden;
    switch (d->rope) {
    case ZQ_ROPE_NONE: break;
    case ZQ_ROPE_FULL: a->rotary_dims = a->head_dim; break;
    case ZQ_ROPE_PCT: a->rotary_dims = (int)(a->head_dim * get_num(c, d->rope_key, d->rope_default)); break;
    case ZQ_ROPE_DIM: {
        const cJSON *rd = cJSON_GetObjectItemCaseSensitive(c, d->rope_key);
        a->rotary_dims = cJSON_IsNumber(rd) ? rd->valueint : a->head_dim;
        break;
    }
    }
    if (a->rotary_dims % 2 || a->rotary_dims > a->head_dim)
        return BAD("'%s': rotary dimensions %d do not fit heads of %d", origin, a->rotary_dims, a->head_dim);
    snprintf(a->model_type, sizeof a->model_type, "%s", mt);
    return ZQ_OK;
}

zq_status zq_arch_from_config(const char *config_json, const char *origin, zq_arch *a, zq_error *err)
{
    memset(a, 0, sizeof *a);
    if (!config_json) return BAD("'%s': no config.json: the forward pass needs the model's sizes", origin);
    cJSON *c = cJSON_Parse(config_json);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return BAD("'%s': config is not a JSON object", origin);
    }
    const char *mt = get_str(c, "model_type", NULL);
    zq_status st = mt ? fill(c, mt, origin, a, err) : BAD("'%s': config has no model_type", origin);
    cJSON_Delete(c);
    return st;
}

void zq_arch_linear_shape(const zq_arch *a, zq_part p, int *out, int *in)
{
    int C = a->hidden, I = a->inter, qd = a->n_heads * a->head_dim, kvd = a->n_kv_heads * a->head_dim;
    switch (p) {
    case ZQ_PART_Q: *out = qd, *in = C; return;
    case ZQ_PART_K: case ZQ_PART_V: *out = kvd, *in = C; return;
    case ZQ_PART_QKV: *out = 3 * qd, *in = C; return;
    case ZQ_PART_O: *out = C, *in = qd; return;
    case ZQ_PART_UP: case ZQ_PART_GATE: *out = I, *in = C; return;
    case ZQ_PART_DOWN: *out = C, *in = I; return;
    default: *out = *in = 0; return;
    }
}
