/* GPTQ against the independent float64 reference (scripts/gptq_reference.py,
 * from the paper's algorithm): the same codes and scales, but for a few a
 * float32 rounding tie can flip (then the error feedback differs from there
 * on); and GPTQ must beat round to nearest on the layer's output error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "base/le.h"
#include "test.h"
#include "zquant/fp16.h"
#include "zquant/block.h"
#include "zquant/gptq.h"

/* ||(W - Q) X^T||^2 / n through H = 2 X^T X / n: trace(D H D^T) / 2 */
static double output_error(const float *W, const float *Q, const float *H, int rows, int cols)
{
    double s = 0;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++)
                s += ((double)W[r * cols + i] - Q[r * cols + i]) * H[i * cols + j] * ((double)W[r * cols + j] - Q[r * cols + j]);
    return s / 2;
}

/* Runs zq_gptq on the fixture's layer in one order and holds it to the
 * reference's codes and scales (read from f, which they come next in). */
static void check_against_reference(FILE *f, int act_order)
{
    rewind(f);
    unsigned char hdr[8];
    CHECK(fread(hdr, 1, 8, f) == 8);
    int rows = (int)zq_load_le32(hdr), cols = (int)zq_load_le32(hdr + 4), groups = cols / 32;
    size_t nw = (size_t)rows * cols, nh = (size_t)cols * cols, ns = (size_t)rows * groups;
    float *W = malloc(nw * 4), *H = malloc(nh * 4), *W0 = malloc(nw * 4), *H0 = malloc(nh * 4), *Q = malloc(nw * 4);
    int8_t *want = malloc(nw);
    uint16_t *want_scale = malloc(ns * 2), *scale = malloc(ns * 2), *min = malloc(ns * 2), *rtn_scale = malloc(ns * 2);
    uint8_t *codes = malloc(nw);
    CHECK(fread(W, 4, nw, f) == nw && fread(H, 4, nh, f) == nh);
    for (int skip = 0; skip < act_order; skip++) CHECK(fseek(f, (long)(nw + ns * 2), SEEK_CUR) == 0);
    CHECK(fread(want, 1, nw, f) == nw && fread(want_scale, 2, ns, f) == ns);
    memcpy(W0, W, nw * 4);
    memcpy(H0, H, nh * 4);
    zq_qspec spec = {ZQ_FORMAT_INT4, 1, ZQ_GRAN_GROUP, 32, 0};
    zq_error err = {0};
    CHECK(zq_gptq(&spec, W, (uint64_t)rows, (uint64_t)cols, H, 0.01f, 32, act_order, codes, scale, min, &err) == ZQ_OK);
    size_t diff_codes = 0, diff_scales = 0;
    for (size_t i = 0; i < nw; i++) diff_codes += (int8_t)codes[i] != want[i];
    for (size_t i = 0; i < ns; i++) diff_scales += scale[i] != want_scale[i];
    const char *order = act_order ? "act order" : "column order";
    fprintf(stderr, "  gptq (%s): %zu of %zu codes and %zu of %zu scales differ from the float64 reference\n", order,
            diff_codes, nw, diff_scales, ns);
    CHECK(diff_codes * 100 <= nw); /* at most 1%: float32 ties, and what follows them in their row */
    CHECK(diff_scales * 50 <= ns);
    /* the layer's output error: GPTQ's codes against round to nearest */
    for (size_t i = 0; i < nw; i++) Q[i] = (float)(int8_t)codes[i] * zq_f16_to_f32(scale[i / cols * groups + i % cols / 32]);
    double e_gptq = output_error(W0, Q, H0, rows, cols);
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < groups; g++) {
            float lo = 0, hi = 0, *w = W0 + r * cols + g * 32;
            for (int c = 0; c < 32; c++) lo = w[c] < lo ? w[c] : lo, hi = w[c] > hi ? w[c] : hi;
            uint16_t s, m;
            zq_group_params(&spec, lo, hi, &s, &m);
            zq_err_sums sums = {0};
            uint8_t q[32];
            zq_quantize_run(&spec, w, 32, s, m, q, &sums);
            for (int c = 0; c < 32; c++) Q[r * cols + g * 32 + c] = (float)(int8_t)q[c] * zq_f16_to_f32(s);
            rtn_scale[r * groups + g] = s;
        }
    double e_rtn = output_error(W0, Q, H0, rows, cols);
    fprintf(stderr, "  gptq (%s): output error %.6g, round to nearest %.6g\n", order, e_gptq, e_rtn);
    CHECK(e_gptq < 0.8 * e_rtn);
    if (act_order) { /* static groups: round to nearest's scales but for the dead input's zeroed weights */
        size_t same = 0;
        for (size_t i = 0; i < ns; i++) same += scale[i] == rtn_scale[i];
        CHECK(same * 10 >= ns * 9);
    }
    free(W), free(H), free(W0), free(H0), free(Q), free(want), free(want_scale), free(scale), free(min), free(codes);
    free(rtn_scale);
}

TEST(gptq_matches_the_reference_and_beats_rounding)
{
    FILE *f = fopen("tests/fixtures/gptq/gptq.bin", "rb");
    CHECK(f != NULL);
    if (!f) return;
    check_against_reference(f, 0);
    check_against_reference(f, 1);
    fclose(f);
}

/* The blocked factor of an inverse, well past one block (n = 1100, nine
 * blocks of 128 or less, products large enough for OpenBLAS to share out):
 * U upper with U^T U H = I to float precision (every 50th row checked), and
 * the same bits with one engine thread and with two. */
TEST(cholesky_inverse_blocked_and_thread_independent)
{
    int n = 1100;
    size_t nn = (size_t)n * n;
    float *H = malloc(nn * 4), *U1 = malloc(nn * 4), *U2 = malloc(nn * 4);
    double *v = malloc((size_t)n * sizeof *v);
    uint64_t s = 7;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float x = i == j ? (float)n * 0.25f : (float)(s >> 40) / (float)(1 << 24) - 0.5f;
            H[(size_t)i * n + j] = H[(size_t)j * n + i] = x;
        }
    zq_error err = {0};
    CHECK(zq_blas_load(&err) == ZQ_OK);
    memcpy(U1, H, nn * 4);
    memcpy(U2, H, nn * 4);
    int threads = zq_engine_threads();
    zq_engine_set_threads(1);
    CHECK(zq_cholesky_inverse_upper(U1, n));
    zq_engine_set_threads(2);
    CHECK(zq_cholesky_inverse_upper(U2, n));
    zq_engine_set_threads(threads);
    CHECK(memcmp(U1, U2, nn * 4) == 0);
    double worst = 0;
    int below = 0;
    for (size_t i = 1; i < nn; i++) below |= i % n < i / n && U1[i] != 0.0f;
    for (int i = 0; i < n; i += 50) {
        for (int k = 0; k < n; k++) { /* v = row i of U^T U */
            v[k] = 0;
            for (int p = 0; p <= (i < k ? i : k); p++) v[k] += (double)U1[(size_t)p * n + i] * U1[(size_t)p * n + k];
        }
        for (int j = 0; j < n; j++) {
            double e = -(double)(i == j);
            for (int k = 0; k < n; k++) e += v[k] * H[(size_t)k * n + j];
            worst = fabs(e) > worst ? fabs(e) : worst;
        }
    }
    fprintf(stderr, "  cholesky: max |U^T U H - I| = %.3g\n", worst);
    CHECK(!below);
    /* a float32 factor and inverse leave a residual of about n u kappa(H):
     * n = 1100, u = 2^-24, and H's eigenvalues lie within 275 +- 2 sigma
     * sqrt(n) = 275 +- 19 (off-diagonals uniform in +-0.5), kappa < 1.2:
     * 8e-5 */
    CHECK(worst < 1e-4);
    H[0] = -1.0f; /* not positive definite */
    CHECK(!zq_cholesky_inverse_upper(H, n));
    free(H), free(U1), free(U2), free(v);
}
