/* The architecture table (see zquant/arch.h), and what the quantizer reads
 * from it: which tensors are a block's attention and MLP weights, and how
 * they are laid out. Names follow each architecture's Hugging Face modeling
 * file; llama.cpp's names follow its llama-arch.cpp. */
#include "zquant/arch.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 0
#define B ZQ_T_BIAS
#define OPT ZQ_T_OPTIONAL
#define C1D ZQ_T_CONV1D
#define EXP ZQ_T_EXPERT

static const zq_arch_tensor gpt2_tensors[] = {
    {ZQ_PART_NORM1, W, "h.%d.ln_1.weight", "blk.%d.attn_norm.weight"},
    {ZQ_PART_NORM1, B, "h.%d.ln_1.bias", "blk.%d.attn_norm.bias"},
    {ZQ_PART_NORM2, W, "h.%d.ln_2.weight", "blk.%d.ffn_norm.weight"},
    {ZQ_PART_NORM2, B, "h.%d.ln_2.bias", "blk.%d.ffn_norm.bias"},
    {ZQ_PART_QKV, W | C1D, "h.%d.attn.c_attn.weight", "blk.%d.attn_qkv.weight"},
    {ZQ_PART_QKV, B | OPT, "h.%d.attn.c_attn.bias", "blk.%d.attn_qkv.bias"},
    {ZQ_PART_O, W | C1D, "h.%d.attn.c_proj.weight", "blk.%d.attn_output.weight"},
    {ZQ_PART_O, B | OPT, "h.%d.attn.c_proj.bias", "blk.%d.attn_output.bias"},
    {ZQ_PART_UP, W | C1D, "h.%d.mlp.c_fc.weight", "blk.%d.ffn_up.weight"},
    {ZQ_PART_UP, B | OPT, "h.%d.mlp.c_fc.bias", "blk.%d.ffn_up.bias"},
    {ZQ_PART_DOWN, W | C1D, "h.%d.mlp.c_proj.weight", "blk.%d.ffn_down.weight"},
    {ZQ_PART_DOWN, B | OPT, "h.%d.mlp.c_proj.bias", "blk.%d.ffn_down.bias"},
    {ZQ_PART_EMBED, W, "wte.weight", "token_embd.weight"},
    {ZQ_PART_POS, W, "wpe.weight", "position_embd.weight"},
    {ZQ_PART_FINAL_NORM, W, "ln_f.weight", "output_norm.weight"},
    {ZQ_PART_FINAL_NORM, B, "ln_f.bias", "output_norm.bias"},
    {ZQ_PART_HEAD, W | OPT, "lm_head.weight", "output.weight"},
    {0, 0, NULL, NULL}};

static const zq_arch_tensor opt_tensors[] = {
    {ZQ_PART_NORM1, W, "layers.%d.self_attn_layer_norm.weight", NULL},
    {ZQ_PART_NORM1, B, "layers.%d.self_attn_layer_norm.bias", NULL},
    {ZQ_PART_NORM2, W, "layers.%d.final_layer_norm.weight", NULL},
    {ZQ_PART_NORM2, B, "layers.%d.final_layer_norm.bias", NULL},
    {ZQ_PART_Q, W, "layers.%d.self_attn.q_proj.weight", NULL},
    {ZQ_PART_Q, B | OPT, "layers.%d.self_attn.q_proj.bias", NULL},
    {ZQ_PART_K, W, "layers.%d.self_attn.k_proj.weight", NULL},
    {ZQ_PART_K, B | OPT, "layers.%d.self_attn.k_proj.bias", NULL},
    {ZQ_PART_V, W, "layers.%d.self_attn.v_proj.weight", NULL},
    {ZQ_PART_V, B | OPT, "layers.%d.self_attn.v_proj.bias", NULL},
    {ZQ_PART_O, W, "layers.%d.self_attn.out_proj.weight", NULL},
    {ZQ_PART_O, B | OPT, "layers.%d.self_attn.out_proj.bias", NULL},
    {ZQ_PART_UP, W, "layers.%d.fc1.weight", NULL},
    {ZQ_PART_UP, B | OPT, "layers.%d.fc1.bias", NULL},
    {ZQ_PART_DOWN, W, "layers.%d.fc2.weight", NULL},
    {ZQ_PART_DOWN, B | OPT, "layers.%d.fc2.bias", NULL},
    {ZQ_PART_EMBED, W, "decoder.embed_tokens.weight", NULL},
    {ZQ_PART_POS, W, "decoder.embed_positions.weight", NULL},
    {ZQ_PART_FINAL_NORM, W, "decoder.final_layer_norm.weight", NULL},
    {ZQ_PART_FINAL_NORM, B, "decoder.final_layer_norm.bias", NULL},
    {ZQ_PART_PROJ_IN, W, "decoder.project_in.weight", NULL},
    {ZQ_PART_PROJ_OUT, W, "decoder.project_out.weight", NULL},
    {ZQ_PART_HEAD, W | OPT, "lm_head.weight", NULL},
    {0, 0, NULL, NULL}};

static const zq_arch_tensor neox_tensors[] = {
    {ZQ_PART_NORM1, W, "layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight"},
    {ZQ_PART_NORM1, B, "layers.%d.input_layernorm.bias", "blk.%d.attn_norm.bias"},
    {ZQ_PART_NORM2, W, "layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight"},
    {ZQ_PART_NORM2, B, "layers.%d.post_attention_layernorm.bias", "blk.%d.ffn_norm.bias"},
    {ZQ_PART_QKV, W | ZQ_T_QKV_PER_HEAD, "layers.%d.attention.query_key_value.weight", "blk.%d.attn_qkv.weight"},
    {ZQ_PART_QKV, B | OPT | ZQ_T_QKV_PER_HEAD, "layers.%d.attention.query_key_value.bias", "blk.%d.attn_qkv.bias"},
    {ZQ_PART_O, W, "layers.%d.attention.dense.weight", "blk.%d.attn_output.weight"},
    {ZQ_PART_O, B | OPT, "layers.%d.attention.dense.bias", "blk.%d.attn_output.bias"},
    {ZQ_PART_UP, W, "layers.%d.mlp.dense_h_to_4h.weight", "blk.%d.ffn_up.weight"},
    {ZQ_PART_UP, B | OPT, "layers.%d.mlp.dense_h_to_4h.bias", "blk.%d.ffn_up.bias"},
    {ZQ_PART_DOWN, W, "layers.%d.mlp.dense_4h_to_h.weight", "blk.%d.ffn_down.weight"},
    {ZQ_PART_DOWN, B | OPT, "layers.%d.mlp.dense_4h_to_h.bias", "blk.%d.ffn_down.bias"},
    {ZQ_PART_EMBED, W, "embed_in.weight", "token_embd.weight"},
    {ZQ_PART_FINAL_NORM, W, "final_layer_norm.weight", "output_norm.weight"},
    {ZQ_PART_FINAL_NORM, B, "final_layer_norm.bias", "output_norm.bias"},
    {ZQ_PART_HEAD, W | OPT, "embed_out.weight", "output.weight"},
    {0, 0, NULL, NULL}};

static const zq_arch_tensor gptj_tensors[] = {
    {ZQ_PART_NORM1, W, "h.%d.ln_1.weight", NULL},
    {ZQ_PART_NORM1, B, "h.%d.ln_1.bias", NULL},
    {ZQ_PART_Q, W, "h.%d.attn.q_proj.weight", NULL},
    {ZQ_PART_K, W, "h.%d.attn.k_proj.weight", NULL},
    {ZQ_PART_V, W, "h.%d.attn.v_proj.weight", NULL},
    {ZQ_PART_O, W, "h.%d.attn.out_proj.weight", NULL},
    {ZQ_PART_UP, W, "h.%d.mlp.fc_in.weight", NULL},
    {ZQ_PART_UP, B | OPT, "h.%d.mlp.fc_in.bias", NULL},
    {ZQ_PART_DOWN, W, "h.%d.mlp.fc_out.weight", NULL},
    {ZQ_PART_DOWN, B | OPT, "h.%d.mlp.fc_out.bias", NULL},
    {ZQ_PART_EMBED, W, "wte.weight", NULL},
    {ZQ_PART_FINAL_NORM, W, "ln_f.weight", NULL},
    {ZQ_PART_FINAL_NORM, B, "ln_f.bias", NULL},
    {ZQ_PART_HEAD, W | OPT, "lm_head.weight", NULL},
    {ZQ_PART_HEAD, B | OPT, "lm_head.bias", NULL},
    {0, 0, NULL, NULL}};

/* The pieces of Llama's block that its descendants keep. Llama and
 * Mistral rotate halves; llama.cpp's llama architecture rotates pairs, so
 * its q and k rows are permuted on the way (its Qwen2 and Qwen3 rotate
 * halves too: no permutation). q, k, v biases: Qwen2 has them, Llama
 * checkpoints may. */
#define LLAMA_QKV(rope)                                                                                      \
    {ZQ_PART_Q, W | rope, "layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight"},                     \
    {ZQ_PART_K, W | rope, "layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight"},                     \
    {ZQ_PART_V, W, "layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight"}
#define LLAMA_O {ZQ_PART_O, W, "layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight"}
#define LLAMA_ATTENTION(rope)                                                                                \
    {ZQ_PART_NORM1, W, "layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight"},                      \
    {ZQ_PART_NORM2, W, "layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight"},              \
    LLAMA_QKV(rope),                                                                                         \
    {ZQ_PART_Q, B | OPT | rope, "layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias"},                   \
    {ZQ_PART_K, B | OPT | rope, "layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias"},                   \
    {ZQ_PART_V, B | OPT, "layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias"},                          \
    LLAMA_O
#define LLAMA_MLP                                                                                            \
    {ZQ_PART_UP, W, "layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight"},                                 \
    {ZQ_PART_GATE, W, "layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight"},                           \
    {ZQ_PART_DOWN, W, "layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight"}
#define LLAMA_EMBED_AND_NORM                                                                                 \
    {ZQ_PART_EMBED, W, "embed_tokens.weight", "token_embd.weight"},                                          \
    {ZQ_PART_FINAL_NORM, W, "norm.weight", "output_norm.weight"}
#define LLAMA_OUTER LLAMA_EMBED_AND_NORM, {ZQ_PART_HEAD, W | OPT, "lm_head.weight", "output.weight"}
/* Qwen3's and Gemma 3's: an RMSNorm weight of head_dim for q and one for k */
#define QK_NORMS                                                                                             \
    {ZQ_PART_Q_NORM, W, "layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight"},                   \
    {ZQ_PART_K_NORM, W, "layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight"}
/* a mixture of experts' router and SwiGLU experts by their names in the
 * block; llama.cpp stacks each part of every expert into one tensor
 * (written so by the GGUF exporter) */
#define MOE_TENSORS(router, gate, up, down)                                                                  \
    {ZQ_PART_ROUTER, W, "layers.%d." router ".weight", "blk.%d.ffn_gate_inp.weight"},                        \
    {ZQ_PART_EXP_GATE, W | EXP, "layers.%d." gate ".weight", "blk.%d.ffn_gate_exps.weight"},                 \
    {ZQ_PART_EXP_UP, W | EXP, "layers.%d." up ".weight", "blk.%d.ffn_up_exps.weight"},                       \
    {ZQ_PART_EXP_DOWN, W | EXP, "layers.%d." down ".weight", "blk.%d.ffn_down_exps.weight"}

#define END {0, 0, NULL, NULL}
static const zq_arch_tensor llama_tensors[] = {LLAMA_ATTENTION(ZQ_T_ROPE_HALVES), LLAMA_MLP, LLAMA_OUTER, END};
static const zq_arch_tensor qwen2_tensors[] = {LLAMA_ATTENTION(0), LLAMA_MLP, LLAMA_OUTER, END};
static const zq_arch_tensor qwen3_tensors[] = {LLAMA_ATTENTION(0), QK_NORMS, LLAMA_MLP, LLAMA_OUTER, END};
/* Mixtral: llama's attention, experts w1 (gate), w3 (up), w2 (down) */
static const zq_arch_tensor mixtral_tensors[] = {
    LLAMA_ATTENTION(ZQ_T_ROPE_HALVES),
    MOE_TENSORS("block_sparse_moe.gate", "block_sparse_moe.experts.%d.w1", "block_sparse_moe.experts.%d.w3",
                "block_sparse_moe.experts.%d.w2"),
    LLAMA_OUTER, END};
/* Qwen3-MoE: Qwen3's attention; sparse blocks have a router (mlp.gate)
 * and experts of Qwen3's MLP names, dense ones (decoder_sparse_step,
 * mlp_only_layers) Qwen3's MLP */
static const zq_arch_tensor qwen3_moe_tensors[] = {
    LLAMA_ATTENTION(0), QK_NORMS, LLAMA_MLP,
    MOE_TENSORS("mlp.gate", "mlp.experts.%d.gate_proj", "mlp.experts.%d.up_proj", "mlp.experts.%d.down_proj"),
    LLAMA_OUTER, END};
/* Gemma 2: llama's projections, four norms a block (llama.cpp's weights
 * are 1 + these, as it runs its norms as x * w); llama.cpp's gemma2 and
 * gemma3 have no head of their own */
#define GEMMA_FAMILY                                                                                          \
    {ZQ_PART_NORM1, W, "layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight"},                       \
    {ZQ_PART_POST_NORM1, W, "layers.%d.post_attention_layernorm.weight", "blk.%d.post_attention_norm.weight"}, \
    {ZQ_PART_NORM2, W, "layers.%d.pre_feedforward_layernorm.weight", "blk.%d.ffn_norm.weight"},              \
    {ZQ_PART_POST_NORM2, W, "layers.%d.post_feedforward_layernorm.weight", "blk.%d.post_ffw_norm.weight"},    \
    LLAMA_QKV(0), LLAMA_O, LLAMA_MLP, LLAMA_EMBED_AND_NORM,                                                  \
    {ZQ_PART_HEAD, W | OPT, "lm_head.weight", NULL}
static const zq_arch_tensor gemma2_tensors[] = {GEMMA_FAMILY, END};
/* Gemma 3: Gemma 2's and q, k norms (1 + w too) */
static const zq_arch_tensor gemma3_tensors[] = {GEMMA_FAMILY, QK_NORMS, END};
/* Phi-3: q, k, v fused (all q rows, then k, then v), gate and up fused
 * (gate's rows first), as llama.cpp's phi3 keeps them */
static const zq_arch_tensor phi3_tensors[] = {
    {ZQ_PART_NORM1, W, "layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight"},
    {ZQ_PART_NORM2, W, "layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight"},
    {ZQ_PART_QKV, W, "layers.%d.self_attn.qkv_proj.weight", "blk.%d.attn_qkv.weight"},
    LLAMA_O,
    {ZQ_PART_GATE_UP, W, "layers.%d.mlp.gate_up_proj.weight", "blk.%d.ffn_up.weight"},
    {ZQ_PART_DOWN, W, "layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight"},
    LLAMA_OUTER, END};
#undef END

static const zq_arch_tensor bert_tensors[] = {
    {ZQ_PART_Q, W, "layer.%d.attention.self.query.weight", "blk.%d.attn_q.weight"},
    {ZQ_PART_Q, B | OPT, "layer.%d.attention.self.query.bias", "blk.%d.attn_q.bias"},
    {ZQ_PART_K, W, "layer.%d.attention.self.key.weight", "blk.%d.attn_k.weight"},
    {ZQ_PART_K, B | OPT, "layer.%d.attention.self.key.bias", "blk.%d.attn_k.bias"},
    {ZQ_PART_V, W, "layer.%d.attention.self.value.weight", "blk.%d.attn_v.weight"},
    {ZQ_PART_V, B | OPT, "layer.%d.attention.self.value.bias", "blk.%d.attn_v.bias"},
    {ZQ_PART_O, W, "layer.%d.attention.output.dense.weight", "blk.%d.attn_output.weight"},
    {ZQ_PART_O, B | OPT, "layer.%d.attention.output.dense.bias", "blk.%d.attn_output.bias"},
    {ZQ_PART_NORM1, W, "layer.%d.attention.output.LayerNorm.weight", "blk.%d.attn_output_norm.weight"},
    {ZQ_PART_NORM1, B, "layer.%d.attention.output.LayerNorm.bias", "blk.%d.attn_output_norm.bias"},
    {ZQ_PART_UP, W, "layer.%d.intermediate.dense.weight", "blk.%d.ffn_up.weight"},
    {ZQ_PART_UP, B | OPT, "layer.%d.intermediate.dense.bias", "blk.%d.ffn_up.bias"},
    {ZQ_PART_DOWN, W, "layer.%d.output.dense.weight", "blk.%d.ffn_down.weight"},
    {ZQ_PART_DOWN, B | OPT, "layer.%d.output.dense.bias", "blk.%d.ffn_down.bias"},
    {ZQ_PART_NORM2, W, "layer.%d.output.LayerNorm.weight", "blk.%d.layer_output_norm.weight"},
    {ZQ_PART_NORM2, B, "layer.%d.output.LayerNorm.bias", "blk.%d.layer_output_norm.bias"},
    {ZQ_PART_EMBED, W, "embeddings.word_embeddings.weight", "token_embd.weight"},
    {ZQ_PART_POS, W, "embeddings.position_embeddings.weight", "position_embd.weight"},
    {ZQ_PART_TYPES, W, "embeddings.token_type_embeddings.weight", "token_types.weight"},
    {ZQ_PART_EMB_NORM, W, "embeddings.LayerNorm.weight", "token_embd_norm.weight"},
    {ZQ_PART_EMB_NORM, B, "embeddings.LayerNorm.bias", "token_embd_norm.bias"},
    {ZQ_PART_MLM_DENSE, W, "cls.predictions.transform.dense.weight", NULL},
    {ZQ_PART_MLM_DENSE, B, "cls.predictions.transform.dense.bias", NULL},
    {ZQ_PART_MLM_NORM, W, "cls.predictions.transform.LayerNorm.weight", NULL},
    {ZQ_PART_MLM_NORM, B, "cls.predictions.transform.LayerNorm.bias", NULL},
    {ZQ_PART_HEAD, B, "cls.predictions.bias", NULL},
    {ZQ_PART_HEAD, W | OPT, "cls.predictions.decoder.weight", NULL},
    {0, 0, NULL, NULL}};

#undef W
#undef B
#undef OPT
#undef C1D
#undef EXP

#define PRE ZQ_ARCH_PRE_LN | ZQ_ARCH_CAUSAL | ZQ_ARCH_FINAL_NORM
/* Llama's family as its configuration classes default it: max_pos,
 * head_dim (0: hidden / heads; Qwen3Config's is 128), rms_norm_eps, the
 * rotary kind with its key, the window, rotary bases and experts */
#define DECODER_ROW(model_type, gguf, flags, max_pos, head_dim, eps, rotary, tensors, window, rope_base, moe)     \
    {{model_type}, gguf, PRE | ZQ_ARCH_RMS_NORM | ZQ_ARCH_GATED_MLP | (flags), "hidden_size",                    \
     "num_attention_heads", "num_hidden_layers", "intermediate_size", "max_position_embeddings", "rms_norm_eps",  \
     "hidden_act", 0, max_pos, head_dim, eps, "silu", 0, "num_key_value_heads", "head_dim", "rope_theta", rotary, \
     1.0, NULL, NULL, NULL, NULL, "rope_scaling", tensors, "model.", window, NO_SCORES, rope_base, moe, NULL}
#define ROTARY_FULL ZQ_ROPE_FULL, NULL
/* Phi3Config: partial_rotary_factor of a head rotated, in halves */
#define ROTARY_PARTIAL ZQ_ROPE_PCT, "partial_rotary_factor"
#define NO_WINDOW {NULL, NULL, NULL, NULL, 0, 0, 0, 0}
/* MistralConfig: every layer, 4096 unless null */
#define MISTRAL_WINDOW {"sliding_window", NULL, NULL, NULL, 4096, 0, 0, 0}
/* Qwen2Config, Qwen3Config: only with use_sliding_window, from layer max_window_layers (28) on */
#define QWEN_WINDOW {"sliding_window", "use_sliding_window", "max_window_layers", NULL, 4096, 28, 0, 1}
/* Qwen3MoeConfig: with use_sliding_window, every layer (its modeling file reads no max_window_layers) */
#define QWEN_MOE_WINDOW {"sliding_window", "use_sliding_window", NULL, NULL, 4096, 0, 0, 0}
/* MixtralConfig, Phi3Config: a window only where sliding_window says */
#define CONFIG_WINDOW {"sliding_window", NULL, NULL, NULL, 0, 0, 0, 0}
#define NO_SCORES {NULL, NULL, NULL, 0, 0, 0}
#define NO_ROPE_BASE {0, NULL, 0}
#define NO_MOE {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0}
/* MixtralConfig: rope_theta 1e6; top-2 of num_local_experts, renormalized, every block sparse */
#define MIXTRAL_ROPE_BASE {1e6, NULL, 0}
#define MIXTRAL_MOE {"num_local_experts", "num_experts_per_tok", NULL, NULL, NULL, NULL, 2, 0}
/* Qwen3MoeConfig: top-8 of num_experts, each 768 wide, renormalized by
 * norm_topk_prob, sparse every decoder_sparse_step-th block but those
 * mlp_only_layers lists */
#define QWEN_MOE {"num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob", \
                  "decoder_sparse_step", "mlp_only_layers", 8, 768}
/* Gemma2Config and Gemma3TextConfig: GeGLU, norms around both sublayers, a
 * window of 4096 but in every period-th layer (2; Gemma 3's
 * sliding_window_pattern, 6); caps of 50 and 30 (Gemma 3: none); Gemma 3
 * adds q/k norms and a rotary base of its own for the sliding layers */
#define GEMMA_ROW(model_type, gguf, flags, max_pos, period_key, period, tensors, caps, rope_base, defaults)       \
    {{model_type}, gguf, PRE | ZQ_ARCH_RMS_NORM | ZQ_ARCH_GATED_MLP | ZQ_ARCH_POST_NORMS | ZQ_ARCH_NORM_PLUS_ONE |  \
     ZQ_ARCH_EMBED_SCALE | (flags), "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", \
     "max_position_embeddings", "rms_norm_eps", "hidden_activation", 0, max_pos, 256, 1e-6, "gelu_pytorch_tanh", 0, \
     "num_key_value_heads", "head_dim", "rope_theta", ZQ_ROPE_FULL, NULL, 0, NULL, NULL, NULL, NULL, "rope_scaling",  \
     tensors, "model.", {"sliding_window", NULL, NULL, period_key, 4096, 0, period, 1},                             \
     {"query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping", 256, caps}, rope_base, NO_MOE,  \
     defaults}
#define GEMMA2_CAPS 50.0, 30.0
#define NO_CAPS 0, 0
#define GEMMA3_ROPE_BASE {1e6, "rope_local_base_freq", 10000}
/* Gemma2Config's and Gemma3TextConfig's sizes (Gemma 3's multimodal
 * checkpoints leave most of them out of text_config) */
#define GEMMA2_DEFAULTS                                                                                       \
    "{\"vocab_size\": 256000, \"hidden_size\": 2304, \"intermediate_size\": 9216, \"num_hidden_layers\": 26, " \
    "\"num_attention_heads\": 8, \"num_key_value_heads\": 4}"
#define GEMMA3_DEFAULTS                                                                                       \
    "{\"vocab_size\": 262208, \"hidden_size\": 2304, \"intermediate_size\": 9216, \"num_hidden_layers\": 26, " \
    "\"num_attention_heads\": 8, \"num_key_value_heads\": 4}"

const zq_arch_desc zq_arch_table[] = {
    {{"gpt2"}, "gpt2", PRE, "n_embd", "n_head", "n_layer", "n_inner", "n_positions", "layer_norm_epsilon",
     "activation_function", 4, 1024, 0, 1e-5, "gelu_new", 0, NULL, NULL, NULL, ZQ_ROPE_NONE, NULL, 0,
     NULL, NULL, NULL, NULL, NULL, gpt2_tensors, NULL, NO_WINDOW, NO_SCORES, NO_ROPE_BASE, NO_MOE, NULL},
    {{"opt"}, NULL, PRE, "hidden_size", "num_attention_heads", "num_hidden_layers", "ffn_dim",
     "max_position_embeddings", NULL, "activation_function", 4, 2048, 0, 1e-5, "relu", 2, NULL, NULL, NULL,
     ZQ_ROPE_NONE, NULL, 0, NULL, "do_layer_norm_before", "_remove_final_layer_norm", "word_embed_proj_dim", NULL,
     opt_tensors, NULL, NO_WINDOW, NO_SCORES, NO_ROPE_BASE, NO_MOE, NULL},
    {{"gpt_neox"}, "gptneox", PRE | ZQ_ARCH_PARALLEL, "hidden_size", "num_attention_heads", "num_hidden_layers",
     "intermediate_size", "max_position_embeddings", "layer_norm_eps", "hidden_act", 4, 2048, 0, 1e-5, "gelu", 0,
     NULL, NULL, "rotary_emb_base", ZQ_ROPE_PCT, "rotary_pct", 0.25, "use_parallel_residual", NULL, NULL, NULL,
     NULL, neox_tensors, "gpt_neox.", NO_WINDOW, NO_SCORES, NO_ROPE_BASE, NO_MOE, NULL},
    {{"gptj"}, NULL, PRE | ZQ_ARCH_PARALLEL | ZQ_ARCH_SHARED_NORM | ZQ_ARCH_ROPE_PAIRS, "n_embd", "n_head",
     "n_layer", "n_inner", "n_positions", "layer_norm_epsilon", "activation_function", 4, 2048, 0, 1e-5, "gelu_new",
     0, NULL, NULL, NULL, ZQ_ROPE_DIM, "rotary_dim", 0, NULL, NULL, NULL, NULL, NULL, gptj_tensors, NULL, NO_WINDOW,
     NO_SCORES, NO_ROPE_BASE, NO_MOE, NULL},
    DECODER_ROW("llama", "llama", 0, 2048, 0, 1e-6, ROTARY_FULL, llama_tensors, NO_WINDOW, NO_ROPE_BASE, NO_MOE),
    /* after llama: GGUF's llama reads back as llama */
    DECODER_ROW("mistral", "llama", 0, 4096 * 32, 0, 1e-6, ROTARY_FULL, llama_tensors, MISTRAL_WINDOW, NO_ROPE_BASE,
                NO_MOE),
    DECODER_ROW("qwen2", "qwen2", 0, 32768, 0, 1e-6, ROTARY_FULL, qwen2_tensors, QWEN_WINDOW, NO_ROPE_BASE, NO_MOE),
    DECODER_ROW("qwen3", "qwen3", ZQ_ARCH_QK_NORM, 32768, 128, 1e-6, ROTARY_FULL, qwen3_tensors, QWEN_WINDOW,
                NO_ROPE_BASE, NO_MOE),
    GEMMA_ROW("gemma2", "gemma2", 0, 8192, NULL, 2, gemma2_tensors, GEMMA2_CAPS, NO_ROPE_BASE, GEMMA2_DEFAULTS),
    GEMMA_ROW("gemma3_text", "gemma3", ZQ_ARCH_QK_NORM, 131072, "sliding_window_pattern", 6, gemma3_tensors, NO_CAPS,
              GEMMA3_ROPE_BASE, GEMMA3_DEFAULTS),
    DECODER_ROW("mixtral", "llama", 0, 4096 * 32, 0, 1e-5, ROTARY_FULL, mixtral_tensors, CONFIG_WINDOW,
                MIXTRAL_ROPE_BASE, MIXTRAL_MOE),
    DECODER_ROW("qwen3_moe", "qwen3moe", ZQ_ARCH_QK_NORM, 32768, 0, 1e-6, ROTARY_FULL, qwen3_moe_tensors,
                QWEN_MOE_WINDOW, NO_ROPE_BASE, QWEN_MOE),
    DECODER_ROW("phi3", "phi3", 0, 4096, 0, 1e-5, ROTARY_PARTIAL, phi3_tensors, CONFIG_WINDOW, NO_ROPE_BASE, NO_MOE),
    {{"bert"}, "bert", ZQ_ARCH_TOKEN_TYPES | ZQ_ARCH_MLM_HEAD, "hidden_size", "num_attention_heads",
     "num_hidden_layers", "intermediate_size", "max_position_embeddings", "layer_norm_eps", "hidden_act", 4, 512,
     0, 1e-12, "gelu", 0, NULL, NULL, NULL, ZQ_ROPE_NONE, NULL, 0, NULL, NULL, NULL, NULL, NULL, bert_tensors, NULL,
     NO_WINDOW, NO_SCORES, NO_ROPE_BASE, NO_MOE, NULL},
    {{NULL}, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL, NULL, ZQ_ROPE_NONE,
     NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NO_WINDOW, NO_SCORES, NO_ROPE_BASE, NO_MOE, NULL},
};

/* Multimodal checkpoints whose language model zquant runs, the key of its
 * config and its model type when that config names none */
static const struct {
    const char *model_type, *text_key, *text_type;
} multimodal[] = {{"gemma3", "text_config", "gemma3_text"}};

char *zq_arch_language_config(const char *config_json)
{
    cJSON *root = config_json ? cJSON_Parse(config_json) : NULL;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    char *out = NULL;
    for (size_t k = 0; cJSON_IsString(mt) && k < sizeof multimodal / sizeof *multimodal; k++) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, multimodal[k].text_key);
        if (strcmp(mt->valuestring, multimodal[k].model_type) || !cJSON_IsObject(text)) continue;
        cJSON *c = cJSON_Duplicate(text, 1);
        static const char *const inherited[] = {"bos_token_id", "eos_token_id"};
        for (size_t i = 0; i < 2; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, inherited[i]);
            if (v && !cJSON_GetObjectItemCaseSensitive(c, inherited[i]))
                cJSON_AddItemToObject(c, inherited[i], cJSON_Duplicate(v, 1));
        }
        if (!cJSON_GetObjectItemCaseSensitive(c, "model_type"))
            cJSON_AddStringToObject(c, "model_type", multimodal[k].text_type);
        out = cJSON_PrintUnformatted(c);
        cJSON_Delete(c);
    }
    cJSON_Delete(root);
    return out;
}

int zq_arch_is_other_tower(const char *name)
{
    static const char *const towers[] = {"vision_tower.", "multi_modal_projector."};
    for (size_t k = 0; k < sizeof towers / sizeof *towers; k++) {
        const char *at = strstr(name, towers[k]);
        if (at && (at == name || at[-1] == '.')) return 1;
    }
    return 0;
}

int zq_arch_is_buffer(const char *name)
{
    static const char *suffixes[] = {".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq", "position_ids"};
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++) {
        size_t m = strlen(suffixes[k]);
        if (n >= m && !strcmp(name + n - m, suffixes[k])) return 1;
    }
    return 0;
}

const zq_arch_desc *zq_arch_find(const char *model_type)
{
    for (const zq_arch_desc *d = zq_arch_table; d->model_types[0]; d++)
        for (int k = 0; k < 4 && d->model_types[k]; k++)
            if (!strcmp(d->model_types[k], model_type)) return d;
    return NULL;
}

zq_kind zq_part_kind(zq_part p)
{
    switch (p) {
    case ZQ_PART_Q: case ZQ_PART_K: case ZQ_PART_V: case ZQ_PART_QKV: case ZQ_PART_O: return ZQ_KIND_ATTENTION;
    case ZQ_PART_UP: case ZQ_PART_GATE: case ZQ_PART_GATE_UP: case ZQ_PART_DOWN: case ZQ_PART_EXP_GATE:
    case ZQ_PART_EXP_UP: case ZQ_PART_EXP_DOWN: return ZQ_KIND_MLP;
    case ZQ_PART_ROUTER: return ZQ_KIND_ROUTER;
    case ZQ_PART_EMBED: case ZQ_PART_POS: case ZQ_PART_TYPES: case ZQ_PART_PROJ_IN: return ZQ_KIND_EMBEDDING;
    case ZQ_PART_NORM1: case ZQ_PART_NORM2: case ZQ_PART_Q_NORM: case ZQ_PART_K_NORM: case ZQ_PART_POST_NORM1:
    case ZQ_PART_POST_NORM2: case ZQ_PART_EMB_NORM:
    case ZQ_PART_FINAL_NORM: return ZQ_KIND_NORM;
    case ZQ_PART_PROJ_OUT: case ZQ_PART_MLM_DENSE: case ZQ_PART_MLM_NORM: case ZQ_PART_HEAD: break;
    }
    return ZQ_KIND_HEAD;
}

int zq_part_in_block(zq_part p) { return p <= ZQ_PART_EXP_DOWN; }

/* '%d' in a table name is '#' to zq_pattern_match */
static int table_pattern(const char *name, int with_prefix, char *buf, size_t size)
{
    size_t n = 0;
    if (with_prefix) buf[n++] = '*', buf[n++] = '.';
    for (const char *c = name; *c; c++) {
        if (n + 2 >= size) return 0;
        if (c[0] == '%' && c[1] == 'd') buf[n++] = '#', c++;
        else buf[n++] = *c;
    }
    buf[n] = 0;
    return 1;
}

static int pattern_numbers(const char *p, const char *s, int *nums, int k, int max);

int zq_arch_tensor_match_at(const zq_arch_tensor *t, const char *name, int *layer, int *expert)
{
    char pat[256];
    int nums[2] = {-1, -1};
    if (zq_arch_is_other_tower(name)) return 0;
    for (int prefixed = 0; prefixed < 2; prefixed++)
        if (table_pattern(t->name, prefixed, pat, sizeof pat) && pattern_numbers(pat, name, nums, 0, 2)) {
            if (layer) *layer = zq_part_in_block(t->part) ? nums[0] : -1;
            if (expert) *expert = (t->flags & ZQ_T_EXPERT) ? nums[1] : -1;
            return 1;
        }
    return 0;
}

int zq_arch_tensor_match(const zq_arch_tensor *t, const char *name, int *layer)
{
    return zq_arch_tensor_match_at(t, name, layer, NULL);
}

/* ---- roles ----------------------------------------------------------------------- */

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

/* zq_pattern_match, the values of the first max '#' runs into nums[k..] */
static int pattern_numbers(const char *p, const char *s, int *nums, int k, int max)
{
    for (;; p++, s++) {
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (pattern_numbers(p + 1, t, nums, k, max)) return 1;
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
            if (!pattern_numbers(p + 1, s, nums, k + 1, max)) return 0;
            if (k < max) nums[k] = (int)v;
            return 1;
        }
        if (*p != *s) return 0;
        if (!*p) return 1;
    }
}

int zq_pattern_match(const char *p, const char *s, int *number)
{
    int v = -1;
    if (!pattern_numbers(p, s, &v, 0, 1)) return 0;
    if (number && v >= 0) *number = v;
    return 1;
}

zq_status zq_model_detect(const char *config, const char *origin, zq_model *out, zq_error *err)
{
    memset(out, 0, sizeof *out);
    if (!config) return ZQ_OK;
    char *language = zq_arch_language_config(config);
    cJSON *root = cJSON_Parse(language ? language : config);
    free(language);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': config is not a JSON object", origin);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt)) {
        snprintf(out->model_type, sizeof out->model_type, "%s", mt->valuestring);
        out->known = zq_arch_find(out->model_type) != NULL;
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

/* The block Linears' weights are what the quantizer stores in INT8/INT4;
 * everything else of a known model stays FP16 unless asked. */
zq_tensor_role zq_model_classify(const zq_model *m, const zq_tensor_info *t)
{
    zq_tensor_role r = {ZQ_ROLE_OTHER, -1, 0};
    const zq_arch_desc *d = m->known ? zq_arch_find(m->model_type) : NULL;
    if (!d) {
        if (t->ndim == 2) r.role = ZQ_ROLE_LINEAR;
        return r;
    }
    for (const zq_arch_tensor *e = d->tensors; e->name && t->ndim == 2; e++) {
        zq_kind kind = zq_part_kind(e->part);
        int layer;
        if ((e->flags & ZQ_T_BIAS) || !zq_part_in_block(e->part) || (kind != ZQ_KIND_MLP && kind != ZQ_KIND_ATTENTION))
            continue;
        if (!zq_arch_tensor_match(e, t->name, &layer)) continue;
        r.role = kind == ZQ_KIND_MLP ? ZQ_ROLE_MLP : ZQ_ROLE_ATTENTION;
        r.layer = layer;
        r.transposed = (e->flags & ZQ_T_CONV1D) != 0;
        return r;
    }
    return r;
}
