/* The architecture table against the roles the fixture generator declares
 * for each model (scripts/gen_fixtures.py writes them beside the weights),
 * and against itself. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "test.h"
#include "zquant/arch.h"
#include "zquant/source.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int roles_match(const char *model)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/models/%s.roles.json", model);
    char *text = slurp(path);
    cJSON *want = text ? cJSON_Parse(text) : NULL;
    free(text);
    snprintf(path, sizeof path, "tests/fixtures/models/%s", model);
    zq_source *src = NULL;
    zq_error err = {0};
    zq_model m;
    int bad = !want || zq_source_open(path, &src, &err) != ZQ_OK ||
              zq_model_detect(zq_source_config(src), path, &m, &err) != ZQ_OK || !m.known;
    for (size_t i = 0; !bad && i < zq_source_count(src); i++) {
        const zq_tensor_info *t = zq_source_tensor(src, i);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(want, t->name);
        const char *expect = cJSON_IsString(w) ? w->valuestring : "other";
        zq_tensor_role r = zq_model_classify(&m, t);
        if (strcmp(zq_role_name(r.role), expect)) {
            fprintf(stderr, "  %s: '%s' is %s, the generator says %s\n", model, t->name, zq_role_name(r.role), expect);
            bad++;
        }
    }
    cJSON_Delete(want);
    zq_source_close(src);
    return bad;
}

TEST(table_roles_match_the_fixtures)
{
    const char *models[] = {"gpt2", "opt", "gpt_neox", "gptj", "llama", "bert"};
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) CHECK(roles_match(models[k]) == 0);
}

TEST(table_rows_are_consistent)
{
    for (const zq_arch_desc *d = zq_arch_table; d->model_types[0]; d++) {
        int embed = 0;
        for (const zq_arch_tensor *e = d->tensors; e->name; e++) {
            embed += e->part == ZQ_PART_EMBED;
            /* a block tensor is numbered by its block, and only such */
            CHECK((strstr(e->name, "%d") != NULL) == zq_part_in_block(e->part));
            if (e->gguf) CHECK((strstr(e->gguf, "%d") != NULL) == zq_part_in_block(e->part));
            int weights = 0;
            for (const zq_arch_tensor *f = d->tensors; f->name; f++) {
                if (f != e) CHECK(strcmp(f->name, e->name) != 0);
                weights += f->part == e->part && !(f->flags & ZQ_T_BIAS);
            }
            CHECK(weights == 1 || (weights == 0 && e->part == ZQ_PART_HEAD)); /* a bias has its weight */
            /* whoever exports to llama.cpp has a name for every tensor it reads */
            if (d->gguf_arch && zq_part_kind(e->part) != ZQ_KIND_HEAD) CHECK(e->gguf != NULL);
        }
        CHECK(embed == 1);
        for (int k = 0; k < 4 && d->model_types[k]; k++) CHECK(zq_arch_find(d->model_types[k]) == d);
    }
    CHECK(zq_arch_find("frobnicator") == NULL);
}

TEST(table_names_take_any_wrapper_prefix)
{
    const zq_arch_desc *d = zq_arch_find("llama");
    const zq_arch_tensor *q = NULL, *norm = NULL;
    for (const zq_arch_tensor *e = d->tensors; e->name; e++) {
        if (e->part == ZQ_PART_Q && !(e->flags & ZQ_T_BIAS)) q = e;
        if (e->part == ZQ_PART_FINAL_NORM) norm = e;
    }
    int layer = -1;
    CHECK(q && zq_arch_tensor_match(q, "model.layers.12.self_attn.q_proj.weight", &layer) && layer == 12);
    CHECK(zq_arch_tensor_match(q, "layers.3.self_attn.q_proj.weight", &layer) && layer == 3);
    CHECK(!zq_arch_tensor_match(q, "model.layers.x.self_attn.q_proj.weight", NULL));
    CHECK(norm && zq_arch_tensor_match(norm, "model.norm.weight", &layer) && layer == -1);
    CHECK(!zq_arch_tensor_match(norm, "model.layers.0.input_layernorm.weight", NULL));
}

/* rope_scaling: llama3 read (and its frequencies, worked by hand from
 * Hugging Face's formula), "default" a no-op, any other kind refused with
 * the key named rather than run approximately. */
static zq_status llama_with(const char *scaling, zq_arch *a, zq_error *err)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"llama\", \"hidden_size\": 32, \"num_attention_heads\": 4, \"num_hidden_layers\": 1, "
             "\"intermediate_size\": 48, \"vocab_size\": 50, \"max_position_embeddings\": 16, \"rope_scaling\": %s}",
             scaling);
    return zq_arch_from_config(cfg, "cfg", a, err);
}

TEST(rope_scaling_llama3_read_others_refused)
{
    zq_arch a;
    zq_error err = {0};
    CHECK(llama_with("{\"rope_type\": \"llama3\", \"factor\": 4.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 16.0, "
                     "\"original_max_position_embeddings\": 256}", &a, &err) == ZQ_OK);
    CHECK(a.rope_factor == 4.0f && a.rope_low_freq == 1.0f && a.rope_high_freq == 16.0f && a.rope_original_max_pos == 256);
    /* wavelength 2 pi: under 256 / 16, kept; 2 pi 1000: over 256, divided by 4; 2 pi 10: blended with
     * smooth = (256 / 62.83 - 1) / 15 = 0.204958, (1 - smooth) 0.1 / 4 + smooth 0.1 = 0.0403719 */
    CHECK(zq_rope_llama3(&a, 1.0f) == 1.0f);
    CHECK(zq_rope_llama3(&a, 0.001f) == 0.001f / 4);
    CHECK(fabsf(zq_rope_llama3(&a, 0.1f) - 0.0403719f) < 1e-7f);
    CHECK(llama_with("{\"rope_type\": \"default\"}", &a, &err) == ZQ_OK && a.rope_factor == 0);
    CHECK(llama_with("null", &a, &err) == ZQ_OK && a.rope_factor == 0);
    CHECK(llama_with("{\"type\": \"yarn\", \"factor\": 4.0}", &a, &err) == ZQ_ERR_FORMAT);
    CHECK(strstr(err.msg, "rope_scaling.rope_type 'yarn' is not implemented") != NULL);
    err = (zq_error){0};
    CHECK(llama_with("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                     "\"original_max_position_embeddings\": 8192}", &a, &err) == ZQ_ERR_FORMAT);
    CHECK(strstr(err.msg, "rope_scaling.high_freq_factor") != NULL);
}

/* A 6-layer config of model_type mt with `extra` keys (JSON members). */
static zq_status windowed(const char *mt, const char *extra, zq_arch *a, zq_error *err)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"%s\", \"hidden_size\": 32, \"num_attention_heads\": 4, "
             "\"num_hidden_layers\": 6, \"intermediate_size\": 48, \"vocab_size\": 50%s%s}", mt, *extra ? ", " : "",
             extra);
    *err = (zq_error){0};
    return zq_arch_from_config(cfg, "cfg", a, err);
}

/* which of the 6 layers `is` says yes of, as "010011" */
static const char *layers_where(const zq_arch *a, int (*is)(const zq_arch *, int))
{
    static char s[7];
    for (int l = 0; l < 6; l++) s[l] = is(a, l) ? '1' : '0';
    return s;
}
#define sliding_layers(a) layers_where(a, zq_arch_layer_window)
#define sparse_layers(a) layers_where(a, zq_arch_layer_moe)

TEST(sliding_window_layers_as_the_config_classes_set_them)
{
    zq_arch a;
    zq_error err;
    /* MistralConfig: 4096 when absent, none when null, every layer; layer_types ignored */
    CHECK(windowed("mistral", "", &a, &err) == ZQ_OK && a.window == 4096 && !strcmp(sliding_layers(&a), "111111"));
    CHECK(windowed("mistral", "\"sliding_window\": null", &a, &err) == ZQ_OK && !strcmp(sliding_layers(&a), "000000"));
    CHECK(windowed("mistral", "\"sliding_window\": 7, \"layer_types\": 3", &a, &err) == ZQ_OK && a.window == 7);
    CHECK(windowed("llama", "\"sliding_window\": 7", &a, &err) == ZQ_OK && !strcmp(sliding_layers(&a), "000000"));
    /* Qwen2Config: only with use_sliding_window, from max_window_layers (28) on */
    CHECK(windowed("qwen2", "\"sliding_window\": 7", &a, &err) == ZQ_OK && !strcmp(sliding_layers(&a), "000000"));
    CHECK(windowed("qwen2", "\"use_sliding_window\": true", &a, &err) == ZQ_OK && a.window == 4096 &&
          !strcmp(sliding_layers(&a), "000000"));
    CHECK(windowed("qwen3", "\"use_sliding_window\": true, \"sliding_window\": 7, \"max_window_layers\": 4", &a,
                   &err) == ZQ_OK && a.window == 7 && !strcmp(sliding_layers(&a), "000011"));
    /* an explicit list: sliding from a layer on, or every n-th layer full (Gemma's kind) */
    const char *full = "\"full_attention\"", *slide = "\"sliding_attention\"";
    const char *use = "\"use_sliding_window\": true, \"layer_types\": [%s, %s, %s, %s, %s, %s]";
    char extra[512];
    snprintf(extra, sizeof extra, use, slide, slide, full, slide, slide, full);
    CHECK(windowed("qwen2", extra, &a, &err) == ZQ_OK && !strcmp(sliding_layers(&a), "110110"));
    snprintf(extra, sizeof extra, use, full, slide, slide, slide, slide, slide);
    CHECK(windowed("qwen2", extra, &a, &err) == ZQ_OK && !strcmp(sliding_layers(&a), "011111"));
    snprintf(extra, sizeof extra, use, slide, full, slide, slide, full, slide);
    CHECK(windowed("qwen2", extra, &a, &err) == ZQ_ERR_FORMAT && strstr(err.msg, "layer_types: layer 3") != NULL);
    snprintf(extra, sizeof extra, "\"layer_types\": [%s, %s, %s, %s, %s, %s]", full, slide, slide, slide, slide, slide);
    CHECK(windowed("qwen2", extra, &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "use_sliding_window is false") != NULL);
    CHECK(windowed("qwen2", "\"use_sliding_window\": true, \"layer_types\": [\"full_attention\"]", &a, &err) ==
              ZQ_ERR_FORMAT && strstr(err.msg, "layer_types must list 6 layers") != NULL);
    CHECK(windowed("mistral", "\"sliding_window\": 0", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "'sliding_window'") != NULL);
}

TEST(gemma2_config_as_gemma2config_defaults_it)
{
    zq_arch a;
    zq_error err;
    CHECK(windowed("gemma2", "\"head_dim\": 16", &a, &err) == ZQ_OK);
    /* query_pre_attn_scalar 256, caps 50 and 30, a window of 4096 in the even layers, (1 + w) norms */
    CHECK(a.attn_scale == 0.0625f && a.attn_softcap == 50.0f && a.final_softcap == 30.0f);
    CHECK(a.window == 4096 && !strcmp(sliding_layers(&a), "101010") && a.norm_offset == 1.0f && a.gated);
    CHECK(a.embed_scale == (float)sqrt(32.0) && a.post_norms && a.act == ZQ_GELU_TANH && a.max_pos == 8192);
    CHECK(windowed("gemma2", "\"query_pre_attn_scalar\": 144, \"attn_logit_softcapping\": null, "
                   "\"final_logit_softcapping\": null", &a, &err) == ZQ_OK);
    CHECK(fabsf(a.attn_scale - 1.0f / 12) < 1e-9f && a.attn_softcap == 0 && a.final_softcap == 0);
    CHECK(windowed("gemma2", "\"attn_logit_softcapping\": -1", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "'attn_logit_softcapping'") != NULL);
    /* a llama's scale stays 1/sqrt(head_dim) */
    CHECK(windowed("llama", "", &a, &err) == ZQ_OK && a.attn_scale == 1.0f / sqrtf(8.0f) && a.norm_offset == 0);
}

TEST(gemma3_text_config_as_gemma3textconfig_defaults_it)
{
    zq_arch a;
    zq_error err;
    /* a window of 4096 but in every 6th layer, rope_theta 1e6 and 10000 for the sliding layers, no caps */
    CHECK(windowed("gemma3_text", "\"head_dim\": 16", &a, &err) == ZQ_OK && a.qk_norm && a.post_norms);
    CHECK(a.window == 4096 && !strcmp(sliding_layers(&a), "111110") && a.rope_theta == 1e6f &&
          a.rope_local_theta == 10000.0f && a.attn_softcap == 0 && a.final_softcap == 0 && a.max_pos == 131072);
    CHECK(windowed("gemma3_text", "\"sliding_window_pattern\": 2, \"rope_scaling\": {\"rope_type\": \"linear\", "
                   "\"factor\": 8.0}", &a, &err) == ZQ_OK && !strcmp(sliding_layers(&a), "101010") && a.rope_linear == 8);
    CHECK(windowed("gemma3_text", "\"sliding_window\": null", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "sliding_window is null") != NULL);
    CHECK(windowed("gemma3_text", "\"rope_scaling\": {\"rope_type\": \"linear\"}", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "rope_scaling.factor") != NULL);
}

TEST(mixtures_of_experts_as_the_config_classes_set_them)
{
    zq_arch a;
    zq_error err;
    /* MixtralConfig: top-2, renormalized, experts as wide as intermediate_size, every block */
    CHECK(windowed("mixtral", "\"num_local_experts\": 8", &a, &err) == ZQ_OK && a.n_experts == 8 &&
          a.moe_topk == 2 && a.moe_norm_topk && a.moe_inter == 48 && !strcmp(sparse_layers(&a), "111111"));
    /* Qwen3MoeConfig: 128 experts needs saying; top-8 of them, 768 wide, not renormalized */
    CHECK(windowed("qwen3_moe", "\"num_experts\": 16", &a, &err) == ZQ_OK && a.n_experts == 16 && a.moe_topk == 8 &&
          !a.moe_norm_topk && a.moe_inter == 768 && !strcmp(sparse_layers(&a), "111111") && a.window == 0);
    CHECK(windowed("qwen3_moe", "\"num_experts\": 16, \"decoder_sparse_step\": 2, \"mlp_only_layers\": [3], "
                   "\"norm_topk_prob\": true, \"moe_intermediate_size\": 20", &a, &err) == ZQ_OK &&
          !strcmp(sparse_layers(&a), "010001") && a.moe_norm_topk && a.moe_inter == 20);
    CHECK(windowed("qwen3_moe", "\"num_experts\": 16, \"mlp_only_layers\": null", &a, &err) == ZQ_OK &&
          !strcmp(sparse_layers(&a), "111111"));
    /* with use_sliding_window, a window in every block (its modeling file reads no max_window_layers) */
    CHECK(windowed("qwen3_moe", "\"num_experts\": 16, \"use_sliding_window\": true, \"sliding_window\": 5", &a, &err) ==
              ZQ_OK && !strcmp(sliding_layers(&a), "111111") && a.window == 5);
    CHECK(windowed("qwen3_moe", "\"num_experts\": 16, \"mlp_only_layers\": [6]", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "mlp_only_layers[0] is not a block number below 6") != NULL);
    CHECK(windowed("qwen3_moe", "\"num_experts\": 16, \"mlp_only_layers\": 2", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "mlp_only_layers must be a list") != NULL);
    CHECK(windowed("qwen3_moe", "\"num_experts\": 4, \"num_experts_per_tok\": 5", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "5 experts per token of 4") != NULL);
    CHECK(windowed("qwen3_moe", "\"num_experts\": 16, \"decoder_sparse_step\": 0", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "decoder_sparse_step") != NULL);
    /* an unknown model type is refused naming the ones zquant runs */
    CHECK(windowed("mamba", "", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "mixtral, qwen3_moe, phi3, bert") != NULL);
}

/* transformers 5's rope_parameters: the same model as the older keys give it */
TEST(rope_parameters_as_transformers_5_writes_them)
{
    zq_arch a, b;
    zq_error err;
    const char *llama3 = "\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": "
                         "4.0, \"original_max_position_embeddings\": 8192";
    char old[512], v5[512];
    snprintf(old, sizeof old, "\"rope_theta\": 500000.0, \"rope_scaling\": {%s}", llama3);
    snprintf(v5, sizeof v5, "\"rope_parameters\": {\"rope_theta\": 500000.0, %s}", llama3);
    CHECK(windowed("llama", old, &a, &err) == ZQ_OK && windowed("llama", v5, &b, &err) == ZQ_OK);
    CHECK(b.rope_theta == 500000.0f && b.rope_factor == 8.0f && b.rope_high_freq == 4.0f &&
          b.rope_original_max_pos == 8192 && a.rope_theta == b.rope_theta && a.rope_factor == b.rope_factor);
    /* precedence over a stale rope_theta, as transformers gives it */
    CHECK(windowed("qwen2", "\"rope_theta\": 10000.0, \"rope_parameters\": {\"rope_type\": \"default\", "
                   "\"rope_theta\": 1000000.0}", &b, &err) == ZQ_OK && b.rope_theta == 1e6f && b.rope_factor == 0);
    /* one per layer type: Gemma 3's sliding layers on their own, unscaled base */
    CHECK(windowed("gemma3_text", "\"head_dim\": 16, \"rope_parameters\": {\"full_attention\": {\"rope_type\": "
                   "\"linear\", \"factor\": 8.0, \"rope_theta\": 1000000.0}, \"sliding_attention\": {\"rope_type\": "
                   "\"default\", \"rope_theta\": 20000.0}}", &b, &err) == ZQ_OK);
    CHECK(b.rope_theta == 1e6f && b.rope_linear == 8.0f && b.rope_local_theta == 20000.0f);
    CHECK(windowed("gemma3_text", "\"head_dim\": 16, \"rope_parameters\": {\"full_attention\": {\"rope_theta\": 1e6}, "
                   "\"sliding_attention\": {\"rope_type\": \"linear\", \"factor\": 2.0}}", &b, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "sliding_attention.rope_type 'linear'") != NULL);
    /* a model of one base cannot take two */
    CHECK(windowed("qwen2", "\"rope_parameters\": {\"full_attention\": {\"rope_theta\": 1e6}, \"sliding_attention\": "
                   "{\"rope_theta\": 1e4}}", &b, &err) == ZQ_ERR_FORMAT && strstr(err.msg, "one rotary base") != NULL);
    /* Phi-3's rotated fraction inside, a type zquant does not run refused by the key it came in */
    CHECK(windowed("phi3", "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0, "
                   "\"partial_rotary_factor\": 0.5}", &b, &err) == ZQ_OK && b.rotary_dims == 4);
    CHECK(windowed("llama", "\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0}", &b, &err) ==
              ZQ_ERR_FORMAT && strstr(err.msg, "rope_parameters.rope_type 'yarn' is not implemented") != NULL);
    CHECK(windowed("llama", "\"rope_parameters\": 3", &b, &err) == ZQ_ERR_FORMAT);
}

/* Gemma 3's multimodal config: its text_config, filled as Gemma3TextConfig fills it */
TEST(multimodal_gemma3_config_is_its_text_model)
{
    const char *cfg = "{\"model_type\": \"gemma3\", \"eos_token_id\": [1, 106], \"text_config\": {\"hidden_size\": "
                      "2560, \"intermediate_size\": 10240, \"num_hidden_layers\": 34, \"sliding_window\": 1024, "
                      "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 8.0}}, \"vision_config\": {}}";
    zq_arch a;
    zq_error err = {0};
    CHECK(zq_arch_from_config(cfg, "cfg", &a, &err) == ZQ_OK && !strcmp(a.model_type, "gemma3_text"));
    CHECK(a.hidden == 2560 && a.n_layers == 34 && a.n_heads == 8 && a.n_kv_heads == 4 && a.head_dim == 256 &&
          a.vocab == 262208 && a.window == 1024 && a.rope_linear == 8.0f && a.n_eos == 2 && a.eos_ids[1] == 106);
    zq_model m;
    CHECK(zq_model_detect(cfg, "cfg", &m, &err) == ZQ_OK && m.known && m.n_layers == 34);
    char *text = zq_arch_language_config("{\"model_type\": \"llama\"}");
    CHECK(text == NULL);
    /* the towers' tensors are no block's, whatever their names end in */
    const zq_arch_desc *d = zq_arch_find("gemma3_text");
    int layer = -1;
    CHECK(zq_arch_tensor_match(&d->tensors[4], "language_model.model.layers.3.self_attn.q_proj.weight", &layer) &&
          layer == 3);
    CHECK(!zq_arch_tensor_match(&d->tensors[4], "vision_tower.vision_model.encoder.layers.3.self_attn.q_proj.weight",
                                &layer));
    CHECK(zq_arch_is_other_tower("model.multi_modal_projector.mm_input_projection_weight") &&
          !zq_arch_is_other_tower("model.layers.0.my_vision_tower.weight"));
}

/* Phi-3.5's longrope as Hugging Face reads it */
TEST(longrope_as_phi3config_reads_it)
{
    zq_arch a;
    zq_error err;
    const char *lr = "\"partial_rotary_factor\": 0.5, \"max_position_embeddings\": 4096, "
                     "\"original_max_position_embeddings\": 256, \"rope_scaling\": {\"type\": \"longrope\", "
                     "\"short_factor\": [1, 1.5], \"long_factor\": [2, 3]";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s}", lr);
    CHECK(windowed("phi3", cfg, &a, &err) == ZQ_OK && a.rope_longrope == 2 && a.rope_original_max_pos == 256 &&
          a.rope_long[1] == 3.0f && a.rope_short[1] == 1.5f);
    CHECK(fabsf(a.rope_attn_factor - (float)sqrt(1 + log(16.0) / log(256.0))) < 1e-6f); /* factor 4096 / 256 */
    snprintf(cfg, sizeof cfg, "%s, \"attention_factor\": 1.25}", lr);
    CHECK(windowed("phi3", cfg, &a, &err) == ZQ_OK && a.rope_attn_factor == 1.25f);
    snprintf(cfg, sizeof cfg, "%s, \"factor\": 8}", lr); /* transformers 4 and 5 would disagree */
    CHECK(windowed("phi3", cfg, &a, &err) == ZQ_ERR_FORMAT && strstr(err.msg, "rope_scaling.factor 8") != NULL);
    CHECK(windowed("phi3", "\"rope_scaling\": {\"type\": \"longrope\", \"short_factor\": [1, 1], \"long_factor\": "
                   "[1, 2, 3]}, \"original_max_position_embeddings\": 8", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "differ in length") != NULL);
    CHECK(windowed("phi3", "\"rope_scaling\": {\"type\": \"longrope\", \"short_factor\": [1, 1], \"long_factor\": "
                   "[1, 2]}, \"original_max_position_embeddings\": 8", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "2 factors for 8 rotary dimensions") != NULL);
    CHECK(windowed("phi3", "\"rope_scaling\": {\"type\": \"longrope\", \"short_factor\": [1, 1, 1, 1], "
                   "\"long_factor\": [1, 2, 3, 4]}", &a, &err) == ZQ_ERR_FORMAT &&
          strstr(err.msg, "needs original_max_position_embeddings") != NULL);
    /* transformers 5: the same inside rope_parameters */
    CHECK(windowed("phi3", "\"max_position_embeddings\": 64, \"rope_parameters\": {\"rope_type\": \"longrope\", "
                   "\"rope_theta\": 10000.0, \"short_factor\": [1, 1, 1, 1], \"long_factor\": [1, 2, 3, 4], "
                   "\"original_max_position_embeddings\": 16}", &a, &err) == ZQ_OK &&
          a.rope_longrope == 4 && a.rope_original_max_pos == 16 && a.rope_long[3] == 4.0f);
}
