/* The upper Cholesky factor of an inverse (zq_cholesky_inverse_upper, for
 * GPTQ), blocked so that nearly all the work is the engine's products:
 * OpenBLAS's own threaded spotrf rounds differently with each thread
 * count, while the engine's products are tiled by their shapes alone (see
 * blas.h), so results do not depend on --threads (test_gptq.c holds the
 * factor to the same bits at 1 and 2 threads, tests/determinism.sh under
 * every OpenBLAS kernel). The diagonal blocks (at most NB wide) are
 * factored and inverted here, in double.
 *
 * With J the order reversal, B = J H J = L L^T (L lower) gives
 * H^-1 = (J L^-1 J)^T (J L^-1 J), and J L^-1 J is upper: one Cholesky and
 * one triangular inverse, n^3/3 FLOPs each. Reversing both indices of a
 * row-major matrix reverses its array. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "base/engine.h"

enum { NB = 128 };

/* In place, the lower Cholesky factor of the k x k block at a (row stride
 * lda); 0 when it is not positive definite. */
static int factor_block(float *a, int lda, int k)
{
    for (int j = 0; j < k; j++) {
        double d = a[(size_t)j * lda + j];
        for (int p = 0; p < j; p++) d -= (double)a[(size_t)j * lda + p] * a[(size_t)j * lda + p];
        if (!(d > 0)) return 0;
        double r = sqrt(d);
        a[(size_t)j * lda + j] = (float)r;
        for (int i = j + 1; i < k; i++) {
            double s = a[(size_t)i * lda + j];
            for (int p = 0; p < j; p++) s -= (double)a[(size_t)i * lda + p] * a[(size_t)j * lda + p];
            a[(size_t)i * lda + j] = (float)(s / r);
        }
    }
    return 1;
}

/* t (k x k, row stride ldt, zero above the diagonal) = the inverse of the
 * lower triangular k x k block at l. */
static void invert_block(const float *l, int ldl, int k, float *t, int ldt)
{
    for (int i = 0; i < k; i++) memset(t + (size_t)i * ldt, 0, (size_t)k * sizeof *t);
    for (int j = 0; j < k; j++) {
        t[(size_t)j * ldt + j] = (float)(1.0 / l[(size_t)j * ldl + j]);
        for (int i = j + 1; i < k; i++) { /* row i of L times column j of T is 0 */
            double s = 0;
            for (int p = j; p < i; p++) s += (double)l[(size_t)i * ldl + p] * t[(size_t)p * ldt + j];
            t[(size_t)i * ldt + j] = (float)(-s / l[(size_t)i * ldl + i]);
        }
    }
}

/* B's lower triangle becomes L (right-looking, a block column at a time). */
static int factor(float *B, int n, float *panel, float *neg, float *tinv)
{
    for (int k = 0; k < n; k += NB) {
        int kb = n - k < NB ? n - k : NB, m = n - k - kb;
        if (!factor_block(B + (size_t)k * n + k, n, kb)) return 0;
        if (!m) break;
        invert_block(B + (size_t)k * n + k, n, kb, tinv, NB);
        float *b21 = B + (size_t)(k + kb) * n + k;
        zq_gemm_nt(m, kb, kb, b21, n, tinv, NB, 0.0f, panel, NB, 0); /* L21 = B21 L11^-T */
        for (int i = 0; i < m; i++) {
            memcpy(b21 + (size_t)i * n, panel + (size_t)i * NB, (size_t)kb * sizeof *panel);
            for (int p = 0; p < kb; p++) neg[(size_t)i * NB + p] = -panel[(size_t)i * NB + p];
        }
        /* B22 -= L21 L21^T, its lower triangle only: a block of rows at a time */
        for (int r = 0; r < m; r += NB) {
            int rb = m - r < NB ? m - r : NB;
            zq_gemm_nt(rb, r + rb, kb, neg + (size_t)r * NB, NB, panel, NB, 1.0f, B + (size_t)(k + kb + r) * n + k + kb, n, 0);
        }
    }
    return 1;
}

typedef struct {
    const float *L;
    const float *X;
    float *S;
    int n, i, ib;
} row_block;

/* Column block j of L[i, :i] X[:i, :i]: only rows >= j of X count. Each
 * is one tile (NB x NB), so the blocks, not their tiles, are what the
 * engine's threads share. */
static void column_block(void *ctx, size_t task, int worker)
{
    (void)worker;
    const row_block *b = ctx;
    int j = (int)task * NB, n = b->n;
    zq_gemm_nn(b->ib, NB, b->i - j, b->L + (size_t)b->i * n + j, n, b->X + (size_t)j * n + j, n, 0.0f, b->S + j, n, 0);
}

/* X (zeroed) = L^-1, a block of rows at a time: X_ii = L_ii^-1 and
 * X[i, :i] = -X_ii (L[i, :i] X[:i, :i]), X[:i, :i] block lower triangular. */
static void invert(const float *L, int n, float *X, float *S, float *tinv)
{
    for (int i = 0; i < n; i += NB) {
        int ib = n - i < NB ? n - i : NB;
        invert_block(L + (size_t)i * n + i, n, ib, X + (size_t)i * n + i, n);
        if (!i) continue;
        row_block b = {L, X, S, n, i, ib};
        zq_engine_run((size_t)(i / NB), 0, column_block, &b);
        for (int r = 0; r < ib; r++)
            for (int c = 0; c < ib; c++) tinv[(size_t)r * NB + c] = -X[(size_t)(i + r) * n + i + c];
        zq_gemm_nn(ib, i, ib, tinv, NB, S, n, 0.0f, X + (size_t)i * n, n, 0);
    }
}

static void reverse(float *a, size_t n)
{
    for (size_t i = 0, j = n - 1; i < j; i++, j--) {
        float t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int zq_cholesky_inverse_upper(float *H, int n)
{
    size_t nn = (size_t)n * n;
    float *X = calloc(nn, sizeof *X), *panel = malloc((size_t)n * NB * sizeof *panel);
    float *neg = malloc((size_t)n * NB * sizeof *neg), *S = malloc((size_t)NB * n * sizeof *S);
    float *tinv = malloc((size_t)NB * NB * sizeof *tinv);
    int ok = X && panel && neg && S && tinv;
    if (ok) {
        reverse(H, nn);
        ok = factor(H, n, panel, neg, tinv);
    }
    if (ok) {
        invert(H, n, X, S, tinv);
        reverse(X, nn);
        memcpy(H, X, nn * sizeof *H);
    }
    free(X), free(panel), free(neg), free(S), free(tinv);
    return ok;
}
