/* GPTQ on one matrix (see zquant/gptq.h): the inverse Hessian's upper
 * Cholesky factor U, then per block of columns: each column quantized with
 * zquant's rounding rule, its error e = (w - q) / U[j][j] subtracted from the
 * block's later columns as e * U[j][k], and the block's errors applied to
 * every later column at once as one GEMM. With act_order H is permuted
 * once (zq_gptq_prepare) and each matrix's columns with it; `orig` maps
 * the loop's columns back to the grid's. */
#include "zquant/gptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "base/engine.h"
#include "simd/kernels.h"
#include "zquant/block.h"
#include "zquant/fp16.h"

static zq_status group_params(const zq_qspec *spec, const zq_grid *g, const float *W, uint64_t cols, uint64_t r,
                              uint64_t gj, uint16_t *scale, uint16_t *min, zq_error *err)
{
    zq_group grp = zq_grid_group(g, r, gj);
    float lo, hi;
    size_t bad;
    if (!zq_range_f32(W + r * cols + grp.col0, (size_t)grp.ncols, &lo, &hi, &bad) ||
        !zq_group_params(spec, lo, hi, &scale[grp.index], &min[grp.index]))
        return zq_fail(err, ZQ_ERR_DATA, "GPTQ: row %llu, group %llu: values that FP16 cannot scale",
                       (unsigned long long)r, (unsigned long long)gj);
    return ZQ_OK;
}

/* An input that is always 0 (H's diagonal 0): its weights do not matter,
 * so they will be 0, and its diagonal becomes 1 so that H stays invertible. */
static void mark_dead(float *H, int n, unsigned char *dead)
{
    for (int i = 0; i < n; i++) {
        float *d = &H[(size_t)i * n + i];
        dead[i] = *d == 0.0f;
        if (dead[i]) *d = 1.0f;
    }
}

/* Dampens H and replaces it by U (H^-1 = U^T U). */
static zq_status dampen_and_factor(float *H, int n, float damp, zq_error *err)
{
    double mean = 0;
    for (int i = 0; i < n; i++) mean += H[(size_t)i * n + i];
    float add = (float)(damp * mean / n);
    for (int i = 0; i < n; i++) H[(size_t)i * n + i] += add;
    if (!zq_cholesky_inverse_upper(H, n))
        return zq_fail(err, ZQ_ERR_DATA, "GPTQ: the Hessian is not positive definite even dampened (raise --damp)");
    return ZQ_OK;
}

/* One block of columns [i1, i2) of the column loop, for some rows. */
typedef struct {
    const zq_qspec *spec;
    const zq_grid *g;
    float *W, *E;
    const float *U;
    uint64_t rows, cols, i1, i2, rows_per_task;
    int block;
    const uint32_t *orig;
    uint8_t *codes;
    uint16_t *scale, *min;
    zq_error *errs; /* one per task */
} block_job;

/* A block's error feedback stays within each row: a task takes some rows,
 * each walked along the block's columns (memory in order), and which
 * thread runs it changes nothing. */
static void block_rows(void *ctx, size_t task, int worker)
{
    (void)worker;
    const block_job *b = ctx;
    const zq_qspec *spec = b->spec;
    uint64_t cols = b->cols, r0 = task * b->rows_per_task;
    uint64_t r1 = r0 + b->rows_per_task < b->rows ? r0 + b->rows_per_task : b->rows;
    zq_error *err = &b->errs[task];
    err->code = ZQ_OK;
    float qlo, qhi;
    zq_code_range(spec, &qlo, &qhi);
    for (uint64_t r = r0; r < r1; r++) {
        float *row = b->W + r * cols;
        uint64_t last = UINT64_MAX;
        float s = 0, m = 0, inv = 0;
        for (uint64_t j = b->i1; j < b->i2; j++) {
            uint64_t col = b->orig ? b->orig[j] : j, gj = col / b->g->group_cols;
            if (!b->orig && j % b->g->group_cols == 0) { /* a group starts: its scale from the weights as they now are */
                if (group_params(spec, b->g, b->W, cols, r, gj, b->scale, b->min, err) != ZQ_OK) return;
                last = UINT64_MAX;
            }
            uint64_t gi = zq_grid_group(b->g, r, gj).index;
            if (gi != last) { /* the group's scale as zq_quantize_run uses it */
                s = zq_f16_to_f32(b->scale[gi]);
                m = spec->symmetric ? 0.0f : zq_f16_to_f32(b->min[gi]);
                inv = s != 0.0f ? 1.0f / s : 0.0f;
                last = gi;
            }
            float w = row[j], q = zq_code_of(w, m, inv, qlo, qhi);
            b->codes[r * cols + col] = (uint8_t)(int)q; /* two's complement byte for negative codes */
            float e = (w - (q * s + m)) / b->U[j * cols + j];
            b->E[r * (uint64_t)b->block + (j - b->i1)] = -e; /* the GEMM after the block adds */
            const float *u = b->U + j * cols;
            for (uint64_t k = j + 1; k < b->i2; k++) row[k] -= e * u[k];
        }
    }
}

/* The column loop. orig NULL: columns in grid order, each group's scale
 * computed when its first column comes; else column j is grid column
 * orig[j] and every scale is already set. */
static zq_status columns(const zq_qspec *spec, const zq_grid *g, float *W, uint64_t rows, uint64_t cols, const float *U,
                         int block, const uint32_t *orig, uint8_t *codes, uint16_t *scale, uint16_t *min, zq_error *err)
{
    block_job b = {spec, g, W, NULL, U, rows, cols, 0, 0, 64, block, orig, codes, scale, min, NULL};
    size_t ntasks = (size_t)((rows + b.rows_per_task - 1) / b.rows_per_task);
    b.E = malloc(rows * (size_t)block * sizeof *b.E); /* the block's scaled errors, negated, [rows, block] */
    b.errs = calloc(ntasks, sizeof *b.errs);
    zq_status st = b.E && b.errs ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (uint64_t i1 = 0; st == ZQ_OK && i1 < cols; i1 += (uint64_t)block) {
        b.i1 = i1;
        b.i2 = i1 + (uint64_t)block < cols ? i1 + (uint64_t)block : cols;
        zq_engine_run(ntasks, 0, block_rows, &b);
        for (size_t t = 0; st == ZQ_OK && t < ntasks; t++) /* the first failing rows speak, whatever the timing */
            if (b.errs[t].code != ZQ_OK) *err = b.errs[t], st = err->code;
        if (st == ZQ_OK && b.i2 < cols) /* W[:, i2:] -= errors . U[i1:i2, i2:] */
            zq_gemm_nn((int)rows, (int)(cols - b.i2), (int)(b.i2 - i1), b.E, block, U + i1 * cols + b.i2, (int)cols,
                       1.0f, W + b.i2, (int)cols, 0);
    }
    free(b.E);
    free(b.errs);
    return st;
}

typedef struct {
    float diag;
    uint32_t col;
} ranked;

static int by_diag_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->diag != y->diag) return x->diag > y->diag ? -1 : 1;
    return (x->col > y->col) - (x->col < y->col); /* ties in column order: the same on every machine */
}

static zq_status order_by_diagonal(const float *H, int n, uint32_t *order, zq_error *err)
{
    ranked *rank = malloc((size_t)n * sizeof *rank);
    if (!rank) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) rank[i] = (ranked){H[(size_t)i * n + i], (uint32_t)i};
    qsort(rank, (size_t)n, sizeof *rank, by_diag_desc);
    for (int i = 0; i < n; i++) order[i] = rank[i].col;
    free(rank);
    return ZQ_OK;
}

zq_status zq_gptq_prepare(float *H, int n, float damp, int act_order, zq_gptq_hessian *h, zq_error *err)
{
    memset(h, 0, sizeof *h);
    ZQ_TRY(zq_blas_load(err));
    h->n = n;
    h->dead = malloc((size_t)n);
    h->order = act_order ? malloc((size_t)n * sizeof *h->order) : NULL;
    zq_status st = h->dead && (!act_order || h->order) ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) mark_dead(H, n, h->dead);
    if (st == ZQ_OK && act_order) st = order_by_diagonal(H, n, h->order, err);
    if (st == ZQ_OK && act_order) { /* H in that order */
        float *Hp = malloc((size_t)n * n * sizeof *Hp);
        if (!Hp) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; st == ZQ_OK && i < (size_t)n; i++)
            for (size_t j = 0; j < (size_t)n; j++) Hp[i * n + j] = H[(size_t)h->order[i] * n + h->order[j]];
        if (st == ZQ_OK) memcpy(H, Hp, (size_t)n * n * sizeof *H);
        free(Hp);
    }
    if (st == ZQ_OK) st = dampen_and_factor(H, n, damp, err);
    if (st == ZQ_OK) h->U = H;
    else zq_gptq_hessian_free(h);
    return st;
}

void zq_gptq_hessian_free(zq_gptq_hessian *h)
{
    free(h->dead), free(h->order);
    memset(h, 0, sizeof *h);
}

zq_status zq_gptq_run(const zq_qspec *spec, float *W, uint64_t rows, uint64_t cols, const zq_gptq_hessian *h, int block,
                      uint8_t *codes, uint16_t *scale, uint16_t *min, zq_error *err)
{
    if (!zq_qspec_quantized(spec) || (spec->gran != ZQ_GRAN_GROUP && spec->gran != ZQ_GRAN_ROW))
        return zq_fail(err, ZQ_ERR_USAGE, "GPTQ quantizes INT4/INT8 with groups along the input or one per row");
    if (block < 1 || cols != (uint64_t)h->n) return zq_fail(err, ZQ_ERR_USAGE, "GPTQ: bad block or size");
    zq_grid g;
    zq_grid_init(&g, spec, rows, cols);
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++)
            if (h->dead[c]) W[r * cols + c] = 0.0f;
    if (!h->order) return columns(spec, &g, W, rows, cols, h->U, block, NULL, codes, scale, min, err);
    /* act order: every scale first, from W as given, then the loop on W's
     * columns in that order, and W back in grid order */
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t gj = 0; gj < g.col_groups; gj++) ZQ_TRY(group_params(spec, &g, W, cols, r, gj, scale, min, err));
    float *Wp = malloc(rows * cols * sizeof *Wp);
    if (!Wp) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t j = 0; j < cols; j++) Wp[r * cols + j] = W[r * cols + h->order[j]];
    zq_status st = columns(spec, &g, Wp, rows, cols, h->U, block, h->order, codes, scale, min, err);
    if (st == ZQ_OK)
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t j = 0; j < cols; j++) W[r * cols + h->order[j]] = Wp[r * cols + j];
    free(Wp);
    return st;
}

zq_status zq_gptq(const zq_qspec *spec, float *W, uint64_t rows, uint64_t cols, float *H, float damp, int block,
                  int act_order, uint8_t *codes, uint16_t *scale, uint16_t *min, zq_error *err)
{
    if (cols > (uint64_t)INT32_MAX / 2) return zq_fail(err, ZQ_ERR_USAGE, "GPTQ: bad block or size");
    zq_gptq_hessian h;
    ZQ_TRY(zq_gptq_prepare(H, (int)cols, damp, act_order, &h, err));
    zq_status st = zq_gptq_run(spec, W, rows, cols, &h, block, codes, scale, min, err);
    zq_gptq_hessian_free(&h);
    return st;
}
