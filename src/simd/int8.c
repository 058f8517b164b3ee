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

float zq_int8_quant_row_sym(const float *x, size_t k, float absmax, uint8_t *q)
{
    float scale = absmax / 127.0f;
    if (!(scale > 0)) {
        memset(q, 128, k);
        return 0;
    }
    float inv = 1.0f / scale;
    for (size_t c = 0; c < k; c++) {
        float v = nearbyintf(x[c] * inv);
        v = v < -127 ? -127 : v > 127 ? 127 : v;
        q[c] = (uint8_t)(int)(v + 128.0f);
    }
    return scale;
}

size_t zq_int8_packed_bytes(int n, size_t k, int lanes, int nibbles)
{
    size_t blocks = ((size_t)n + (size_t)lanes - 1) / (size_t)lanes;
    size_t pairs = (k + ZQ_INT8_PAIR - 1) / ZQ_INT8_PAIR;
    return blocks * (size_t)lanes * pairs * (nibbles ? 4 : 8);
}

void zq_int8_pack_block(const int8_t *const *rows, int nrows, size_t k, int lanes, int nibbles, int8_t *out)
{
    size_t pairs = (k + ZQ_INT8_PAIR - 1) / ZQ_INT8_PAIR;
    if (nrows == lanes && k % ZQ_INT8_PAIR == 0) { /* whole blocks: no bounds to check */
        for (size_t p = 0; p < pairs; p++) {
            if (!nibbles) {
                for (int l = 0; l < lanes; l++, out += 4) memcpy(out, rows[l] + 8 * p, 4);
                for (int l = 0; l < lanes; l++, out += 4) memcpy(out, rows[l] + 8 * p + 4, 4);
                continue;
            }
            for (int l = 0; l < lanes; l++)
                for (size_t t = 0; t < 4; t++)
                    *out++ = (int8_t)(uint8_t)((rows[l][8 * p + t] & 15) | (rows[l][8 * p + 4 + t] & 15) << 4);
        }
        return;
    }
#define CODE(l, c) ((l) < nrows && (c) < k ? rows[l][c] : 0)
    for (size_t p = 0; p < pairs; p++) {
        if (nibbles) {
            for (int l = 0; l < lanes; l++)
                for (size_t t = 0; t < 4; t++) {
                    size_t c = 8 * p + t;
                    *out++ = (int8_t)(uint8_t)((CODE(l, c) & 15) | (CODE(l, c + 4) & 15) << 4);
                }
            continue;
        }
        for (size_t st = 2 * p; st < 2 * p + 2; st++)
            for (int l = 0; l < lanes; l++)
                for (size_t t = 0; t < 4; t++) *out++ = CODE(l, 4 * st + t);
    }
#undef CODE
}

/* Code c of lane l of a block packed as zq_int8_pack_block lays it out. */
static int packed_code(const int8_t *blk, int lanes, int nibbles, size_t c, int l)
{
    size_t st = c / 4, t = c % 4;
    if (!nibbles) return blk[(st * (size_t)lanes + (size_t)l) * 4 + t];
    uint8_t byte = (uint8_t)blk[(st / 2 * (size_t)lanes + (size_t)l) * 4 + t];
    return ((st % 2 ? byte >> 4 : byte & 15) ^ 8) - 8;
}

static size_t group_pairs(const zq_int8_tile *t, int g) { return g == t->groups - 1 ? t->last_pairs : t->pairs; }

/* Bytes of one pair of steps of a block. */
static size_t pair_bytes(const zq_int8_tile *t, int lanes) { return (size_t)(t->nibbles ? 4 : 8) * (size_t)lanes; }

/* The fold of one group's sum into an output's accumulator, and the
 * output from it: the epilogue's arithmetic, shared by every set's scalar
 * edges. */
static inline float fold(float acc, int32_t dot, const zq_int8_tile *t, int i, int g, size_t j)
{
    size_t at = (size_t)g * t->wld + j;
    return fmaf((float)(dot - t->zero[i] * t->wsum[at]), t->wscale[at], acc);
}

static inline float finish(float acc, const zq_int8_tile *t, int i, size_t j)
{
    float y = acc * t->scale[i];
    return t->bias ? y + t->bias[j] : y;
}

/* Any lane count (the sets without a kernel of their own for a shape use it). */
static void gemm_tile_any(const zq_int8_tile *t, int lanes)
{
    size_t bpair = pair_bytes(t, lanes);
    for (int i = 0; i < t->m; i++)
        for (int b = t->b0; b < t->b0 + t->nb; b++)
            for (int l = 0; l < lanes; l++) {
                size_t j = (size_t)b * (size_t)lanes + (size_t)l;
                float acc = 0.0f;
                for (int g = 0; g < t->groups; g++) {
                    size_t pg = group_pairs(t, g);
                    const int8_t *blk = t->packed + (size_t)b * t->bstride + (size_t)g * t->pairs * bpair;
                    const uint8_t *a = t->a + (size_t)i * t->lda + (size_t)g * ZQ_INT8_PAIR * t->pairs;
                    int32_t s = 0;
                    for (size_t c = 0; c < ZQ_INT8_PAIR * pg; c++) s += (int32_t)a[c] * packed_code(blk, lanes, t->nibbles, c, l);
                    acc = fold(acc, s, t, i, g, j);
                }
                t->y[(size_t)i * t->ldy + (size_t)(b - t->b0) * (size_t)lanes + (size_t)l] = finish(acc, t, i, j);
            }
}

static void gemm_tile_ref(const zq_int8_tile *t) { gemm_tile_any(t, 8); }

const zq_int8_kernels zq_int8_scalar = {"scalar", quant_row_u8_ref, 8, gemm_tile_ref};

#if ZQ_SIMD && defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVXVNNI __attribute__((target("avx2,fma,avxvnni")))
#define AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vnni,fma")))

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

/* Two pairs of steps of a one-lane nibble block (8 bytes) as 16 codes of
 * 16 bits: byte t of pair p holds code 8p + t low, 8p + 4 + t high. */
AVX2 static inline __m256i nibbles16_avx2(const int8_t *p)
{
    __m128i v = _mm_loadl_epi64((const __m128i *)p), m = _mm_set1_epi8(15), e = _mm_set1_epi8(8);
    __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    __m128i codes = _mm_unpacklo_epi32(lo, hi);
    return _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_xor_si128(codes, e), e));
}

/* One group of one token against one weight row: 16 codes at a time,
 * widened to 16 bits, vpmaddwd summing pairs exactly. */
AVX2 static int32_t dot_row_avx2(const uint8_t *a, const int8_t *w, size_t pairs, int nibbles)
{
    __m256i acc = _mm256_setzero_si256();
    size_t p = 0;
    for (; p + 2 <= pairs; p += 2) {
        __m256i av = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + 8 * p)));
        __m256i wv = nibbles ? nibbles16_avx2(w + 4 * p) : _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 8 * p)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(av, wv));
    }
    int32_t s = hsum_epi32_avx2(acc);
    for (size_t c = 8 * p; c < 8 * pairs; c++) s += (int32_t)a[c] * packed_code(w, 1, nibbles, c, 0);
    return s;
}

/* One lane: a block is one weight row, its codes in order (nibbles two
 * pairs of steps per 8 bytes), so the row loop above runs on it. */
AVX2 static void gemm_tile_avx2(const zq_int8_tile *t)
{
    size_t bpair = pair_bytes(t, 1);
    for (int i = 0; i < t->m; i++)
        for (int b = t->b0; b < t->b0 + t->nb; b++) {
            float acc = 0.0f;
            for (int g = 0; g < t->groups; g++) {
                size_t pg = group_pairs(t, g);
                const int8_t *w = t->packed + (size_t)b * t->bstride + (size_t)g * t->pairs * bpair;
                const uint8_t *a = t->a + (size_t)i * t->lda + (size_t)g * ZQ_INT8_PAIR * t->pairs;
                acc = fold(acc, dot_row_avx2(a, w, pg, t->nibbles), t, i, g, (size_t)b);
            }
            t->y[(size_t)i * t->ldy + (size_t)(b - t->b0)] = finish(acc, t, i, (size_t)b);
        }
}

static const zq_int8_kernels int8_avx2 = {"avx2", quant_row_u8_avx2, 1, gemm_tile_avx2};

/* ---- AVX-VNNI and AVX-512 VNNI: vpdpbusd on blocks of lanes ------------- */

/* A register tile of RB tokens x CB blocks for both VNNI widths: per
 * group, RB x CB int32 accumulators over its pairs of steps (each pair
 * two weight vectors per block, from two loads or from one of nibbles,
 * and two broadcasts of 4 codes per token), then folded into RB x CB
 * float accumulators with the epilogue's arithmetic. A nibble moved to
 * the top of its byte (the other nibble masked off) is its two's
 * complement code times 16 as an int8: two operations a vector, not six
 * for sign-extending, and the exact sum, a multiple of 16, shifts back
 * (|sum| <= 255 * 128 * group fits int32: the integer path takes groups
 * of at most 32768, packed.c). V names the width's
 * operations (see below). */
#define VNNI_TILE(V, name, RB, CB, NIB)                                                                            \
    V##_TARGET static void name(const zq_int8_tile *t, int i, int b)                                               \
    {                                                                                                              \
        const size_t bpair = (size_t)(NIB ? 4 : 8) * V##_L;                                                        \
        V##_F f[RB][CB];                                                                                           \
        for (int r = 0; r < RB; r++)                                                                               \
            for (int cb = 0; cb < CB; cb++) f[r][cb] = V##_FZERO;                                                  \
        for (int g = 0; g < t->groups; g++) {                                                                      \
            size_t pg = group_pairs(t, g);                                                                         \
            const int8_t *w = t->packed + (size_t)b * t->bstride + (size_t)g * t->pairs * bpair;                   \
            const uint8_t *a = t->a + (size_t)i * t->lda + (size_t)g * ZQ_INT8_PAIR * t->pairs;                    \
            /* a pair's two steps in chains of their own, the second starting                                   \
             * from the zero point's correction, -zero * wsum (times 16 for nibbles);                             \
             * one token (decode, bound by memory) takes zero * wsum from products of                             \
             * the zero point with the weights instead, and reads no wsum */                                      \
            V##_I c[RB][CB], c2[RB][CB], cz[CB];                                                                   \
            V##_I zb = V##_SET32((int)((uint32_t)t->zero[i] * 0x01010101u)); /* RB 1: zero, each byte */     \
            for (int r = 0; r < RB; r++) {                                                                         \
                V##_I vz = V##_SET32(-t->zero[i + r] * (NIB ? 16 : 1));                                            \
                for (int cb = 0; cb < CB; cb++) {                                                                  \
                    const int32_t *ws = t->wsum + (size_t)g * t->wld + (size_t)(b + cb) * V##_L;                   \
                    c[r][cb] = cz[cb] = V##_IZERO;                                                                 \
                    c2[r][cb] = RB == 1 ? V##_IZERO : V##_MUL32(vz, V##_LOAD(ws));                                 \
                }                                                                                                  \
            }                                                                                                      \
            for (size_t p = 0; p < pg; p++) {                                                                      \
                V##_I we[CB], wo[CB];                                                                              \
                for (int cb = 0; cb < CB; cb++) {                                                                  \
                    const int8_t *at = w + (size_t)cb * t->bstride + p * bpair;                                    \
                    if (NIB) {                                                                                     \
                        V##_I v = V##_LOAD(at);                                                                    \
                        we[cb] = V##_AND(V##_SLL4(v), V##_SET8(-16));                                              \
                        wo[cb] = V##_AND(v, V##_SET8(-16));                                                        \
                    } else {                                                                                       \
                        we[cb] = V##_LOAD(at);                                                                     \
                        wo[cb] = V##_LOAD(at + 4 * V##_L);                                                         \
                    }                                                                                              \
                }                                                                                                  \
                for (int r = 0; r < RB; r++) {                                                                     \
                    int32_t q0, q1;                                                                                \
                    memcpy(&q0, a + (size_t)r * t->lda + 8 * p, 4);                                                \
                    memcpy(&q1, a + (size_t)r * t->lda + 8 * p + 4, 4);                                            \
                    V##_I x0 = V##_SET32(q0), x1 = V##_SET32(q1);                                                  \
                    for (int cb = 0; cb < CB; cb++) {                                                              \
                        c[r][cb] = V##_DP(c[r][cb], x0, we[cb]);                                                   \
                        c2[r][cb] = V##_DP(c2[r][cb], x1, wo[cb]);                                                 \
                        if (RB == 1) cz[cb] = V##_DP(V##_DP(cz[cb], zb, we[cb]), zb, wo[cb]);                      \
                    }                                                                                              \
                }                                                                                                  \
            }                                                                                                      \
            for (int r = 0; r < RB; r++)                                                                           \
                for (int cb = 0; cb < CB; cb++) {                                                                  \
                    V##_I d = V##_ADD32(c[r][cb], c2[r][cb]);                                                      \
                    if (RB == 1) d = V##_SUB32(d, cz[cb]);                                                         \
                    if (NIB) d = V##_SRA4(d); /* nibble codes were summed times 16 */                              \
                    V##_F ws = V##_FLOAD(t->wscale + (size_t)g * t->wld + (size_t)(b + cb) * V##_L);               \
                    f[r][cb] = V##_FMA(V##_CVT(d), ws, f[r][cb]);                                                  \
                }                                                                                                  \
        }                                                                                                          \
        for (int r = 0; r < RB; r++)                                                                               \
            for (int cb = 0; cb < CB; cb++) {                                                                      \
                V##_F v = V##_FMUL(f[r][cb], V##_FSET(t->scale[i + r]));                                           \
                if (t->bias) v = V##_FADD(v, V##_FLOAD(t->bias + (size_t)(b + cb) * V##_L));                       \
                V##_FSTORE(t->y + (size_t)(i + r) * t->ldy + (size_t)(b + cb - t->b0) * V##_L, v);                 \
            }                                                                                                      \
    }

/* The tile's driver: four tokens at a time against pairs of blocks (the
 * compute-bound shape: 8 accumulators share each weight vector four
 * ways), the tokens left over one at a time against four blocks (the
 * bandwidth-bound decode: four independent chains), then single blocks. */
#define VNNI_GEMM_TILE(V, name)                                                                                    \
    VNNI_TILE(V, name##_4x2, 4, 2, 0)                                                                              \
    VNNI_TILE(V, name##_1x4, 1, 4, 0)                                                                              \
    VNNI_TILE(V, name##_1x1, 1, 1, 0)                                                                              \
    VNNI_TILE(V, name##_4x2n, 4, 2, 1)                                                                             \
    VNNI_TILE(V, name##_1x4n, 1, 4, 1)                                                                             \
    VNNI_TILE(V, name##_1x1n, 1, 1, 1)                                                                             \
    V##_TARGET static void name(const zq_int8_tile *t)                                                             \
    {                                                                                                              \
        int end = t->b0 + t->nb, i = 0, nib = t->nibbles;                                                          \
        for (; i + 4 <= t->m; i += 4) {                                                                            \
            int b = t->b0;                                                                                         \
            for (; b + 2 <= end; b += 2) (nib ? name##_4x2n : name##_4x2)(t, i, b);                                \
            for (; b < end; b++)                                                                                   \
                for (int r = 0; r < 4; r++) (nib ? name##_1x1n : name##_1x1)(t, i + r, b);                         \
        }                                                                                                          \
        for (; i < t->m; i++) {                                                                                    \
            int b = t->b0;                                                                                         \
            for (; b + 4 <= end; b += 4) (nib ? name##_1x4n : name##_1x4)(t, i, b);                                \
            for (; b < end; b++) (nib ? name##_1x1n : name##_1x1)(t, i, b);                                        \
        }                                                                                                          \
    }

#define Y_TARGET AVXVNNI
#define Y_L 8
#define Y_I __m256i
#define Y_F __m256
#define Y_IZERO _mm256_setzero_si256()
#define Y_FZERO _mm256_setzero_ps()
#define Y_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define Y_AND _mm256_and_si256
#define Y_SET8 _mm256_set1_epi8
#define Y_SLL4(v) _mm256_slli_epi16(v, 4)
#define Y_SRA4(v) _mm256_srai_epi32(v, 4)
#define Y_SET32 _mm256_set1_epi32
#define Y_DP _mm256_dpbusd_avx_epi32
#define Y_ADD32 _mm256_add_epi32
#define Y_SUB32 _mm256_sub_epi32
#define Y_MUL32 _mm256_mullo_epi32
#define Y_CVT _mm256_cvtepi32_ps
#define Y_FSET _mm256_set1_ps
#define Y_FLOAD _mm256_loadu_ps
#define Y_FMUL _mm256_mul_ps
#define Y_FMA _mm256_fmadd_ps
#define Y_FADD _mm256_add_ps
#define Y_FSTORE _mm256_storeu_ps

#define Z_TARGET AVX512VNNI
/* vpdpbusd with its accumulator tied to the output: gcc 12 moves the
 * accumulator of _mm512_dpbusd_epi32 into a scratch register and back
 * around every product (two copies a product in the 4 x 2 tile, and
 * spills), which cost the prefill kernel a fifth of its speed */
AVX512VNNI static inline __m512i z_dpbusd(__m512i acc, __m512i a, __m512i b)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(b));
    return acc;
}
#define Z_L 16
#define Z_I __m512i
#define Z_F __m512
#define Z_IZERO _mm512_setzero_si512()
#define Z_FZERO _mm512_setzero_ps()
#define Z_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define Z_AND _mm512_and_si512
#define Z_SET8 _mm512_set1_epi8
#define Z_SLL4(v) _mm512_slli_epi16(v, 4)
#define Z_SRA4(v) _mm512_srai_epi32(v, 4)
#define Z_SET32 _mm512_set1_epi32
#define Z_DP z_dpbusd
#define Z_ADD32 _mm512_add_epi32
#define Z_SUB32 _mm512_sub_epi32
#define Z_MUL32 _mm512_mullo_epi32
#define Z_CVT _mm512_cvtepi32_ps
#define Z_FSET _mm512_set1_ps
#define Z_FLOAD _mm512_loadu_ps
#define Z_FMUL _mm512_mul_ps
#define Z_FMA _mm512_fmadd_ps
#define Z_FADD _mm512_add_ps
#define Z_FSTORE _mm512_storeu_ps

VNNI_GEMM_TILE(Y, gemm_tile_avxvnni)
VNNI_GEMM_TILE(Z, gemm_tile_avx512vnni)

static const zq_int8_kernels int8_avxvnni = {"avx-vnni", quant_row_u8_avx2, 8, gemm_tile_avxvnni};
static const zq_int8_kernels int8_avx512vnni = {"avx512-vnni", quant_row_u8_avx2, 16, gemm_tile_avx512vnni};

/* cpuid leaf 1: FMA (ecx 12); leaf 7: AVX2 (ebx 5), AVX-512 F (ebx 16),
 * BW (ebx 30), VNNI (ecx 11); subleaf 1: AVX-VNNI (eax 4). The OS must save the YMM (XCR0 bits 1,
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
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (c & bit_FMA) && (xcr0() & 6) == 6 &&
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
