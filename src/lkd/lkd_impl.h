/* lkd.c's pieces for one block: its trainable tensors (masters, Adam
 * moments, the fake quantization the student computes with) and the work directory that makes a run
 * resumable (patch files of tuned weights, the state). */
#ifndef ZQ_LKD_IMPL_H
#define ZQ_LKD_IMPL_H

#include "zquant/lkd.h"
#include "zquant/arch.h"
#include "zquant/net.h"
#include "zquant/source.h"

typedef struct {
    /* u.w, the block's own buffer, is the FP master Adam trains in place:
     * the teacher's outputs are computed before the trainee exists and its
     * weights are not read again (a copy cost 0.8 GB at Llama-2-7B's block) */
    zq_net_tensor u;
    zq_qspec spec;
    /* fq: a vector's fake-quantized copy, which the block reads as it is;
     * a matrix has none, its Linears make it when they compute (below) */
    float *grad, *m, *v, *fq;
    size_t n;
    /* The grid's FP16 scales (and mins), [row_groups, col_groups] in the
     * checkpoint's row order, when they are chosen rather than taken from
     * the master's ranges (GPTQ's); NULL: round to nearest. */
    uint16_t *scale, *min;
    size_t ngroups;
    /* --learn-clip: per group, a trained multiplier of the scale (the
     * scale used and written is fp16(alpha * base)), with its gradient and
     * Adam moments; base: the fixed scales above, else the master's round
     * to nearest ones. */
    float *alpha, *alpha_grad, *alpha_m, *alpha_v, *base;
    /* a quantized matrix's grid now: the scales (and mins) its weights are
     * fake-quantized with, [ngroups], set by zq_lkd_fake_quantize */
    uint16_t *eff, *eff_min;
} param;

typedef struct {
    param *p; /* every tensor of the block but a mixture's router */
    int np;
    zq_block student;
    zq_block_grads g;
    zq_linear *experts; /* the student's, a mixture's (3 per expert) */
    zq_linear_grad *expert_grads;
    long t; /* Adam steps taken */
    /* The fake-quantized weights of one matrix, the one a Linear of the
     * student last computed with (made_of; -1: none since the grid was
     * last set), room for the block's largest. A copy of every matrix would
     * be one more block of floats (0.8 GB at Llama-2-7B's); made anew for
     * each use, the forward and backward each quantize the block once.
     * neox: room to put a NeoX tensor in the checkpoint's row order. */
    float *made, *neox;
    int made_of;
    int heads, workers; /* the arch's heads; the engine's threads (codes: room for each one's group) */
    uint8_t *codes;
} trainee;

/* Every data batch's activations at one depth (batches.c): in memory
 * (mem), or in a file without a name in dir (fd). */
typedef struct {
    float *mem;
    int fd;
    const char *dir;
    int nb;
    size_t per; /* floats of a batch */
} zq_batches;
/* spill_dir NULL: in memory */
zq_status zq_batches_open(zq_batches *s, int nb, size_t per, const char *spill_dir, zq_error *err);
void zq_batches_close(zq_batches *s);
/* *x: batch b, where it lies in memory or read into buf */
zq_status zq_batch_read(const zq_batches *s, int b, float *buf, const float **x, zq_error *err);
/* Where to compute batch b into (in memory, or buf), then to store it. */
float *zq_batch_slot(const zq_batches *s, int b, float *buf);
zq_status zq_batch_write(const zq_batches *s, int b, const float *x, zq_error *err);

/* One LKD run's data: each batch's activations at the current depth. */
typedef struct {
    const zq_lkd_opts *o;
    const zq_arch *a;
    zq_workspace *ws;
    zq_act_quant aq; /* the student's activation quantization */
    int nb, B, T;    /* B: this rank's slice of a batch */
    int ranks;       /* data-parallel processes (1: none) */
    size_t per;      /* floats of one batch's activations (this rank's slice) */
    /* the FP model's inputs and outputs of the current block, and with
     * quantized inputs the quantized prefix's; in_buf, y_buf: a batch of
     * them read back from a file */
    zq_batches x, y, xq;
    float *in_buf, *y_buf, *out, *dout;
    /* a mixture block's routing in the FP block, each batch's B*T*moe_topk
     * experts and weights; fp_routes: the student takes them (while it is
     * tuned), else its router chooses (as it runs, for the next block) */
    int *route_sel;
    float *route_w;
    int fp_routes;
} run;

/* The student's forward on batch b of the data (x, its input there). */
void zq_lkd_forward(run *r, zq_block *student, int b, const float *x, float *out);

typedef struct {
    char *dir;
    char *signature; /* the options that shape the tuned weights, as JSON */
} workdir;

/* vectors: also train the block's biases and norms; train: room for
 * gradients and Adam's moments (none when there are no steps: GPTQ) */
zq_status zq_lkd_trainee_init(trainee *tr, zq_net *net, int layer, const zq_block *fp, const zq_quantize_opts *q,
                          int vectors, int train, zq_source *src, const zq_model *model, zq_error *err);
void zq_lkd_trainee_free(trainee *tr);
/* The block's Linears: q, k, v, o, up, gate, down (ZQ_PART order), then
 * every expert's gate, up, down; *n of them (lin: room for
 * ZQ_LINEAR_SLOTS + 3 n_experts). */
void zq_lkd_block_linears(zq_block *b, zq_linear **lin, int *n);
/* The trainable weight tensor whose buffer holds w; -1 if none. */
int zq_lkd_param_of(const trainee *tr, const float *w);
/* The student's weights from the masters as they now are, as the recipe
 * stores them: each quantized matrix's grid (its scales: chosen, learned
 * or the master's ranges'), whose weights the student's Linears then make
 * as they compute, and the vectors' copies. Call it again after the
 * masters change, before the student computes. */
zq_status zq_lkd_fake_quantize(trainee *tr, const zq_arch *a, zq_error *err);
/* --learn-clip: the multipliers' gradients from the weights' (after the
 * last forward and backward) */
zq_status zq_lkd_clip_gradients(trainee *tr, const zq_arch *a, zq_error *err);
void zq_lkd_adam_step(trainee *tr, float lr, float wd, float clip_lr);
/* Learnable clipping (clip.c): gives p its multipliers (all 1); */
zq_status zq_lkd_clip_init(param *p, zq_error *err);
void zq_lkd_clip_free(param *p);
/* the scales to fake-quantize with: p->eff, which holds the base grid,
 * becomes alpha times it; */
zq_status zq_lkd_clip_scales(param *p, zq_error *err);
/* adds to alpha_grad the gradient of the loss through the scales, from
 * the gradient g of the fake-quantized weight (both in the checkpoint's
 * row order; straight-through rounding, LSQ's rule); */
void zq_lkd_clip_grad(param *p, const float *w, const float *g);
/* fixes the trained scales as p's chosen ones (what the patch carries). */
zq_status zq_lkd_clip_finish(param *p, zq_error *err);
/* Static activation ranges (int8-tensor recipes) of the student on in. */
zq_status zq_lkd_calibrate(run *r, zq_block *student, const zq_batches *in, zq_error *err);
/* GPTQ on the block's quantized Linears, in the order the block computes
 * them (q/k/v, o, up/gate, down), each one's Hessian from its input with
 * what comes before it already quantized, over every batch of in: the
 * masters become GPTQ's compensated weights (which round to its codes)
 * and their scales are fixed. */
zq_status zq_lkd_gptq_block(run *r, trainee *tr, const zq_batches *in, zq_error *err);

/* --work DIR, or OUT.lkd/ beside the output; for a device or FIFO output
 * (stream), a fresh one in $TMPDIR, which cannot be resumed. */
/* src: the checkpoint, whose content (and --data's) the signature holds. */
zq_status zq_lkd_workdir_open(workdir *w, const zq_lkd_opts *o, int stream, zq_source *src, zq_error *err);
void zq_lkd_workdir_close(workdir *w);
/* The recipe's "method": the options the result depends on, named lkd or
 * gptq, a data file by name, size and CRC-32C (malloc'd JSON text). */
char *zq_lkd_recipe_method(const zq_lkd_opts *o);
/* A distilled block is two files: block-K.safetensors, its tuned weights in
 * the checkpoint's names and layouts (a patch), and block-K.json, written
 * after it, with the options' signature, the patch's length and CRC-32C,
 * and a CRC-32C of its own. Blocks are independent files: processes
 * distilling different blocks never write the same one. */
char *zq_lkd_patch_path(const workdir *w, int layer);
zq_status zq_lkd_write_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err);
/* The same tensors as a source in memory (for writing them straight into
 * the output, without a work directory). */
zq_status zq_lkd_patch_source(trainee *tr, const zq_arch *a, const char *path, zq_source **out, zq_error *err);
zq_status zq_lkd_read_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err);
/* Whether block `layer` is done: its two files there and checking out. A
 * damaged or half-written pair is not done (*damaged set when files were
 * there); a sound pair made with other options is an error. */
zq_status zq_lkd_block_done(const workdir *w, int layer, int *done, int *damaged, zq_error *err);
/* Holds block `layer` for this process (a lock file beside its files, held
 * until zq_lkd_block_unlock): processes sharing a directory never distil the
 * same block at once; the second waits, then finds it done. -1 on failure. */
int zq_lkd_block_lock(const workdir *w, int layer, zq_error *err);
void zq_lkd_block_unlock(int fd);
/* Removes a finished run's work files. */
void zq_lkd_workdir_remove(const workdir *w, int n_layers);

/* zq_quantize with ZQ_METHOD_GPTQ (quant/quantize.c hands it over). */
zq_status zq_quantize_gptq(const zq_quantize_opts *q, zq_quantize_report *rep, zq_error *err);

#endif
