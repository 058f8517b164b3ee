/* bench_int8 [N K]: one thread, a Linear of N outputs and K inputs (default
 * 4096 x 4096), decoded one token at a time (a matrix-vector product) and
 * prefilled 64 tokens at once: OpenBLAS's FP32 sgemv/sgemm against each
 * integer kernel set's W8A8 path (token quantization, uint8 x int8 dot
 * products over groups of 128 on weights packed for the set, epilogue).
 * Medians of 7 runs; weight bytes per second for decode, multiply-adds
 * per second for prefill. No cache tiling and one thread yet: a floor,
 * not the backend's figure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/blas.h"
#include "simd/int8.h"

enum { REPS = 7, GROUP = 128, PREFILL = 64 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t)
{
    qsort(t, REPS, sizeof *t, by_value);
    return t[REPS / 2];
}

/* m tokens through the W8A8 path with kernel set k: each token's codes
 * (prologue), then per group the packed dot products of every token
 * (main loop), then each token's epilogue */
static void w8a8(const zq_int8_kernels *k, const float *x, int m, int n, int kk, const int8_t *packed,
                 const int32_t *wsum, const float *wscale, uint8_t *q, float *scales, int32_t *zeros, int32_t *dots,
                 float *y)
{
    int groups = kk / GROUP, nblocks = (n + k->lanes - 1) / k->lanes, ldo = nblocks * k->lanes;
    size_t gbytes = zq_int8_packed_bytes(n, GROUP, k->lanes);
    for (int i = 0; i < m; i++) scales[i] = k->quant_row_u8(x + (size_t)i * kk, (size_t)kk, q + (size_t)i * kk, &zeros[i]);
    for (int g = 0; g < groups; g++)
        k->dot_packed(q + (size_t)g * GROUP, (size_t)kk, m, packed + (size_t)g * gbytes, nblocks, GROUP / 4,
                      dots + (size_t)g * m * ldo, (size_t)ldo);
    for (int i = 0; i < m; i++)
        k->epilogue(dots + (size_t)i * ldo, (size_t)m * ldo, wsum, wscale, groups, n, scales[i], zeros[i], NULL,
                    y + (size_t)i * n);
}

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[1]) : 4096, kk = argc > 2 ? atoi(argv[2]) : 4096;
    if (n <= 0 || kk <= 0 || kk % GROUP) {
        fprintf(stderr, "usage: bench_int8 [N K], K a multiple of %d\n", GROUP);
        return 2;
    }
    zq_error err = {0};
    if (zq_blas_load(&err) != ZQ_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int groups = kk / GROUP;
    float *wf = malloc((size_t)n * kk * sizeof *wf), *x = malloc((size_t)PREFILL * kk * sizeof *x);
    float *y = malloc((size_t)PREFILL * n * sizeof *y), *wscale = malloc((size_t)groups * n * sizeof *wscale);
    int8_t *w = malloc((size_t)n * kk);
    int32_t *wsum = calloc((size_t)groups * n, sizeof *wsum), *dots = malloc((size_t)groups * n * sizeof *dots);
    uint8_t *q = malloc((size_t)PREFILL * kk);
    int8_t *packed = malloc(zq_int8_packed_bytes(n, GROUP, 16) * (size_t)groups);
    float scales[PREFILL];
    int32_t zeros[PREFILL];
    free(dots);
    dots = malloc((size_t)groups * PREFILL * (n + 16) * sizeof *dots);
    if (!wf || !x || !y || !wscale || !w || !wsum || !dots || !q || !packed) return 1;
    uint32_t s = 12345;
    for (size_t c = 0; c < (size_t)n * kk; c++) {
        s = s * 1664525u + 1013904223u;
        w[c] = (int8_t)(s >> 24);
        wf[c] = (float)w[c] * 0.01f;
    }
    for (int j = 0; j < n; j++)
        for (int g = 0; g < groups; g++) {
            wscale[(size_t)g * n + j] = 0.01f;
            for (int c = 0; c < GROUP; c++) wsum[(size_t)g * n + j] += w[(size_t)j * kk + (size_t)g * GROUP + c];
        }
    for (size_t c = 0; c < (size_t)PREFILL * kk; c++) x[c] = (float)((c * 2654435761u) % 1000) / 500.0f - 1.0f;
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        zq_blas_sgemv(n, kk, wf, kk, x, 0.0f, y);
        t[r] = now() - t0;
    }
    double fp_decode = median(t);
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        zq_blas_sgemm(0, 1, PREFILL, n, kk, x, kk, wf, kk, 0.0f, y, n);
        t[r] = now() - t0;
    }
    double fp_prefill = median(t);
    double wbytes_f = (double)n * kk * 4, wbytes_i = (double)n * kk, macs = (double)PREFILL * n * kk;
    printf("Linear %d x %d, one thread, medians of %d\n", n, kk, REPS);
    printf("%-12s decode %7.3f ms (%5.1f GB/s of weights)  prefill %d: %7.2f ms (%6.1f GMAC/s)\n", "fp32 blas",
           fp_decode * 1e3, wbytes_f / fp_decode / 1e9, PREFILL, fp_prefill * 1e3, macs / fp_prefill / 1e9);
    const zq_int8_kernels *sets[8] = {&zq_int8_scalar};
    int ns = 1;
    for (const zq_int8_kernels *const *v = zq_int8_vector_sets(); *v && ns < 8; v++) sets[ns++] = *v;
    for (int k = 0; k < ns; k++) {
        size_t gbytes = zq_int8_packed_bytes(n, GROUP, sets[k]->lanes);
        for (int g = 0; g < groups; g++) /* as a model's weights would be at load */
            zq_int8_pack(w + (size_t)g * GROUP, (size_t)kk, n, GROUP, sets[k]->lanes, packed + (size_t)g * gbytes);
        int reps_decode = sets[k] == &zq_int8_scalar ? 1 : REPS;
        for (int r = 0; r < REPS; r++) t[r] = 1e9;
        for (int r = 0; r < reps_decode; r++) {
            double t0 = now();
            w8a8(sets[k], x, 1, n, kk, packed, wsum, wscale, q, scales, zeros, dots, y);
            t[r] = now() - t0;
        }
        double dec = reps_decode == 1 ? t[0] : median(t);
        double pre = 0;
        if (sets[k] != &zq_int8_scalar) {
            for (int r = 0; r < REPS; r++) {
                double t0 = now();
                w8a8(sets[k], x, PREFILL, n, kk, packed, wsum, wscale, q, scales, zeros, dots, y);
                t[r] = now() - t0;
            }
            pre = median(t);
        }
        printf("%-12s decode %7.3f ms (%5.1f GB/s of weights, %.2fx fp32)", sets[k]->name, dec * 1e3,
               wbytes_i / dec / 1e9, fp_decode / dec);
        if (pre) printf("  prefill %d: %7.2f ms (%6.1f GMAC/s, %.2fx fp32)", PREFILL, pre * 1e3, macs / pre / 1e9,
                        fp_prefill / pre);
        printf("\n");
    }
    free(wf), free(x), free(y), free(wscale), free(w), free(wsum), free(dots), free(q), free(packed);
    return 0;
}
