/* A whole model for the engine: its architecture, its weights block by
 * block (from an FP checkpoint or a .zq file), its embeddings and head.
 *
 * Engine API: what zquant's own commands build on; it may change between
 * versions (the stable API is error, source, quant, zq, quantize, export). */
#ifndef ZQUANT_NET_H
#define ZQUANT_NET_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/block.h"
#include "zquant/error.h"
#include "zquant/zq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zq_net zq_net;

/* PATH: a model folder, .safetensors, .h5/.hdf5, or .zq. Block weights are
 * kept in memory after first use when the whole model fits in
 * weight_budget bytes of float32 (0: half the machine's memory); otherwise
 * each block is loaded (from the mmapped file) when used and dropped. */
zq_status zq_net_open(const char *path, size_t weight_budget, zq_net **out, zq_error *err);
void zq_net_close(zq_net *n);

const zq_arch *zq_net_arch(const zq_net *n);
const char *zq_net_path(const zq_net *n);
/* The .zq file's activation scheme, NULL for an FP model. */
const zq_activation *zq_net_activation(const zq_net *n);
/* Treat every block Linear as quantized (for forcing activation
 * quantization on an FP model). */
void zq_net_mark_all_quantized(zq_net *n);
/* Run every Linear weight the file stores as codes or FP16 (a .zq
 * file's) from them, on the integer backend, instead of expanding it to
 * FP32: integer products when the forward passes quantize inputs as mode
 * says (one of the file's schemes), FP32 products of weights decoded in
 * registers or a tile at a time otherwise; the embedding and the head
 * likewise. Call before running blocks. */
zq_status zq_net_run_packed(zq_net *n, zq_act_mode mode, zq_error *err);
/* Bytes of weights one token's forward reads: every block's as it is
 * loaded (packed codes and their tables, or FP32), and the head's.
 * Loads every block (a streaming net releases each again). */
zq_status zq_net_weight_bytes(zq_net *n, uint64_t *bytes, zq_error *err);
/* Whether zq_net_run_packed found anything to run from stored values
 * (a .zq file; not an FP checkpoint or an export, which run in FP32). */
int zq_net_runs_packed(const zq_net *n);
/* Number of Linear ids (for zq_act_quant.absmax). */
int zq_net_linear_ids(const zq_net *n);

zq_status zq_net_block(zq_net *n, int layer, zq_block *blk, zq_error *err);

/* A Linear weight of a loaded block, as the checkpoint tensor it came from:
 * w is [rows, cols] = [out, in] as the engine multiplies with it (a fused
 * q/k/v tensor is one unit); conv1d: the checkpoint stores it [cols, rows]
 * (GPT-2); neox_qkv: its rows are regrouped from NeoX's per-head order
 * (checkpoint row (h*3 + part)*d + i is row (part*heads + h)*d + i here). */
typedef struct {
    const char *name;
    float *w;
    int rows, cols;
    int conv1d, neox_qkv;
    int vector; /* a bias or a norm's weight: rows values, cols 1 */
} zq_net_tensor;

/* The tensors of a block loaded by zq_net_block (Linear weights, biases,
 * norms); their buffers are the block's own, so writing them changes what
 * the block computes. */
int zq_net_block_tensors(zq_net *n, int layer, const zq_net_tensor **units);
/* Converts a [rows, cols] buffer shaped like u between the engine's layout
 * and the checkpoint's (transposed for Conv1D, NeoX's per-head row order). */
void zq_net_tensor_layout(const zq_net_tensor *u, int heads, const float *in, float *out, int to_checkpoint);
void zq_net_release_block(zq_net *n, int layer);
/* Lets go of every tensor outside the blocks (embeddings, head, final
 * norm: 1 GB of floats at Llama-2-7B's shape) for a caller that needs the
 * blocks alone from here, as LKD and GPTQ once their data is embedded;
 * zq_net_embed and zq_net_head then fail. */
void zq_net_drop_outer(zq_net *n);

/* x (B*T, hidden) from tokens (B*T), at positions pos0..pos0+T-1 in each
 * sequence. */
zq_status zq_net_embed(zq_net *n, const int32_t *tokens, int B, int T, int pos0, float *x, zq_error *err);
/* logits (rows, vocab) from final hidden states x (rows, hidden) (final norm
 * included); scratch: rows * max(hidden, emb_dim) floats. */
zq_status zq_net_head(zq_net *n, const float *x, int rows, float *logits, float *scratch, zq_error *err);

#ifdef __cplusplus
}
#endif
#endif
