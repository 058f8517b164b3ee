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

static float quant_row_u8_ref(const float *x, size_t k, uint8_t *q, int32_t *zero)
{
    float lo = k ? x[0] : 0, hi = lo;
    for (size_t c = 1; c < k; c++) {
        lo = x[c] < lo ? x[c] : lo;
        hi = x[c] > hi ? x[c] : hi;
    }
    float scale = (hi - lo) / 255.0f;
    if (!(scale > 0)) {
        memset(q, 0, k);
        *zero = 0;
        return 0;
    }
    float inv = 1.0f / scale, zp = nearbyintf(-lo * inv);
    for (size_t c = 0; c < k; c++) {
        float v = nearbyintf(x[c] * inv) + zp;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        q[c] = (uint8_t)v;
    }
    *zero = (int32_t)zp;
    return scale;
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

/* The packed layout read plainly (any lane count: the sets without an
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
    float a[8], b[8];
    _mm256_storeu_ps(a, mn);
    _mm256_storeu_ps(b, mx);
    float lo = a[0], hi = b[0];
    for (int l = 1; l < 8; l++) {
        lo = a[l] < lo ? a[l] : lo;
        hi = b[l] > hi ? b[l] : hi;
    }
    for (; c < k; c++) {
        lo = x[c] < lo ? x[c] : lo;
        hi = x[c] > hi ? x[c] : hi;
    }
    float scale = (hi - lo) / 255.0f;
    if (!(scale > 0)) {
        memset(q, 0, k);
        *zero = 0;
        return 0;
    }
    float inv = 1.0f / scale, zp = nearbyintf(-lo * inv);
    __m256 vinv = _mm256_set1_ps(inv), vzp = _mm256_set1_ps(zp), top = _mm256_set1_ps(255.0f), bottom = _mm256_setzero_ps();
    for (c = 0; c + 8 <= k; c += 8) {
        __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + c), vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, vzp), bottom), top);
        __m256i i32 = _mm256_cvtps_epi32(v); /* whole numbers already: exact */
        __m128i i16 = _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
        __m128i u8 = _mm_packus_epi16(i16, i16);
        _mm_storel_epi64((__m128i *)(q + c), u8);
    }
    for (; c < k; c++) {
        float v = nearbyintf(x[c] * inv) + zp;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        q[c] = (uint8_t)v;
    }
    *zero = (int32_t)zp;
    return scale;
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

/* ---- AVX-VNNI: vpdpbusd on 256 bits, 32 codes a step --------------------- */

AVXVNNI static void dot_u8s8_avxvnni(const uint8_t *a, size_t lda, const int8_t *w, size_t ldw, int m, int n, size_t k,
                                     int32_t *out, size_t ldo)
{
    size_t k32 = k / 32 * 32;
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (size_t)i * lda;
        int j = 0;
        for (; j + 4 <= n; j += 4) { /* four weight rows share each load of the activations */
            const int8_t *w0 = w + (size_t)j * ldw;
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t c = 0; c < k32; c += 32) {
                __m256i av = _mm256_loadu_si256((const __m256i *)(ar + c));
                s0 = _mm256_dpbusd_avx_epi32(s0, av, _mm256_loadu_si256((const __m256i *)(w0 + c)));
                s1 = _mm256_dpbusd_avx_epi32(s1, av, _mm256_loadu_si256((const __m256i *)(w0 + ldw + c)));
                s2 = _mm256_dpbusd_avx_epi32(s2, av, _mm256_loadu_si256((const __m256i *)(w0 + 2 * ldw + c)));
                s3 = _mm256_dpbusd_avx_epi32(s3, av, _mm256_loadu_si256((const __m256i *)(w0 + 3 * ldw + c)));
            }
            int32_t r[4] = {hsum_epi32_avx2(s0), hsum_epi32_avx2(s1), hsum_epi32_avx2(s2), hsum_epi32_avx2(s3)};
            for (int q = 0; q < 4; q++) {
                const int8_t *wr = w0 + (size_t)q * ldw;
                for (size_t c = k32; c < k; c++) r[q] += (int32_t)ar[c] * (int32_t)wr[c];
                out[(size_t)i * ldo + (size_t)(j + q)] = r[q];
            }
        }
        if (j < n) dot_u8s8_avx2(ar, lda, w + (size_t)j * ldw, ldw, 1, n - j, k, out + (size_t)i * ldo + j, ldo);
    }
}

/* Four activation rows x two blocks of 8 weight rows: 8 accumulators, each
 * step two weight loads and four broadcasts of 4 activation codes. */
AVXVNNI static void dot_packed_avxvnni(const uint8_t *a, size_t lda, int m, const int8_t *packed, int nblocks, size_t k4,
                                       int32_t *out, size_t ldo)
{
    enum { L = 8 };
    const size_t bstride = k4 * 4 * L;
    int i = 0;
    for (; i + 4 <= m; i += 4) {
        const uint8_t *a0 = a + (size_t)i * lda;
        int b = 0;
        for (; b + 2 <= nblocks; b += 2) {
            const int8_t *p0 = packed + (size_t)b * bstride, *p1 = p0 + bstride;
            __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                    c31 = c00;
            for (size_t st = 0; st < k4; st++) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(p0 + st * 4 * L));
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(p1 + st * 4 * L));
                int32_t q0, q1, q2, q3;
                memcpy(&q0, a0 + 4 * st, 4);
                memcpy(&q1, a0 + lda + 4 * st, 4);
                memcpy(&q2, a0 + 2 * lda + 4 * st, 4);
                memcpy(&q3, a0 + 3 * lda + 4 * st, 4);
                __m256i x0 = _mm256_set1_epi32(q0), x1 = _mm256_set1_epi32(q1), x2 = _mm256_set1_epi32(q2),
                        x3 = _mm256_set1_epi32(q3);
                c00 = _mm256_dpbusd_avx_epi32(c00, x0, w0), c01 = _mm256_dpbusd_avx_epi32(c01, x0, w1);
                c10 = _mm256_dpbusd_avx_epi32(c10, x1, w0), c11 = _mm256_dpbusd_avx_epi32(c11, x1, w1);
                c20 = _mm256_dpbusd_avx_epi32(c20, x2, w0), c21 = _mm256_dpbusd_avx_epi32(c21, x2, w1);
                c30 = _mm256_dpbusd_avx_epi32(c30, x3, w0), c31 = _mm256_dpbusd_avx_epi32(c31, x3, w1);
            }
            int32_t *o = out + (size_t)i * ldo + (size_t)b * L;
            _mm256_storeu_si256((__m256i *)o, c00), _mm256_storeu_si256((__m256i *)(o + L), c01);
            _mm256_storeu_si256((__m256i *)(o + ldo), c10), _mm256_storeu_si256((__m256i *)(o + ldo + L), c11);
            _mm256_storeu_si256((__m256i *)(o + 2 * ldo), c20), _mm256_storeu_si256((__m256i *)(o + 2 * ldo + L), c21);
            _mm256_storeu_si256((__m256i *)(o + 3 * ldo), c30), _mm256_storeu_si256((__m256i *)(o + 3 * ldo + L), c31);
        }
        for (; b < nblocks; b++)
            for (int r = 0; r < 4; r++) {
                const int8_t *p0 = packed + (size_t)b * bstride;
                __m256i c = _mm256_setzero_si256();
                for (size_t st = 0; st < k4; st++) {
                    int32_t q;
                    memcpy(&q, a0 + (size_t)r * lda + 4 * st, 4);
                    c = _mm256_dpbusd_avx_epi32(c, _mm256_set1_epi32(q), _mm256_loadu_si256((const __m256i *)(p0 + st * 4 * L)));
                }
                _mm256_storeu_si256((__m256i *)(out + (size_t)(i + r) * ldo + (size_t)b * L), c);
            }
    }
    for (; i < m; i++) /* the last rows, one at a time: decode is this loop */
        for (int b = 0; b < nblocks; b++) {
            const int8_t *p0 = packed + (size_t)b * bstride;
            __m256i c = _mm256_setzero_si256();
            for (size_t st = 0; st < k4; st++) {
                int32_t q;
                memcpy(&q, a + (size_t)i * lda + 4 * st, 4);
                c = _mm256_dpbusd_avx_epi32(c, _mm256_set1_epi32(q), _mm256_loadu_si256((const __m256i *)(p0 + st * 4 * L)));
            }
            _mm256_storeu_si256((__m256i *)(out + (size_t)i * ldo + (size_t)b * L), c);
        }
}

static const zq_int8_kernels int8_avxvnni = {"avx-vnni", quant_row_u8_avx2, dot_u8s8_avxvnni, epilogue_avx2, 8,
                                             dot_packed_avxvnni};

/* ---- AVX-512 VNNI: 64 codes a step --------------------------------------- */

AVX512VNNI static void dot_u8s8_avx512vnni(const uint8_t *a, size_t lda, const int8_t *w, size_t ldw, int m, int n,
                                           size_t k, int32_t *out, size_t ldo)
{
    size_t k64 = k / 64 * 64;
    for (int i = 0; i < m; i++) {
        const uint8_t *ar = a + (size_t)i * lda;
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            const int8_t *w0 = w + (size_t)j * ldw;
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t c = 0; c < k64; c += 64) {
                __m512i av = _mm512_loadu_si512((const void *)(ar + c));
                s0 = _mm512_dpbusd_epi32(s0, av, _mm512_loadu_si512((const void *)(w0 + c)));
                s1 = _mm512_dpbusd_epi32(s1, av, _mm512_loadu_si512((const void *)(w0 + ldw + c)));
                s2 = _mm512_dpbusd_epi32(s2, av, _mm512_loadu_si512((const void *)(w0 + 2 * ldw + c)));
                s3 = _mm512_dpbusd_epi32(s3, av, _mm512_loadu_si512((const void *)(w0 + 3 * ldw + c)));
            }
            int32_t r[4] = {_mm512_reduce_add_epi32(s0), _mm512_reduce_add_epi32(s1), _mm512_reduce_add_epi32(s2),
                            _mm512_reduce_add_epi32(s3)};
            for (int q = 0; q < 4; q++) {
                const int8_t *wr = w0 + (size_t)q * ldw;
                for (size_t c = k64; c < k; c++) r[q] += (int32_t)ar[c] * (int32_t)wr[c];
                out[(size_t)i * ldo + (size_t)(j + q)] = r[q];
            }
        }
        if (j < n) dot_u8s8_ref(ar, lda, w + (size_t)j * ldw, ldw, 1, n - j, k, out + (size_t)i * ldo + j, ldo);
    }
}

/* As the AVX-VNNI loop, with blocks of 16 weight rows. */
AVX512VNNI static void dot_packed_avx512vnni(const uint8_t *a, size_t lda, int m, const int8_t *packed, int nblocks,
                                             size_t k4, int32_t *out, size_t ldo)
{
    enum { L = 16 };
    const size_t bstride = k4 * 4 * L;
    int i = 0;
    for (; i + 4 <= m; i += 4) {
        const uint8_t *a0 = a + (size_t)i * lda;
        int b = 0;
        for (; b + 2 <= nblocks; b += 2) {
            const int8_t *p0 = packed + (size_t)b * bstride, *p1 = p0 + bstride;
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
                    c31 = c00;
            for (size_t st = 0; st < k4; st++) {
                __m512i w0 = _mm512_loadu_si512((const void *)(p0 + st * 4 * L));
                __m512i w1 = _mm512_loadu_si512((const void *)(p1 + st * 4 * L));
                int32_t q0, q1, q2, q3;
                memcpy(&q0, a0 + 4 * st, 4);
                memcpy(&q1, a0 + lda + 4 * st, 4);
                memcpy(&q2, a0 + 2 * lda + 4 * st, 4);
                memcpy(&q3, a0 + 3 * lda + 4 * st, 4);
                __m512i x0 = _mm512_set1_epi32(q0), x1 = _mm512_set1_epi32(q1), x2 = _mm512_set1_epi32(q2),
                        x3 = _mm512_set1_epi32(q3);
                c00 = _mm512_dpbusd_epi32(c00, x0, w0), c01 = _mm512_dpbusd_epi32(c01, x0, w1);
                c10 = _mm512_dpbusd_epi32(c10, x1, w0), c11 = _mm512_dpbusd_epi32(c11, x1, w1);
                c20 = _mm512_dpbusd_epi32(c20, x2, w0), c21 = _mm512_dpbusd_epi32(c21, x2, w1);
                c30 = _mm512_dpbusd_epi32(c30, x3, w0), c31 = _mm512_dpbusd_epi32(c31, x3, w1);
            }
            int32_t *o = out + (size_t)i * ldo + (size_t)b * L;
            _mm512_storeu_si512(o, c00), _mm512_storeu_si512(o + L, c01);
            _mm512_storeu_si512(o + ldo, c10), _mm512_storeu_si512(o + ldo + L, c11);
            _mm512_storeu_si512(o + 2 * ldo, c20), _mm512_storeu_si512(o + 2 * ldo + L, c21);
            _mm512_storeu_si512(o + 3 * ldo, c30), _mm512_storeu_si512(o + 3 * ldo + L, c31);
        }
        for (; b < nblocks; b++)
            for (int r = 0; r < 4; r++) {
                const int8_t *p0 = packed + (size_t)b * bstride;
                __m512i c = _mm512_setzero_si512();
                for (size_t st = 0; st < k4; st++) {
                    int32_t q;
                    memcpy(&q, a0 + (size_t)r * lda + 4 * st, 4);
                    c = _mm512_dpbusd_epi32(c, _mm512_set1_epi32(q), _mm512_loadu_si512((const void *)(p0 + st * 4 * L)));
                }
                _mm512_storeu_si512(out + (size_t)(i + r) * ldo + (size_t)b * L, c);
            }
    }
    for (; i < m; i++)
        for (int b = 0; b < nblocks; b++) {
            const int8_t *p0 = packed + (size_t)b * bstride;
            __m512i c = _mm512_setzero_si512();
            for (size_t st = 0; st < k4; st++) {
                int32_t q;
                memcpy(&q, a + (size_t)i * lda + 4 * st, 4);
                c = _mm512_dpbusd_epi32(c, _mm512_set1_epi32(q), _mm512_loadu_si512((const void *)(p0 + st * 4 * L)));
            }
            _mm512_storeu_si512(out + (size_t)i * ldo + (size_t)b * L, c);
        }
}

static const zq_int8_kernels int8_avx512vnni = {"avx512-vnni", quant_row_u8_avx2, dot_u8s8_avx512vnni, epilogue_avx2, 16,
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
