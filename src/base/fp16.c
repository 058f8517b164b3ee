#include "zquant/fp16.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ZQ_X86 1
#endif

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float zq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* subnormal: man * 2^-24, exact in float */
        float v = (float)man * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t zq_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* Inf or NaN (NaN keeps a quiet payload bit) */
        return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
    if (abs >= 0x477ff000u) return sign | 0x7c00; /* rounds past 65504 */
    if (abs < 0x38800000u) {
        /* result is subnormal or zero: let float addition do the rounding,
         * 0.5f has the exponent that puts 2^-24 at the last mantissa bit */
        float v = bits_f32(abs) + 0.5f;
        return sign | (uint16_t)(f32_bits(v) - 0x3f000000u);
    }
    uint32_t odd = (abs >> 13) & 1;
    abs += 0xc8000fffu + odd; /* rebias exponent and round to nearest even */
    return sign | (uint16_t)(abs >> 13);
}

float zq_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

#ifdef ZQ_X86
__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(const uint16_t *in, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++) out[i] = zq_f16_to_f32(in[i]);
}

__attribute__((target("avx2,f16c"))) static void f32_to_f16_f16c(const float *in, uint16_t *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) out[i] = zq_f32_to_f16(in[i]);
}

static int have_f16c(void)
{
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    return cached;
}
#endif

void zq_f16_to_f32_n(const uint16_t *in, float *out, size_t n)
{
#ifdef ZQ_X86
    if (have_f16c()) { f16_to_f32_f16c(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = zq_f16_to_f32(in[i]);
}

void zq_f32_to_f16_n(const float *in, uint16_t *out, size_t n)
{
#ifdef ZQ_X86
    if (have_f16c()) { f32_to_f16_f16c(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = zq_f32_to_f16(in[i]);
}

void zq_bf16_to_f32_n(const uint16_t *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = zq_bf16_to_f32(in[i]);
}

size_t zq_f16_find_nonfinite(const uint16_t *h, size_t n)
{
    /* a branch-free scan the compiler vectorizes; look closer only on a hit */
    enum { STEP = 1024 };
    for (size_t i = 0; i < n; i += STEP) {
        size_t m = n - i < STEP ? n - i : STEP;
        unsigned bad = 0;
        for (size_t k = 0; k < m; k++) bad |= (h[i + k] & 0x7c00) == 0x7c00;
        if (bad)
            for (size_t k = 0; k < m; k++)
                if ((h[i + k] & 0x7c00) == 0x7c00) return i + k;
    }
    return n;
}
