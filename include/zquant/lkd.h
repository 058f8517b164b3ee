/* Layer-by-layer knowledge distillation (ZeroQuant's LKD): each transformer
 * block, alone, is tuned so that its quantized self (weights fake-quantized
 * with a straight-through estimator, activations quantized as the runtime
 * will) reproduces its FP self's output; then it is quantized for real. One
 * block's weights and one layer's activations are in memory at a time.
 *
 * Engine API: what zquant's own commands build on; it may change between
 * versions (the stable API is error, source, quant, zq, quantize, export). */
#ifndef ZQUANT_LKD_H
#define ZQUANT_LKD_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/block.h"
#include "zquant/error.h"
#include "zquant/net.h"
#include "zquant/quantize.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int layer, n_layers, step, steps;
    double loss, seconds; /* the layer's distillation so far */
} zq_lkd_progress;

struct zq_lkd_layer; /* below: a distilled block's report */

/* Where each block's quantized weights start before distillation. */
typedef enum {
    ZQ_INIT_RTN = 0, /* round to nearest (the quantize default) */
    ZQ_INIT_GPTQ     /* GPTQ on the data, with the quantized prefix's inputs */
} zq_lkd_init;

typedef struct {
    zq_quantize_opts q;     /* input, output, recipe, threads, force, compression */
    const char *layers;     /* "0-5,8", "all" or NULL (all) */
    int steps;              /* per layer (default 100) */
    float lr;               /* Adam's learning rate (default 3e-4) */
    int lr_cosine;          /* decay it (and clip_lr) to 0 over the steps along a half cosine (the default) */
    float weight_decay;     /* decoupled, on weights only (default 0.01) */
    int batch, seq_len;     /* sequences per step and their length (4, 128) */
    int data_batches;       /* distinct batches, cycled over the steps (16) */
    const char *data;       /* token file; NULL: uniformly random tokens */
    const int32_t *data_ids; /* or the tokens themselves (n_data_ids of them) */
    int generated;          /* or (neither given) sequences sampled from the FP model itself (the default);
                               0: uniformly random ids */
    size_t n_data_ids;
    zq_lkd_init init;       /* ZQ_INIT_GPTQ needs input_quantized */
    float damp;             /* GPTQ: fraction of the Hessian's mean diagonal added (0.01) */
    int act_order;          /* GPTQ: columns in decreasing Hessian diagonal order */
    int learn_clip;         /* also train a multiplier of every group's scale (the default) */
    float clip_lr;          /* its learning rate (default 1e-3) */
    uint64_t seed;
    int input_quantized;    /* feed block k the quantized prefix's output (the default); 0: the FP model's */
    int train_norms;        /* also tune the block's biases and norms */
    int resume;
    /* A work directory shared by several processes (make -j, hosts on one
     * filesystem): with no output, distil the listed blocks not yet done
     * there and stop; with an output, assemble it from the blocks there,
     * each of which must be done. NULL: OUT.lkd/, distil then assemble. */
    const char *work;
    /* With work and no output: distil only share number `share` of
     * `shares` of the listed blocks (contiguous runs, as even as the count
     * allows), as one of several processes (MPI ranks) would; shares 0 or
     * 1: all of them. */
    int share, shares;
    /* Data parallel (with input_quantized, as MPI ranks run it): this
     * process is rank data_rank of data_ranks, each taking an equal slice of
     * every batch, a power of two of sequences; the callbacks must combine
     * values across them and give every rank the same result, sums added as
     * zq_sum_parts_* adds the ranks' values in rank order (src/cli/mpi.c's
     * do): then the result is the bits of one process. Rank 0 alone writes
     * the work files and the output. data_ranks 0 or 1: one process. */
    int data_rank, data_ranks;
    void (*sum_f32)(void *ctx, float *buf, size_t n);
    void (*sum_f64)(void *ctx, double *buf, size_t n);
    void (*max_f32)(void *ctx, float *buf, size_t n);
    void *reduce_ctx;
    void (*progress)(void *ctx, const zq_lkd_progress *p);
    /* with progress_ctx, as each block's distillation ends (its report's
     * entry, whole); may be NULL */
    void (*layer_done)(void *ctx, const struct zq_lkd_layer *l);
    void *progress_ctx;
} zq_lkd_opts;

void zq_lkd_opts_init(zq_lkd_opts *o);
/* The options the result depends on, as JSON text (malloc'd; NULL when
 * memory runs out): processes of one job compare it. */
char *zq_lkd_options_signature(const zq_lkd_opts *o);

typedef struct zq_lkd_layer {
    int index, steps;
    double seconds, loss_start, loss_end; /* loss: mean squared error over the data */
    double *curve; /* each step's loss on its batch (steps values); malloc'd, freed with the report */
} zq_lkd_layer;

typedef struct {
    zq_lkd_layer *layers; /* the distilled ones, in order; malloc'd */
    int n;
    int *discarded; /* resuming: blocks whose work files did not check out, distilled again; malloc'd */
    int n_discarded;
    zq_quantize_report quant;
} zq_lkd_report;

/* Parses a layer list into mask[0..n_layers). */
zq_status zq_parse_layers(const char *spec, int n_layers, unsigned char *mask, zq_error *err);

zq_status zq_lkd(const zq_lkd_opts *o, zq_lkd_report *report, zq_error *err);
void zq_lkd_report_free(zq_lkd_report *r);

/* Points a block's weights, biases and norms at other buffers shaped like
 * the tensors in units (some of zq_net_block_tensors'): student reads
 * w_bufs[u] (or keeps fp's buffers where w_bufs is NULL) and g gets
 * gradient slots in g_bufs[u]; a fused q/k/v tensor feeds three Linears.
 * What units do not hold stays fp's, with no gradient. A mixture's experts
 * go to experts and expert_grads (3 per expert each; NULL when fp has
 * none); its router stays fp's. */
void zq_block_rewire(const zq_block *fp, const zq_net_tensor *units, int n, float *const *w_bufs,
                     float *const *g_bufs, zq_block *student, zq_block_grads *g, zq_linear *experts,
                     zq_linear_grad *expert_grads);

#ifdef __cplusplus
}
#endif
#endif
