/* bench_int8 [N K [THREADS]]: the integer backend's Linear (nn/packed.h) on this
 * machine's threads, against the FP path's product (FP32 weights,
 * base/blas.h) and against the machine's own limits measured in the same
 * run: memory read bandwidth (every thread summing its share of 1 GiB)
 * and INT8 multiply-add peak (every thread's vpdpbusd chains on
 * registers, when the CPU has VNNI). A Linear of N outputs and K inputs
 * (default 4096 x 4096), symmetric codes in groups of 128, int8-token
 * inputs: decode (one token) and prefill (512). Medians of 7 runs, with
 * their range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/blas.h"
#include "base/engine.h"
#include "nn/packed.h"
#include "zquant/block.h"
#include "zquant/fp16.h"

enum { REPS = 7, GROUP = 128, PREFILL = 512 };

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

/* median of REPS timings; *lo, *hi their range */
static double median(double *t, double *lo, double *hi)
{
    qsort(t, REPS, sizeof *t, by_value);
    *lo = t[0], *hi = t[REPS - 1];
    return t[REPS / 2];
}

/* ---- the machine's limits ---------------------------------------------- */

enum { BW_BYTES = 1 << 30, BW_TASKS = 64 };
static uint64_t *bw_buf, bw_sums[BW_TASKS];

static void bw_task(void *ctx, size_t t, int worker)
{
    (void)ctx, (void)worker;
    size_t n = BW_BYTES / 8 / BW_TASKS;
    const uint64_t *p = bw_buf + t * n;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < n; i += 4) s0 += p[i], s1 += p[i + 1], s2 += p[i + 2], s3 += p[i + 3];
    bw_sums[t] = s0 + s1 + s2 + s3;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* 12 independent chains of vpdpbusd on registers (named, so none lives
 * in memory): 64 x 12 multiply-adds a step */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void peak_task(void *ctx, size_t t, int worker)
{
    (void)t, (void)worker;
    long iters = *(const long *)ctx;
    __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    __m512i c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
    for (long i = 0; i < iters; i++) {
        __asm__ volatile("" : "+v"(a), "+v"(b)); /* fresh operands every step */
        c0 = _mm512_dpbusd_epi32(c0, a, b), c1 = _mm512_dpbusd_epi32(c1, a, b), c2 = _mm512_dpbusd_epi32(c2, a, b);
        c3 = _mm512_dpbusd_epi32(c3, a, b), c4 = _mm512_dpbusd_epi32(c4, a, b), c5 = _mm512_dpbusd_epi32(c5, a, b);
        c6 = _mm512_dpbusd_epi32(c6, a, b), c7 = _mm512_dpbusd_epi32(c7, a, b), c8 = _mm512_dpbusd_epi32(c8, a, b);
        c9 = _mm512_dpbusd_epi32(c9, a, b), c10 = _mm512_dpbusd_epi32(c10, a, b), c11 = _mm512_dpbusd_epi32(c11, a, b);
    }
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                 _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    int32_t out[16];
    _mm512_storeu_si512(out, s);
    if (out[0] == 42) fprintf(stderr, "?");
}
#endif

/* ---- the Linears ----------------------------------------------------------- */

typedef struct {
    const float *w, *x;
    float *y;
    int m, n, k;
} fp_job;

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[1]) : 4096, kk = argc > 2 ? atoi(argv[2]) : 4096;
    if (n <= 0 || kk <= 0 || kk % GROUP) {
        fprintf(stderr, "usage: bench_int8 [N K], K a multiple of %d\n", GROUP);
        return 2;
    }
    if (argc > 3) zq_engine_set_threads(atoi(argv[3]));
    zq_error err = {0};
    if (zq_blas_load(&err) != ZQ_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int threads = zq_engine_threads(), groups = kk / GROUP;
    double t[REPS], lo, hi;
    /* bandwidth */
    bw_buf = malloc(BW_BYTES);
    if (!bw_buf) return 1;
    memset(bw_buf, 1, BW_BYTES);
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        zq_engine_run(BW_TASKS, 0, bw_task, NULL);
        t[r] = now() - t0;
    }
    uint64_t check = 0;
    for (int k = 0; k < BW_TASKS; k++) check += bw_sums[k]; /* read, so the sums are not optimized away */
    double bw = BW_BYTES / median(t, &lo, &hi);
    if (check == 42) printf("?");
    printf("machine: %d threads, memory read bandwidth %.1f GB/s (%.1f-%.1f)", threads, bw / 1e9,
           BW_BYTES / hi / 1e9, BW_BYTES / lo / 1e9);
    free(bw_buf);
    double peak = 0;
#if defined(__x86_64__)
    if (!strcmp(zq_int8_kernels_name(), "avx512-vnni")) {
        long iters = 4000000;
        for (int r = 0; r < REPS; r++) {
            double t0 = now();
            zq_engine_run((size_t)threads, 0, peak_task, &iters);
            t[r] = now() - t0;
        }
        peak = (double)threads * iters * 12 * 64 / median(t, &lo, &hi);
        printf(", INT8 peak %.0f GMAC/s (vpdpbusd)", peak / 1e9);
    }
#endif
    printf("\n");
    /* the Linear's weights: codes, FP16 scales, and the FP32 copy the FP path multiplies */
    uint8_t *codes = malloc((size_t)n * kk);
    uint16_t *scales = malloc((size_t)n * groups * sizeof *scales);
    float *wf = malloc((size_t)n * kk * sizeof *wf), *x = malloc((size_t)PREFILL * kk * sizeof *x);
    float *y = malloc((size_t)PREFILL * n * sizeof *y), *scratch = malloc((size_t)PREFILL * kk * sizeof *scratch);
    if (!codes || !scales || !wf || !x || !y || !scratch) return 1;
    uint32_t s = 12345;
    for (size_t c = 0; c < (size_t)n * kk; c++) {
        s = s * 1664525u + 1013904223u;
        codes[c] = (uint8_t)(s >> 24);
        wf[c] = (float)(int8_t)codes[c] * 0.01f;
    }
    for (size_t c = 0; c < (size_t)n * groups; c++) scales[c] = zq_f32_to_f16(0.01f);
    for (size_t c = 0; c < (size_t)PREFILL * kk; c++) x[c] = (float)((c * 2654435761u) % 1000) / 500.0f - 1.0f;
    zq_qspec spec = {ZQ_FORMAT_INT8, 1, ZQ_GRAN_GROUP, GROUP, 0};
    zq_grid grid;
    zq_grid_init(&grid, &spec, (uint64_t)n, (uint64_t)kk);
    zq_stored_codes st = {spec, grid, codes, scales, NULL};
    zq_packed_linear pl;
    if (zq_packed_init(&pl, &st, NULL, n, NULL, 1, &err) != ZQ_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    zq_act_quant aq = {ZQ_AQ_TOKEN, NULL, 0, NULL, NULL};
    zq_linear fp = {wf, NULL, n, kk, 1, 0, NULL}, q8 = {NULL, NULL, n, kk, 1, 0, &pl};
    printf("Linear %d x %d, int8-token inputs, groups of %d, %d threads, medians of %d (range)\n", n, kk, GROUP, threads,
           REPS);
    double dec[2], pre[2];
    const zq_linear *L[2] = {&fp, &q8};
    for (int v = 0; v < 2; v++) {
        for (int r = 0; r < REPS; r++) {
            double t0 = now();
            zq_linear_forward(L[v], v ? &aq : NULL, scratch, x, y, 1, 1);
            t[r] = now() - t0;
        }
        dec[v] = median(t, &lo, &hi);
        double dlo = lo, dhi = hi;
        for (int r = 0; r < REPS; r++) {
            double t0 = now();
            zq_linear_forward(L[v], v ? &aq : NULL, scratch, x, y, PREFILL, PREFILL);
            t[r] = now() - t0;
        }
        pre[v] = median(t, &lo, &hi);
        double bytes = v ? (double)zq_packed_bytes(&pl) : (double)n * kk * 4, macs = (double)PREFILL * n * kk;
        printf("%-18s decode %8.3f ms (%.3f-%.3f), %5.1f GB/s of weights, %.2fx the bandwidth bound; "
               "prefill %d %8.2f ms (%.2f-%.2f), %6.1f GMAC/s",
               v ? zq_int8_kernels_name() : "fp32 (OpenBLAS)", dec[v] * 1e3, dlo * 1e3, dhi * 1e3,
               bytes / dec[v] / 1e9, dec[v] / (bytes / bw), PREFILL, pre[v] * 1e3, lo * 1e3, hi * 1e3,
               macs / pre[v] / 1e9);
        if (v && peak > 0) printf(", %.0f%% of peak", 100 * macs / pre[v] / peak);
        printf("\n");
    }
    printf("W8A8 against FP32: decode %.2fx, prefill %.2fx\n", dec[0] / dec[1], pre[0] / pre[1]);
    zq_packed_free(&pl);
    free(codes), free(scales), free(wf), free(x), free(y), free(scratch);
    return 0;
}
