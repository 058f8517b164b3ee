/* The only door to BLAS, and the products the engine computes with it.
 * Row-major throughout; W is [out, in].
 *
 * Every product gives the same bits for any thread count, by
 * construction: C is cut into tiles fixed by the shapes alone, each
 * computed by one single-threaded OpenBLAS call, the tiles spread over
 * the engine's threads (gemm.c). Rows that are tokens come in runs of
 * `seg` (one sequence each; 0 or >= M: one run): tiles never straddle
 * two, so a process holding some of a batch's sequences computes their
 * rows exactly as one holding all of them; and a sum over tokens (tn, a
 * weight gradient or a Hessian) is a tree over the runs (zquant/sum.h). */
#ifndef ZQ_BLAS_H
#define ZQ_BLAS_H

#include <stddef.h>

#include "zquant/error.h"

/* Loads OpenBLAS if it is not loaded yet and starts the engine's threads
 * (zq_engine_threads); under an address-space limit without room for
 * them all, the engine drops to one thread; an out-of-memory error when
 * not even that fits. Every product needs it done first. */
zq_status zq_blas_load(zq_error *err);

/* C[M,N] = A[M,K] . B[N,K]^T + beta C  (a Linear's forward: out = in . W^T);
 * rows of A and C in runs of seg */
void zq_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                int seg);
/* C[M,N] = A[M,K] . B[K,N] + beta C  (attention's P . V; a Linear's input
 * gradient); rows of A and C in runs of seg */
void zq_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                int seg);
/* C[M,N] = A[K,M]^T . B[K,N] + beta C  (a Linear's weight gradient), the K
 * rows of A and B in runs of seg, their products summed as a tree; scratch:
 * scratch_len floats, at least zq_gemm_tn_scratch(M, N, K, seg) to use
 * every thread, at least one thread's share always (NULL, 0 when K <= seg). */
void zq_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                int seg, float *scratch, size_t scratch_len);
size_t zq_gemm_tn_scratch(int M, int N, int K, int seg);

/* One single-threaded OpenBLAS call each, for gemm.c: C = op(A) op(B) + beta C;
 * y[M] = A[M,N] x + beta y. */
void zq_blas_sgemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc);
void zq_blas_sgemv(int M, int N, const float *A, int lda, const float *x, float beta, float *y);

/* H [n, n] symmetric positive definite, row-major, in; out: the upper
 * Cholesky factor U of its inverse (H^-1 = U^T U), zeros below the
 * diagonal (cholesky.c: blocked on the products above, the same bits for
 * any thread count). 0 when H is not positive definite or memory runs out. */
int zq_cholesky_inverse_upper(float *H, int n);

#endif
