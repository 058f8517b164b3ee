/* make bench: GPTQ of one Llama-7B-shaped MLP's matrices (up 11008 x 4096,
 * down 4096 x 11008; INT4, groups of 128, blocks of 128) from a synthetic
 * Hessian (best of 3 runs), against a bound: the FLOPs of GPTQ's linear algebra (the
 * Cholesky factor of H and its triangular inverse, n^3/3 each, which give
 * the inverse's factor; the error updates: rows * cols^2, and rows * cols
 * * block inside the blocks) at the GFLOP/s OpenBLAS's sgemm reaches on
 * this machine in the same run. Goal: within 2x of the bound.
 *
 * usage: bench_gptq [THREADS]   (default: every core) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/blas.h"
#include "zquant/block.h"
#include "zquant/gptq.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t state = 88172645463325252ull;
static float gauss(void) /* sum of uniforms: close enough to normal for a benchmark */
{
    float s = 0;
    for (int k = 0; k < 4; k++) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        s += (float)(state >> 40) / (float)(1u << 24) - 0.5f;
    }
    return s;
}

static double sgemm_gflops(void)
{
    int n = 4096;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = gauss(), b[i] = gauss();
    zq_gemm_nn(n, n, n, a, n, b, n, 0.0f, c, n, 0); /* warm up */
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t = now();
        zq_gemm_nn(n, n, n, a, n, b, n, 0.0f, c, n, 0);
        double g = 2.0 * n * n * (double)n / (now() - t) / 1e9;
        best = g > best ? g : best;
    }
    free(a), free(b), free(c);
    return best;
}

/* H = B^T B / k + 0.01 I for random B [k, n]: correlated inputs, as real ones are */
static float *synthetic_hessian(int n)
{
    int k = 1024;
    float *B = malloc((size_t)k * n * 4), *H = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)k * n; i++) B[i] = gauss();
    zq_gemm_tn(n, n, k, B, n, B, n, 0.0f, H, n, 0, NULL, 0);
    for (size_t i = 0; i < (size_t)n * n; i++) H[i] /= (float)k;
    for (int i = 0; i < n; i++) H[(size_t)i * n + i] += 0.01f;
    free(B);
    return H;
}

/* best of RUNS, each from the same W and H (GPTQ consumes both) */
enum { RUNS = 3 };

static int bench(const char *name, int rows, int cols, double gflops)
{
    size_t nw = (size_t)rows * cols, nh = (size_t)cols * cols;
    float *H0 = synthetic_hessian(cols), *H = malloc(nh * 4), *W0 = malloc(nw * 4), *W = malloc(nw * 4);
    uint8_t *codes = malloc(nw);
    size_t ng = (size_t)rows * ((cols + 127) / 128);
    uint16_t *scale = malloc(ng * 2), *min = malloc(ng * 2);
    for (size_t i = 0; i < nw; i++) W0[i] = 0.02f * gauss();
    zq_qspec spec = {ZQ_FORMAT_INT4, 1, ZQ_GRAN_GROUP, 128, 0};
    zq_error err = {0};
    zq_status st = ZQ_OK;
    double best = 1e300;
    for (int r = 0; r < RUNS && st == ZQ_OK; r++) {
        memcpy(H, H0, nh * 4);
        memcpy(W, W0, nw * 4);
        double t = now();
        st = zq_gptq(&spec, W, (uint64_t)rows, (uint64_t)cols, H, 0.01f, 128, 0, codes, scale, min, &err);
        double secs = now() - t;
        best = secs < best ? secs : best;
    }
    double n = cols;
    double flops = 2.0 / 3.0 * n * n * n + (double)rows * n * n + (double)rows * n * 128;
    double bound = flops / (gflops * 1e9);
    if (st != ZQ_OK) fprintf(stderr, "bench_gptq: %s\n", err.msg);
    else
        printf("gptq %-5s %5d x %5d: %6.2f s (best of %d); bound %6.2f s (%.3g GFLOP at %.1f GFLOP/s): %.2fx the bound "
               "(goal <= 2x): %s\n",
               name, rows, cols, best, RUNS, bound, flops / 1e9, gflops, best / bound, best <= 2 * bound ? "met" : "NOT MET");
    free(H0), free(H), free(W0), free(W), free(codes), free(scale), free(min);
    return st == ZQ_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    zq_engine_set_threads(argc > 1 ? atoi(argv[1]) : 0);
    zq_error err = {0};
    if (zq_blas_load(&err) != ZQ_OK) {
        fprintf(stderr, "bench_gptq: %s\n", err.msg);
        return 1;
    }
    double g = sgemm_gflops();
    printf("OpenBLAS sgemm 4096^3: %.1f GFLOP/s (best of 3)\n", g);
    return bench("up", 11008, 4096, g) | bench("down", 4096, 11008, g);
}
