/* The only door to BLAS. Row-major throughout; W is [out, in]. */

#include "zquant/error.h"

/* Loads OpenBLAS with the engine's threads (zq_engine_threads) if it is not
 * loaded yet; under an address-space limit without room for them all, the
 * engine drops to one thread; an out-of-memory error when not even that
 * fits. Every product needs it done first. */
zq_status zq_blas_load(zq_error *err);
#ifndef ZQ_BLAS_H
#define ZQ_BLAS_H

/* C[M,N] = A[M,K] . B[N,K]^T + beta C  (a Linear's forward: out = in . W^T) */
void zq_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* C[M,N] = A[M,K] . B[K,N] + beta C  (attention's P . V; a Linear's input gradient) */
void zq_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* C[M,N] = A[K,M]^T . B[K,N] + beta C  (a Linear's weight gradient) */
void zq_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void zq_blas_set_threads(int n);
/* H [n, n] symmetric positive definite, row-major, in; out: the upper
 * Cholesky factor U of its inverse (H^-1 = U^T U), zeros below the
 * diagonal (cholesky.c: blocked, sgemm for all but the diagonal blocks,
 * the same bits for any thread count). 0 when H is not positive definite
 * or memory runs out. */
int zq_cholesky_inverse_upper(float *H, int n);

#endif
