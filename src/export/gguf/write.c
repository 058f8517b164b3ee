/* A .zq file as a GGUF v3 file for llama.cpp. Every tensor is first
 * planned (its GGUF name from the architecture table, its ggml type, its
 * size), so a tensor GGUF cannot hold exactly stops the export before a
 * byte is written; then the header and the tensors are streamed, one
 * tensor's sections in memory at a time.
 *
 * What maps exactly: symmetric INT8 codes are Q8_0's, symmetric INT4 codes
 * are Q4_0's (stored +8), scale-and-minimum INT4 is Q4_1, as long as each
 * 32-wide block along the input lies in one zquant group (groups a multiple
 * of 32 wide, or one group per row) - then the block's scale is that
 * group's FP16 scale, copied. Llama's q and k rows are reordered from
 * Hugging Face's rotate-halves layout to llama.cpp's rotate-pairs one;
 * whole rows move with their scales, nothing is rounded again. */
#include "export/export_impl.h"
#include "export/target.h"
#include "export/gguf/rows.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/files.h"
#include "base/le.h"
#include "base/util.h"
#include "io/atomic.h"
#include "nn/nn.h"
#include "export/gguf/read.h"
#include "zq/meta.h"
#include "zquant/fp16.h"
#include "zquant/tokenizer.h"

#define GGUF_VERSION 3u
#define GGUF_ALIGN 32u
#define QK GGML_QK

#define GGML_NTYPES 9 /* the types zquant writes are below this */
/* llama.cpp's general.file_type for a file whose weights are mostly this type */
static const int ftype_of[GGML_NTYPES] = {[GGML_F32] = 0, [GGML_F16] = 1, [GGML_Q4_0] = 2, [GGML_Q4_1] = 3,
                                          [GGML_Q8_0] = 7};

typedef struct {
    size_t index; /* in the .zq */
    char name[128];
    int type;
    int ndim;
    uint64_t rows, cols; /* as written: rows of cols values (a vector: rows of one value) */
    uint64_t bytes, offset;
    zq_gguf_rows order; /* where llama.cpp wants each row */
    int conv1d; /* an FP16 matrix stored [in, out], written [out, in] */
    int embed;  /* the token embedding: its rows are the vocabulary's size */
    float add;  /* added to every value of an FP vector: 1 for Gemma's norms, which llama.cpp runs as x * w */
    float *values; /* a tensor the .zq does not hold, made here (index SIZE_MAX): rows F32 values */
    /* a mixture's experts stacked as llama.cpp keeps them ([experts][rows][cols],
     * ndim 3): the .zq index of each (rows and bytes are one expert's) */
    size_t *experts;
    int n_experts;
} gg_tensor;

/* Whether codes stored as spec, in rows of `in` inputs, have a ggml type
 * (then *type): llama.cpp's quantized types hold blocks of ggml_block codes
 * along a row, each block with one scale (and min). The --for rule and the
 * export's check both ask this. */
enum { GGUF_FITS, GGUF_WIDTH, GGUF_NO_TYPE, GGUF_GROUPS };

static int gguf_misfit(const zq_qspec *spec, uint64_t in, int *type)
{
    const zq_format *f = zq_format_get(spec->format);
    zq_grid g;
    zq_grid_init(&g, spec, 1, in);
    if (!f->ggml_block || in % (uint64_t)f->ggml_block) return GGUF_WIDTH;
    *type = spec->symmetric ? f->ggml_sym : f->ggml_asym;
    if (*type < 0) return GGUF_NO_TYPE;
    if (g.col_groups > 1 && g.group_cols % (uint64_t)f->ggml_block) return GGUF_GROUPS;
    return GGUF_FITS;
}

zq_status zq_gguf_fit(const char *tensor, uint64_t in, zq_act_mode act, zq_qspec *spec, zq_error *err)
{
    (void)act; /* llama.cpp quantizes a layer's input as its weights' type says, not as the file does */
    int type;
    switch (gguf_misfit(spec, in, &type)) {
    case GGUF_WIDTH: spec->format = ZQ_FORMAT_F16; return ZQ_OK; /* no ggml block fits: kept FP16 */
    case GGUF_NO_TYPE:
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': --for llama.cpp: %s %s has no GGUF type (drop --asym)", tensor,
                       spec->symmetric ? "symmetric" : "asymmetric", zq_format_get(spec->format)->label);
    case GGUF_GROUPS:
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': --for llama.cpp: groups of %u do not line up with GGUF's blocks of 32",
                       tensor, spec->group_size);
    default: return ZQ_OK;
    }
}

/* The ggml type a quantized tensor's codes are, or a refusal. */
static zq_status quantized_type(const zq_file *f, const zq_tensor *t, int *type, zq_error *err)
{
    const zq_grid *g = &t->grid;
    const char *path = zq_file_path(f);
    const char *hint = zq_target_get(ZQ_TARGET_GGUF)->hint;
    switch (gguf_misfit(&t->spec, g->cols, type)) {
    case GGUF_WIDTH:
        return zq_fail(err, ZQ_ERR_FORMAT,
                       "'%s': tensor '%s': %llu inputs per row is not a multiple of 32, which GGUF's quantized types "
                       "need; %s (it keeps such tensors FP16)",
                       path, t->name, (unsigned long long)g->cols, hint);
    case GGUF_GROUPS:
        return zq_fail(err, ZQ_ERR_FORMAT,
                       "'%s': tensor '%s': groups of %llu along the input do not line up with GGUF's blocks of 32; %s "
                       "(groups of 32)",
                       path, t->name, (unsigned long long)g->group_cols, hint);
    case GGUF_NO_TYPE: {
        const zq_format *fmt = zq_format_get(t->spec.format);
        char why[64] = "";
        if (!t->spec.symmetric && fmt->ggml_sym >= 0)
            snprintf(why, sizeof why, " (%s is symmetric)", zq_ggml_type_name(fmt->ggml_sym));
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %s %s has no GGUF type%s; %s%s", path, t->name,
                       t->spec.symmetric ? "symmetric" : "asymmetric", fmt->label, why, hint,
                       t->spec.symmetric ? "" : " (symmetric)");
    }
    default: return ZQ_OK;
    }
}

static zq_status plan_tensor(const zq_file *f, const zq_arch *a, size_t i, gg_tensor *g, int *skip, int *expert,
                               zq_error *err)
{
    const zq_tensor *t = zq_file_tensor(f, i);
    const char *path = zq_file_path(f);
    int layer = -1;
    const zq_arch_tensor *row = zq_export_row(a->desc, t->name, &layer, expert);
    *skip = !row && (zq_arch_is_buffer(t->name) || zq_arch_is_other_tower(t->name));
    if (*skip) return ZQ_OK;
    if (!row || !row->gguf)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' has no llama.cpp name for a %s model", path, t->name,
                       a->model_type);
    memset(g, 0, sizeof *g);
    g->index = i;
    snprintf(g->name, sizeof g->name, row->gguf, layer);
    g->ndim = t->ndim;
    g->embed = row->part == ZQ_PART_EMBED && !(row->flags & ZQ_T_BIAS);
    g->add = zq_part_kind(row->part) == ZQ_KIND_NORM && !(row->flags & ZQ_T_BIAS) ? a->norm_offset : 0;
    if (zq_qspec_quantized(&t->spec)) {
        ZQ_TRY(quantized_type(f, t, &g->type, err));
        g->rows = t->grid.rows, g->cols = t->grid.cols, g->ndim = 2;
    } else if (t->ndim == 1) {
        g->type = GGML_F32, g->rows = (uint64_t)t->shape[0], g->cols = 1;
    } else if (t->ndim == 2) {
        g->conv1d = (row->flags & ZQ_T_CONV1D) != 0;
        g->type = GGML_F16;
        g->rows = (uint64_t)t->shape[g->conv1d], g->cols = (uint64_t)t->shape[!g->conv1d];
    } else {
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' has %d dimensions; GGUF export writes vectors and matrices",
                       path, t->name, t->ndim);
    }
    ZQ_TRY(zq_gguf_rows_init(&g->order, row, g->rows, a->n_heads, a->n_kv_heads, path, t->name, err));
    g->bytes = g->rows * zq_ggml_row_bytes(g->type, g->cols);
    return ZQ_OK;
}

/* ---- the header ------------------------------------------------------------ */

/* zquant.config: config.json's members that the keys below do not carry,
 * as the config gives them. */
static void config_key(zq_gguf_keys *kv, const zq_arch *a, const char *config)
{
    const zq_arch_desc *d = a->desc;
    const char *keys[] = {d->window.key, d->window.use_key, d->window.first_key, d->window.period_key,
                          d->window.layer_types ? "layer_types" : NULL, d->scores.query_key, d->rope_scaling_key,
                          d->rope_base.local_key, d->rope_key, "original_max_position_embeddings", "rope_parameters"};
    char *language = zq_arch_language_config(config); /* a multimodal config's members are its text_config's */
    cJSON *from = cJSON_Parse(language ? language : config), *c = cJSON_CreateObject();
    free(language);
    cJSON_AddStringToObject(c, "model_type", a->model_type);
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const cJSON *v = keys[k] ? cJSON_GetObjectItemCaseSensitive(from, keys[k]) : NULL;
        if (v) cJSON_AddItemToObject(c, keys[k], cJSON_Duplicate(v, 1));
    }
    char *text = cJSON_PrintUnformatted(c);
    if (text) zq_gguf_kv_str(kv, ZQ_GGUF_CONFIG_KEY, text);
    else kv->oom = 1;
    free(text);
    cJSON_Delete(c);
    cJSON_Delete(from);
}

static void arch_keys(zq_gguf_keys *kv, const zq_arch *a, const char *arch, const char *config)
{
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    zq_gguf_kv_u32(kv, KEY("context_length"), (uint32_t)a->max_pos);
    zq_gguf_kv_u32(kv, KEY("embedding_length"), (uint32_t)a->hidden);
    zq_gguf_kv_u32(kv, KEY("block_count"), (uint32_t)a->n_layers);
    zq_gguf_kv_u32(kv, KEY("feed_forward_length"), (uint32_t)a->inter);
    zq_gguf_kv_u32(kv, KEY("attention.head_count"), (uint32_t)a->n_heads);
    if (a->n_kv_heads != a->n_heads) zq_gguf_kv_u32(kv, KEY("attention.head_count_kv"), (uint32_t)a->n_kv_heads);
    if (a->desc->head_dim_key) { /* llama.cpp's default is hidden / heads, Qwen3's is not */
        zq_gguf_kv_u32(kv, KEY("attention.key_length"), (uint32_t)a->head_dim);
        zq_gguf_kv_u32(kv, KEY("attention.value_length"), (uint32_t)a->head_dim);
    }
    if (a->rms_norm) zq_gguf_kv_f32(kv, KEY("attention.layer_norm_rms_epsilon"), a->norm_eps);
    else zq_gguf_kv_f32(kv, KEY("attention.layer_norm_epsilon"), a->norm_eps);
    if (a->rotary_dims) {
        zq_gguf_kv_u32(kv, KEY("rope.dimension_count"), (uint32_t)a->rotary_dims);
        zq_gguf_kv_f32(kv, KEY("rope.freq_base"), a->rope_theta);
        if (a->rope_local_theta > 0) zq_gguf_kv_f32(kv, KEY("rope.freq_base_swa"), a->rope_local_theta);
    }
    if (a->rope_linear > 0) { /* llama.cpp: not on the layers of freq_base_swa */
        zq_gguf_kv_str(kv, KEY("rope.scaling.type"), "linear");
        zq_gguf_kv_f32(kv, KEY("rope.scaling.factor"), a->rope_linear);
    }
    zq_gguf_kv_u32(kv, KEY("vocab_size"), (uint32_t)a->vocab);
    if (a->rope_factor > 0) { /* llama.cpp runs rope_freqs.weight; zquant reads these back (source.c) */
        char s[256];
        snprintf(s, sizeof s, "{\"rope_type\": \"llama3\", \"factor\": %.9g, \"low_freq_factor\": %.9g, "
                 "\"high_freq_factor\": %.9g, \"original_max_position_embeddings\": %d}", a->rope_factor,
                 a->rope_low_freq, a->rope_high_freq, a->rope_original_max_pos);
        zq_gguf_kv_str(kv, ZQ_GGUF_ROPE_SCALING_KEY, s);
    }
    if (a->rope_longrope) { /* its factors are tensors (rope_factors) */
        zq_gguf_kv_f32(kv, KEY("rope.scaling.attn_factor"), a->rope_attn_factor);
        zq_gguf_kv_u32(kv, KEY("rope.scaling.original_context_length"), (uint32_t)a->rope_original_max_pos);
    }
    if (a->desc->parallel_key) zq_gguf_kv_bool(kv, KEY("use_parallel_residual"), a->parallel);
    if (a->n_experts) { /* llama.cpp renormalizes the chosen experts' weights (see llama_cpp_runs) */
        zq_gguf_kv_u32(kv, KEY("expert_count"), (uint32_t)a->n_experts);
        zq_gguf_kv_u32(kv, KEY("expert_used_count"), (uint32_t)a->moe_topk);
        if (a->desc->moe.inter_key) zq_gguf_kv_u32(kv, KEY("expert_feed_forward_length"), (uint32_t)a->moe_inter);
    }
    /* no window where llama.cpp applies one: a window of the whole context */
    if (a->window || zq_gguf_runs_windows(arch))
        zq_gguf_kv_u32(kv, KEY("attention.sliding_window"), (uint32_t)(a->window ? a->window : a->max_pos));
    if (a->window) zq_gguf_kv_u32(kv, KEY("attention.sliding_window_pattern"), (uint32_t)a->window_period);
    if (a->attn_softcap > 0) zq_gguf_kv_f32(kv, KEY("attn_logit_softcapping"), a->attn_softcap);
    if (a->final_softcap > 0) zq_gguf_kv_f32(kv, KEY("final_logit_softcapping"), a->final_softcap);
    config_key(kv, a, config);
#undef KEY
}

/* What llama.cpp's architecture cannot run as the model does: refused
 * (gemma2's and gemma3's query scale and caps are fixed, their window
 * pattern starts at layer 0; its mixtures have experts in every block), or,
 * for a window llama.cpp ignores, a note (unless note is NULL): the two
 * agree while the context is no longer than the window. */
static zq_status llama_cpp_runs(const zq_arch *a, const char *arch, const char *path, char *note, size_t size,
                                zq_error *err)
{
    /* llama.cpp's gemma2 and gemma3: queries by 1/sqrt(hidden / heads) for
     * the 27B (by its layer count), else 1/sqrt(head_dim); gemma2 always
     * caps scores and logits, gemma3 never its scores */
    static const struct {
        const char *arch;
        int big_layers, caps;
    } gemma[] = {{"gemma2", 46, 1}, {"gemma3", 62, 0}};
    for (size_t k = 0; k < sizeof gemma / sizeof *gemma; k++) {
        if (strcmp(arch, gemma[k].arch)) continue;
        int q = a->n_layers == gemma[k].big_layers ? a->hidden / a->n_heads : a->head_dim;
        if (fabsf(a->attn_scale * sqrtf((float)q) - 1.0f) > 1e-6f)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': query_pre_attn_scalar %g: llama.cpp's %s scales queries by "
                           "1/sqrt(%d) for %d layers, and no GGUF key changes it", path,
                           1.0 / ((double)a->attn_scale * a->attn_scale), arch, q, a->n_layers);
        if (gemma[k].caps && (!(a->attn_softcap > 0) || !(a->final_softcap > 0)))
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': llama.cpp's gemma2 soft-caps scores and logits; this model does "
                           "not cap its %s", path, a->attn_softcap > 0 ? "logits" : "scores");
        if (!gemma[k].caps && a->attn_softcap > 0)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': attn_logit_softcapping %g: llama.cpp's %s does not cap scores",
                           path, a->attn_softcap, arch);
        if (a->window && a->window_first)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': layer_types: layers before %d attend fully, and llama.cpp's "
                           "%s has no key for that", path, a->window_first, arch);
    }
    /* llama.cpp's llama (Mixtral) and qwen3moe: experts in every block,
     * their weights renormalized */
    for (int l = 0; a->n_experts && l < a->n_layers; l++)
        if (!zq_arch_layer_moe(a, l))
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': block %d is dense (by %s), and llama.cpp's %s has experts in "
                           "every block", path, l,
                           a->moe_step > 1 ? a->desc->moe.step_key : a->desc->moe.dense_layers_key, arch);
    if (a->n_experts && !a->moe_norm_topk)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': %s is false, and llama.cpp's %s renormalizes the chosen experts' "
                       "weights", path, a->desc->moe.norm_topk_key, arch);
    if (note && a->rope_longrope) {
        size_t at = strlen(note);
        snprintf(note + at, size - at, "%slongrope: llama.cpp takes the long factors when the context it runs with "
                 "exceeds %d positions, Hugging Face once a sequence does: the two agree when both are longer than "
                 "%d, or both at most", at ? "; " : "", a->rope_original_max_pos, a->rope_original_max_pos);
    }
    if (!note || !a->window || zq_gguf_runs_windows(arch)) return ZQ_OK;
    size_t at = strlen(note);
    snprintf(note + at, size - at, "%sllama.cpp's %s attends over the whole context, the model's layers over a sliding "
             "window of %d: run it with a context of at most %d (-c %d)", at ? "; " : "", arch, a->window, a->window,
             a->window);
    return ZQ_OK;
}

/* general.*: what the file is and what made it. */
static void general_keys(zq_gguf_keys *kv, const zq_export_opts *o, zq_file *f, const char *arch, int ftype)
{
    const char *base = strrchr(o->input, '/') ? strrchr(o->input, '/') + 1 : o->input;
    zq_gguf_kv_str(kv, "general.architecture", arch);
    zq_gguf_kv_str(kv, "general.name", o->name ? o->name : base);
    zq_gguf_kv_str(kv, "general.quantized_by", "zquant " ZQ_VERSION);
    cJSON *meta = cJSON_Parse(zq_file_metadata(f));
    char *recipe = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(meta, "recipe"));
    char desc[2048];
    snprintf(desc, sizeof desc, "exported by zquant from %s; recipe %s", base, recipe ? recipe : "{}");
    zq_gguf_kv_str(kv, "general.description", desc);
    free(recipe);
    cJSON_Delete(meta);
    zq_gguf_kv_u32(kv, "general.file_type", (uint32_t)ftype);
    zq_gguf_kv_u32(kv, "general.quantization_version", 2);
    zq_gguf_kv_u32(kv, "general.alignment", GGUF_ALIGN);
}

static void put_tensor_info(zq_gguf_keys *kv, const gg_tensor *g)
{
    zq_gguf_put_str(kv, g->name, strlen(g->name));
    zq_gguf_put_int(kv, (uint64_t)(g->experts ? 3 : g->ndim), 4);
    zq_gguf_put_int(kv, g->ndim == 1 ? g->rows : g->cols, 8); /* ne[0]: the contiguous dimension */
    if (g->ndim == 2) zq_gguf_put_int(kv, g->rows, 8);
    if (g->experts) zq_gguf_put_int(kv, (uint64_t)g->n_experts, 8);
    zq_gguf_put_int(kv, (uint64_t)g->type, 4);
    zq_gguf_put_int(kv, g->offset, 8);
}

/* ---- the data ---------------------------------------------------------------- */

/* One GGUF row of a quantized tensor from source row sr of its .zq codes. */
static void quantized_row(const zq_tensor *t, int type, const uint8_t *codes, const uint16_t *scale,
                          const uint16_t *min, uint64_t sr, unsigned char *out)
{
    const zq_grid *g = &t->grid;
    const uint8_t *packed = codes + sr * g->row_bytes;
    for (uint64_t b = 0; b < g->cols / QK; b++) {
        zq_group grp = zq_grid_group(g, sr, b * QK / g->group_cols);
        zq_store_le16(out, scale[grp.index]);
        if (type == GGML_Q8_0) {
            memcpy(out + 2, packed + b * QK, QK);
            out += 34;
            continue;
        }
        /* zquant: element 2k low nibble of byte k; ggml: element j low and
         * j+16 high nibble of byte j; Q4_0 stores two's complement codes + 8,
         * which flips each nibble's top bit */
        const uint8_t *lo = packed + b * QK / 2, *hi = lo + QK / 4;
        unsigned char *qs = out + 2, flip = type == GGML_Q4_0 ? 0x88 : 0;
        if (type == GGML_Q4_1) {
            zq_store_le16(out + 2, min[grp.index]);
            qs += 2;
        }
        for (unsigned k = 0; k < QK / 4; k++) {
            qs[2 * k] = (unsigned char)(((lo[k] & 15) | (hi[k] & 15) << 4) ^ flip);
            qs[2 * k + 1] = (unsigned char)(((lo[k] >> 4) | (hi[k] & 0xF0)) ^ flip);
        }
        out = qs + QK / 2;
    }
}

static void fp_row(const gg_tensor *g, const uint16_t *data, uint64_t sr, unsigned char *out)
{
    if (g->type == GGML_F32) { /* a vector, one value per row */
        zq_store_lef32(out, zq_f16_to_f32(data[sr]) + g->add);
    } else if (g->conv1d) {
        for (uint64_t c = 0; c < g->cols; c++) zq_store_le16(out + 2 * c, data[c * g->rows + sr]);
    } else {
        memcpy(out, data + sr * g->cols, g->cols * 2); /* FP16 is little-endian in both */
    }
}

typedef struct {
    zq_atomic *out;
    unsigned char *buf;
    size_t len, cap;
} sink;

static zq_status sink_flush(sink *s, zq_error *err)
{
    zq_status st = s->len ? zq_atomic_write(s->out, s->buf, s->len, err) : ZQ_OK;
    s->len = 0;
    return st;
}

/* llama.cpp's form of rope scaling: one factor per frequency, which its
 * rope divides the angle by. Llama 3's (convert_hf_to_gguf's rope_freqs):
 * Hugging Face's scaled frequency is the plain one over it; longrope's
 * (Phi-3's rope_factors_long and _short): its factors as they are, which
 * llama.cpp picks by the context it runs with. A vector F32 tensor, no
 * .zq tensor's. */
static zq_status rope_factors(const zq_arch *a, const char *name, gg_tensor *g, zq_error *err)
{
    int half = a->rotary_dims / 2;
    memset(g, 0, sizeof *g);
    g->index = SIZE_MAX;
    snprintf(g->name, sizeof g->name, "%s", name);
    g->type = GGML_F32;
    g->ndim = 1;
    g->rows = (uint64_t)half;
    g->cols = 1;
    g->bytes = (uint64_t)half * 4;
    g->order.kind = ROWS_SAME;
    g->order.rows = g->rows;
    if (!(g->values = malloc((size_t)half * sizeof *g->values))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < half; i++) {
        float inv = (float)(1.0 / pow((double)a->rope_theta, (double)(2 * i) / a->rotary_dims));
        g->values[i] = a->rope_longrope ? (strstr(name, "long") ? a->rope_long : a->rope_short)[i]
                                        : inv / zq_rope_llama3(a, inv);
    }
    return ZQ_OK;
}

/* The rows of .zq tensor index as g lays them out, into the sink. */
static zq_status write_rows(zq_file *f, const gg_tensor *g, size_t index, sink *s, zq_error *err)
{
    const zq_tensor *t = zq_file_tensor(f, index);
    const void *q = NULL, *sc = NULL, *mn = NULL, *data = NULL;
    size_t len;
    if (zq_qspec_quantized(&t->spec)) {
        ZQ_TRY(zq_file_section(f, index, ZQ_SEC_Q, &q, &len, err));
        ZQ_TRY(zq_file_section(f, index, ZQ_SEC_SCALE, &sc, &len, err));
        if (!t->spec.symmetric) ZQ_TRY(zq_file_section(f, index, ZQ_SEC_MIN, &mn, &len, err));
    } else if (g->rows) {
        ZQ_TRY(zq_file_section(f, index, ZQ_SEC_DATA, &data, &len, err));
    }
    uint64_t row_bytes = zq_ggml_row_bytes(g->type, g->cols);
    for (uint64_t gr = 0; gr < g->rows; gr++) {
        if (s->len + row_bytes > s->cap) {
            ZQ_TRY(sink_flush(s, err));
            uint64_t done = zq_gguf_rows_done(&g->order, gr); /* source rows no later row reads */
            if (q) zq_file_drop(f, index, ZQ_SEC_Q, done * t->grid.row_bytes);
            else if (!g->conv1d && g->type == GGML_F16) zq_file_drop(f, index, ZQ_SEC_DATA, done * g->cols * 2);
        }
        unsigned char *dst = s->buf + s->len; /* the sink holds the longest row (see zq_export_gguf) */
        if (q) quantized_row(t, g->type, q, sc, mn, zq_gguf_rows_source(&g->order, gr), dst);
        else fp_row(g, data, zq_gguf_rows_source(&g->order, gr), dst);
        s->len += row_bytes;
    }
    zq_file_release(f, index);
    return ZQ_OK;
}

static zq_status write_tensor(zq_file *f, const gg_tensor *g, sink *s, zq_error *err)
{
    if (g->values) {
        size_t padded = (size_t)zq_align_up(g->bytes, GGUF_ALIGN);
        if (s->len + padded > s->cap) ZQ_TRY(sink_flush(s, err));
        memset(s->buf + s->len, 0, padded);
        for (uint64_t r = 0; r < g->rows; r++) zq_store_lef32(s->buf + s->len + 4 * r, g->values[r]);
        s->len += padded;
        return ZQ_OK;
    }
    for (int e = 0; e < (g->experts ? g->n_experts : 1); e++) /* an expert's rows after another's */
        ZQ_TRY(write_rows(f, g, g->experts ? g->experts[e] : g->index, s, err));
    static const unsigned char zeros[GGUF_ALIGN];
    size_t pad = (size_t)(zq_align_up(g->bytes, GGUF_ALIGN) - g->bytes);
    if (s->len + pad > s->cap) ZQ_TRY(sink_flush(s, err));
    memcpy(s->buf + s->len, zeros, pad);
    s->len += pad;
    return ZQ_OK;
}

/* ---- the whole file ------------------------------------------------------------ */

/* gt[n], just planned, is expert `expert` of a stack: into the stack of its
 * name among gt[0..n) (*stacked), else it starts that stack. Every expert
 * of a stack must have its type and shape: llama.cpp runs them as one. */
static zq_status stack_expert(zq_file *f, const zq_arch *a, gg_tensor *gt, size_t n, int expert, int *stacked,
                              zq_error *err)
{
    gg_tensor *g = &gt[n], *into = NULL;
    for (size_t k = 0; k < n && !into; k++)
        if (gt[k].experts && !strcmp(gt[k].name, g->name)) into = &gt[k];
    *stacked = into != NULL;
    if (!into) {
        into = g;
        if (!(g->experts = malloc((size_t)a->n_experts * sizeof *g->experts)))
            return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        for (int e = 0; e < a->n_experts; e++) g->experts[e] = SIZE_MAX;
        g->n_experts = a->n_experts;
    } else if (into->type != g->type || into->rows != g->rows || into->cols != g->cols) {
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is stored as %s, another expert of its layer as %s: "
                       "llama.cpp stacks them into one tensor of one type", zq_file_path(f),
                       zq_file_tensor(f, g->index)->name, zq_ggml_type_name(g->type), zq_ggml_type_name(into->type));
    }
    into->experts[expert] = g->index;
    return ZQ_OK;
}

static zq_status plan(zq_file *f, const zq_arch *a, gg_tensor *gt, size_t *n,
                      zq_export_report *r, int *ftype, int *embed_rows, zq_error *err)
{
    uint64_t by_type[GGML_NTYPES] = {0}, offset = 0;
    size_t count[GGML_NTYPES] = {0};
    *n = 0;
    *embed_rows = a->vocab;
    size_t towers = 0;
    for (size_t i = 0; i < zq_file_count(f); i++) {
        int skip, expert = -1;
        ZQ_TRY(plan_tensor(f, a, i, &gt[*n], &skip, &expert, err));
        towers += skip && zq_arch_is_other_tower(zq_file_tensor(f, i)->name);
        if (skip) continue;
        if (expert >= 0) { /* into its stack, the first of them making it */
            int stacked;
            ZQ_TRY(stack_expert(f, a, gt, *n, expert, &stacked, err));
            if (stacked) continue;
        }
        gg_tensor *g = &gt[*n];
        if (g->embed) *embed_rows = (int)g->rows;
        (*n)++;
    }
    for (size_t k = 0; k < *n; k++) { /* sizes known now that every expert is in its stack */
        gg_tensor *g = &gt[k];
        for (int e = 0; g->experts && e < g->n_experts; e++)
            if (g->experts[e] == SIZE_MAX)
                return zq_fail(err, ZQ_ERR_FORMAT, "'%s': no expert %d for '%s'", zq_file_path(f), e, g->name);
        if (g->experts) g->bytes *= (uint64_t)g->n_experts;
        g->offset = offset;
        offset += zq_align_up(g->bytes, GGUF_ALIGN);
        by_type[g->type] += g->bytes;
        count[g->type]++;
        r->quantized += g->type >= GGML_Q4_0;
    }
    static const char *const llama3[] = {"rope_freqs.weight", NULL};
    static const char *const longrope[] = {"rope_factors_long.weight", "rope_factors_short.weight", NULL};
    const char *const *extra = a->rope_factor > 0 ? llama3 : a->rope_longrope ? longrope : NULL;
    for (int k = 0; extra && extra[k]; k++) { /* room for them: gt holds two more than the .zq's tensors */
        gg_tensor *g = &gt[*n];
        ZQ_TRY(rope_factors(a, extra[k], g, err));
        g->offset = offset;
        offset += zq_align_up(g->bytes, GGUF_ALIGN);
        by_type[g->type] += g->bytes;
        count[g->type]++;
        (*n)++;
    }
    r->tensors = *n;
    if (towers) { /* llama.cpp reads a multimodal model's other towers from an mmproj file of its own */
        size_t len = strlen(r->note);
        snprintf(r->note + len, sizeof r->note - len, "%sthe language model alone: %zu tensors of the vision tower "
                 "and projector are left out (llama.cpp takes them as an mmproj GGUF)", len ? "; " : "", towers);
    }
    int best = GGML_F16;
    for (int k = GGML_Q4_0; k < GGML_NTYPES; k++)
        if (by_type[k] && by_type[k] > (best >= GGML_Q4_0 ? by_type[best] : 0)) best = k;
    *ftype = ftype_of[best];
    size_t at = 0;
    r->summary[0] = 0;
    for (int k = GGML_NTYPES - 1; k >= 0; k--)
        if (count[k])
            at += (size_t)snprintf(r->summary + at, at < sizeof r->summary ? sizeof r->summary - at : 0, "%s%s x %zu",
                                   at ? ", " : "", zq_ggml_type_name(k), count[k]);
    return ZQ_OK;
}

typedef struct {
    char *name, *data; /* NULL: no vocabulary */
    size_t len;
} vocab_file;

/* --tokenizer, else the tokenizer found as the model's files are. */
static zq_status find_vocab(const zq_export_opts *o, vocab_file *v, zq_error *err)
{
    memset(v, 0, sizeof *v);
    if (o->no_vocab) return ZQ_OK;
    if (!o->tokenizer) ZQ_TRY(zq_export_find_file(o, zq_tokenizer_files, &v->name, &v->data, &v->len, err));
    else if (!(v->name = strdup(o->tokenizer))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    else ZQ_TRY(zq_read_input_file(o->tokenizer, (size_t)256 << 20, &v->data, &v->len, err));
    if (!v->data)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': no tokenizer for the GGUF vocabulary (none carried in it, none beside "
                       "it): give --tokenizer or --from the model folder (or --no-vocab)", o->input);
    return ZQ_OK;
}

static zq_status header(const zq_export_opts *o, zq_file *f, const zq_arch *a, const gg_tensor *gt, size_t n,
                        int ftype, int embed_rows, const vocab_file *tok, zq_gguf_keys *kv, zq_export_report *r,
                        zq_error *err)
{
    const char *arch = a->desc->gguf_arch;
    zq_gguf_keys meta = {0};
    general_keys(&meta, o, f, arch, ftype);
    arch_keys(&meta, a, arch, zq_file_config(f));
    zq_status st = ZQ_OK;
    if (tok->data)
        st = zq_gguf_vocab(&meta, tok->name, tok->data, tok->len, zq_file_config(f), a->model_type, embed_rows, r->note,
                           sizeof r->note, err);
    else
        zq_gguf_kv_str(&meta, "tokenizer.ggml.model", "no_vocab");
    if (st == ZQ_OK) st = llama_cpp_runs(a, arch, o->input, r->note, sizeof r->note, err);
    if (st != ZQ_OK) {
        zq_gguf_kv_free(&meta);
        return st;
    }
    zq_gguf_put_int(kv, 0x46554747u, 4); /* "GGUF" */
    zq_gguf_put_int(kv, GGUF_VERSION, 4);
    zq_gguf_put_int(kv, n, 8);
    zq_gguf_put_int(kv, meta.count, 8);
    zq_gguf_put_bytes(kv, meta.p, meta.len);
    int oom = meta.oom;
    zq_gguf_kv_free(&meta);
    for (size_t i = 0; i < n; i++) put_tensor_info(kv, &gt[i]);
    while (kv->len % GGUF_ALIGN) zq_gguf_put_int(kv, 0, 1);
    return oom || kv->oom ? zq_fail(err, ZQ_ERR_NOMEM, "out of memory") : ZQ_OK;
}

static void free_plan(gg_tensor *gt, size_t n)
{
    for (size_t i = 0; gt && i < n; i++) free(gt[i].values), free(gt[i].experts);
    free(gt);
}

zq_status zq_export_gguf(const zq_export_opts *o, zq_file *f, zq_export_report *r, zq_error *err)
{
    zq_arch a;
    ZQ_TRY(zq_arch_from_config(zq_file_config(f), zq_file_path(f), &a, err));
    if (!a.desc->gguf_arch)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': llama.cpp has no architecture for %s models", o->input, a.model_type);
    for (const zq_arch_tensor *t = a.desc->tensors; t->name; t++)
        if (t->part == ZQ_PART_MLM_DENSE)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': GGUF export of %s models is not supported yet (their masked-LM "
                           "head has no llama.cpp tensors)", o->input, a.model_type);
    ZQ_TRY(llama_cpp_runs(&a, a.desc->gguf_arch, o->input, NULL, 0, err)); /* before any work */
    vocab_file tok;
    zq_status st = find_vocab(o, &tok, err);
    gg_tensor *gt = calloc(zq_file_count(f) + 2, sizeof *gt);
    if (st == ZQ_OK && !gt) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    size_t n = 0;
    int ftype = 0, embed_rows = 0;
    zq_gguf_keys head = {0};
    if (st == ZQ_OK) st = plan(f, &a, gt, &n, r, &ftype, &embed_rows, err);
    if (st == ZQ_OK) st = header(o, f, &a, gt, n, ftype, embed_rows, &tok, &head, r, err);
    free(tok.name), free(tok.data);
    zq_atomic out;
    if (st == ZQ_OK) st = zq_atomic_open(&out, o->output, o->force, err);
    if (st != ZQ_OK) {
        zq_gguf_kv_free(&head);
        free_plan(gt, n);
        return st;
    }
    size_t cap = 1 << 20; /* at least the longest row, so a row is always built in place */
    for (size_t i = 0; i < n; i++) {
        size_t need = (size_t)zq_ggml_row_bytes(gt[i].type, gt[i].cols) + GGUF_ALIGN; /* a row, then padding */
        cap = need > cap ? need : cap;
    }
    sink s = {&out, malloc(cap), 0, cap};
    st = s.buf ? zq_atomic_write(&out, head.p, head.len, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < n; i++) total += gt[i].bytes;
    for (size_t i = 0; st == ZQ_OK && i < n; i++) {
        st = write_tensor(f, &gt[i], &s, err);
        done += gt[i].bytes;
        if (o->progress) o->progress(o->progress_ctx, done, total, gt[i].name);
    }
    if (st == ZQ_OK) st = sink_flush(&s, err);
    r->bytes = head.len + (n ? gt[n - 1].offset + zq_align_up(gt[n - 1].bytes, GGUF_ALIGN) : 0);
    r->files = 1;
    free(s.buf);
    zq_gguf_kv_free(&head);
    free_plan(gt, n);
    if (st == ZQ_OK) return zq_atomic_commit(&out, err);
    zq_atomic_abort(&out);
    return st;
}
