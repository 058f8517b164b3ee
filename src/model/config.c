/* config.json to the sizes and switches the forward pass needs, read as
 * the architecture's row of the table says. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zquant/arch.h"

/* Limits on every size a config may give: far above any real model, low
 * enough that the products the engine forms (widths times heads, rows times
 * columns) cannot overflow. */
#define MAX_WIDTH (1 << 20)  /* hidden, intermediate, embedding widths */
#define MAX_HEADS (1 << 14)
#define MAX_HEAD_DIM (1 << 16)
#define MAX_ATTENTION (1 << 22) /* heads x head_dim, and 3 of them fused */
#define MAX_LAYERS 100000
#define MAX_COUNT (1 << 24)  /* vocabulary, positions */

/* Reads config.json's numbers, each checked as it is read: a key that is
 * absent (or null) takes its default, any other value must be in range or
 * the first such key is the error. */
typedef struct {
    const cJSON *c;
    const char *origin;
    zq_error *err;
    zq_status st;
} reader;

static const cJSON *item(reader *r, const char *key)
{
    const cJSON *j = key ? cJSON_GetObjectItemCaseSensitive(r->c, key) : NULL;
    return cJSON_IsNull(j) ? NULL : j;
}

static void bad_key(reader *r, const char *key, const cJSON *j, const char *must)
{
    char *shown = cJSON_PrintUnformatted(j);
    if (r->st == ZQ_OK)
        r->st = zq_fail(r->err, ZQ_ERR_FORMAT, "'%s': config key '%s' is %.40s: it must be %s", r->origin, key,
                        shown ? shown : "?", must);
    free(shown);
}

static int get_int(reader *r, const char *key, int def, int lo, int hi)
{
    const cJSON *j = item(r, key);
    if (!j) return def;
    double v = cJSON_IsNumber(j) ? j->valuedouble : -1e300;
    if (!(v >= lo && v <= hi) || v != (double)(long long)v) {
        char must[96];
        snprintf(must, sizeof must, "a whole number from %d to %d", lo, hi);
        bad_key(r, key, j, must);
        return def;
    }
    return (int)v;
}

/* A special token's id or ids (a number, or a list of numbers as Llama 3
 * writes eos_token_id): up to max of them inside the vocabulary; a value
 * that is neither is no special token (generation then runs without it). */
static int token_ids(reader *r, const char *key, int vocab, int *out, int max)
{
    const cJSON *j = item(r, key), *e;
    int n = 0;
    if (cJSON_IsNumber(j) && j->valuedouble >= 0 && j->valuedouble < vocab) out[n++] = (int)j->valuedouble;
    if (cJSON_IsArray(j))
        cJSON_ArrayForEach(e, j) if (n < max && cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble < vocab)
            out[n++] = (int)e->valuedouble;
    return n;
}

#define BAD(...) zq_fail(err, ZQ_ERR_FORMAT, __VA_ARGS__)

/* LongRoPE as Hugging Face's _compute_longrope_parameters reads it: the
 * pretraining length from the config (Phi-3 keeps it outside rope_scaling)
 * or rope_scaling, factor given or max_position_embeddings over it, the
 * attention factor given or sqrt(1 + ln factor / ln original). The factors'
 * count is checked against the rotary dimensions once they are known. */
static zq_status longrope(reader *r, const cJSON *s, const zq_arch_desc *d, zq_arch *a, const char *origin,
                          zq_error *err)
{
    const char *key = d->rope_scaling_key;
    const cJSON *lists[2] = {cJSON_GetObjectItemCaseSensitive(s, "short_factor"),
                             cJSON_GetObjectItemCaseSensitive(s, "long_factor")};
    float *into[2] = {a->rope_short, a->rope_long};
    int n[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        const cJSON *e;
        if (!cJSON_IsArray(lists[k]))
            return BAD("'%s': %s.%s must be a list of numbers", origin, key, k ? "long_factor" : "short_factor");
        cJSON_ArrayForEach(e, lists[k]) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble > 0 && e->valuedouble < 1e9) || n[k] == ZQ_MAX_ROPE_PAIRS)
                return BAD("'%s': %s.%s[%d] is not a positive number zquant takes", origin, key,
                           k ? "long_factor" : "short_factor", n[k]);
            into[k][n[k]++] = (float)e->valuedouble;
        }
    }
    if (n[0] != n[1] || !n[0]) return BAD("'%s': %s: short_factor and long_factor differ in length", origin, key);
    const cJSON *inner = cJSON_GetObjectItemCaseSensitive(s, "original_max_position_embeddings");
    int orig = get_int(r, "original_max_position_embeddings", 0, 1, MAX_COUNT);
    ZQ_TRY(r->st);
    if (!orig && cJSON_IsNumber(inner) && inner->valuedouble >= 1 && inner->valuedouble <= MAX_COUNT)
        orig = (int)inner->valuedouble;
    if (!orig) return BAD("'%s': longrope needs original_max_position_embeddings", origin);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "factor");
    const cJSON *af = cJSON_GetObjectItemCaseSensitive(s, "attention_factor");
    double implied = (double)a->max_pos / orig, factor = cJSON_IsNumber(f) ? f->valuedouble : implied;
    /* transformers 4 took the implied factor over a given one, 5 the given one */
    if (fabs(factor - implied) > 1e-9 * implied)
        return BAD("'%s': %s.factor %g is not max_position_embeddings / original_max_position_embeddings (%g), and "
                   "transformers' versions take different ones", origin, key, factor, implied);
    if (af && !(cJSON_IsNumber(af) && af->valuedouble > 0 && af->valuedouble < 1e9))
        return BAD("'%s': %s.attention_factor must be a positive number", origin, key);
    a->rope_attn_factor = af ? (float)af->valuedouble
                         : factor <= 1 ? 1.0f : (float)sqrt(1 + log(factor) / log((double)orig));
    a->rope_longrope = n[0];
    a->rope_original_max_pos = orig;
    return ZQ_OK;
}

/* What rope_scaling asks for: nothing ("default" or null), Llama 3's
 * frequency scaling, or a kind zquant does not run, refused with the key
 * and value named (never run approximately). */
static zq_status rope_scaling(reader *r, const zq_arch_desc *d, zq_arch *a, const char *origin, zq_error *err)
{
    const cJSON *s = d->rope_scaling_key ? item(r, d->rope_scaling_key) : NULL;
    if (!s) return ZQ_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "rope_type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(s, "type"); /* the older spelling */
    if (!cJSON_IsObject(s) || !cJSON_IsString(type))
        return BAD("'%s': %s must be an object with a rope_type", origin, d->rope_scaling_key);
    if (!strcmp(type->valuestring, "default")) return ZQ_OK;
    if (!strcmp(type->valuestring, "linear")) { /* every frequency divided by factor */
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "factor");
        if (!cJSON_IsNumber(f) || !(f->valuedouble >= 1 && f->valuedouble < 1e9))
            return BAD("'%s': %s.factor must be a number of at least 1 for rope_type linear", origin, d->rope_scaling_key);
        a->rope_linear = (float)f->valuedouble;
        return ZQ_OK;
    }
    if (!strcmp(type->valuestring, "longrope") || !strcmp(type->valuestring, "su"))
        return longrope(r, s, d, a, origin, err);
    if (strcmp(type->valuestring, "llama3"))
        return BAD("'%s': %s.rope_type '%s' is not implemented (linear, llama3 and longrope are)", origin,
                   d->rope_scaling_key, type->valuestring);
    static const char *const keys[] = {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"};
    double v[4];
    for (int k = 0; k < 4; k++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(s, keys[k]);
        v[k] = cJSON_IsNumber(j) ? j->valuedouble : NAN;
        if (!(v[k] > 0 && v[k] < 1e9))
            return BAD("'%s': %s.%s must be a positive number for rope_type llama3", origin, d->rope_scaling_key, keys[k]);
    }
    if (!(v[2] > v[1])) return BAD("'%s': %s.high_freq_factor must exceed low_freq_factor", origin, d->rope_scaling_key);
    a->rope_factor = (float)v[0];
    a->rope_low_freq = (float)v[1];
    a->rope_high_freq = (float)v[2];
    a->rope_original_max_pos = (int)v[3];
    return ZQ_OK;
}

/* lo_open: the value must be above lo, not equal to it */
static double get_num(reader *r, const char *key, double def, double lo, double hi, int lo_open)
{
    const cJSON *j = item(r, key);
    if (!j) return def;
    double v = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(v >= lo && v <= hi) || (lo_open && v == lo)) {
        char must[96];
        snprintf(must, sizeof must, lo_open ? "a number above %g, at most %g" : "a number from %g to %g", lo, hi);
        bad_key(r, key, j, must);
        return def;
    }
    return v;
}

/* A key the row does not name keeps the row's default. */
static int get_flag(reader *r, const char *key, int def)
{
    const cJSON *j = item(r, key);
    if (!j) return def;
    if (!cJSON_IsBool(j)) bad_key(r, key, j, "true or false");
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

static const char *get_str(reader *r, const char *key, const char *def)
{
    const cJSON *j = item(r, key);
    if (!j) return def;
    if (!cJSON_IsString(j)) bad_key(r, key, j, "a string");
    return cJSON_IsString(j) ? j->valuestring : def;
}

static int parse_act(const char *s, zq_mlp_fn *fn)
{
    if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast")) *fn = ZQ_GELU_TANH;
    else if (!strcmp(s, "gelu")) *fn = ZQ_GELU_ERF;
    else if (!strcmp(s, "relu")) *fn = ZQ_RELU;
    else if (!strcmp(s, "silu") || !strcmp(s, "swish")) *fn = ZQ_SILU;
    else return 0;
    return 1;
}


/* A number that JSON null turns off (0), its default when absent. */
static double get_nullable(reader *r, const char *key, double def, double lo, double hi)
{
    const cJSON *j = key ? cJSON_GetObjectItemCaseSensitive(r->c, key) : NULL;
    return cJSON_IsNull(j) ? 0 : get_num(r, key, def, lo, hi, 1);
}

/* Gemma 2's query scale and soft-capping; every other row: 1/sqrt(head_dim), no caps. */
static void scores(reader *r, const zq_arch_desc *d, zq_arch *a)
{
    double query = d->scores.query_key ? get_num(r, d->scores.query_key, d->scores.query_default, 0, 1e9, 1) : 0;
    a->attn_scale = query > 0 ? (float)pow(query, -0.5) : 1.0f / sqrtf((float)a->head_dim);
    a->attn_softcap = (float)get_nullable(r, d->scores.attn_cap_key, d->scores.attn_cap_default, 0, 1e9);
    a->final_softcap = (float)get_nullable(r, d->scores.final_cap_key, d->scores.final_cap_default, 0, 1e9);
}

/* Which layers attend over a sliding window, as the configuration class
 * sets it: the window (JSON null: none; a use_key that is false: none),
 * the layers from first_key on, or an explicit layer_types list where the
 * row reads one. A list is kept as the rule it follows (sliding from a
 * layer on, or sliding but every n-th full); one that follows neither is
 * refused, never run as something near it. */
static zq_status sliding_window(reader *r, const zq_arch_desc *d, zq_arch *a, const char *origin, zq_error *err)
{
    if (!d->window.key) return ZQ_OK;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(r->c, d->window.key);
    int use = d->window.use_key ? get_flag(r, d->window.use_key, 0) : 1;
    int window = cJSON_IsNull(size) ? 0 : get_int(r, d->window.key, d->window.size_default, 1, MAX_COUNT);
    int first = d->window.first_key ? get_int(r, d->window.first_key, d->window.first_default, 0, MAX_LAYERS)
                                    : d->window.first_default;
    ZQ_TRY(r->st);
    int period = d->window.period_key ? get_int(r, d->window.period_key, d->window.period_default, 1, MAX_LAYERS)
                                      : d->window.period_default;
    ZQ_TRY(r->st);
    a->window = use ? window : 0;
    a->window_first = first;
    a->window_period = period;
    if (!a->window && a->rope_local_theta > 0) /* Gemma 3's pattern still picks the local base then */
        return BAD("'%s': %s is null: layers of the pattern that slide over no window are not supported", origin,
                   d->window.key);
    const cJSON *types = d->window.layer_types ? item(r, "layer_types") : NULL, *e;
    if (!types) return ZQ_OK;
    if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != a->n_layers)
        return BAD("'%s': layer_types must list %d layers", origin, a->n_layers);
    int n = 0, first_sliding = -1, first_full_after = -1;
    cJSON_ArrayForEach(e, types) {
        int sliding = cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention");
        if (!sliding && !(cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")))
            return BAD("'%s': layer_types[%d] is neither \"full_attention\" nor \"sliding_attention\"", origin, n);
        if (sliding && first_sliding < 0) first_sliding = n;
        if (!sliding && first_sliding >= 0 && first_full_after < 0) first_full_after = n;
        n++;
    }
    if (first_sliding < 0) { /* every layer attends fully */
        a->window = 0;
        return ZQ_OK;
    }
    if (!a->window)
        return BAD("'%s': layer_types has sliding_attention layers, but %s is %s", origin,
                   !use ? d->window.use_key : d->window.key, !use ? "false" : "null");
    a->window_first = first_sliding;
    a->window_period = first_full_after < 0 ? 0 : first_full_after + 1;
    n = 0;
    cJSON_ArrayForEach(e, types) {
        if ((zq_arch_layer_window(a, n) > 0) != !strcmp(e->valuestring, "sliding_attention"))
            return BAD("'%s': layer_types: layer %d breaks the pattern of the layers before it (zquant runs sliding "
                       "layers from one on, or sliding layers with every n-th full)", origin, n);
        n++;
    }
    return ZQ_OK;
}

/* Mixture of experts as the configuration class sets it. */
static zq_status moe(reader *r, const zq_arch_desc *d, zq_arch *a, const char *origin, zq_error *err)
{
    if (!d->moe.experts_key) return ZQ_OK;
    a->n_experts = get_int(r, d->moe.experts_key, 0, 0, 1 << 16);
    a->moe_topk = get_int(r, d->moe.topk_key, d->moe.topk_default, 1, 1 << 16);
    a->moe_inter = d->moe.inter_key ? get_int(r, d->moe.inter_key, d->moe.inter_default, 1, 4 * MAX_WIDTH) : a->inter;
    a->moe_norm_topk = d->moe.norm_topk_key ? get_flag(r, d->moe.norm_topk_key, 0) : 1;
    a->moe_step = d->moe.step_key ? get_int(r, d->moe.step_key, 1, 1, MAX_LAYERS) : 1;
    ZQ_TRY(r->st);
    const cJSON *dense = d->moe.dense_layers_key ? item(r, d->moe.dense_layers_key) : NULL, *e;
    if (dense && !cJSON_IsNull(dense) && !cJSON_IsArray(dense))
        return BAD("'%s': %s must be a list of block numbers", origin, d->moe.dense_layers_key);
    const cJSON *listed = cJSON_IsArray(dense) ? dense : NULL; /* null: none, as the class reads it */
    cJSON_ArrayForEach(e, listed) {
        if (!cJSON_IsNumber(e) || e->valuedouble != (int)e->valuedouble || e->valueint < 0 ||
            e->valueint >= a->n_layers)
            return BAD("'%s': %s[%d] is not a block number below %d", origin, d->moe.dense_layers_key, a->n_moe_dense,
                       a->n_layers);
        if (a->n_moe_dense == ZQ_MAX_DENSE_LAYERS)
            return BAD("'%s': %s lists more than %d blocks", origin, d->moe.dense_layers_key, ZQ_MAX_DENSE_LAYERS);
        a->moe_dense[a->n_moe_dense++] = e->valueint;
    }
    if (a->n_experts && (a->moe_topk > a->n_experts || !a->moe_inter))
        return BAD("'%s': %d experts per token of %d, each %d wide: not a mixture zquant runs", origin, a->moe_topk,
                   a->n_experts, a->moe_inter);
    return ZQ_OK;
}

int zq_arch_layer_moe(const zq_arch *a, int layer)
{
    for (int k = 0; k < a->n_moe_dense; k++)
        if (a->moe_dense[k] == layer) return 0;
    return a->n_experts > 0 && (layer + 1) % a->moe_step == 0;
}

int zq_arch_layer_window(const zq_arch *a, int layer)
{
    if (!a->window || layer < a->window_first) return 0;
    return a->window_period && (layer + 1) % a->window_period == 0 ? 0 : a->window;
}

/* c[key] = a copy of v (NULL: no key) */
static void put(cJSON *c, const char *key, const cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(c, key);
    if (v) cJSON_AddItemToObject(c, key, cJSON_Duplicate(v, 1));
}

static const char *rope_type(const cJSON *p)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(p, "type");
    return cJSON_IsString(t) ? t->valuestring : t ? NULL : "default";
}

/* transformers 5 writes the rotary settings as one rope_parameters object
 * (rope_type, rope_theta, the scaling's keys, partial_rotary_factor), or
 * one per layer type (full_attention, sliding_attention): they become the
 * keys the row reads (rope_theta, rope_scaling, the sliding layers' base),
 * which they replace, as transformers gives rope_parameters precedence. */
static zq_status rope_parameters(cJSON *c, const zq_arch_desc *d, const char *origin, zq_error *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "rope_parameters");
    if (!p || cJSON_IsNull(p) || d->rope == ZQ_ROPE_NONE) return ZQ_OK;
    if (!cJSON_IsObject(p)) return BAD("'%s': rope_parameters must be an object", origin);
    const cJSON *full = cJSON_GetObjectItemCaseSensitive(p, "full_attention");
    const cJSON *sliding = cJSON_GetObjectItemCaseSensitive(p, "sliding_attention");
    if (!cJSON_IsObject(full) && !cJSON_IsObject(sliding)) full = sliding = p;
    if (!cJSON_IsObject(full)) return BAD("'%s': rope_parameters.full_attention must be an object", origin);
    const char *type = rope_type(full), *sliding_type = cJSON_IsObject(sliding) ? rope_type(sliding) : "default";
    if (!type || !sliding_type) return BAD("'%s': rope_parameters: rope_type must be a string", origin);
    if (strcmp(type, "default") && strcmp(type, "linear") && strcmp(type, "llama3") && strcmp(type, "longrope"))
        return BAD("'%s': rope_parameters.rope_type '%s' is not implemented (linear, llama3 and longrope are)", origin,
                   type);
    const cJSON *theta = cJSON_GetObjectItemCaseSensitive(full, "rope_theta");
    if (cJSON_IsObject(sliding) && sliding != full) {
        const cJSON *local = cJSON_GetObjectItemCaseSensitive(sliding, "rope_theta");
        if (strcmp(sliding_type, "default"))
            return BAD("'%s': rope_parameters.sliding_attention.rope_type '%s': zquant runs sliding layers' "
                       "rotary positions unscaled", origin, sliding_type);
        if (d->rope_base.local_key) put(c, d->rope_base.local_key, local);
        else if (!cJSON_Compare(local, theta, 1))
            return BAD("'%s': rope_parameters: sliding_attention's rope_theta differs from full_attention's, and "
                       "%s models have one rotary base", origin, d->model_types[0]);
    }
    if (theta && !d->rope_theta_key && !(cJSON_IsNumber(theta) && theta->valuedouble == 10000))
        return BAD("'%s': rope_parameters.rope_theta: %s models rotate with base 10000", origin, d->model_types[0]);
    if (theta && d->rope_theta_key) put(c, d->rope_theta_key, theta);
    const cJSON *fraction = cJSON_GetObjectItemCaseSensitive(full, "partial_rotary_factor");
    if (fraction && d->rope == ZQ_ROPE_PCT) put(c, d->rope_key, fraction);
    if (strcmp(type, "default") && !d->rope_scaling_key)
        return BAD("'%s': rope_parameters.rope_type '%s' is not implemented for %s models", origin, type,
                   d->model_types[0]);
    if (d->rope_scaling_key) put(c, d->rope_scaling_key, strcmp(type, "default") ? full : NULL);
    return ZQ_OK;
}

static zq_status fill(cJSON *c, const char *mt, const char *origin, zq_arch *a, zq_error *err)
{
    const zq_arch_desc *d = zq_arch_find(mt);
    if (!d) {
        char known[512] = "";
        for (const zq_arch_desc *k = zq_arch_table; k->model_types[0]; k++)
            for (int t = 0; t < 4 && k->model_types[t]; t++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", *known ? ", " : "",
                         k->model_types[t]);
        return BAD("'%s': model_type '%s' has no forward pass in zquant (%s)", origin, mt, known);
    }
    cJSON *defaults = d->class_defaults ? cJSON_Parse(d->class_defaults) : NULL, *e;
    cJSON_ArrayForEach(e, defaults) /* what the config leaves out, as its class fills it */
        if (!cJSON_GetObjectItemCaseSensitive(c, e->string)) cJSON_AddItemToObject(c, e->string, cJSON_Duplicate(e, 1));
    cJSON_Delete(defaults);
    ZQ_TRY(rope_parameters(c, d, origin, err));
    reader r = {c, origin, err, ZQ_OK};
    a->desc = d;
    a->hidden = get_int(&r, d->hidden_key, 0, 1, MAX_WIDTH);
    a->n_heads = get_int(&r, d->heads_key, 0, 1, MAX_HEADS);
    a->n_layers = get_int(&r, d->layers_key, 0, 1, MAX_LAYERS);
    a->inter = get_int(&r, d->inter_key, d->inter_per_hidden * a->hidden, 1, 4 * MAX_WIDTH);
    a->max_pos = get_int(&r, d->max_pos_key, d->max_pos_default, 1, MAX_COUNT);
    a->norm_eps = (float)get_num(&r, d->eps_key, d->eps_default, 0, 1, 1);
    const char *act = get_str(&r, d->act_key, d->act_default);
    a->pre_ln = get_flag(&r, d->pre_ln_key, (d->flags & ZQ_ARCH_PRE_LN) != 0);
    a->causal = (d->flags & ZQ_ARCH_CAUSAL) != 0;
    a->final_norm = (d->flags & ZQ_ARCH_FINAL_NORM) && a->pre_ln && !get_flag(&r, d->no_final_norm_key, 0);
    a->parallel = get_flag(&r, d->parallel_key, (d->flags & ZQ_ARCH_PARALLEL) != 0);
    a->shared_norm = (d->flags & ZQ_ARCH_SHARED_NORM) != 0;
    a->rope_interleaved = (d->flags & ZQ_ARCH_ROPE_PAIRS) != 0;
    a->rms_norm = (d->flags & ZQ_ARCH_RMS_NORM) != 0;
    a->qk_norm = (d->flags & ZQ_ARCH_QK_NORM) != 0;
    a->gated = (d->flags & ZQ_ARCH_GATED_MLP) != 0;
    a->post_norms = (d->flags & ZQ_ARCH_POST_NORMS) != 0;
    a->norm_offset = (d->flags & ZQ_ARCH_NORM_PLUS_ONE) ? 1.0f : 0.0f;
    a->token_types = (d->flags & ZQ_ARCH_TOKEN_TYPES) != 0;
    a->mlm_head = (d->flags & ZQ_ARCH_MLM_HEAD) != 0;
    a->pos_offset = d->pos_offset;
    a->rope_theta = (float)get_num(&r, d->rope_theta_key, d->rope_base.theta_default > 0 ? d->rope_base.theta_default
                                                                                         : 10000, 0, 1e12, 1);
    if (d->rope_base.local_key)
        a->rope_local_theta = (float)get_num(&r, d->rope_base.local_key, d->rope_base.local_default, 0, 1e12, 1);
    a->n_kv_heads = get_int(&r, d->kv_heads_key, a->n_heads, 1, MAX_HEADS);
    a->head_dim = get_int(&r, d->head_dim_key, d->head_dim_default, 1, MAX_HEAD_DIM);
    a->emb_dim = get_int(&r, d->emb_dim_key, a->hidden, 1, MAX_WIDTH);
    a->vocab = get_int(&r, "vocab_size", 0, 1, MAX_COUNT);
    if (token_ids(&r, "bos_token_id", a->vocab, &a->bos_id, 1) == 0) a->bos_id = -1;
    a->n_eos = token_ids(&r, "eos_token_id", a->vocab, a->eos_ids, ZQ_MAX_EOS);
    double rope_pct = d->rope == ZQ_ROPE_PCT ? get_num(&r, d->rope_key, d->rope_default, 0, 1, 0) : 0;
    int rope_dim = d->rope == ZQ_ROPE_DIM ? get_int(&r, d->rope_key, -1, 0, MAX_HEAD_DIM) : 0;
    ZQ_TRY(r.st);
    a->emb_proj = a->emb_dim != a->hidden;
    ZQ_TRY(rope_scaling(&r, d, a, origin, err));
    ZQ_TRY(sliding_window(&r, d, a, origin, err));
    ZQ_TRY(moe(&r, d, a, origin, err));
    if (!parse_act(act, &a->act)) return BAD("'%s': activation '%s' is not supported", origin, act);
    if (!a->gated && a->act == ZQ_SILU) return BAD("'%s': silu is only supported in gated MLPs", origin);
    if (!a->hidden || !a->n_heads || !a->n_layers || !a->vocab || !a->inter)
        return BAD("'%s': config lacks the model's sizes (hidden, heads, layers, vocab, intermediate)", origin);
    if (!a->head_dim) {
        if (a->hidden % a->n_heads) return BAD("'%s': hidden size %d is not a multiple of %d heads", origin, a->hidden, a->n_heads);
        a->head_dim = a->hidden / a->n_heads;
    }
    if ((long long)a->n_heads * a->head_dim > MAX_ATTENTION)
        return BAD("'%s': %d heads of %d dimensions are wider than %d", origin, a->n_heads, a->head_dim, MAX_ATTENTION);
    if (a->n_heads % a->n_kv_heads) return BAD("'%s': %d heads do not share %d key/value heads evenly", origin, a->n_heads, a->n_kv_heads);
    switch (d->rope) {
    case ZQ_ROPE_NONE: break;
    case ZQ_ROPE_FULL: a->rotary_dims = a->head_dim; break;
    case ZQ_ROPE_PCT: a->rotary_dims = (int)(a->head_dim * rope_pct); break;
    case ZQ_ROPE_DIM: a->rotary_dims = rope_dim >= 0 ? rope_dim : a->head_dim; break;
    }
    if (a->rotary_dims % 2 || a->rotary_dims > a->head_dim)
        return BAD("'%s': rotary dimensions %d do not fit heads of %d", origin, a->rotary_dims, a->head_dim);
    if (a->rope_longrope && a->rope_longrope != a->rotary_dims / 2)
        return BAD("'%s': %s has %d factors for %d rotary dimensions (%d pairs)", origin, d->rope_scaling_key,
                   a->rope_longrope, a->rotary_dims, a->rotary_dims / 2);
    scores(&r, d, a);
    ZQ_TRY(r.st);
    a->embed_scale = (d->flags & ZQ_ARCH_EMBED_SCALE) ? (float)sqrt((double)a->hidden) : 0; /* as Gemma's normalizer */
    snprintf(a->model_type, sizeof a->model_type, "%s", mt);
    return ZQ_OK;
}

zq_status zq_arch_from_config(const char *config_json, const char *origin, zq_arch *a, zq_error *err)
{
    memset(a, 0, sizeof *a);
    if (!config_json) return BAD("'%s': no config.json: the forward pass needs the model's sizes", origin);
    char *language = zq_arch_language_config(config_json);
    cJSON *c = cJSON_Parse(language ? language : config_json);
    free(language);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return BAD("'%s': config is not a JSON object", origin);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    const char *mt = cJSON_IsString(type) ? type->valuestring : NULL;
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
    case ZQ_PART_QKV: *out = qd + 2 * kvd, *in = C; return;
    case ZQ_PART_GATE_UP: *out = 2 * I, *in = C; return;
    case ZQ_PART_EXP_GATE: case ZQ_PART_EXP_UP: *out = a->moe_inter, *in = C; return;
    case ZQ_PART_EXP_DOWN: *out = C, *in = a->moe_inter; return;
    case ZQ_PART_ROUTER: *out = a->n_experts, *in = C; return;
    case ZQ_PART_O: *out = C, *in = qd; return;
    case ZQ_PART_UP: case ZQ_PART_GATE: *out = I, *in = C; return;
    case ZQ_PART_DOWN: *out = C, *in = I; return;
    default: *out = *in = 0; return;
    }
}

uint64_t zq_arch_tensor_size(const zq_arch *a, const zq_arch_tensor *e)
{
    uint64_t C = (uint64_t)a->hidden, V = (uint64_t)a->vocab, E = (uint64_t)a->emb_dim;
    int bias = (e->flags & ZQ_T_BIAS) != 0, out, in;
    switch (e->part) {
    case ZQ_PART_NORM1: case ZQ_PART_NORM2: case ZQ_PART_EMB_NORM: case ZQ_PART_MLM_NORM: return C;
    case ZQ_PART_Q_NORM: case ZQ_PART_K_NORM: return a->qk_norm ? (uint64_t)a->head_dim : 0;
    case ZQ_PART_POST_NORM1: case ZQ_PART_POST_NORM2: return a->post_norms ? C : 0;
    case ZQ_PART_EMBED: return V * E;
    case ZQ_PART_POS: return (uint64_t)(a->max_pos + a->pos_offset) * C;
    case ZQ_PART_FINAL_NORM: return a->final_norm ? C : 0;
    case ZQ_PART_PROJ_IN: case ZQ_PART_PROJ_OUT: return a->emb_proj ? C * E : 0;
    case ZQ_PART_MLM_DENSE: return bias ? C : C * C;
    case ZQ_PART_HEAD: return bias ? V : V * E;
    case ZQ_PART_TYPES: return 0;
    default:
        zq_arch_linear_shape(a, e->part, &out, &in);
        return bias ? (uint64_t)out : (uint64_t)out * (uint64_t)in;
    }
}

zq_status zq_arch_check_tensors(const zq_arch *a, const zq_tensor_size *t, size_t n, int complete, const char *origin,
                                zq_error *err)
{
    const zq_arch_tensor *rows = a->desc->tensors;
    size_t nrows = 0;
    while (rows[nrows].name) nrows++;
    /* [row][layer, or the last for outer ones]: how many seen (experts: one each) */
    unsigned *seen = calloc(nrows * ((size_t)a->n_layers + 1) + 1, sizeof *seen);
    if (!seen) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    for (size_t i = 0; st == ZQ_OK && i < n; i++) {
        int layer = -1, expert = -1;
        size_t r = 0;
        while (r < nrows && !zq_arch_tensor_match_at(&rows[r], t[i].name, &layer, &expert)) r++;
        if (r == nrows || zq_arch_is_buffer(t[i].name)) continue; /* not one the model is made of */
        uint64_t want = zq_arch_tensor_size(a, &rows[r]);
        if (layer >= a->n_layers)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is of block %d, but the config has %d blocks", origin,
                         t[i].name, layer, a->n_layers);
        else if ((rows[r].flags & ZQ_T_EXPERT) && expert >= a->n_experts)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is of expert %d, but the config has %d experts", origin,
                         t[i].name, expert, a->n_experts);
        else if (want && t[i].numel != want)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %llu values, the config implies %llu (hidden %d, "
                         "heads %d, kv heads %d, head dim %d, intermediate %d, vocab %d)", origin, t[i].name,
                         (unsigned long long)t[i].numel, (unsigned long long)want, a->hidden, a->n_heads, a->n_kv_heads,
                         a->head_dim, a->inter, a->vocab);
        else seen[r * ((size_t)a->n_layers + 1) + (size_t)(layer >= 0 ? layer : a->n_layers)]++;
    }
    for (size_t r = 0; st == ZQ_OK && complete && r < nrows; r++) {
        const zq_arch_tensor *e = &rows[r];
        if ((e->flags & ZQ_T_OPTIONAL) || !zq_arch_tensor_size(a, e)) continue;
        int in_block = zq_part_in_block(e->part), sparse = e->part >= ZQ_PART_ROUTER;
        int mlp = e->part == ZQ_PART_UP || e->part == ZQ_PART_GATE || e->part == ZQ_PART_DOWN || sparse;
        int want = (e->flags & ZQ_T_EXPERT) ? a->n_experts : 1;
        for (int l = in_block ? 0 : a->n_layers; st == ZQ_OK && l <= a->n_layers && (!in_block || l < a->n_layers); l++)
            if ((!mlp || sparse == zq_arch_layer_moe(a, l)) &&
                seen[r * ((size_t)a->n_layers + 1) + (size_t)l] < (unsigned)want) {
                char name[256]; /* the first missing one is named as any would be: the first of them */
                snprintf(name, sizeof name, e->name, l, 0);
                st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': no tensor '%s' (the config has %d blocks)", origin, name,
                             a->n_layers);
            }
    }
    free(seen);
    return st;
}

void zq_arch_generation_config(zq_arch *a, const char *json)
{
    cJSON *c = json ? cJSON_Parse(json) : NULL;
    reader r = {c, "generation_config.json", NULL, ZQ_OK};
    int bos;
    if (c && token_ids(&r, "bos_token_id", a->vocab, &bos, 1)) a->bos_id = bos;
    int eos[ZQ_MAX_EOS], n = c ? token_ids(&r, "eos_token_id", a->vocab, eos, ZQ_MAX_EOS) : 0;
    if (n) {
        memcpy(a->eos_ids, eos, (size_t)n * sizeof *eos);
        a->n_eos = n;
    }
    cJSON_Delete(c);
}
