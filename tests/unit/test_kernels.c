/* Every vector kernel against its scalar twin (simd/kernels.h), bit for bit,
 * on random inputs of every length up to a few vectors, unaligned starts,
 * and edge values: signed zeros, subnormals, the largest halves, NaN and
 * infinities, rounding ties, clamping. On a machine or build without a
 * vector set (make SIMD=0) there is nothing to compare and the tests say so
 * in their output. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "simd/kernels.h"
#include "test.h"
#include "zquant/fp16.h"

static uint32_t rng = 2463534242u;
static uint32_t next(void) { return test_next(&rng); }
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next() >> 8) / 16777216.0f; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static const zq_kernels *vector_set(const char *test)
{
    const zq_kernels *v = zq_kernels_avx2();
    if (!v) fprintf(stderr, "  %s: no vector kernel set in this build or on this CPU; nothing to compare\n", test);
    return v;
}

/* Values a kernel can trip on, mixed into random ones. */
static float edge(void)
{
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x3f800000u, 0xbf800000u,
                                       0x477fe000u, 0xc77fe000u, 0x477ff000u, 0x33800000u, 0x7f7fffffu, 0x38800000u};
    return from_bits(special[next() % (sizeof special / sizeof special[0])]);
}

static void fill(float *x, size_t n, float scale, int edges)
{
    for (size_t i = 0; i < n; i++) x[i] = edges && next() % 5 == 0 ? edge() : uniform(-scale, scale);
}

TEST(kernel_range_matches_scalar)
{
    const zq_kernels *v = vector_set("range");
    float buf[200];
    for (int trial = 0; v && trial < 400; trial++) {
        size_t off = next() % 8, n = next() % 150;
        float *x = buf + off;
        fill(x, n, trial % 2 ? 1e-3f : 1e4f, trial % 3 == 0);
        if (trial % 5 == 1) /* the extreme is a zero of either sign: min/max must pick as the reference does */
            for (size_t i = 0; i < n; i++) x[i] = next() % 3 ? (next() % 2 ? -0.0f : 0.0f) : (trial % 10 == 1 ? 1 : -1) * x[i] * x[i];
        if (trial % 7 == 0 && n) x[next() % n] = trial % 14 ? NAN : -INFINITY; /* the first bad index must agree */
        if (trial % 11 == 0 && n) x[next() % n] = INFINITY;
        float l1 = 0, h1 = 0, l2 = 0, h2 = 0;
        size_t b1 = 99999, b2 = 99999;
        int r1 = zq_kernels_scalar.range_f32(x, n, &l1, &h1, &b1), r2 = v->range_f32(x, n, &l2, &h2, &b2);
        CHECK(r1 == r2);
        if (r1) CHECK(bits(l1) == bits(l2) && bits(h1) == bits(h2));
        else CHECK(b1 == b2);
    }
}

TEST(kernel_quantize_matches_scalar)
{
    const zq_kernels *v = vector_set("quantize");
    float buf[300];
    uint8_t q1[300], q2[300];
    static const zq_qspec specs[] = {{ZQ_FORMAT_INT4, 1, ZQ_GRAN_GROUP, 32, 0}, {ZQ_FORMAT_INT4, 0, ZQ_GRAN_GROUP, 32, 0},
                                     {ZQ_FORMAT_INT8, 1, ZQ_GRAN_GROUP, 32, 0}, {ZQ_FORMAT_INT8, 0, ZQ_GRAN_GROUP, 32, 0}};
    for (int trial = 0; v && trial < 800; trial++) {
        const zq_qspec *s = &specs[trial % 4];
        size_t off = next() % 8, n = next() % 260;
        float *x = buf + off;
        fill(x, n, trial % 3 ? 1.0f : 300.0f, trial % 5 == 0);
        float lo = 0, hi = 0;
        size_t bad;
        if (!zq_range_f32_ref(x, n, &lo, &hi, &bad)) continue;
        uint16_t scale, min;
        if (trial % 9 == 0) hi = lo = 0;                     /* a zero scale */
        if (trial % 13 == 0) hi *= 0.5f, lo *= 0.5f;         /* values past the range: clamped */
        if (!zq_group_params(s, lo, hi, &scale, &min)) continue;
        if (trial % 17 == 0 && n) /* exact ties between two codes */
            for (size_t i = 0; i < n; i++) x[i] = ((float)(int)(next() % 15) - 7.5f) * zq_f16_to_f32(scale);
        zq_err_sums e1 = {0, 0}, e2 = {0, 0};
        zq_kernels_scalar.quantize_run(s, x, n, scale, min, q1, &e1);
        v->quantize_run(s, x, n, scale, min, q2, &e2);
        CHECK(memcmp(q1, q2, n) == 0);
        CHECK(e1.err2 == e2.err2 && e1.signal2 == e2.signal2);
    }
}

TEST(kernel_pack_int4_matches_scalar)
{
    const zq_kernels *v = vector_set("pack_nibbles");
    uint8_t codes[300], p1[160], p2[160];
    for (int trial = 0; v && trial < 300; trial++) {
        size_t off = next() % 8, n = next() % 290;
        for (size_t i = 0; i < n + off; i++) codes[i] = (uint8_t)next(); /* high nibbles must be ignored */
        memset(p1, 0xee, sizeof p1);
        memset(p2, 0xee, sizeof p2);
        zq_kernels_scalar.pack_nibbles(codes + off, n, p1);
        v->pack_nibbles(codes + off, n, p2);
        CHECK(memcmp(p1, p2, sizeof p1) == 0); /* also: neither writes past (n + 1) / 2 bytes */
    }
}

/* NaN payloads are the one place the two may differ (hardware quiets a
 * signalling NaN): NaN never reaches a file, zquant refuses it first. */
static int same_float(float a, float b) { return bits(a) == bits(b) || (isnan(a) && isnan(b)); }

TEST(kernel_half_conversions_match_scalar)
{
    const zq_kernels *v = vector_set("halves");
    if (!v) return;
    uint16_t *h = malloc(0x10008 * 2);
    float *a = malloc(0x10008 * 4), *b = malloc(0x10008 * 4);
    for (uint32_t k = 0; k < 0x10000; k++) h[k + 3] = (uint16_t)k; /* every half, from an odd address */
    zq_kernels_scalar.f16_to_f32(h + 3, a, 0x10000);
    v->f16_to_f32(h + 3, b, 0x10000);
    int bad = 0;
    for (uint32_t k = 0; k < 0x10000; k++) bad += !same_float(a[k], b[k]);
    CHECK(bad == 0);
    uint16_t *h1 = malloc(0x10000 * 2), *h2 = malloc(0x10000 * 2);
    for (int trial = 0; trial < 8; trial++) {
        for (uint32_t k = 0; k < 0x10000; k++) { /* around every rounding boundary of the half grid */
            uint32_t u = next();
            a[k] = trial < 4 ? from_bits((u & 0x80001fffu) | ((uint32_t)(100 + (u >> 13) % 60) << 23)) : edge();
        }
        zq_kernels_scalar.f32_to_f16(a, h1, 0x10000 - (size_t)trial);
        v->f32_to_f16(a, h2, 0x10000 - (size_t)trial);
        bad = 0;
        for (uint32_t k = 0; k < 0x10000 - (uint32_t)trial; k++)
            bad += h1[k] != h2[k] && !((h1[k] & 0x7c00) == 0x7c00 && (h1[k] & 0x3ff) && (h2[k] & 0x7c00) == 0x7c00 && (h2[k] & 0x3ff));
        CHECK(bad == 0);
    }
    free(h), free(a), free(b), free(h1), free(h2);
}

TEST(kernel_transpose_matches_scalar)
{
    /* past one 256 x 32 tile of the vector kernel, with ragged edges */
    enum { MAXR = 600, MAXC = 90, CAP = MAXR * (MAXC + 7) + 4 };
    const zq_kernels *v = vector_set("transpose");
    uint16_t *src = malloc(CAP * sizeof *src);
    float *d1 = malloc(MAXR * MAXC * sizeof *d1), *d2 = malloc(MAXR * MAXC * sizeof *d2);
    for (size_t k = 0; k < CAP; k++) src[k] = (uint16_t)next();
    for (int trial = 0; v && trial < 200; trial++) {
        size_t big = trial % 4 == 0;
        size_t rows = next() % (big ? MAXR : 33), cols = next() % (big ? MAXC : 33);
        size_t stride = cols + next() % 7, col0 = next() % 4;
        memset(d1, 0, MAXR * MAXC * sizeof *d1);
        memset(d2, 0, MAXR * MAXC * sizeof *d2);
        zq_kernels_scalar.transpose_f16_to_f32(src + col0, stride, rows, cols, d1);
        v->transpose_f16_to_f32(src + col0, stride, rows, cols, d2);
        int bad = 0;
        for (size_t k = 0; k < rows * cols; k++) bad += !same_float(d1[k], d2[k]);
        CHECK(bad == 0);
    }
    free(src), free(d1), free(d2);
}

TEST(kernel_byte_transpose_matches_scalar)
{
    /* past one 256 x 64 tile, with ragged edges and unaligned rows */
    enum { MAXR = 600, MAXC = 150, CAP = MAXR * (MAXC + 7) + 4 };
    const zq_kernels *v = vector_set("transpose_u8");
    uint8_t *src = malloc(CAP), *d1 = malloc(MAXR * MAXC), *d2 = malloc(MAXR * MAXC);
    for (size_t k = 0; k < CAP; k++) src[k] = (uint8_t)next();
    for (int trial = 0; v && trial < 200; trial++) {
        size_t big = trial % 4 == 0;
        size_t rows = next() % (big ? MAXR : 40), cols = next() % (big ? MAXC : 40);
        size_t stride = cols + next() % 7, col0 = next() % 4;
        memset(d1, 0, MAXR * MAXC);
        memset(d2, 0, MAXR * MAXC);
        zq_kernels_scalar.transpose_u8(src + col0, stride, rows, cols, d1);
        v->transpose_u8(src + col0, stride, rows, cols, d2);
        CHECK(memcmp(d1, d2, rows * cols) == 0);
        int bad = 0; /* and the reference is the transpose */
        for (size_t k = 0; k < rows; k++)
            for (size_t c = 0; c < cols; c++) bad += d1[c * rows + k] != src[col0 + k * stride + c];
        CHECK(bad == 0);
    }
    free(src), free(d1), free(d2);
}

TEST(kernel_crc32c_matches_scalar)
{
    const zq_kernels *v = vector_set("crc32c");
    /* lengths past three 4096-byte lanes reach the three-stream loop */
    static unsigned char buf[40000];
    for (size_t k = 0; k < sizeof buf; k++) buf[k] = (unsigned char)next();
    for (int trial = 0; v && trial < 300; trial++) {
        size_t off = next() % 16, n = next() % (trial % 3 ? 580 : 39980);
        uint32_t seed = trial % 2 ? next() : 0;
        CHECK_EQ_U(v->crc32c(seed, buf + off, n), zq_kernels_scalar.crc32c(seed, buf + off, n));
    }
}

/* Decoding a row's codes, and their dot product with floats (the
 * weight-only matrix-vector path): INT8 and INT4, either sign, any start
 * and length (odd nibble starts included), groups of whole blocks of 32
 * codes, of 8, and of any width. dot_row in every vector set (AVX2, and
 * AVX-512 where it runs). */
TEST(kernel_codes_decode_and_dot_match_scalar)
{
    const zq_kernels *v = vector_set("codes"), *sets[2] = {v, zq_kernels_avx512()};
    uint8_t row[700];
    float x[1400], a[400], b[400];
    for (int trial = 0; v && trial < 600; trial++) {
        int nibbles = trial % 2, sym = trial / 2 % 2;
        for (size_t k = 0; k < sizeof row; k++) row[k] = trial % 7 == 0 ? (k % 2 ? 0x80 : 0x7f) : (uint8_t)next();
        fill(x, 400, 3.0f, 1);
        uint64_t col0 = next() % 100;
        size_t n = next() % 300;
        float s = uniform(1e-3f, 1.0f), m = sym ? 0.0f : uniform(-1, 1);
        v->decode_run(row, nibbles, sym, col0, n, s, m, a);
        zq_kernels_scalar.decode_run(row, nibbles, sym, col0, n, s, m, b);
        int bad = 0;
        for (size_t k = 0; k < n; k++) bad += bits(a[k]) != bits(b[k]);
        CHECK(bad == 0);
        /* a row of up to 1400 codes in groups, scales and mins */
        size_t cols = 1 + next() % (nibbles ? 1399 : 699);
        size_t group = trial % 3 == 0 ? 1 + next() % 40 : trial % 3 == 1 ? 8 * (1 + next() % 8) : 32 * (1 + next() % 8);
        if (trial % 12 == 5) group = 32; /* INT4 in llama.cpp's blocks, a path of its own */
        uint16_t sc[1400], mn[1400];
        float xs[1400];
        for (size_t g = 0; g < 1400; g++)
            sc[g] = zq_f32_to_f16(uniform(1e-3f, 1.0f)), mn[g] = zq_f32_to_f16(uniform(-1, 1)), xs[g] = uniform(-9, 9);
        fill(x, 1400, 3.0f, 0);
        float want = zq_kernels_scalar.dot_row(row, nibbles, sym, cols, group, sc, mn, x, xs);
        for (int i = 0; i < 2; i++)
            if (sets[i]) CHECK(bits(sets[i]->dot_row(row, nibbles, sym, cols, group, sc, mn, x, xs)) == bits(want));
    }
}

/* What the reference's lanes add up to: x . (code * scale + min) over a
 * row, INT4 with x in nibble order and INT8 in order, against the same sum
 * in double. Each of a float sum's n roundings is within 2^-24 of its
 * partial sum, so the error is at most about n * 2^-24 * sum |x| |w| (the
 * chains are shorter than n: a loose bound, but one that fails on a lane
 * or slot read wrong, which is off by whole terms). */
TEST(kernel_dot_row_reference_is_the_dot_product)
{
    uint8_t row[512];
    float x[1000], arranged[1000], xs[64];
    uint16_t sc[64], mn[64];
    for (int trial = 0; trial < 200; trial++) {
        int nibbles = trial % 2, sym = trial / 2 % 2;
        size_t cols = 1 + next() % (nibbles ? 999 : 511), group = trial % 5 ? 32 * (1 + next() % 4) : 1 + next() % 64;
        for (size_t k = 0; k < sizeof row; k++) row[k] = (uint8_t)next();
        fill(x, cols, 2.0f, 0);
        size_t groups = (cols + group - 1) / group;
        for (size_t g = 0; g < groups; g++) {
            sc[g] = zq_f32_to_f16(uniform(1e-3f, 1.0f)), mn[g] = zq_f32_to_f16(uniform(-1, 1));
            double sum = 0;
            for (size_t c = g * group; c < cols && c < (g + 1) * group; c++) sum += x[c];
            xs[g] = (float)sum;
        }
        if (nibbles) zq_nibble_order(x, cols, group, arranged);
        const zq_format *f = zq_format_get(nibbles ? ZQ_FORMAT_INT4 : ZQ_FORMAT_INT8);
        double want = 0, mag = 0;
        for (size_t c = 0; c < cols; c++) {
            double w = (double)f->code_at(row, c, sym) * zq_f16_to_f32(sc[c / group]) +
                       (sym ? 0.0 : (double)zq_f16_to_f32(mn[c / group]));
            want += (double)x[c] * w;
            mag += fabs((double)x[c] * w) + (sym ? 0.0 : fabs((double)xs[c / group] * zq_f16_to_f32(mn[c / group])));
        }
        const float *xin = nibbles ? arranged : x;
        float got = zq_dot_row_ref(row, nibbles, sym, cols, group, sc, sym ? NULL : mn, xin, sym ? NULL : xs);
        CHECK(fabs(got - want) <= (double)(cols + groups + 8) * 0x1p-24 * mag + 1e-30);
    }
}

/* The exponential every set shares, against double's exp over its range
 * (every 97th float of [-87, 88]): within 2 ulp of the result's own size. */
TEST(kernel_exponential_is_within_two_ulp_of_exp)
{
    double worst = 0;
    for (uint32_t u = 0; u <= bits(87.0f); u += 97) {
        float x = -from_bits(u);
        double want = exp((double)x), got = zq_exp(x);
        double ulp = ldexp(1.0, ilogb(want) - 23);
        worst = fabs(got - want) / ulp > worst ? fabs(got - want) / ulp : worst;
    }
    CHECK(worst <= 2.0);
    for (uint32_t u = 0; u <= bits(88.0f); u += 97) {
        float x = from_bits(u);
        double want = exp((double)x), got = zq_exp(x);
        double ulp = ldexp(1.0, ilogb(want) - 23);
        worst = fabs(got - want) / ulp > worst ? fabs(got - want) / ulp : worst;
    }
    CHECK(worst <= 2.0);
    CHECK(zq_exp(0.0f) == 1.0f && zq_exp(-0.0f) == 1.0f);
    CHECK(zq_exp(-88.0f) == 0.0f && zq_exp(-INFINITY) == 0.0f);
    CHECK(zq_exp(89.0f) == INFINITY && zq_exp(INFINITY) == INFINITY);
    CHECK(isnan(zq_exp(NAN)));
    fprintf(stderr, "  exp: worst %.2f ulp on [-87, 88]\n", worst);
}

TEST(kernel_softmax_matches_scalar)
{
    const zq_kernels *v = vector_set("softmax");
    float buf[1100], a[1100], b[1100];
    for (int trial = 0; v && trial < 600; trial++) {
        size_t off = next() % 8, n = 1 + (trial < 100 ? (size_t)trial : next() % 1000);
        /* scores of attention's sizes, some far below the maximum (exp's cut to 0), some tied */
        fill(buf + off, n, trial % 3 ? 8.0f : 200.0f, 0);
        if (trial % 5 == 0)
            for (size_t i = 0; i < n; i++) buf[off + i] = next() % 4 ? buf[off] : -1e30f;
        if (trial % 7 == 0) buf[off + next() % n] = NAN;
        float scale = trial % 2 ? 0.125f : uniform(0.01f, 1.0f);
        memcpy(a, buf + off, n * sizeof *a);
        memcpy(b, buf + off, n * sizeof *b);
        v->softmax(a, n, scale);
        zq_kernels_scalar.softmax(b, n, scale);
        int bad = 0;
        for (size_t i = 0; i < n; i++) bad += bits(a[i]) != bits(b[i]);
        CHECK(bad == 0);
    }
}

TEST(kernel_silu_matches_scalar)
{
    const zq_kernels *v = vector_set("silu");
    float x[600], up[600], a[600], b[600];
    for (int trial = 0; v && trial < 300; trial++) {
        size_t n = trial < 40 ? (size_t)trial : next() % 600;
        fill(x, n, trial % 3 ? 12.0f : 120.0f, trial % 4 == 0); /* past exp's range both ways, and edge values */
        fill(up, n, 3.0f, 0);
        const float *u = trial % 2 ? up : NULL;
        v->silu(a, x, u, n);
        zq_kernels_scalar.silu(b, x, u, n);
        int bad = 0;
        for (size_t i = 0; i < n; i++) bad += bits(a[i]) != bits(b[i]);
        CHECK(bad == 0);
    }
}

TEST(softmax_sums_to_one)
{
    float x[300];
    for (int trial = 0; trial < 50; trial++) {
        size_t n = 1 + next() % 300;
        fill(x, n, 20.0f, 0);
        zq_kernels_active()->softmax(x, n, 0.5f);
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += x[i];
        CHECK(fabs(sum - 1.0) < 1e-5); /* n roundings of 2^-24 relative, each at most the sum's */
    }
}

TEST(active_kernels_are_the_best_vector_set_the_cpu_runs)
{
    const zq_kernels *v = zq_kernels_avx512() ? zq_kernels_avx512() : zq_kernels_avx2();
    CHECK(zq_kernels_active() == (v ? v : &zq_kernels_scalar));
    CHECK(strcmp(zq_kernels_name(), zq_kernels_active()->name) == 0);
}
