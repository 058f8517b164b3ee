/* The AVX2 kernel set (with F16C for halves and SSE4.2 for CRC-32C): the
 * same operations in the same order as the scalar references, eight lanes at
 * a time, so every result is bit-identical to theirs. */
#include "simd/kernels.h"

#ifndef ZQ_SIMD
#define ZQ_SIMD 1
#endif

#if ZQ_SIMD && defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "zquant/fp16.h"
#include "zquant/quant.h"

#define TARGET __attribute__((target("avx2,f16c,sse4.2")))

TARGET static int range_f32(const float *x, size_t n, float *lo, float *hi,
                                                      size_t *bad_index)
{
    __m256 mn = _mm256_set1_ps(INFINITY), mx = _mm256_set1_ps(-INFINITY);
    __m256i expmask = _mm256_set1_epi32(0x7f800000), nonfinite = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256i e = _mm256_and_si256(_mm256_castps_si256(v), expmask);
        nonfinite = _mm256_or_si256(nonfinite, _mm256_cmpeq_epi32(e, expmask));
        mn = _mm256_min_ps(v, mn); /* v < mn ? v : mn, as the reference */
        mx = _mm256_max_ps(v, mx);
    }
    float a[8], b[8];
    _mm256_storeu_ps(a, mn);
    _mm256_storeu_ps(b, mx);
    int bad = !_mm256_testz_si256(nonfinite, nonfinite);
    for (; i < n; i++) {
        float v = x[i];
        bad |= !isfinite(v);
        a[0] = v < a[0] ? v : a[0];
        b[0] = v > b[0] ? v : b[0];
    }
    if (bad) {
        for (size_t k = 0; k < n; k++)
            if (!isfinite(x[k])) { *bad_index = k; break; }
        return 0;
    }
    float l = a[0], h = b[0];
    for (int k = 1; k < 8; k++) {
        l = a[k] < l ? a[k] : l;
        h = b[k] > h ? b[k] : h;
    }
    *lo = l;
    *hi = h;
    return 1;
}

TARGET static void quantize_run(const zq_qspec *spec, const float *x, size_t n,
                                                         uint16_t scale, uint16_t min, uint8_t *q,
                                                         zq_err_sums *sums)
{
    const float s = zq_f16_to_f32(scale);
    const float m = spec->symmetric ? 0.0f : zq_f16_to_f32(min);
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    float qlo, qhi;
    zq_code_range(spec, &qlo, &qhi);
    const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m), vinv = _mm256_set1_ps(inv);
    const __m256 vlo = _mm256_set1_ps(qlo), vhi = _mm256_set1_ps(qhi), magic = _mm256_set1_ps(ZQ_RNE_MAGIC);
    /* byte 0 of each 32-bit lane, then the two 128-bit halves side by side */
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i gather = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256 e2 = _mm256_setzero_ps(), w2 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 c = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v, vm), vinv), magic), magic);
        c = _mm256_max_ps(vlo, c); /* c < qlo ? qlo : c */
        c = _mm256_min_ps(vhi, c); /* c > qhi ? qhi : c */
        __m256 d = _mm256_sub_ps(v, _mm256_add_ps(_mm256_mul_ps(c, vs), vm));
        e2 = _mm256_add_ps(e2, _mm256_mul_ps(d, d));
        w2 = _mm256_add_ps(w2, _mm256_mul_ps(v, v));
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(_mm256_cvttps_epi32(c), pick), gather);
        _mm_storel_epi64((__m128i *)(q + i), _mm256_castsi256_si128(b));
    }
    float a[8], w[8];
    _mm256_storeu_ps(a, e2);
    _mm256_storeu_ps(w, w2);
    for (; i < n; i++) {
        float v = x[i];
        float c = ((v - m) * inv + ZQ_RNE_MAGIC) - ZQ_RNE_MAGIC;
        c = c < qlo ? qlo : c;
        c = c > qhi ? qhi : c;
        float d = v - (c * s + m);
        a[0] += d * d;
        w[0] += v * v;
        q[i] = (uint8_t)(int)c;
    }
    double se = 0, sw = 0;
    for (int l = 0; l < 8; l++) se += a[l], sw += w[l];
    sums->err2 += se;
    sums->signal2 += sw;
}

/* Eight rows of eight values in registers, transposed: the classic
 * unpack / shuffle / lane-swap sequence. */
TARGET static inline void transpose8x8_regs(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

TARGET static void transpose_f16_8x8(const void *src, size_t ss, void *dst, size_t ds)
{
    const uint16_t *from = src;
    float *to = dst;
    __m256 r[8];
    for (int k = 0; k < 8; k++) r[k] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(from + k * ss)));
    transpose8x8_regs(r);
    for (int k = 0; k < 8; k++) _mm256_storeu_ps(to + k * ds, r[k]);
}

TARGET static void pack_nibbles(const uint8_t *q, size_t n, uint8_t *out)
{
    const __m256i low = _mm256_set1_epi8(0x0f), weights = _mm256_set1_epi16(0x1001); /* bytes 1, 16 */
    size_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(q + k)), low);
        __m256i pairs = _mm256_maddubs_epi16(v, weights); /* q[2i] + 16 q[2i+1] */
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(pairs, pairs), 0x08);
        _mm_storeu_si128((__m128i *)(out + k / 2), _mm256_castsi256_si128(packed));
    }
    zq_pack_nibbles_ref(q + k, n - k, out + k / 2);
}
TARGET static void f16_to_f32(const uint16_t *in, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++) out[i] = zq_f16_to_f32(in[i]);
}

TARGET static void f32_to_f16(const float *in, uint16_t *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) out[i] = zq_f32_to_f16(in[i]);
}

/* The walk both transposes take: dst[c * rows + k] = src[k * src_stride +
 * c] (elements of es_src and es_dst bytes) by whole t x t tiles, grouped
 * kt source rows by ct columns (see each caller for why), then the ragged
 * edges an element at a time. Inlined, with its callbacks, into each. */
typedef void (*tile_fn)(const void *src, size_t ss, void *dst, size_t ds);
typedef void (*element_fn)(const void *src, void *dst);

TARGET static inline void transpose_tiled(const void *src, size_t es_src, size_t src_stride, size_t rows, size_t cols,
                                          void *dst, size_t es_dst, size_t t, size_t kt, size_t ct, tile_fn tile,
                                          element_fn one)
{
    const char *s = src;
    char *d = dst;
#define SRC(k, c) (s + ((k) * src_stride + (c)) * es_src)
#define DST(k, c) (d + ((c) * rows + (k)) * es_dst)
    size_t rows_t = rows / t * t, cols_t = cols / t * t;
    for (size_t c0 = 0; c0 < cols_t; c0 += ct)
        for (size_t k0 = 0; k0 < rows_t; k0 += kt) {
            size_t cend = c0 + ct < cols_t ? c0 + ct : cols_t, kend = k0 + kt < rows_t ? k0 + kt : rows_t;
            for (size_t c = c0; c < cend; c += t)
                for (size_t k = k0; k < kend; k += t) tile(SRC(k, c), src_stride, DST(k, c), rows);
        }
    for (size_t c = cols_t; c < cols; c++)
        for (size_t k = 0; k < rows; k++) one(SRC(k, c), DST(k, c));
    for (size_t k = rows_t; k < rows; k++)
        for (size_t c = 0; c < cols_t; c++) one(SRC(k, c), DST(k, c));
#undef SRC
#undef DST
}

static void one_f16(const void *src, void *dst) { *(float *)dst = zq_f16_to_f32(*(const uint16_t *)src); }

/* Tiles of 256 source rows by 32 columns: without them every 8x8 block
 * stored to 32 output rows 4 KB apart, which share one L1 set, and the
 * transpose ran at a third of the speed (2.2 against 6-7 GB/s of FP16 on a
 * 1024 x 4096 GPT-2 weight, measured). */
TARGET static void transpose_f16_to_f32(const uint16_t *src, size_t src_stride, size_t rows, size_t cols, float *dst)
{
    transpose_tiled(src, 2, src_stride, rows, cols, dst, 4, 8, 256, 32, transpose_f16_8x8, one_f16);
}

/* Sixteen rows of sixteen bytes: four rounds of byte interleaves, pairing
 * the rows whose index differs in bit 3, then 2, 1, 0; each round moves
 * one bit of the column index into the row index, so after four the two
 * have swapped. */
TARGET static void transpose_u8_16x16(const void *src, size_t ss, void *dst, size_t ds)
{
    const uint8_t *from = src;
    uint8_t *to = dst;
    __m128i r[16], t[16];
    for (int k = 0; k < 16; k++) r[k] = _mm_loadu_si128((const __m128i *)(from + k * ss));
    /* unrolled whole, so every index is a constant and r, t registers */
#pragma GCC unroll 4
    for (int bit = 8; bit >= 1; bit >>= 1) {
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++)
            if (!(k & bit)) {
                t[k] = _mm_unpacklo_epi8(r[k], r[k | bit]);
                t[k | bit] = _mm_unpackhi_epi8(r[k], r[k | bit]);
            }
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) r[k] = t[k];
    }
    for (int k = 0; k < 16; k++) _mm_storeu_si128((__m128i *)(to + k * ds), r[k]);
}

static void one_u8(const void *src, void *dst) { *(uint8_t *)dst = *(const uint8_t *)src; }

/* 64 columns (a source line) by 256 rows at a time */
TARGET static void transpose_u8(const uint8_t *src, size_t src_stride, size_t rows, size_t cols, uint8_t *dst)
{
    transpose_tiled(src, 1, src_stride, rows, cols, dst, 1, 16, 256, 64, transpose_u8_16x16, one_u8);
}

/* Three streams of CRC_LANE bytes at a time: the crc32 instruction takes 3
 * cycles and issues every cycle, so one stream runs at a third of its
 * speed. The state is linear over GF(2), so stream 0's state moved past
 * LANE zero bytes, xor stream 1's from zero, is the state of both blocks
 * in a row (zq_crc32c_zeros_table). */
enum { CRC_LANE = 4096 };
static uint32_t crc_move[4][256];
static pthread_once_t crc_move_once = PTHREAD_ONCE_INIT;

static void crc_move_init(void) { zq_crc32c_zeros_table(CRC_LANE, crc_move); }

static uint32_t crc_past_lane(uint32_t s)
{
    return crc_move[0][s & 255] ^ crc_move[1][s >> 8 & 255] ^ crc_move[2][s >> 16 & 255] ^ crc_move[3][s >> 24];
}

TARGET static uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    if (len >= 3 * CRC_LANE) pthread_once(&crc_move_once, crc_move_init);
    for (; len >= 3 * CRC_LANE; p += 3 * CRC_LANE, len -= 3 * CRC_LANE) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < CRC_LANE; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + CRC_LANE + i, 8);
            memcpy(&w2, p + 2 * CRC_LANE + i, 8);
            c = _mm_crc32_u64(c, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
        }
        c = crc_past_lane(crc_past_lane((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

/* 8 codes of a row from column c (a multiple of 8 for nibbles) as floats */
TARGET static inline __m256 codes8(const uint8_t *row, int nibbles, int symmetric, uint64_t c)
{
    __m128i b;
    if (nibbles) { /* 4 bytes: element 2k low, 2k+1 high */
        uint32_t w;
        memcpy(&w, row + c / 2, 4);
        __m128i v = _mm_cvtsi32_si128((int)w), m = _mm_set1_epi8(15);
        __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
        b = _mm_unpacklo_epi8(lo, hi);
        if (symmetric) b = _mm_sub_epi8(_mm_xor_si128(b, _mm_set1_epi8(8)), _mm_set1_epi8(8));
    } else {
        b = _mm_loadl_epi64((const __m128i *)(row + c));
    }
    __m256i i32 = symmetric ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
    return _mm256_cvtepi32_ps(i32);
}

TARGET static void decode_run(const uint8_t *row, int nibbles, int symmetric, uint64_t col0, size_t n, float s,
                              float m, float *out)
{
    size_t k = 0;
    if (nibbles) /* to a byte boundary of 4 whole bytes */
        while (k < n && (col0 + k) % 8) k++;
    zq_decode_run_ref(row, nibbles, symmetric, col0, k, s, m, out);
    __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(out + k, _mm256_add_ps(_mm256_mul_ps(codes8(row, nibbles, symmetric, col0 + k), vs), vm));
    zq_decode_run_ref(row, nibbles, symmetric, col0 + k, n - k, s, m, out + k);
}

#define TARGET_FMA __attribute__((target("avx2,f16c,sse4.2,fma")))

/* INT4 codes in [0, 15] (stored) or [-8, 7] (symmetric), from bytes
 * widened one to a 32-bit lane: the low nibble, and the high one */
TARGET_FMA static inline __m256 nibble_lo(__m256i v, int symmetric)
{
    return _mm256_cvtepi32_ps(symmetric ? _mm256_srai_epi32(_mm256_slli_epi32(v, 28), 28)
                                        : _mm256_and_si256(v, _mm256_set1_epi32(15)));
}

TARGET_FMA static inline __m256 nibble_hi(__m256i v, int symmetric)
{
    return _mm256_cvtepi32_ps(symmetric ? _mm256_srai_epi32(_mm256_slli_epi32(v, 24), 28) : _mm256_srli_epi32(v, 4));
}

/* One group of w INT4 codes into the reference's sixteen lanes, even
 * chains in p[0] (lanes 0-7), p[1] (8-15), odd in p[2], p[3]: a block of
 * 32 codes is 16 bytes, byte i holding lane i's even and odd code. Inlined
 * with a constant `symmetric`, so the loop has no branch. */
TARGET_FMA __attribute__((always_inline)) static inline void nibble_group(const uint8_t *row, uint64_t c0, size_t w,
                                                                          int symmetric, const float *x, __m256 p[4])
{
    size_t k = 0;
    for (; k + 32 <= w; k += 32) {
        const uint8_t *b = row + (c0 + k) / 2;
        const float *xb = x + c0 + k;
        __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b));
        __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 8)));
        p[0] = _mm256_fmadd_ps(_mm256_loadu_ps(xb), nibble_lo(v0, symmetric), p[0]);
        p[1] = _mm256_fmadd_ps(_mm256_loadu_ps(xb + 8), nibble_lo(v1, symmetric), p[1]);
        p[2] = _mm256_fmadd_ps(_mm256_loadu_ps(xb + 16), nibble_hi(v0, symmetric), p[2]);
        p[3] = _mm256_fmadd_ps(_mm256_loadu_ps(xb + 24), nibble_hi(v1, symmetric), p[3]);
    }
    if (k == w) return;
    float lanes[2][16]; /* the tail, in order in x, lane by lane */
    for (int h = 0; h < 4; h++) _mm256_storeu_ps(lanes[h / 2] + h % 2 * 8, p[h]);
    zq_nibble_tail(row, c0, k, w, symmetric, x, lanes);
    for (int h = 0; h < 4; h++) p[h] = _mm256_loadu_ps(lanes[h / 2] + h % 2 * 8);
}

TARGET_FMA static float dot_nibbles(const uint8_t *row, int symmetric, size_t cols, size_t group,
                                    const uint16_t *scale, const uint16_t *min, const float *x, const float *xsum)
{
    if (group % 2) /* odd groups split bytes */
        return zq_dot_row_ref(row, 1, symmetric, cols, group, scale, min, x, xsum);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t groups = (cols + group - 1) / group;
    for (size_t g = 0; g < groups; g++) {
        size_t c0 = g * group, w = cols - c0 < group ? cols - c0 : group;
        __m256 p[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        if (symmetric) nibble_group(row, c0, w, 1, x, p);
        else nibble_group(row, c0, w, 0, x, p);
        __m256 s = _mm256_set1_ps(_cvtsh_ss(scale[g]));
        acc0 = _mm256_fmadd_ps(_mm256_add_ps(p[0], p[2]), s, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_add_ps(p[1], p[3]), s, acc1);
    }
    float a[8];
    _mm256_storeu_ps(a, _mm256_add_ps(acc0, acc1));
    float total = zq_lanes_sum8(a);
    for (size_t g = 0; !symmetric && g < groups; g++) total = total + xsum[g] * _cvtsh_ss(min[g]);
    return total;
}

/* INT8: the reference's eight lanes as one vector, group by group; a
 * group not a whole number of 8 codes goes to the reference */
TARGET_FMA static float dot_row(const uint8_t *row, int nibbles, int symmetric, size_t cols, size_t group,
                                const uint16_t *scale, const uint16_t *min, const float *x, const float *xsum)
{
    if (nibbles) return dot_nibbles(row, symmetric, cols, group, scale, min, x, xsum);
    if (group % 8) return zq_dot_row_ref(row, 0, symmetric, cols, group, scale, min, x, xsum);
    __m256 acc = _mm256_setzero_ps();
    size_t groups = (cols + group - 1) / group;
    for (size_t g = 0; g < groups; g++) {
        size_t c0 = g * group, w = cols - c0 < group ? cols - c0 : group, k = 0;
        __m256 p = _mm256_setzero_ps();
        for (; k + 8 <= w; k += 8)
            p = _mm256_fmadd_ps(_mm256_loadu_ps(x + c0 + k), codes8(row, 0, symmetric, c0 + k), p);
        if (k < w) { /* the last group's tail, lane by lane */
            float lanes[8];
            _mm256_storeu_ps(lanes, p);
            for (; k < w; k++)
                lanes[k % 8] = fmaf(x[c0 + k], (float)zq_code_byte(row, c0 + k, symmetric), lanes[k % 8]);
            p = _mm256_loadu_ps(lanes);
        }
        acc = _mm256_fmadd_ps(p, _mm256_set1_ps(_cvtsh_ss(scale[g])), acc);
    }
    float a[8];
    _mm256_storeu_ps(a, acc);
    float total = zq_lanes_sum8(a);
    for (size_t g = 0; !symmetric && g < groups; g++) total = total + xsum[g] * _cvtsh_ss(min[g]);
    return total;
}

TARGET_FMA static float dot_f16(const uint16_t *w, const float *x, size_t n)
{
    __m256 p = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        p = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k))), p);
    float a[8];
    _mm256_storeu_ps(a, p);
    for (; k < n; k++) a[k % 8] = fmaf(x[k], zq_f16_to_f32(w[k]), a[k % 8]);
    return zq_lanes_sum8(a);
}

/* zq_exp on eight lanes: the same operations in the same order */
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x)
{
    __m256 n = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(ZQ_EXP_LOG2E)), _mm256_set1_ps(ZQ_RNE_MAGIC)),
                             _mm256_set1_ps(ZQ_RNE_MAGIC));
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-ZQ_EXP_LN2_HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-ZQ_EXP_LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(ZQ_EXP_P0), r, _mm256_set1_ps(ZQ_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ZQ_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ZQ_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ZQ_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ZQ_EXP_P5));
    __m256 e = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i b = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 v = _mm256_mul_ps(e, _mm256_castsi256_ps(b));
    /* below the range 0, above it +inf; NaN keeps its NaN from the arithmetic */
    v = _mm256_blendv_ps(v, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(ZQ_EXP_MAX), _CMP_GT_OQ));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(ZQ_EXP_MIN), _CMP_LT_OQ), v);
}

__attribute__((target("avx2,fma"))) static void softmax(float *x, size_t n, float scale)
{
    __m256 vs = _mm256_set1_ps(scale), mx8 = _mm256_set1_ps(-INFINITY);
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + k), vs);
        _mm256_storeu_ps(x + k, y);
        mx8 = _mm256_max_ps(y, mx8); /* a NaN y leaves the maximum alone, as the reference's y > m does */
    }
    float lanes[8], m = -INFINITY;
    _mm256_storeu_ps(lanes, mx8);
    for (int l = 0; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
    for (size_t j = k; j < n; j++) {
        x[j] *= scale;
        m = x[j] > m ? x[j] : m;
    }
    __m256 vm = _mm256_set1_ps(m), sum8 = _mm256_setzero_ps();
    for (k = 0; k + 8 <= n; k += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + k), vm));
        _mm256_storeu_ps(x + k, e);
        sum8 = _mm256_add_ps(sum8, e);
    }
    _mm256_storeu_ps(lanes, sum8);
    for (size_t j = k; j < n; j++) lanes[j % 8] += x[j] = zq_exp(x[j] - m);
    float inv = 1.0f / zq_lanes_sum8(lanes);
    __m256 vi = _mm256_set1_ps(inv);
    for (k = 0; k + 8 <= n; k += 8) _mm256_storeu_ps(x + k, _mm256_mul_ps(_mm256_loadu_ps(x + k), vi));
    for (; k < n; k++) x[k] *= inv;
}

__attribute__((target("avx2,fma"))) static void silu(float *out, const float *x, const float *up, size_t n)
{
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        __m256 e = exp8(_mm256_xor_ps(v, _mm256_set1_ps(-0.0f)));
        __m256 s = _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(out + k, up ? _mm256_mul_ps(s, _mm256_loadu_ps(up + k)) : s);
    }
    zq_silu_ref(out + k, x + k, up ? up + k : NULL, n - k);
}

static const zq_kernels avx2 = {"avx2", range_f32, quantize_run, pack_nibbles, f16_to_f32, f32_to_f16,
                                transpose_f16_to_f32, transpose_u8, crc32c, decode_run, dot_row, dot_f16, softmax, silu};

/* cpuid, not __builtin_cpu_supports: clang's lacks "f16c". AVX state must
 * also be enabled by the OS (XCR0 bits 1 and 2). */
static int cpu_runs_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned need = bit_SSE4_2 | bit_OSXSAVE | bit_AVX | bit_F16C | bit_FMA;
    if ((c & need) != need) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}

const zq_kernels *zq_kernels_avx2(void) { return cpu_runs_avx2() ? &avx2 : NULL; }
#else
const zq_kernels *zq_kernels_avx2(void) { return NULL; }
#endif
