/* The integer kernels of int8.h: the scalar set, then its AVX2, AVX-VNNI
 * and AVX-512 VNNI twins. */
#include "simd/int8.h"

#include "zquant/quant.h"

#include <math.h>
#include <string.h>

#ifndef ZQ_SIMD
#define ZQ_SIMD 1
#endif

/* ---- the scalar set: the definitions ------------------------------------ */

/* the extremes of a row (k > 0), as zq_fake_quant_tokens finds them */
static void range_ref(const float *x, size_t k, float *lo, float *hi)
{
    float a = x[0], b = x[0];
    for (size_t c = 1; c < k; c++) {
        a = x[c] < a ? x[c] : a;
        b = x[c] > b ? x[c] : b;
    }
    *lo = a, *hi = b;
}

static void codes_ref(const float *x, size_t k, float inv, float zp, uint8_t *q)
{
    for (size_t c = 0; c < k; c++) {
        float v = nearbyintf(x[c] * inv) + zp;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        q[c] = (uint8_t)v;
    }
}

/* The scheme from the row's extremes on: every set's quant_row_u8 ends here,
 * with its own loop for the codes. */
static float finish_row(const float *x, size_t k, float lo, float hi, uint8_t *q, int32_t *zero,
                        void (*codes)(const float *, size_t, float, float, uint8_t *))
{
    float scale = (hi - lo) / 255.0f;
    if (!(scale > 0)) {
        memset(q, 0, k);
        *zero = 0;
        return 0;
    }
    float inv = 1.0f / scale, zp = nearbyintf(-lo * inv);
    codes(x, k, inv, zp, q);
    *zero = (int32_t)zp;
    return scale;
}

static float quant_row_u8_ref(const float *x, size_t k, uint8_t *q, int32_t *zero)
{
    float lo = 0, hi = 0;
    if (k) range_ref(x, k, &lo, &hi);
    return finish_row(x, k, lo, hi, q, zero, codes_ref);
}

static void dot_u8s8_ref(const uint8_t *a, size_t lda, const int8_t *w, size_t ldw, int m, int n, size_t k,
                         int32_t *out, size_t ldo)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const uint8_t *ar = a + (size_t)i * lda;
            const int8_t *wr = w + (size_t)j * ldw;
            int32_t s = 0;
            for (size_t c = 0; c < k; c++) s += (int32_t)ar[c] * (int32_t)wr[c];
            out[(size_t)i * ldo + (size_t)j] = s;
        }
}

static float epilogue_one(const int32_t *dots, size_t dstride, const int32_t *wsum, const float *wscale, int groups,
                          int n, int j, float scale, int32_t zero)
{
    float acc = 0.0f;
    for (int g = 0; g < groups; g++) {
        size_t at = (size_t)g * (size_t)n + (size_t)j;
        float d = (float)(dots[(size_t)g * dstride + (size_t)j] - zero * wsum[at]);
        float t = scale * wscale[at];
        acc = acc + d * t;
    }
    return acc;
}

static void epilogue_ref(const int32_t *dots, size_t dstride, const int32_t *wsum, const float *wscale, int groups,
                         int n, float scale, int32_t zero, const float *bias, float *y)
{
    for (int j = 0; j < n; j++) {
        float acc = epilogue_one(dots, dstride, wsum, wscale, groups, n, j, scale, zero);
        y[j] = bias ? acc + bias[j] : acc;
    }
}

size_t zq_int8_packed_bytes(int n, size_t k, int lanes)
{
    size_t blocks = ((size_t)n + (size_t)lanes - 1) / (size_t)lanes;
    return blocks * (size_t)lanes * ((k + 3) / 4 * 4);
}

void zq_int8_pack(const int8_t *w, size_t ldw, int n, size_t k, int lanes, int8_t *out)
{
    size_t k4 = (k + 3) / 4, blocks = ((size_t)n + (size_t)lanes - 1) / (size_t)lanes;
    for (size_t b = 0; b < blocks; b++)
        for (size_t st = 0; st < k4; st++)
            for (int l = 0; l < lanes; l++)
                for (int t = 0; t < 4; t++) {
                    size_t row = b * (size_t)lanes + (size_t)l, col = 4 * st + (size_t)t;
                    *out++ = row < (size_t)n && col < k ? w[row * ldw + col] : 0;
                }
}

/* The packed layout read plainly (any lane count; the sets without an
 * interleaving kernel of their own use it with theirs). */
static void dot_packed_any(const uint8_t *a, size_t lda, int m, const int8_t *packed, int nblocks, size_t k4,
                           int lanes, int32_t *out, size_t ldo)
{
    for (int i = 0; i < m; i++)
        for (int b = 0; b < nblocks; b++) {
            const int8_t *blk = packed + (size_t)b * k4 * 4 * (size_t)lanes;
            for (int l = 0; l < lanes; l++) {
                int32_t sum = 0;
                for (size_t st = 0; st < k4; st++)
                    for (int t = 0; t < 4; t++)
                        sum += (int32_t)a[(size_t)i * lda + 4 * st + (size_t)t] *
                               (int32_t)blk[(st * (size_t)lanes + (size_t)l) * 4 + (size_t)t];
                out[(size_t)i * ldo + (size_t)b * (size_t)lanes + (size_t)l] = sum;
            }
        }
}

static void dot_packed_ref(const uint8_t *a, size_t lda, int m, const int8_t *packed, int nblocks, size_t k4,
                           int32_t *out, size_t ldo)
{
    dot_packed_any(a, lda, m, packed, nblocks, k4, 8, out, ldo);
}

const zq_int8_kernels zq_int8_scalar = {"scalar", quant_row_u8_ref, dot_u8s8_ref, epilogue_ref, 8, dot_packed_ref};

#if ZQ_SIMD && defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define AVXVNNI __attribute__((target("avx2,avxvnni")))
#define AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

/* ---- AVX2 ------------------------------------------------------------------ */

AVX2 static void codes_avx2(const float *x, size_t k, float inv, float zp, uint8_t *q)
{
    __m256 vinv = _mm256_set1_ps(inv), vzp = _mm256_set1_ps(zp), top = _mm256_set1_ps(255.0f), bottom = _mm256_setzero_ps();
    size_t c = 0;
    for (; c + 8 <= k; c += 8) {
        __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + c), vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, vzp), bottom), top);
        __m256i i32 = _mm256_cvtps_epi32(v); /* whole numbers already: exact */
        __m128i i16 = _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
        _mm_storel_epi64((__m128i *)(q + c), _mm_packus_epi16(i16, i16));
    }
    codes_ref(x + c, k - c, inv, zp, q + c);
}

/* min and max are the same whatever order they are taken in (for finite
 * values; a signed zero changes neither the scale nor any code) */
AVX2 static float quant_row_u8_avx2(const float *x, size_t k, uint8_t *q, int32_t *zero)
{
    if (k < 8) return quant_row_u8_ref(x, k, q, zero);
    __m256 mn = _mm256_loadu_ps(x), mx = mn;
    size_t c = 8;
    for (; c + 8 <= k; c += 8) {
        __m256 v = _mm256_loadu_ps(x + c);
        mn = _mm256_min_ps(v, mn);
        mx = _mm256_max_ps(v, mx);
    }
    float a[8], b[8], lo, hi;
    _mm256_storeu_ps(a, mn);
    _mm256_storeu_ps(b, mx);
    range_ref(a, 8, &lo, &hi);
    float ignore;
    range_ref(b, 8, &ignore, &hi);
    if (c < k) {
        float tlo, thi;
        range_ref(x + c, k - c, &tlo, &thi);
        lo = tlo < lo ? tlo : lo;
        hi = thi > hi ? thi : hi;
    }
    return finish_row(x, k, lo, hi, q, zero, codes_avx2);
}

AVX2 static inline int32_t hsum_epi32_avx2(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 16 codes at a time, widened to 16 bits: vpmaddwd sums pairs exactly */
AVX2 static void dot_u8s8_avx2(const uint8_t *a, size_t lda, const int8_t *w, size_t ldw, int m, int n, size_t k,
                               int32_t *out, size_t ldo)
{
    size_t k16 = k / 16 * 16;
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (size_t)i * lda;
        for (int j = 0; j < n; j++) {
            const int8_t *wr = w + (size_t)j * ldw;
            __m256i acc = _mm256_setzero_si256();
            for (size_t c = 0; c < k16; c += 16) {
                __m256i av = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(ar + c)));
                __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wr + c)));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(av, wv));
            }
            int32_t s = hsum_epi32_avx2(acc);
            for (size_t c = k16; c < k; c++) s += (int32_t)ar[c] * (int32_t)wr[c];
            out[(size_t)i * ldo + (size_t)j] = s;
        }
    }
}

AVX2 static void epilogue_avx2(const int32_t *dots, size_t dstride, const int32_t *wsum, const float *wscale,
                               int groups, int n, float scale, int32_t zero, const float *bias, float *y)
{
    __m256 vs = _mm256_set1_ps(scale);
    __m256i vz = _mm256_set1_epi32(zero);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (int g = 0; g < groups; g++) {
            size_t at = (size_t)g * (size_t)n + (size_t)j;
            __m256i dv = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(dots + (size_t)g * dstride + (size_t)j)),
                                          _mm256_mullo_epi32(vz, _mm256_loadu_si256((const __m256i *)(wsum + at))));
            __m256 t = _mm256_mul_ps(vs, _mm256_loadu_ps(wscale + at));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(dv), t));
        }
        if (bias) acc = _mm256_add_ps(acc, _mm256_loadu_ps(bias + j));
        _mm256_storeu_ps(y + j, acc);
    }
    for (; j < n; j++) {
        float acc = epilogue_one(dots, dstride, wsum, wscale, groups, n, j, scale, zero);
        y[j] = bias ? acc + bias[j] : acc;
    }
}

/* No exact 4-way uint8 x int8 instruction here (vpmaddubsw saturates): one
 * lane, so the packed layout is the rows themselves, each padded to a
 * multiple of 4 codes, and the widening row loop runs on them. */
AVX2 static void dot_packed_avx2(const uint8_t *a, size_t lda, int m, const int8_t *packed, int nblocks, size_t k4,
                                 int32_t *out, size_t ldo)
{
    dot_u8s8_avx2(a, lda, packed, 4 * k4, m, nblocks, 4 * k4, out, ldo);
}

static const zq_int8_kernels int8_avx2 = {"avx2", quant_row_u8_avx2, dot_u8s8_avx2, epilogue_avx2, 1, dot_packed_avx2};

/* ---- AVX-VNNI and AVX-512 VNNI: vpdpbusd on the packed layout ----------- */
/* (their plain row loop is AVX2's: the main loop is dot_packed) */

/* The packed main loop, one body for both VNNI widths: four activation
 * rows x two blocks of L weight rows in 8 accumulators, each step two
 * weight loads and four broadcasts of 4 activation codes; the rows and
 * blocks left over one by one (decode is the row-by-row loop). */
#define DOT_PACKED(name, target, L, vec, zero, load, store, dpbusd, set1)                                          \
    target static void name(const uint8_t *a, size_t lda, int m, const int8_t *packed, int nblocks, size_t k4,     \
                            int32_t *out, size_t ldo)                                                              \
    {                                                                                                              \
        const size_t bstride = k4 * 4 * L;                                                                         \
        int i = 0;                                                                                                 \
        for (; i + 4 <= m; i += 4) {                                                                               \
            const uint8_t *a0 = a + (size_t)i * lda;                                                               \
            int b = 0;                                                                                             \
            for (; b + 2 <= nblocks; b += 2) {                                                                     \
                const int8_t *p0 = packed + (size_t)b * bstride, *p1 = p0 + bstride;                               \
                vec c[4][2];                                                                                       \
                for (int r = 0; r < 4; r++) c[r][0] = c[r][1] = zero;                                              \
                for (size_t st = 0; st < k4; st++) {                                                               \
                    vec w0 = load(p0 + st * 4 * L), w1 = load(p1 + st * 4 * L);                                    \
                    for (int r = 0; r < 4; r++) {                                                                  \
                        int32_t q;                                                                                 \
                        memcpy(&q, a0 + (size_t)r * lda + 4 * st, 4);                                              \
                        vec x = set1(q);                                                                           \
                        c[r][0] = dpbusd(c[r][0], x, w0);                                                          \
                        c[r][1] = dpbusd(c[r][1], x, w1);                                                          \
                    }                                                                                              \
                }                                                                                                  \
                for (int r = 0; r < 4; r++) {                                                                      \
                    int32_t *o = out + (size_t)(i + r) * ldo + (size_t)b * L;                                      \
                    store(o, c[r][0]);                                                                             \
                    store(o + L, c[r][1]);                                                                         \
                }                                                                                                  \
            }                                                                                                      \
            for (; b < nblocks; b++)                                                                               \
                for (int r = 0; r < 4; r++) name##_one(a0 + (size_t)r * lda, packed + (size_t)b * bstride, k4,    \
                                                       out + (size_t)(i + r) * ldo + (size_t)b * L);               \
        }                                                                                                          \
        for (; i < m; i++)                                                                                         \
            for (int b = 0; b < nblocks; b++)                                                                      \
                name##_one(a + (size_t)i * lda, packed + (size_t)b * bstride, k4, out + (size_t)i * ldo + (size_t)b * L); \
    }

/* one activation row against one block */
#define DOT_PACKED_ONE(name, target, L, vec, zero, load, store, dpbusd, set1)                                      \
    target static void name##_one(const uint8_t *a, const int8_t *p, size_t k4, int32_t *out)                    \
    {                                                                                                              \
        vec c = zero;                                                                                              \
        for (size_t st = 0; st < k4; st++) {                                                                       \
            int32_t q;                                                                                             \
            memcpy(&q, a + 4 * st, 4);                                                                             \
            c = dpbusd(c, set1(q), load(p + st * 4 * L));                                                          \
        }                                                                                                          \
        store(out, c);                                                                                             \
    }

#define LOAD256(p) _mm256_loadu_si256((const __m256i *)(p))
#define STORE256(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#define LOAD512(p) _mm512_loadu_si512((const void *)(p))
#define STORE512(p, v) _mm512_storeu_si512((void *)(p), v)

DOT_PACKED_ONE(dot_packed_avxvnni, AVXVNNI, 8, __m256i, _mm256_setzero_si256(), LOAD256, STORE256,
               _mm256_dpbusd_avx_epi32, _mm256_set1_epi32)
DOT_PACKED(dot_packed_avxvnni, AVXVNNI, 8, __m256i, _mm256_setzero_si256(), LOAD256, STORE256,
           _mm256_dpbusd_avx_epi32, _mm256_set1_epi32)

static const zq_int8_kernels int8_avxvnni = {"avx-vnni", quant_row_u8_avx2, dot_u8s8_avx2, epilogue_avx2, 8,
                                             dot_packed_avxvnni};

DOT_PACKED_ONE(dot_packed_avx512vnni, AVX512VNNI, 16, __m512i, _mm512_setzero_si512(), LOAD512, STORE512,
               _mm512_dpbusd_epi32, _mm512_set1_epi32)
DOT_PACKED(dot_packed_avx512vnni, AVX512VNNI, 16, __m512i, _mm512_setzero_si512(), LOAD512, STORE512,
           _mm512_dpbusd_epi32, _mm512_set1_epi32)

static const zq_int8_kernels int8_avx512vnni = {"avx512-vnni", quant_row_u8_avx2, dot_u8s8_avx2, epilogue_avx2, 16,
                                                dot_packed_avx512vnni};

/* cpuid leaf 7: AVX2 (ebx 5), AVX-512 F (ebx 16), BW (ebx 30), VNNI (ecx
 * 11); subleaf 1: AVX-VNNI (eax 4). The OS must save the YMM (XCR0 bits 1,
 * 2) and, for AVX-512, the opmask and ZMM state (bits 5-7). */
static unsigned xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return lo;
}

const zq_int8_kernels *const *zq_int8_vector_sets(void)
{
    static const zq_int8_kernels *sets[4];
    static int done;
    if (done) return sets;
    unsigned a, b, c, d, n = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (xcr0() & 6) == 6 &&
        __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2)) {
        unsigned leaf7_ebx = b, leaf7_ecx = c;
        if ((leaf7_ebx & (1u << 16)) && (leaf7_ebx & (1u << 30)) && (leaf7_ecx & (1u << 11)) && (xcr0() & 0xe6) == 0xe6)
            sets[n++] = &int8_avx512vnni;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4))) sets[n++] = &int8_avxvnni;
        sets[n++] = &int8_avx2;
    }
    sets[n] = NULL;
    done = 1;
    return sets;
}
#else
const zq_int8_kernels *const *zq_int8_vector_sets(void)
{
    static const zq_int8_kernels *none[1] = {NULL};
    return none;
}
#endif

static const zq_int8_kernels *active;

/* chosen as the program loads, before any thread can ask (as kernels.c) */
__attribute__((constructor)) static void choose(void)
{
    const zq_int8_kernels *const *v = zq_int8_vector_sets();
    active = v[0] ? v[0] : &zq_int8_scalar;
}

const zq_int8_kernels *zq_int8_active(void)
{
    if (!active) choose();
    return active;
}

const char *zq_int8_kernels_name(void) { return zq_int8_active()->name; }
