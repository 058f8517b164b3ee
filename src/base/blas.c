/* The only door to BLAS. OpenBLAS is loaded here, when a command first
 * needs it, not when the program starts, and always with one thread of its
 * own: OpenBLAS splits a threaded product by the thread count, and on many
 * of its kernels (Haswell, Zen, Prescott) the split changes the bits, so
 * the engine's threads run fixed tiles of every product instead (gemm.c).
 * Every thread that multiplies gets a 128 MB work buffer from OpenBLAS,
 * and one that cannot have it under an address-space limit (ulimit -v)
 * retries forever (OpenBLAS issue #5289). So under a limit the engine runs
 * on one thread, unless the limit has room to spare for every thread's
 * buffer; those buffers are allocated before anything else of ours, or
 * the command stops with an out-of-memory error in milliseconds. Commands
 * that do no linear algebra never load it. */
#include "base/blas.h"

#include "base/engine.h"
#include "zquant/block.h"

#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef ZQ_OPENBLAS_PATH
#define ZQ_OPENBLAS_PATH "libopenblas.so.0"
#endif

/* What OpenBLAS maps (measured on Debian 12's 0.3.21): about 48 MB for
 * itself, then per thread its work buffer (BUFFER_SIZE, 128 MB on x86-64)
 * and, for each thread but the caller's, an 8 MB stack. */
#define LIBRARY_BYTES ((size_t)48 << 20)
#define THREAD_BYTES (((size_t)128 + 8) << 20)
/* Room a limit must leave beyond every thread's buffer for the engine to
 * use more than one thread under it: the model and its activations. */
#define HEADROOM ((size_t)1 << 30)

static __typeof__(cblas_sgemm) *sgemm;
static __typeof__(cblas_sgemv) *sgemv;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static zq_error load_error; /* a failed load is final: every later caller gets it */

/* Whether bytes fit in the address space left: a mapping that reserves the
 * room without touching memory, tried and undone. */
static int room_for(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0;
    munmap(p, bytes);
    return 1;
}

/* With n engine threads, the n of the pool and the caller's may multiply,
 * each with a buffer, all but the caller a stack. */
static int threads_that_fit(int want)
{
    struct rlimit lim;
    if (want <= 1 || getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return want;
    return room_for(LIBRARY_BYTES + (size_t)(want + 1) * THREAD_BYTES + HEADROOM) ? want : 1;
}

enum { WARM = 64 };

/* One product on a thread, so that its OpenBLAS buffer exists from now on. */
static void warm(void *ctx, size_t task, int worker)
{
    (void)task, (void)worker;
    float *a = ctx;
    float c[WARM * WARM];
    sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, WARM, WARM, WARM, 1.0f, a, WARM, a, WARM, 0.0f, c, WARM);
}

static zq_status load(zq_error *err)
{
    int n = threads_that_fit(zq_engine_threads());
    if (n != zq_engine_threads()) zq_engine_cap_threads(n);
    if (!room_for(LIBRARY_BYTES + THREAD_BYTES)) {
        struct rlimit lim;
        getrlimit(RLIMIT_AS, &lim);
        return zq_fail(err, ZQ_ERR_NOMEM,
                       "out of memory: the address-space limit (ulimit -v, %llu MB) leaves no room for OpenBLAS, "
                       "which needs about %zu MB for one thread",
                       (unsigned long long)(lim.rlim_cur >> 20), (LIBRARY_BYTES + THREAD_BYTES) >> 20);
    }
    setenv("OPENBLAS_NUM_THREADS", "1", 1); /* read once, as it loads */
    void *h = dlopen(ZQ_OPENBLAS_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) return zq_fail(err, ZQ_ERR_IO, "cannot load OpenBLAS (%s): %s", ZQ_OPENBLAS_PATH, dlerror());
    sgemm = (__typeof__(cblas_sgemm) *)dlsym(h, "cblas_sgemm");
    sgemv = (__typeof__(cblas_sgemv) *)dlsym(h, "cblas_sgemv");
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    if (!sgemm || !sgemv || !set_threads) return zq_fail(err, ZQ_ERR_IO, "'%s' lacks cblas_sgemm", ZQ_OPENBLAS_PATH);
    set_threads(1); /* in case the library was already loaded, with its own count */
    /* every engine thread's buffer now, and the caller's, before anything
     * else of ours takes the room */
    static const float zeros[WARM * WARM];
    warm((void *)zeros, 0, 0);
    zq_engine_each_thread(warm, (void *)zeros);
    return ZQ_OK;
}

zq_status zq_blas_load(zq_error *err)
{
    pthread_mutex_lock(&lock);
    if (!sgemm && load_error.code == ZQ_OK && load(&load_error) != ZQ_OK) sgemm = NULL;
    zq_status st = load_error.code;
    if (st != ZQ_OK) zq_fail(err, st, "%s", load_error.msg);
    pthread_mutex_unlock(&lock);
    return st;
}

/* A product before any load: a caller skipped zq_blas_load, a bug. */
static void need_blas(void)
{
    if (sgemm) return;
    zq_error err = {0};
    if (zq_blas_load(&err) == ZQ_OK) return;
    fprintf(stderr, "zquant: %s\n", err.msg);
    abort();
}

void zq_blas_sgemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc)
{
    need_blas();
    sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
          lda, B, ldb, beta, C, ldc);
}

void zq_blas_sgemv(int M, int N, const float *A, int lda, const float *x, float beta, float *y)
{
    need_blas();
    sgemv(CblasRowMajor, CblasNoTrans, M, N, 1.0f, A, lda, x, 1, beta, y, 1);
}
