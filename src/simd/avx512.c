/* The AVX-512 kernel set: the AVX2 set with the kernels that gain from
 * sixteen lanes replaced. INT4 dot_row is one: its sixteen reference lanes
 * are one register, and a 16-byte load of nibbles widens straight into
 * it. The results are the scalar references' bits, as every set's are. */
#include "simd/kernels.h"

#ifndef ZQ_SIMD
#define ZQ_SIMD 1
#endif

#if ZQ_SIMD && defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

#include "zquant/fp16.h"
#include "zquant/quant.h"

#define TARGET512 __attribute__((target("avx512f,avx2,f16c,fma")))

TARGET512 static inline __m512 nibble_lo(__m512i v, int symmetric)
{
    return _mm512_cvtepi32_ps(symmetric ? _mm512_srai_epi32(_mm512_slli_epi32(v, 28), 28)
                                        : _mm512_and_si512(v, _mm512_set1_epi32(15)));
}

TARGET512 static inline __m512 nibble_hi(__m512i v, int symmetric)
{
    return _mm512_cvtepi32_ps(symmetric ? _mm512_srai_epi32(_mm512_slli_epi32(v, 24), 28) : _mm512_srli_epi32(v, 4));
}

/* One block of 32 codes at column c (even) into the even and odd chains */
TARGET512 __attribute__((always_inline)) static inline void nibble_block(const uint8_t *row, uint64_t c, int symmetric,
                                                                         const float *x, __m512 *even, __m512 *odd)
{
    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + c / 2)));
    *even = _mm512_fmadd_ps(_mm512_loadu_ps(x + c), nibble_lo(v, symmetric), *even);
    *odd = _mm512_fmadd_ps(_mm512_loadu_ps(x + c + 16), nibble_hi(v, symmetric), *odd);
}

/* One group of w codes: the even chains in *even, the odd in *odd (the
 * reference's p[0] and p[1]); a constant `symmetric` once inlined. */
TARGET512 __attribute__((always_inline)) static inline void nibble_group(const uint8_t *row, uint64_t c0, size_t w,
                                                                         int symmetric, const float *x, __m512 *even,
                                                                         __m512 *odd)
{
    size_t k = 0;
    for (; k + 32 <= w; k += 32) nibble_block(row, c0 + k, symmetric, x, even, odd);
    if (k == w) return;
    float lanes[2][16]; /* the tail, in order in x, lane by lane */
    _mm512_storeu_ps(lanes[0], *even);
    _mm512_storeu_ps(lanes[1], *odd);
    zq_nibble_tail(row, c0, k, w, symmetric, x, lanes);
    *even = _mm512_loadu_ps(lanes[0]);
    *odd = _mm512_loadu_ps(lanes[1]);
}

/* The first n groups of exactly 32 codes (llama.cpp's blocks), a block
 * each: the general loop's bookkeeping per group had outweighed its nine
 * vector operations. */
TARGET512 __attribute__((always_inline)) static inline __m512 groups_of_32(const uint8_t *row, size_t n, int symmetric,
                                                                           const float *x, const uint16_t *scale,
                                                                           __m512 acc)
{
    for (size_t g = 0; g < n; g++) {
        __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
        nibble_block(row, g * 32, symmetric, x, &even, &odd);
        acc = _mm512_fmadd_ps(_mm512_add_ps(even, odd), _mm512_set1_ps(_cvtsh_ss(scale[g])), acc);
    }
    return acc;
}

static float (*dot_row_avx2)(const uint8_t *, int, int, size_t, size_t, const uint16_t *, const uint16_t *,
                             const float *, const float *);

TARGET512 static float dot_row(const uint8_t *row, int nibbles, int symmetric, size_t cols, size_t group,
                               const uint16_t *scale, const uint16_t *min, const float *x, const float *xsum)
{
    if (!nibbles || group % 2) return dot_row_avx2(row, nibbles, symmetric, cols, group, scale, min, x, xsum);
    __m512 acc = _mm512_setzero_ps();
    size_t groups = (cols + group - 1) / group, g = 0;
    if (group == 32) { /* the whole groups; a short last one below */
        g = cols / 32;
        acc = symmetric ? groups_of_32(row, g, 1, x, scale, acc) : groups_of_32(row, g, 0, x, scale, acc);
    }
    for (; g < groups; g++) {
        size_t c0 = g * group, w = cols - c0 < group ? cols - c0 : group;
        __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
        if (symmetric) nibble_group(row, c0, w, 1, x, &even, &odd);
        else nibble_group(row, c0, w, 0, x, &even, &odd);
        acc = _mm512_fmadd_ps(_mm512_add_ps(even, odd), _mm512_set1_ps(_cvtsh_ss(scale[g])), acc);
    }
    float a[8];
    __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
    _mm256_storeu_ps(a, _mm256_add_ps(_mm512_castps512_ps256(acc), high));
    float total = zq_lanes_sum8(a);
    for (g = 0; !symmetric && g < groups; g++) total = total + xsum[g] * _cvtsh_ss(min[g]);
    return total;
}

/* cpuid leaf 7 ebx 16: AVX-512 F; the OS must save the opmask and ZMM
 * state as well as YMM (XCR0 bits 1, 2, 5-7) */
static int cpu_runs_avx512f(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 16));
}

/* Built on the first call, which kernels.c makes as the program loads,
 * before any other thread exists. */
const zq_kernels *zq_kernels_avx512(void)
{
    static zq_kernels set;
    static int state; /* 0 not yet asked, 1 built, 2 not on this CPU */
    if (!state) {
        const zq_kernels *base = zq_kernels_avx2();
        state = base && cpu_runs_avx512f() ? 1 : 2;
        if (state == 1) {
            set = *base;
            set.name = "avx512";
            dot_row_avx2 = base->dot_row;
            set.dot_row = dot_row;
        }
    }
    return state == 1 ? &set : NULL;
}
#else
const zq_kernels *zq_kernels_avx512(void) { return NULL; }
#endif
