#include "zquant/model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *pattern;
    zq_role role;
} tensor_rule;

typedef struct {
    const char *model_type;
    int transposed; /* every Linear weight stored [in, out] */
    const tensor_rule *rules;
} arch;

/* Patterns follow each architecture's Hugging Face module names; the leading
 * '*' accepts any wrapper prefix ("transformer.", "model.", "bert.", ...). */
static const tensor_rule gpt2_rules[] = {
    {"*h.#.attn.c_attn.weight", ZQ_ROLE_ATTENTION}, {"*h.#.attn.c_proj.weight", ZQ_ROLE_ATTENTION},
    {"*h.#.mlp.c_fc.weight", ZQ_ROLE_MLP},          {"*h.#.mlp.c_proj.weight", ZQ_ROLE_MLP},
    {NULL, 0}};
static const tensor_rule opt_rules[] = {
    {"*layers.#.self_attn.q_proj.weight", ZQ_ROLE_ATTENTION}, {"*layers.#.self_attn.k_proj.weight", ZQ_ROLE_ATTENTION},
    {"*layers.#.self_attn.v_proj.weight", ZQ_ROLE_ATTENTION}, {"*layers.#.self_attn.out_proj.weight", ZQ_ROLE_ATTENTION},
    {"*layers.#.fc1.weight", ZQ_ROLE_MLP},                    {"*layers.#.fc2.weight", ZQ_ROLE_MLP},
    {NULL, 0}};
static const tensor_rule neox_rules[] = {
    {"*layers.#.attention.query_key_value.weight", ZQ_ROLE_ATTENTION},
    {"*layers.#.attention.dense.weight", ZQ_ROLE_ATTENTION},
    {"*layers.#.mlp.dense_h_to_4h.weight", ZQ_ROLE_MLP},
    {"*layers.#.mlp.dense_4h_to_h.weight", ZQ_ROLE_MLP},
    {NULL, 0}};
static const tensor_rule gptj_rules[] = {
    {"*h.#.attn.q_proj.weight", ZQ_ROLE_ATTENTION}, {"*h.#.attn.k_proj.weight", ZQ_ROLE_ATTENTION},
    {"*h.#.attn.v_proj.weight", ZQ_ROLE_ATTENTION}, {"*h.#.attn.out_proj.weight", ZQ_ROLE_ATTENTION},
    {"*h.#.mlp.fc_in.weight", ZQ_ROLE_MLP},         {"*h.#.mlp.fc_out.weight", ZQ_ROLE_MLP},
    {NULL, 0}};
static const tensor_rule bert_rules[] = {
    {"*layer.#.attention.self.query.weight", ZQ_ROLE_ATTENTION},
    {"*layer.#.attention.self.key.weight", ZQ_ROLE_ATTENTION},
    {"*layer.#.attention.self.value.weight", ZQ_ROLE_ATTENTION},
    {"*layer.#.attention.output.dense.weight", ZQ_ROLE_ATTENTION},
    {"*layer.#.intermediate.dense.weight", ZQ_ROLE_MLP},
    {"*layer.#.output.dense.weight", ZQ_ROLE_MLP},
    {NULL, 0}};
static const tensor_rule llama_rules[] = {
    {"*layers.#.self_attn.q_proj.weight", ZQ_ROLE_ATTENTION}, {"*layers.#.self_attn.k_proj.weight", ZQ_ROLE_ATTENTION},
    {"*layers.#.self_attn.v_proj.weight", ZQ_ROLE_ATTENTION}, {"*layers.#.self_attn.o_proj.weight", ZQ_ROLE_ATTENTION},
    {"*layers.#.mlp.gate_proj.weight", ZQ_ROLE_MLP},          {"*layers.#.mlp.up_proj.weight", ZQ_ROLE_MLP},
    {"*layers.#.mlp.down_proj.weight", ZQ_ROLE_MLP},          {NULL, 0}};

static const arch arches[] = {
    {"gpt2", 1, gpt2_rules},   {"opt", 0, opt_rules},      {"gpt_neox", 0, neox_rules},
    {"gptj", 0, gptj_rules},   {"bert", 0, bert_rules},    {"llama", 0, llama_rules},
    {"mistral", 0, llama_rules}, {"qwen2", 0, llama_rules},
};

const char *const zq_known_model_types[] = {"gpt2", "opt", "gpt_neox", "gptj", "bert",
                                             "llama", "mistral", "qwen2", NULL};

const char *zq_role_name(zq_role role)
{
    switch (role) {
    case ZQ_ROLE_ATTENTION: return "attention";
    case ZQ_ROLE_MLP: return "mlp";
    case ZQ_ROLE_LINEAR: return "linear";
    case ZQ_ROLE_OTHER: break;
    }
    return "other";
}

static const arch *find_arch(const char *model_type)
{
    for (size_t k = 0; k < sizeof arches / sizeof arches[0]; k++)
        if (strcmp(arches[k].model_type, model_type) == 0) return &arches[k];
    return NULL;
}

int zq_pattern_match(const char *p, const char *s, int *number)
{
    for (;; p++, s++) {
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (zq_pattern_match(p + 1, t, number)) return 1;
                if (!*t) return 0;
            }
        }
        if (*p == '#') {
            if (*s < '0' || *s > '9') return 0;
            long v = 0;
            while (*s >= '0' && *s <= '9') {
                if (v < 100000000) v = v * 10 + (*s - '0');
                s++;
            }
            if (!zq_pattern_match(p + 1, s, number)) return 0;
            if (number) *number = (int)v;
            return 1;
        }
        if (*p != *s) return 0;
        if (!*p) return 1;
    }
}

zq_status zq_model_detect(const char *config, const char *origin, zq_model *out, zq_error *err)
{
    memset(out, 0, sizeof *out);
    if (!config) return ZQ_OK;
    cJSON *root = cJSON_Parse(config);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': config is not a JSON object", origin);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt)) {
        snprintf(out->model_type, sizeof out->model_type, "%s", mt->valuestring);
        out->known = find_arch(out->model_type) != NULL;
    }
    static const char *layer_keys[] = {"num_hidden_layers", "n_layer", "num_layers"};
    for (size_t k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, layer_keys[k]);
        if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 100000) {
            out->n_layers = (int)v->valuedouble;
            break;
        }
    }
    cJSON_Delete(root);
    return ZQ_OK;
}

zq_tensor_role zq_model_classify(const zq_model *m, const zq_tensor_info *t)
{
    zq_tensor_role r = {ZQ_ROLE_OTHER, -1, 0};
    const arch *a = m->known ? find_arch(m->model_type) : NULL;
    if (!a) {
        if (t->ndim == 2) r.role = ZQ_ROLE_LINEAR;
        return r;
    }
    for (const tensor_rule *rule = a->rules; rule->pattern; rule++) {
        int layer = -1;
        if (t->ndim == 2 && zq_pattern_match(rule->pattern, t->name, &layer)) {
            r.role = rule->role;
            r.layer = layer;
            r.transposed = a->transposed;
            return r;
        }
    }
    return r;
}
