/* The integer backend (simd/int8.h, nn/packed.h): a W8A8 and a W4A8
 * Linear worked by hand in integers, run by every kernel set; the
 * activation codes against the FP path's emulation of each scheme; every
 * set's tile kernel against the definition computed plainly here, bit for
 * bit, on random and edge inputs (codes 0/255, -128/127 and -8/7,
 * all-equal rows, groups and inputs that are not a multiple of any vector
 * width, one row, odd row counts, tiles that start mid-matrix); and the
 * packed Linear against the emulated FP path within a stated bound, with
 * the same bytes at one and two threads. */
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


static const zq_int8_kernels *const *all_sets(int *n)
{
    static const zq_int8_kernels *sets[8];
    int k = 0;
    sets[k++] = &zq_int8_scalar;
    for (const zq_int8_kernels *const *v = zq_int8_vector_sets(); *v && k < 7; v++) sets[k++] = *v;
    sets[k] = NULL;
    *n = k;
    return sets;
}

/* A test's weights: n rows of k codes in groups of `group` inputs, packed
 * for set ks as packed.c packs them, with the tile's tables. */
typedef struct {
    int8_t packed[64 * 1024];
    int32_t wsum[4096];
    float wscale[4096], bias[128];
    zq_int8_tile t;
} tile_fixture;

static void pack_fixture(tile_fixture *f, const zq_int8_kernels *ks, const int8_t *w, int n, size_t k, size_t group,
                         int nibbles, const float *scale_of, const float *bias, const uint8_t *a, size_t lda, int m,
                         const float *tscale, const int32_t *tzero)
{
    int lanes = ks->lanes, nblocks = (n + lanes - 1) / lanes, groups = (int)((k + group - 1) / group);
    size_t wld = (size_t)nblocks * (size_t)lanes, last = k - (size_t)(groups - 1) * group;
    memset(f, 0, sizeof *f);
    size_t bpair = (size_t)(nibbles ? 4 : 8) * (size_t)lanes, pairs = (group + 7) / 8;
    size_t bstride = ((size_t)(groups - 1) * pairs + (last + 7) / 8) * bpair;
    for (int g = 0; g < groups; g++) {
        size_t width = g == groups - 1 ? last : group;
        for (int b = 0; b < nblocks; b++) {
            const int8_t *rows[64];
            int nrows = n - b * lanes < lanes ? n - b * lanes : lanes;
            for (int r = 0; r < nrows; r++) rows[r] = w + (size_t)(b * lanes + r) * k + (size_t)g * group;
            zq_int8_pack_block(rows, nrows, width, lanes, nibbles, f->packed + (size_t)b * bstride + (size_t)g * pairs * bpair);
        }
        for (int j = 0; j < n; j++) {
            int32_t s = 0;
            for (size_t c = 0; c < width; c++) s += w[(size_t)j * k + (size_t)g * group + c];
            f->wsum[(size_t)g * wld + (size_t)j] = s;
            f->wscale[(size_t)g * wld + (size_t)j] = scale_of[g * n + j];
        }
    }
    if (bias) memcpy(f->bias, bias, (size_t)n * sizeof *bias);
    f->t = (zq_int8_tile){.a = a, .lda = lda, .m = m, .scale = tscale, .zero = tzero, .packed = f->packed,
                          .bstride = bstride, .groups = groups, .pairs = (group + 7) / 8,
                          .last_pairs = (last + 7) / 8, .nibbles = nibbles, .wsum = f->wsum, .wscale = f->wscale,
                          .wld = wld, .bias = bias ? f->bias : NULL, .b0 = 0, .nb = nblocks, .ldy = wld};
}

/* Two output features, three inputs in two groups (the last one short),
 * one token: every product and sum small enough that the float result is
 * exact, and equal to the dequantized activations times the dequantized
 * weights. */
TEST(int8_linear_by_hand)
{
    uint8_t a[16] = {3, 0, 0, 0, 0, 0, 0, 0, 255}; /* zero point 2, scale 0.5: x = 0.5, -1, 126.5 */
    const float tscale = 0.5f, bias[2] = {1.5f, -0.5f};
    const int32_t tzero = 2;
    const float wscale[4] = {0.25f, 0.5f, 0.125f, 2.0f}; /* [group][feature] */
    const int8_t w8[6] = {1, -2, 127, -128, 5, 0}, w4[6] = {1, -2, 7, -8, 5, 0};
    int n;
    const zq_int8_kernels *const *sets = all_sets(&n);
    static tile_fixture f;
    for (int s = 0; s < n; s++) {
        float y[64];
        pack_fixture(&f, sets[s], w8, 2, 3, 2, 0, wscale, bias, a, 16, 1, &tscale, &tzero);
        f.t.y = y;
        sets[s]->gemm_tile(&f.t);
        /* 0.5*0.25 + (-1)(-0.5) + 126.5*(0.125*127) + 1.5; 0.5*(0.5*-128) + (-1)(0.5*5) + 126.5*0 - 0.5 */
        CHECK(y[0] == 2010.3125f && y[1] == -35.0f);
        pack_fixture(&f, sets[s], w4, 2, 3, 2, 1, wscale, bias, a, 16, 1, &tscale, &tzero);
        f.t.y = y;
        sets[s]->gemm_tile(&f.t);
        /* (0.5 + 2) * 0.25 + 126.5 * 7 * 0.125 + 1.5; (0.5 * -8 - 5) * 0.5 - 0.5 */
        CHECK(y[0] == 112.8125f && y[1] == -5.0f);
    }
}

/* Symmetric codes (+128) read back are what zq_fake_quant_tensor leaves,
 * for a token's own range and for a static one values exceed. */
TEST(int8_symmetric_codes_match_the_emulation)
{
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + next() % 300;
        float x[300], fake[300], m = 0;
        uint8_t q[300];
        for (size_t c = 0; c < n; c++) x[c] = uniform(-2, 3), m = fabsf(x[c]) > m ? fabsf(x[c]) : m;
        if (trial % 2) m *= 0.5f; /* a static range the values exceed: clamped */
        memcpy(fake, x, n * sizeof *x);
        zq_fake_quant_tensor(fake, n, m);
        float scale = zq_int8_quant_row_sym(x, n, m, q);
        int bad = 0;
        /* equal values (a code of 0 gives +0 where the emulation may keep -0) */
        for (size_t c = 0; c < n; c++) bad += ((float)q[c] - 128.0f) * scale != fake[c];
        CHECK(bad == 0);
    }
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


/* The definition, computed plainly from the unpacked codes. */
static float tile_definition(const uint8_t *a, size_t lda, const int8_t *w, size_t k, size_t group, int i, int j,
                             float tscale, int32_t tzero, const float *wscale, int n, const float *bias)
{
    int groups = (int)((k + group - 1) / group);
    float acc = 0.0f;
    for (int g = 0; g < groups; g++) {
        size_t c0 = (size_t)g * group, width = k - c0 < group ? k - c0 : group;
        int32_t dot = 0, wsum = 0;
        for (size_t c = 0; c < width; c++) {
            dot += (int32_t)a[(size_t)i * lda + (size_t)g * ((group + 7) / 8 * 8) + c] * w[(size_t)j * k + c0 + c];
            wsum += w[(size_t)j * k + c0 + c];
        }
        acc = fmaf((float)(dot - tzero * wsum), wscale[g * n + j], acc);
    }
    float y = acc * tscale;
    return bias ? y + bias[j] : y;
}

/* Every set's tile kernel, the scalar one included, equals the definition
 * bit for bit: INT8 and INT4 codes, groups of 5 to 64 with a short last
 * one, up to 9 tokens, up to 40 rows, tiles of some blocks from mid-matrix. */
TEST(int8_tile_kernels_match_the_definition)
{
    enum { MAXK = 300, MAXN = 40, MAXM = 9 };
    static uint8_t a[MAXM * 2 * MAXK];
    static int8_t w[MAXN * MAXK];
    static float wscale[MAXN * MAXK], bias[MAXN], tscale[MAXM], y[MAXM * 64];
    static int32_t tzero[MAXM];
    static tile_fixture f;
    int ns;
    const zq_int8_kernels *const *sets = all_sets(&ns);
    for (int trial = 0; trial < 150; trial++) {
        int nib = trial % 2, m = 1 + (int)(next() % MAXM), n = 1 + (int)(next() % MAXN);
        size_t k = 1 + next() % MAXK, group = trial % 5 == 0 ? k : 5 + next() % 60;
        int groups = (int)((k + group - 1) / group);
        size_t lda = (size_t)groups * ((group + 7) / 8 * 8);
        int edge = trial % 9 == 0;
        memset(a, 0, sizeof a);
        for (int i = 0; i < m; i++) {
            for (int g = 0; g < groups; g++)
                for (size_t c = 0; c < group && (size_t)g * group + c < k; c++)
                    a[(size_t)i * lda + (size_t)g * ((group + 7) / 8 * 8) + c] = edge ? 255 : (uint8_t)next();
            tscale[i] = uniform(1e-3f, 1.0f);
            tzero[i] = edge ? 255 : (int32_t)(next() % 256);
        }
        for (size_t c = 0; c < (size_t)n * k; c++)
            w[c] = nib ? (edge ? (int8_t)(c % 2 ? 7 : -8) : (int8_t)((int)(next() % 16) - 8))
                       : (edge ? (int8_t)(c % 2 ? 127 : -128) : (int8_t)next());
        for (int c = 0; c < groups * n; c++) wscale[c] = uniform(1e-4f, 1e-2f);
        for (int c = 0; c < n; c++) bias[c] = uniform(-1, 1);
        const float *b = trial % 3 ? bias : NULL;
        for (int s = 0; s < ns; s++) {
            pack_fixture(&f, sets[s], w, n, k, group, nib, wscale, b, a, lda, m, tscale, tzero);
            int lanes = sets[s]->lanes, nblocks = f.t.nb;
            f.t.b0 = (int)(next() % (unsigned)nblocks);
            f.t.nb = 1 + (int)(next() % (unsigned)(nblocks - f.t.b0));
            if (f.t.nb * lanes > 64) f.t.nb = 64 / lanes;
            f.t.y = y;
            f.t.ldy = 64;
            sets[s]->gemm_tile(&f.t);
            int bad = 0;
            for (int i = 0; i < m; i++)
                for (int l = 0; l < f.t.nb * lanes; l++) {
                    int j = f.t.b0 * lanes + l;
                    if (j >= n) continue;
                    float want = tile_definition(a, lda, w, k, group, i, j, tscale[i], tzero[i], wscale, n, b);
                    bad += bits(y[(size_t)i * 64 + (size_t)l]) != bits(want);
                }
            if (bad) fprintf(stderr, "  set %s, trial %d: %d outputs differ\n", sets[s]->name, trial, bad);
            CHECK(bad == 0);
        }
    }
}

/* The packed Linear against the FP path's emulation of it: the tokens
 * fake-quantized as the scheme says times the dequantized weights, in
 * double. In exact arithmetic they are equal. The emulation rounds each
 * fake-quantized input once (2^-24 of it; the weights, a code times an
 * FP16 scale, are exact); the integer path's sums are exact and its
 * epilogue rounds each group's term twice (scale x scale, then x sum) and
 * each addition once. So, to first order, |y - ref| <= (groups + 3) *
 * 2^-24 * (|bias| + sum over inputs of |x' w'|). The float path (weights
 * decoded, one sgemm) rounds each of its in additions: (in + 3) * 2^-24
 * times the same. Grids: groups of 32 and of 20 (not whole pairs of
 * steps), one per row, the paper's row blocks; INT8 and INT4; every
 * scheme; a constant token; the same bytes at one and two threads. */
#include "base/blas.h"
#include "nn/packed.h"
#include "zquant/fp16.h"

TEST(packed_linear_matches_the_emulated_fp_path)
{
    enum { OUT = 37, IN = 150, M = 6 };
    static float w[OUT * IN], x[M * IN], xq[M * IN], wd[OUT * IN], y[M * OUT], y2[M * OUT], bias[OUT],
        scratch[M * IN];
    static uint8_t codes[IN], rows[OUT * IN];
    static uint16_t scales[OUT * 8], mins[OUT * 8];
    const char *specs[] = {"int8:g32:sym", "int8:row:sym", "int8:blocks3:sym", "int4:g32:sym", "int4:g20:sym",
                           "int8:g32:asym", "int4:row:asym"};
    const zq_act_mode modes[] = {ZQ_AQ_TOKEN, ZQ_AQ_TOKEN_SYM, ZQ_AQ_TENSOR, ZQ_AQ_NONE};
    zq_error err = {0};
    CHECK(zq_blas_load(&err) == ZQ_OK);
    int threads = zq_engine_threads();
    for (int sp = 0; sp < 7; sp++)
        for (int md = 0; md < 4; md++) {
            zq_qspec spec = {ZQ_FORMAT_INT8, 1, ZQ_GRAN_GROUP, 128, 0};
            CHECK(zq_qspec_parse(specs[sp], &spec, &err) == ZQ_OK);
            for (int c = 0; c < OUT * IN; c++) w[c] = uniform(-1, 1) * (c % 7 == 0 ? 3.0f : 1.0f);
            for (int c = 0; c < M * IN; c++) x[c] = uniform(-2, 2);
            for (int c = 0; c < IN; c++) x[(M - 1) * IN + c] = 0.5f; /* a constant token */
            for (int j = 0; j < OUT; j++) bias[j] = uniform(-1, 1);
            zq_grid g;
            zq_grid_init(&g, &spec, OUT, IN);
            CHECK(zq_matrix_group_params(&spec, w, OUT, IN, scales, mins, &err) == ZQ_OK);
            zq_err_sums ignore = {0, 0};
            const zq_format *fmt = zq_format_get(spec.format);
            for (uint64_t r = 0; r < OUT; r++) {
                for (uint64_t gj = 0; gj < g.col_groups; gj++) {
                    zq_group q = zq_grid_group(&g, r, gj);
                    zq_quantize_run(&spec, w + r * IN + q.col0, (size_t)q.ncols, scales[q.index], mins[q.index],
                                    codes + q.col0, &ignore);
                }
                fmt->pack_row(codes, IN, rows + r * g.row_bytes);
                for (uint64_t gj = 0; gj < g.col_groups; gj++) {
                    zq_group q = zq_grid_group(&g, r, gj);
                    zq_decode_run(&spec, rows + r * g.row_bytes, q.col0, (size_t)q.ncols, scales[q.index],
                                  mins[q.index], wd + r * IN + q.col0);
                }
            }
            zq_stored_codes st = {spec, g, rows, scales, spec.symmetric ? NULL : mins};
            zq_packed_linear l;
            CHECK(zq_packed_init(&l, &st, NULL, OUT, bias, 1, &err) == ZQ_OK);
            float absmax[1] = {1.5f}; /* a static range the inputs exceed */
            zq_act_quant aq = {modes[md], absmax, 1, NULL, NULL};
            zq_linear L = {.b = bias, .out = OUT, .in = IN, .quantized = 1, .packed = &l};
            int integer = zq_packed_integer(&l, &aq, 0);
            CHECK(integer == (spec.symmetric && modes[md] != ZQ_AQ_NONE));
            zq_engine_set_threads(1);
            zq_linear_forward(&L, &aq, scratch, x, y, M, M);
            zq_engine_set_threads(2);
            zq_linear_forward(&L, &aq, scratch, x, y2, M, M);
            zq_engine_set_threads(threads);
            CHECK(!memcmp(y, y2, sizeof y));
            /* three tokens: decode's matrix-vector path for weight-only schemes */
            static float y3[3 * OUT];
            zq_linear_forward(&L, &aq, scratch, x, y3, 3, 3);
            memcpy(xq, x, sizeof x);
            if (modes[md] == ZQ_AQ_TOKEN) zq_fake_quant_tokens(xq, M, IN);
            if (modes[md] == ZQ_AQ_TOKEN_SYM) zq_fake_quant_tokens_sym(xq, M, IN);
            if (modes[md] == ZQ_AQ_TENSOR) zq_fake_quant_tensor(xq, (size_t)M * IN, absmax[0]);
            int bad = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < OUT; j++) {
                    double ref = bias[j], mag = fabs(bias[j]);
                    for (int c = 0; c < IN; c++) {
                        double p = (double)xq[i * IN + c] * wd[j * IN + c];
                        ref += p;
                        mag += fabs(p);
                    }
                    double terms = integer ? (double)g.col_groups + 3 : IN + 3;
                    bad += !(fabs((double)y[i * OUT + j] - ref) <= terms * 0x1p-24 * mag);
                    if (i < 3) bad += !(fabs((double)y3[i * OUT + j] - ref) <= terms * 0x1p-24 * mag);
                }
            if (bad) fprintf(stderr, "  %s, %s: %d outputs off\n", specs[sp], zq_act_mode_name(modes[md]), bad);
            CHECK(bad == 0);
            zq_packed_free(&l);
        }
}
