/* IEEE half and bfloat16 conversions: the scalar definitions, and the
 * entry points that run the active kernel set. */
#include "zquant/fp16.h"

#include <string.h>

#include "simd/kernels.h"

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

void zq_f16_to_f32_n_ref(const uint16_t *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = zq_f16_to_f32(in[i]);
}

void zq_f32_to_f16_n_ref(const float *in, uint16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = zq_f32_to_f16(in[i]);
}

void zq_transpose_f16_to_f32_ref(const uint16_t *src, size_t src_stride, size_t rows, size_t cols, float *dst)
{
    for (size_t k = 0; k < rows; k++)
        for (size_t c = 0; c < cols; c++) dst[c * rows + k] = zq_f16_to_f32(src[k * src_stride + c]);
}

void zq_f16_to_f32_n(const uint16_t *in, float *out, size_t n) { zq_kernels_active()->f16_to_f32(in, out, n); }
void zq_f32_to_f16_n(const float *in, uint16_t *out, size_t n) { zq_kernels_active()->f32_to_f16(in, out, n); }

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
