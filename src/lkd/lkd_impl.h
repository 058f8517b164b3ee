/* lkd.c's pieces for one block: its trainable tensors (masters, Adam
 * moments, fake-quantized copies) and the work directory that makes a run
 * resumable (patch files of tuned weights, the state). */
#ifndef ZQ_LKD_IMPL_H
#define ZQ_LKD_IMPL_H

#include "zquant/lkd.h"
#include "zquant/arch.h"
#include "zquant/net.h"
#include "zquant/source.h"

typedef struct {
    zq_net_tensor u;  /* the block's own buffer: the FP weight, and what the student reads */
    zq_qspec spec;
    float *master, *grad, *m, *v, *fq;
    size_t n;
} param;

typedef struct {
    param p[32];
    int np;
    zq_block student;
    zq_block_grads g;
    long t; /* Adam steps taken */
} trainee;

typedef struct {
    char *dir;
    char *signature; /* the options that shape the tuned weights, as JSON */
} workdir;

/* vectors: also train the block's biases and norms */
zq_status lkd_trainee_init(trainee *tr, zq_net *net, int layer, const zq_block *fp, const zq_quantize_opts *q,
                          int vectors, zq_source *src, const zq_model *model, zq_error *err);
void lkd_trainee_free(trainee *tr);
/* the student's weights from the masters, as the recipe stores them */
zq_status lkd_fake_quantize(trainee *tr, const zq_arch *a, zq_error *err);
void lkd_adam_step(trainee *tr, float lr, float wd);

/* --work DIR, or OUT.lkd/ beside the output; for a device or FIFO output
 * (stream), a fresh one in $TMPDIR, which cannot be resumed. */
zq_status lkd_workdir_open(workdir *w, const zq_lkd_opts *o, int stream, zq_error *err);
void lkd_workdir_close(workdir *w);
/* A distilled block is two files: block-K.safetensors, its tuned weights in
 * the checkpoint's names and layouts (a patch), and block-K.json, written
 * after it, with the options' signature, the patch's length and CRC-32C,
 * and a CRC-32C of its own. Blocks are independent files: processes
 * distilling different blocks never write the same one. */
char *lkd_patch_path(const workdir *w, int layer);
zq_status lkd_write_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err);
zq_status lkd_read_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err);
/* Whether block `layer` is done: its two files there and checking out. A
 * damaged or half-written pair is not done (*damaged set when files were
 * there); a sound pair made with other options is an error. */
zq_status lkd_block_done(const workdir *w, int layer, int *done, int *damaged, zq_error *err);
/* Holds block `layer` for this process (a lock file beside its files, held
 * until lkd_block_unlock): processes sharing a directory never distil the
 * same block at once; the second waits, then finds it done. -1 on failure. */
int lkd_block_lock(const workdir *w, int layer, zq_error *err);
void lkd_block_unlock(int fd);
/* Removes a finished run's work files. */
void lkd_workdir_remove(const workdir *w, int n_layers);

#endif
