/* Vector twins of the reference kernels (x86-64 AVX2), chosen at run time. */
#ifndef ZQ_KERNELS_H
#define ZQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/quant.h"

int zq_have_avx2(void);
int zq_range_f32_avx2(const float *x, size_t n, float *lo, float *hi, size_t *bad_index);
void zq_quantize_run_avx2(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min,
                          uint8_t *q, zq_err_sums *sums);

/* dst[c * rows + k] = float(src[k * src_stride + c]) for k < rows, c <
 * cols: a block of halves read across rows, written transposed. */
void zq_transpose_f16_to_f32(const uint16_t *src, size_t src_stride, size_t rows, size_t cols, float *dst);
/* zq_pack_row for INT4 (the scalar one defines it). */
void zq_pack_int4_avx2(const uint8_t *q, size_t n, uint8_t *out);

#endif
