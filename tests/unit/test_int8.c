/* The integer backend's kernels (simd/int8.h): a W8A8 Linear worked by hand
 * in integers, the activation codes against the FP path's emulation of
 * the same scheme, and every vector set against the scalar set bit for bit
 * on random and edge inputs (codes 0/255 and -128/127, all-equal rows,
 * lengths that are not a multiple of any vector width, one row, odd row
 * counts). On a CPU or build without a vector set there is nothing to
 * compare, and the tests say so. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simd/int8.h"
#include "test.h"
#include "zquant/quant.h"

static uint32_t rng = 88172645u;
static uint32_t next(void) { return test_next(&rng); }
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next() >> 8) / 16777216.0f; }
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static int vector_sets(const char *test)
{
    int n = 0;
    while (zq_int8_vector_sets()[n]) n++;
    if (!n) fprintf(stderr, "  %s: no integer vector set in this build or on this CPU; nothing to compare\n", test);
    return n;
}

/* Two output features, three inputs in two groups (the last one short):
 * every product and sum small enough that the float result is exact, and
 * equal to the dequantized activations times the dequantized weights. */
TEST(int8_linear_by_hand)
{
    const zq_int8_kernels *k = &zq_int8_scalar;
    const uint8_t a[3] = {3, 0, 255};               /* zero point 2, scale 0.5: x = 0.5, -1, 126.5 */
    const int8_t w[2 * 3] = {1, -2, 127, -128, 5, 0}; /* weight rows */
    int32_t dots[2 * 2];                              /* [groups][features] */
    for (int g = 0; g < 2; g++) { /* group 0: inputs 0-1; group 1: input 2 */
        int32_t tmp[2];
        k->dot_u8s8(a + 2 * g, 3, w + 2 * g, 3, 1, 2, g ? 1 : 2, tmp, 2);
        dots[g * 2] = tmp[0], dots[g * 2 + 1] = tmp[1];
    }
    CHECK(dots[0] == 3 && dots[1] == -384 && dots[2] == 32385 && dots[3] == 0);
    const int32_t wsum[4] = {-1, -123, 127, 0};
    const float wscale[4] = {0.25f, 0.5f, 0.125f, 2.0f}, bias[2] = {1.5f, -0.5f};
    float y[2];
    k->epilogue(dots, 2, wsum, wscale, 2, 2, 0.5f, 2, bias, y);
    /* 0.5*0.25 + (-1)(-0.5) + 126.5*(0.125*127) + 1.5; 0.5*(0.5*-128) + (-1)(0.5*5) + 126.5*0 - 0.5 */
    CHECK(y[0] == 2010.3125f);
    CHECK(y[1] == -35.0f);
}

/* The codes are the FP path's: (q - zero) * scale is what
 * zq_fake_quant_tokens leaves, bit for bit. */
TEST(int8_token_codes_match_the_emulation)
{
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + next() % 300;
        float x[300], fake[300];
        uint8_t q[300];
        float spread = trial % 3 == 0 ? 1e-3f : trial % 3 == 1 ? 1.0f : 1e3f;
        for (size_t c = 0; c < n; c++) x[c] = uniform(-spread, spread * (trial % 5 ? 1.0f : 0.1f));
        memcpy(fake, x, n * sizeof *x);
        zq_fake_quant_tokens(fake, 1, (int)n);
        int32_t zero;
        float scale = zq_int8_scalar.quant_row_u8(x, n, q, &zero);
        int bad = 0;
        for (size_t c = 0; c < n; c++) {
            float back = scale > 0 ? ((float)q[c] - (float)zero) * scale : x[c];
            bad += bits(back) != bits(fake[c]);
        }
        CHECK(bad == 0);
    }
}

TEST(int8_vector_quant_row_matches_scalar)
{
    int nv = vector_sets("int8_vector_quant_row_matches_scalar");
    for (int s = 0; s < nv; s++) {
        const zq_int8_kernels *v = zq_int8_vector_sets()[s];
        for (int trial = 0; trial < 300; trial++) {
            size_t n = trial < 40 ? (size_t)trial : 1 + next() % 400;
            float x[400];
            for (size_t c = 0; c < n; c++) x[c] = uniform(-3.0f, 5.0f);
            if (trial % 7 == 0) for (size_t c = 0; c < n; c++) x[c] = 0.75f; /* all equal */
            if (trial % 11 == 0 && n) x[n - 1] = 1e6f;                       /* one outlier last */
            uint8_t q1[400], q2[400];
            int32_t z1, z2;
            float s1 = zq_int8_scalar.quant_row_u8(x, n, q1, &z1), s2 = v->quant_row_u8(x, n, q2, &z2);
            CHECK(bits(s1) == bits(s2) && z1 == z2 && !memcmp(q1, q2, n));
        }
    }
}

TEST(int8_vector_dot_and_epilogue_match_scalar)
{
    int nv = vector_sets("int8_vector_dot_and_epilogue_match_scalar");
    enum { MAXK = 300, MAXN = 13, MAXM = 3, MAXG = 4 };
    static uint8_t a[MAXM * MAXK];
    static int8_t w[MAXN * MAXK];
    for (int s = 0; s < nv; s++) {
        const zq_int8_kernels *v = zq_int8_vector_sets()[s];
        for (int trial = 0; trial < 200; trial++) {
            size_t k = trial < 70 ? (size_t)trial + 1 : 1 + next() % MAXK;
            int m = 1 + (int)(next() % MAXM), n = 1 + (int)(next() % MAXN);
            for (size_t c = 0; c < (size_t)m * k; c++) a[c] = trial % 9 == 0 ? 255 : (uint8_t)next();
            for (size_t c = 0; c < (size_t)n * k; c++)
                w[c] = trial % 9 == 0 ? (int8_t)(c % 2 ? 127 : -128) : (int8_t)next();
            int32_t d1[MAXM * MAXN], d2[MAXM * MAXN];
            zq_int8_scalar.dot_u8s8(a, k, w, k, m, n, k, d1, (size_t)n);
            v->dot_u8s8(a, k, w, k, m, n, k, d2, (size_t)n);
            CHECK(!memcmp(d1, d2, (size_t)m * n * sizeof *d1));
            /* the epilogue over a few groups of such sums */
            int groups = 1 + (int)(next() % MAXG);
            int32_t dots[MAXG * MAXN], wsum[MAXG * MAXN];
            float wscale[MAXG * MAXN], bias[MAXN], y1[MAXN], y2[MAXN];
            for (int c = 0; c < groups * n; c++) {
                dots[c] = (int32_t)(next() % 2000000) - 1000000;
                wsum[c] = (int32_t)(next() % 20000) - 10000;
                wscale[c] = uniform(1e-4f, 1e-2f);
            }
            for (int c = 0; c < n; c++) bias[c] = uniform(-1, 1);
            int32_t zero = (int32_t)(next() % 256);
            float scale = uniform(1e-3f, 1.0f);
            const float *b = trial % 2 ? bias : NULL;
            zq_int8_scalar.epilogue(dots, (size_t)n, wsum, wscale, groups, n, scale, zero, b, y1);
            v->epilogue(dots, (size_t)n, wsum, wscale, groups, n, scale, zero, b, y2);
            int bad = 0;
            for (int c = 0; c < n; c++) bad += bits(y1[c]) != bits(y2[c]);
            CHECK(bad == 0);
        }
    }
}

/* The packed main loop of every set (the scalar one included) against the
 * plain dot products on the unpacked rows: rows that fill no whole block,
 * k not a multiple of 4, one activation row (decode) and several
 * (prefill, including counts that leave a remainder of the 4-row loop). */
TEST(int8_packed_dot_matches_plain_rows)
{
    enum { MAXK = 301, MAXN = 40, MAXM = 9 };
    static uint8_t a[MAXM * (MAXK + 3)];
    static int8_t w[MAXN * MAXK], packed[(MAXN + 16) * (MAXK + 3)];
    const zq_int8_kernels *sets[8] = {&zq_int8_scalar};
    int ns = 1;
    for (const zq_int8_kernels *const *v = zq_int8_vector_sets(); *v && ns < 8; v++) sets[ns++] = *v;
    for (int s = 0; s < ns; s++) {
        const zq_int8_kernels *v = sets[s];
        for (int trial = 0; trial < 120; trial++) {
            size_t k = 1 + next() % MAXK, lda = (k + 3) / 4 * 4;
            int m = 1 + (int)(next() % MAXM), n = 1 + (int)(next() % MAXN);
            memset(a, 0, sizeof a);
            for (int i = 0; i < m; i++)
                for (size_t c = 0; c < k; c++) a[(size_t)i * lda + c] = trial % 9 == 0 ? 255 : (uint8_t)next();
            for (size_t c = 0; c < (size_t)n * k; c++)
                w[c] = trial % 9 == 0 ? (int8_t)(c % 2 ? 127 : -128) : (int8_t)next();
            zq_int8_pack(w, k, n, k, v->lanes, packed);
            int nblocks = (n + v->lanes - 1) / v->lanes, ldo = nblocks * v->lanes;
            int32_t want[MAXM * MAXN], got[MAXM * (MAXN + 16)];
            zq_int8_scalar.dot_u8s8(a, lda, w, k, m, n, k, want, (size_t)n);
            v->dot_packed(a, lda, m, packed, nblocks, lda / 4, got, (size_t)ldo);
            int bad = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) bad += got[(size_t)i * ldo + j] != want[(size_t)i * n + j];
            CHECK(bad == 0);
        }
    }
}

/* The W8A8 Linear against the FP path's emulation of it: the tokens
 * fake-quantized (zq_fake_quant_tokens) times the dequantized weights, in
 * double. In exact arithmetic they are equal. The emulation rounds each
 * fake-quantized input once ((q - zero) x scale: 2^-24 of it; the weights,
 * an 8-bit code times an FP16 scale, are exact); the integer path's sums
 * are exact and its epilogue rounds each group's term twice (scale x
 * scale, then x sum) and each addition once. So, to first order, |y - ref|
 * <= (groups + 3) * 2^-24 * (|bias| + sum over inputs of |x' w'|), a
 * constant token's row (no codes) held to the same bound. Grids: groups of
 * 32 with a short last one, one per row, the paper's row blocks. */
#include "nn/int8_linear.h"
#include "zquant/fp16.h"

TEST(int8_linear_matches_the_emulated_fp_path)
{
    enum { OUT = 37, IN = 150, M = 6 };
    static float w[OUT * IN], x[M * IN], xq[M * IN], wd[OUT * IN], y[M * OUT], bias[OUT];
    static uint8_t codes[OUT * IN];
    static uint16_t scales[OUT * 8], mins[OUT * 8];
    const char *specs[] = {"int8:g32:sym", "int8:row:sym", "int8:blocks3:sym"};
    for (int sp = 0; sp < 3; sp++) {
        zq_qspec spec = {ZQ_FORMAT_INT8, 1, ZQ_GRAN_GROUP, 128, 0};
        zq_error err = {0};
        CHECK(zq_qspec_parse(specs[sp], &spec, &err) == ZQ_OK);
        for (int c = 0; c < OUT * IN; c++) w[c] = uniform(-1, 1) * (c % 7 == 0 ? 3.0f : 1.0f);
        for (int c = 0; c < M * IN; c++) x[c] = uniform(-2, 2);
        for (int c = 0; c < IN; c++) x[(M - 1) * IN + c] = 0.5f; /* a constant token */
        for (int j = 0; j < OUT; j++) bias[j] = uniform(-1, 1);
        zq_grid g;
        zq_grid_init(&g, &spec, OUT, IN);
        CHECK(zq_matrix_group_params(&spec, w, OUT, IN, scales, mins, &err) == ZQ_OK);
        zq_err_sums ignore = {0, 0};
        for (uint64_t r = 0; r < OUT; r++)
            for (uint64_t gj = 0; gj < g.col_groups; gj++) {
                zq_group q = zq_grid_group(&g, r, gj);
                zq_quantize_run(&spec, w + r * IN + q.col0, (size_t)q.ncols, scales[q.index], 0, codes + r * IN + q.col0,
                                &ignore);
                zq_decode_run(&spec, codes + r * IN, q.col0, (size_t)q.ncols, scales[q.index], 0, wd + r * IN + q.col0);
            }
        zq_int8_linear l;
        CHECK(zq_int8_linear_init(&l, &g, codes, scales, &err) == ZQ_OK);
        CHECK(zq_int8_linear_forward(&l, x, M, bias, y, &err) == ZQ_OK);
        memcpy(xq, x, sizeof x);
        zq_fake_quant_tokens(xq, M, IN);
        int bad = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < OUT; j++) {
                double ref = bias[j], mag = fabs(bias[j]);
                for (uint64_t gj = 0; gj < g.col_groups; gj++) {
                    zq_group q = zq_grid_group(&g, (uint64_t)j, gj);
                    for (uint64_t c = q.col0; c < q.col0 + q.ncols; c++) {
                        double p = (double)xq[i * IN + c] * wd[j * IN + c];
                        ref += p;
                        mag += fabs(p);
                    }
                }
                double bound = ((double)g.col_groups + 3) * 0x1p-24 * mag;
                bad += !(fabs((double)y[i * OUT + j] - ref) <= bound);
            }
        CHECK(bad == 0);
        zq_int8_linear_free(&l);
    }
}
