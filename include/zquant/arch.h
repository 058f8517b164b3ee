/* What zquant knows about each architecture, in one table: per model type,
 * where config.json keeps the sizes, what sets its block apart, and every
 * tensor with its Hugging Face name, where it goes in the model, how it is
 * laid out and what llama.cpp calls it. The quantizer's roles, the loader
 * and the exporters all read this table; adding an architecture is adding a
 * row (and a block forward/backward if its block is new).
 *
 * Engine API: what zquant's own commands build on; it may change between
 * versions (the stable API is error, source, quant, zq, quantize, export). */
#ifndef ZQUANT_ARCH_H
#define ZQUANT_ARCH_H

#include "zquant/error.h"
#include "zquant/source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the table ------------------------------------------------------------- */

/* Where a tensor goes. The first seven are a block's Linears, numbered as
 * their activation-calibration slots. */
typedef enum {
    ZQ_PART_Q, ZQ_PART_K, ZQ_PART_V, ZQ_PART_O, ZQ_PART_UP, ZQ_PART_GATE, ZQ_PART_DOWN,
    ZQ_PART_QKV,                   /* q, k and v fused in one Linear */
    ZQ_PART_GATE_UP,               /* gate and up fused in one Linear, gate's rows first (Phi-3) */
    ZQ_PART_NORM1, ZQ_PART_NORM2,  /* a block's norms */
    ZQ_PART_Q_NORM, ZQ_PART_K_NORM, /* RMSNorm of each query and key head (Qwen3) */
    ZQ_PART_POST_NORM1, ZQ_PART_POST_NORM2, /* on the attention's and the MLP's outputs (Gemma 2) */
    ZQ_PART_ROUTER,                 /* a mixture of experts' router: expert logits of a token */
    ZQ_PART_EXP_GATE, ZQ_PART_EXP_UP, ZQ_PART_EXP_DOWN, /* each expert's SwiGLU MLP */
    ZQ_PART_EMBED, ZQ_PART_POS, ZQ_PART_TYPES, ZQ_PART_EMB_NORM, ZQ_PART_PROJ_IN, /* before the blocks */
    ZQ_PART_FINAL_NORM, ZQ_PART_PROJ_OUT, ZQ_PART_MLM_DENSE, ZQ_PART_MLM_NORM, ZQ_PART_HEAD /* after them */
} zq_part;

#define ZQ_LINEAR_SLOTS 7 /* ZQ_PART_Q .. ZQ_PART_DOWN */

/* What a tensor is for: attention, MLP, embedding, norm, the LM head, or
 * an MoE router (kept FP16 by default, as the LM head). */
typedef enum { ZQ_KIND_ATTENTION, ZQ_KIND_MLP, ZQ_KIND_EMBEDDING, ZQ_KIND_NORM, ZQ_KIND_HEAD, ZQ_KIND_ROUTER } zq_kind;
zq_kind zq_part_kind(zq_part p);
/* A block part (layer-numbered name), or one outside the blocks. */
int zq_part_in_block(zq_part p);

enum {
    ZQ_T_BIAS = 1,         /* the part's bias, not its weight */
    ZQ_T_OPTIONAL = 2,     /* may be absent (a tied head, a bias some variants have) */
    ZQ_T_CONV1D = 4,       /* stored [in, out] (GPT-2's Conv1D), not [out, in] */
    ZQ_T_QKV_PER_HEAD = 8, /* fused rows grouped per head, [h][q|k|v][d] (NeoX) */
    ZQ_T_ROPE_HALVES = 16, /* rows of q or k rotated by halves (Hugging Face); llama.cpp rotates pairs */
    ZQ_T_EXPERT = 32       /* one per expert: the name's second %d is the expert */
};

typedef struct {
    zq_part part;
    unsigned flags;   /* ZQ_T_* */
    const char *name; /* Hugging Face's, after any wrapper prefix; %d: the block */
    const char *gguf; /* llama.cpp's, NULL where it has none */
} zq_arch_tensor;

/* How rotary positions are configured. */
typedef enum { ZQ_ROPE_NONE, ZQ_ROPE_FULL, ZQ_ROPE_PCT, ZQ_ROPE_DIM } zq_rope_kind;

enum {
    ZQ_ARCH_PRE_LN = 1,       /* norm before each sublayer (else after the residual) */
    ZQ_ARCH_PARALLEL = 2,     /* attention and MLP read the same input */
    ZQ_ARCH_SHARED_NORM = 4,  /* ... through one norm */
    ZQ_ARCH_RMS_NORM = 8,     /* RMSNorm instead of LayerNorm */
    ZQ_ARCH_GATED_MLP = 16,   /* down(act(gate(x)) * up(x)): SwiGLU, GeGLU */
    ZQ_ARCH_ROPE_PAIRS = 32,  /* rotate pairs (2i, 2i+1) instead of halves */
    ZQ_ARCH_CAUSAL = 64,
    ZQ_ARCH_FINAL_NORM = 128,
    ZQ_ARCH_TOKEN_TYPES = 256, /* add token type 0's embedding */
    ZQ_ARCH_MLM_HEAD = 512,    /* dense + activation + LayerNorm before the decoder */
    ZQ_ARCH_QK_NORM = 1024,    /* q and k RMS-normed per head before rotary positions */
    ZQ_ARCH_POST_NORMS = 2048, /* attention and MLP outputs normed before their residual add (Gemma 2) */
    ZQ_ARCH_NORM_PLUS_ONE = 4096, /* RMSNorm scales by 1 + w (Gemma) */
    ZQ_ARCH_EMBED_SCALE = 8192 /* token embeddings times sqrt(hidden) (Gemma) */
};

typedef struct {
    const char *model_types[4]; /* config.json's model_type values this row describes */
    const char *gguf_arch;      /* llama.cpp's general.architecture, NULL: none */
    unsigned flags;             /* ZQ_ARCH_*, as Hugging Face defaults them */
    /* config.json keys of the sizes every forward pass needs, and Hugging
     * Face's defaults for those that may be absent */
    const char *hidden_key, *heads_key, *layers_key, *inter_key, *max_pos_key, *eps_key, *act_key;
    int inter_per_hidden; /* no intermediate size: this many times hidden; 0: required */
    int max_pos_default;
    int head_dim_default; /* 0: hidden / heads */
    double eps_default;
    const char *act_default;
    int pos_offset; /* learned positions start at this row (OPT: 2) */
    /* keys only some architectures have; NULL where this one has none */
    const char *kv_heads_key, *head_dim_key, *rope_theta_key;
    zq_rope_kind rope;
    const char *rope_key; /* ZQ_ROPE_PCT: fraction of a head, ZQ_ROPE_DIM: dimensions */
    double rope_default;  /* ZQ_ROPE_PCT: the fraction when absent (ZQ_ROPE_DIM: a whole head) */
    const char *parallel_key, *pre_ln_key, *no_final_norm_key, *emb_dim_key;
    const char *rope_scaling_key; /* rope_scaling: the kinds zquant runs (llama3), others refused */
    const zq_arch_tensor *tensors; /* terminated by a NULL name */
    /* what Hugging Face's checkpoints put before the names of tensors that
     * are not the LM head ("model."); NULL: nothing */
    const char *prefix;
    /* sliding-window attention: the window's key (NULL: none; JSON null: no
     * window) and its default; use_key, when the row has one, must be true
     * for the window to apply (Qwen2's use_sliding_window); first_key: the
     * layers before it attend fully (Qwen2's max_window_layers); period: every
 * period-th layer attends fully (Gemma 2: 2, Gemma 3's sliding_window_pattern:
 * 6, see zq_arch); layer_types:
     * an explicit "layer_types" list overrides the rule (Mistral ignores it,
     * as its modeling file does) */
    struct {
        const char *key, *use_key, *first_key, *period_key;
        int size_default, first_default, period_default, layer_types;
    } window;
    /* Gemma 2's scores and logits: queries scaled by query_key^-1/2 instead
     * of head_dim^-1/2; scores and final logits soft-capped, cap * tanh(x /
     * cap) (JSON null: not capped); NULL keys: none of it */
    struct {
        const char *query_key, *attn_cap_key, *final_cap_key;
        double query_default, attn_cap_default, final_cap_default;
    } scores;
    /* rotary bases: rope_theta's default (0: 10000), and the sliding layers'
     * own base where the model has one (Gemma 3's rope_local_base_freq,
     * never scaled); NULL: they share rope_theta */
    struct {
        double theta_default;
        const char *local_key;
        double local_default;
    } rope_base;
    /* mixture of experts: the keys of the expert count, experts per token,
     * an expert's width (NULL: intermediate_size), whether the chosen
     * experts' weights are renormalized (NULL: always, as Mixtral), the
     * layer step of sparse blocks (NULL: every block is), the list of
     * blocks that are dense all the same; experts_key NULL: none */
    struct {
        const char *experts_key, *topk_key, *inter_key, *norm_topk_key, *step_key, *dense_layers_key;
        int topk_default, inter_default;
    } moe;
    /* the configuration class's defaults of keys the row requires
     * elsewhere (sizes), as JSON members a config may leave out, as
     * multimodal configs' text_config do; NULL: none */
    const char *class_defaults;
} zq_arch_desc;

/* The row for a config.json model_type, NULL when zquant has none. */
const zq_arch_desc *zq_arch_find(const char *model_type);
/* The rows, terminated by NULL model_types[0]. */
extern const zq_arch_desc zq_arch_table[];

/* Whether name (a checkpoint's) is the row entry t for some block (its
 * number in *layer) or outside blocks: equal to t's name, or ending in "."
 * followed by it, so any wrapper prefix ("model.", "transformer.") fits. */
int zq_arch_tensor_match(const zq_arch_tensor *t, const char *name, int *layer);
/* ... and for a ZQ_T_EXPERT entry the expert's number in *expert (may be NULL) */
int zq_arch_tensor_match_at(const zq_arch_tensor *t, const char *name, int *layer, int *expert);

/* Whether name is a buffer some checkpoints save beside the parameters
 * (GPT-2's causal mask "attn.bias", rotary "inv_freq", "position_ids"):
 * every runtime recomputes it, so exporters leave it out. */
int zq_arch_is_buffer(const char *name);

/* ---- a model's configuration, for the forward pass -------------------------- */

typedef enum { ZQ_GELU_TANH, ZQ_GELU_ERF, ZQ_RELU, ZQ_SILU } zq_mlp_fn;

#define ZQ_MAX_DENSE_LAYERS 64 /* a mixture's dense blocks by number (Qwen3-MoE's mlp_only_layers) */
#define ZQ_MAX_ROPE_PAIRS 256  /* longrope's factors: rotary dimensions / 2 */

typedef struct {
    const zq_arch_desc *desc;
    char model_type[32];
    int n_layers, hidden, n_heads, n_kv_heads, head_dim, inter, vocab, max_pos;
    float norm_eps;
    int rms_norm;          /* RMSNorm instead of LayerNorm */
    int pre_ln;            /* norm before each sublayer (else after the residual: bert, opt-350m) */
    int parallel;          /* attention and MLP read the same input (neox, gptj) */
    int shared_norm;       /* ... through one norm (gptj) */
    zq_mlp_fn act;
    int gated;             /* down(act(gate(x)) * up(x)) */
    int post_norms;        /* attention and MLP outputs normed before their residual add (Gemma 2) */
    float norm_offset;     /* RMSNorm scales by norm_offset + w (Gemma: 1) */
    float embed_scale;     /* token embeddings times this (Gemma: sqrt(hidden)); 0: not scaled */
    float attn_scale;      /* scores are q.k times this (1/sqrt(head_dim) unless the config says otherwise) */
    float attn_softcap, final_softcap; /* cap * tanh(x / cap) of scores, of logits; 0: none */
    int rotary_dims;       /* 0: learned absolute positions */
    int rope_interleaved;  /* rotate pairs (2i, 2i+1) (gptj) instead of halves */
    int qk_norm;           /* q and k RMS-normed per head (weights of head_dim) before rope */
    float rope_theta;
    float rope_local_theta; /* the sliding layers' rotary base, unscaled (Gemma 3); 0: rope_theta */
    float rope_linear;      /* rope_scaling {"rope_type": "linear"}: frequencies divided by this; 0: none */
    /* sliding-window attention: a query at position p attends to keys p -
     * window < j <= p (Hugging Face's sliding_window_overlay) in layers
     * from window_first on, except where window_period divides layer + 1
     * (those attend fully; 0: none does); window 0: every layer attends to
     * the whole context. See zq_arch_layer_window. */
    int window, window_first, window_period;
    /* mixture of experts: n_experts (0: none) in block l when (l + 1) %
     * moe_step == 0 and l is not among moe_dense, each of moe_inter wide;
     * a token's moe_topk likeliest experts, their softmax weights
     * renormalized to sum 1 when moe_norm_topk */
    int n_experts, moe_topk, moe_inter, moe_step, moe_norm_topk;
    int moe_dense[ZQ_MAX_DENSE_LAYERS], n_moe_dense;
    /* rope_scaling {"rope_type": "llama3"} (Llama 3.1 and later): a
     * frequency whose wavelength 2 pi / f exceeds rope_original_max_pos /
     * rope_low_freq is divided by rope_factor, one below rope_original_max_pos
     * / rope_high_freq kept, the ones between blended; rope_factor 0: none */
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_original_max_pos;
    /* rope_scaling {"rope_type": "longrope"} (Phi-3.5, Phi-4-mini): each
     * frequency divided by rope_short[i], or by rope_long[i] in a forward
     * whose positions reach past rope_original_max_pos, as Hugging Face
     * switches; cos and sin times rope_attn_factor. rope_longrope: the
     * factors' count (rotary_dims / 2), 0: none */
    int rope_longrope;
    float rope_short[ZQ_MAX_ROPE_PAIRS], rope_long[ZQ_MAX_ROPE_PAIRS], rope_attn_factor;
    int pos_offset;        /* opt: position ids start at 2 */
    int causal;
    int final_norm;
    int token_types;       /* bert: add token type 0 */
    int mlm_head;          /* bert: dense + gelu + LayerNorm before the decoder */
    int emb_proj;          /* opt: project_in / project_out (word_embed_proj_dim) */
    int emb_dim;           /* width of the token embedding (emb_proj: differs from hidden) */
    /* config's bos_token_id (-1: none) and eos_token_id (a number or a
     * list: up to ZQ_MAX_EOS of them; ids outside the vocabulary dropped) */
    int bos_id;
    int eos_ids[4], n_eos;
} zq_arch;
#define ZQ_MAX_EOS 4

/* Parses config.json (origin names it in errors). A multimodal
 * checkpoint's is read as its language model's (zq_arch_language_config). */
zq_status zq_arch_from_config(const char *config_json, const char *origin, zq_arch *a, zq_error *err);
/* A multimodal checkpoint's config.json (Gemma 3's "gemma3"): its language
 * model's config (text_config, of the text model type where it names none,
 * with the wrapper's BOS and EOS where it names none), as malloc'd JSON;
 * NULL for any other config (the language model's own) or no memory. */
char *zq_arch_language_config(const char *config_json);
/* Whether name is a tensor of a multimodal checkpoint's other towers (the
 * vision tower, the projector into the text embedding): never one of the
 * table's, whatever its name ends in. */
int zq_arch_is_other_tower(const char *name);
/* What generation_config.json (JSON text; NULL: none) says of BOS and EOS
 * replaces the config's: generation reads it, as transformers' generate
 * does (Llama 3 lists its end-of-turn ids there). */
void zq_arch_generation_config(zq_arch *a, const char *json);

/* The attention window of block `layer` (0: the whole context). */
int zq_arch_layer_window(const zq_arch *a, int layer);
/* Whether block `layer`'s MLP is a mixture of experts. */
int zq_arch_layer_moe(const zq_arch *a, int layer);

/* The [out, in] shape of a block Linear part of this model. */
void zq_arch_linear_shape(const zq_arch *a, zq_part p, int *out, int *in);
/* The values the config gives table entry e of this model; 0 when it has
 * no such tensor, or any size will do (BERT's token types). */
uint64_t zq_arch_tensor_size(const zq_arch *a, const zq_arch_tensor *e);

/* A checkpoint's tensors as the check below sees them. */
typedef struct {
    const char *name;
    uint64_t numel;
} zq_tensor_size;

/* Config and tensors against each other: every tensor the table knows has
 * the size the config gives it, and no block at or past n_layers; with
 * complete, also every one the model needs is there (an exporter's check:
 * a runtime loads nothing less). origin names the model in errors. */
zq_status zq_arch_check_tensors(const zq_arch *a, const zq_tensor_size *t, size_t n, int complete, const char *origin,
                                zq_error *err);

/* ---- roles, for the quantizer ---------------------------------------------------- */

typedef enum {
    ZQ_ROLE_OTHER = 0, /* embeddings, norms, biases, LM head: FP16 unless asked */
    ZQ_ROLE_ATTENTION,
    ZQ_ROLE_MLP,
    ZQ_ROLE_LINEAR /* a 2-D weight of a model zquant does not know */
} zq_role;

const char *zq_role_name(zq_role role);

typedef struct {
    zq_role role;
    int layer;      /* transformer block index, -1 when not in a block */
    int transposed; /* stored [in, out] (GPT-2 Conv1D) instead of [out, in] */
} zq_tensor_role;

/* Quantization needs less than the forward pass: the model type and, when
 * given, the depth; a config without sizes or of an unknown type is fine. */
typedef struct {
    char model_type[64]; /* from config.json, "" when unknown */
    int known;           /* zquant has a row for it */
    int n_layers;        /* from config.json, 0 when absent */
} zq_model;

/* config may be NULL (no config.json): the model is then unknown. */
zq_status zq_model_detect(const char *config, const char *origin, zq_model *out, zq_error *err);
zq_tensor_role zq_model_classify(const zq_model *m, const zq_tensor_info *t);

/* '*' matches any run of characters, '#' a run of digits (its value goes to
 * *number when not NULL); everything else matches itself. */
int zq_pattern_match(const char *pattern, const char *s, int *number);

#ifdef __cplusplus
}
#endif
#endif
