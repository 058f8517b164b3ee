/* IEEE half and bfloat16 conversions. Rounding is to nearest, ties to even,
 * everywhere (scalar and vector paths give the same bits). */
#ifndef ZQUANT_FP16_H
#define ZQUANT_FP16_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

float zq_f16_to_f32(uint16_t h);
uint16_t zq_f32_to_f16(float f);
float zq_bf16_to_f32(uint16_t b);

void zq_f16_to_f32_n(const uint16_t *in, float *out, size_t n);
void zq_f32_to_f16_n(const float *in, uint16_t *out, size_t n);
void zq_bf16_to_f32_n(const uint16_t *in, float *out, size_t n);
/* Index of the first NaN or infinity among n halves, or n if none. */
size_t zq_f16_find_nonfinite(const uint16_t *h, size_t n);

#ifdef __cplusplus
}
#endif
#endif
