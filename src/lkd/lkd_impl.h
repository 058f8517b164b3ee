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
    char *dir, *state;
    char *signature;
} workdir;

/* vectors: also train the block's biases and norms */
zq_status lkd_trainee_init(trainee *tr, zq_net *net, int layer, const zq_block *fp, const zq_quantize_opts *q,
                          int vectors, zq_source *src, const zq_model *model, zq_error *err);
void lkd_trainee_free(trainee *tr);
/* the student's weights from the masters, as the recipe stores them */
zq_status lkd_fake_quantize(trainee *tr, const zq_arch *a, zq_error *err);
void lkd_adam_step(trainee *tr, float lr, float wd);

/* OUT.lkd/ beside the output; for a device or FIFO output (stream), a
 * fresh one in $TMPDIR, which cannot be resumed. */
zq_status lkd_workdir_open(workdir *w, const zq_lkd_opts *o, int stream, zq_error *err);
void lkd_workdir_close(workdir *w);
char *lkd_patch_path(const workdir *w, int layer);
zq_status lkd_write_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err);
zq_status lkd_read_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err);
zq_status lkd_save_state(const workdir *w, const unsigned char *done, int n, zq_error *err);
zq_status lkd_load_state(const workdir *w, unsigned char *done, int n, zq_error *err);

#endif
