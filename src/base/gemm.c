/* The engine's products (blas.h): C cut into tiles of at most TILE x TILE
 * by the shapes alone, each tile one single-threaded OpenBLAS call, the
 * tiles spread over the engine's threads. A tile's bits depend on its
 * shape and data only, so the thread count changes where a tile is
 * computed, never what it holds. Rows that are tokens are tiled within
 * their run (one sequence), from its first row; a sum over tokens is one
 * product per run, added as a tree. */
#include "base/blas.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/engine.h"
#include "base/tree.h"
#include "zquant/block.h"

/* Each tile's call packs its rows of A and its columns of B, one copy per
 * side / 2 multiply-adds: large tiles keep that small (on GPTQ's updates
 * tiles of 256 cost 29% more time than OpenBLAS's own threads, which pack
 * each operand once). But a product of few tiles leaves threads idle. So
 * tiles are at most TILE x TILE, halved (down to MIN_TILE) while a product
 * has fewer than SPREAD of them, the sizes balanced within the run or the
 * columns: all from the shapes alone. */
enum { TILE = 1024, MIN_TILE = 256, SPREAD = 8 };
/* Below this many multiply-adds a product runs on the caller's thread:
 * handing it out would cost more than it saves (the bits are the same). */
#define SMALL_WORK (1 << 20)

typedef enum { NT, NN, TN } product_kind;

typedef struct {
    product_kind kind;
    int M, N, K;
    int row_run, k_run; /* rows of C in one run (nt, nn); K rows in one run (tn) */
    const float *A, *B;
    int lda, ldb, ldc;
    float beta;
    float *C;
    int side; /* the largest tile side */
    int row_tile_rows, row_tiles_per_run, row_tiles, col_tile_cols, col_tiles;
    /* tn with several runs: each worker's tree stack, slot floats apart,
     * for slots workers */
    float *scratch;
    size_t slot;
    int slots;
} product;

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* A run length: seg, or every row when seg is 0 or covers them. */
static int run_of(int seg, int rows) { return seg > 0 && seg < rows ? seg : rows > 0 ? rows : 1; }

/* n split into pieces of at most side, as equal as whole pieces allow */
static int piece(int n, int side) { return n > 0 ? ceil_div(n, ceil_div(n, side)) : 1; }

/* The tiles of C: within each run of rows, row_tile_rows at a time; the
 * columns col_tile_cols at a time. The run's last rows may be fewer, and a
 * shorter last run is tiled by the same rule. */
static void plan(product *p)
{
    for (p->side = TILE;; p->side /= 2) {
        p->row_tile_rows = piece(p->row_run, p->side);
        p->row_tiles_per_run = ceil_div(p->row_run, p->row_tile_rows);
        int full = p->M / p->row_run, tail = p->M % p->row_run;
        p->row_tiles = full * p->row_tiles_per_run + ceil_div(tail, p->row_tile_rows);
        p->col_tile_cols = piece(p->N, p->side);
        p->col_tiles = ceil_div(p->N, p->col_tile_cols);
        if (p->side <= MIN_TILE || (long)p->row_tiles * p->col_tiles >= SPREAD) break;
    }
}

static void row_tile(const product *p, int r, int *row0, int *rows)
{
    int run = r / p->row_tiles_per_run, k = r % p->row_tiles_per_run;
    int end = (run + 1) * p->row_run < p->M ? (run + 1) * p->row_run : p->M;
    *row0 = run * p->row_run + k * p->row_tile_rows;
    *rows = end - *row0 < p->row_tile_rows ? end - *row0 : p->row_tile_rows;
}

/* C[i0.., j0..] of tn: one product per run of K rows, summed as a tree,
 * then added to beta C. */
static void tn_tile(const product *p, int i0, int mi, int j0, int nj, float *stack)
{
    float *c = p->C + (size_t)i0 * p->ldc + j0;
    if (p->k_run >= p->K) {
        zq_blas_sgemm(1, 0, mi, nj, p->K, p->A + i0, p->lda, p->B + j0, p->ldb, p->beta, c, p->ldc);
        return;
    }
    zq_tree_f32 t;
    zq_tree_f32_init(&t, stack, (size_t)mi * nj);
    for (int k0 = 0; k0 < p->K; k0 += p->k_run) {
        int kk = p->K - k0 < p->k_run ? p->K - k0 : p->k_run;
        zq_blas_sgemm(1, 0, mi, nj, kk, p->A + (size_t)k0 * p->lda + i0, p->lda, p->B + (size_t)k0 * p->ldb + j0,
                      p->ldb, 0.0f, zq_tree_f32_next(&t), nj);
        zq_tree_f32_add(&t);
    }
    zq_tree_f32_finish(&t, c, (size_t)mi, (size_t)nj, (size_t)p->ldc, p->beta);
}

static void tile(void *ctx, size_t task, int worker)
{
    const product *p = ctx;
    int r0, mr, c0 = (int)(task % (size_t)p->col_tiles) * p->col_tile_cols;
    row_tile(p, (int)(task / (size_t)p->col_tiles), &r0, &mr);
    int nc = p->N - c0 < p->col_tile_cols ? p->N - c0 : p->col_tile_cols;
    float *c = p->C + (size_t)r0 * p->ldc + c0;
    switch (p->kind) {
    case NT: /* a single row (decoding) is a matrix-vector product: no packing of W */
        if (mr == 1) zq_blas_sgemv(nc, p->K, p->B + (size_t)c0 * p->ldb, p->ldb, p->A + (size_t)r0 * p->lda, p->beta, c);
        else zq_blas_sgemm(0, 1, mr, nc, p->K, p->A + (size_t)r0 * p->lda, p->lda, p->B + (size_t)c0 * p->ldb, p->ldb,
                           p->beta, c, p->ldc);
        break;
    case NN:
        zq_blas_sgemm(0, 0, mr, nc, p->K, p->A + (size_t)r0 * p->lda, p->lda, p->B + c0, p->ldb, p->beta, c, p->ldc);
        break;
    case TN:
        tn_tile(p, r0, mr, c0, nc, p->scratch ? p->scratch + (size_t)worker * p->slot : NULL);
        break;
    }
}

static void run(product *p)
{
    if (p->M <= 0 || p->N <= 0) return;
    size_t tasks = (size_t)p->row_tiles * (size_t)p->col_tiles;
    double work = (double)p->M * p->N * (p->K > 0 ? p->K : 1);
    if (work < SMALL_WORK) { /* inside an engine task: that worker's scratch */
        int w = zq_engine_worker();
        w = w >= 0 && (!p->slots || w < p->slots) ? w : 0;
        for (size_t t = 0; t < tasks; t++) tile(p, t, w);
    } else
        zq_engine_run(tasks, p->slots, tile, p);
}

void zq_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                int seg)
{
    product p = {.kind = NT, .M = M, .N = N, .K = K, .row_run = run_of(seg, M), .k_run = run_of(0, K), .A = A, .B = B,
                 .lda = lda, .ldb = ldb, .ldc = ldc, .beta = beta, .C = C};
    plan(&p);
    run(&p);
}

void zq_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                int seg)
{
    product p = {.kind = NN, .M = M, .N = N, .K = K, .row_run = run_of(seg, M), .k_run = run_of(0, K), .A = A, .B = B,
                 .lda = lda, .ldb = ldb, .ldc = ldc, .beta = beta, .C = C};
    plan(&p);
    run(&p);
}

/* One thread's tree stack for tn (none with a single run): tiles of mt x nt. */
static size_t tn_slot(int mt, int nt, int K, int seg)
{
    int run = run_of(seg, K);
    return run >= K ? 0 : (size_t)zq_tree_levels(ceil_div(K, run)) * (size_t)mt * (size_t)nt;
}

/* enough for any product of at most M x N and K rows: tiles are at most
 * TILE wide, and the tree deepens with the runs */
size_t zq_gemm_tn_scratch(int M, int N, int K, int seg)
{
    return (size_t)zq_engine_threads() * tn_slot(M < TILE ? M : TILE, N < TILE ? N : TILE, K, seg);
}

void zq_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                int seg, float *scratch, size_t scratch_len)
{
    /* C's rows are features: one run */
    product p = {.kind = TN, .M = M, .N = N, .K = K, .row_run = run_of(0, M), .k_run = run_of(seg, K), .A = A, .B = B,
                 .lda = lda, .ldb = ldb, .ldc = ldc, .beta = beta, .C = C, .scratch = scratch};
    plan(&p);
    p.slot = tn_slot(p.row_tile_rows, p.col_tile_cols, K, seg);
    if (p.slot && (!scratch || scratch_len < p.slot)) { /* a caller's bug: a wrong sum would be worse */
        fprintf(stderr, "zquant: internal error: zq_gemm_tn without scratch for %d runs\n", ceil_div(K, p.k_run));
        abort();
    }
    if (p.slot) p.slots = (int)(scratch_len / p.slot);
    run(&p);
}
