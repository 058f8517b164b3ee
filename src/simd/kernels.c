/* Which kernel set runs: the scalar references, or a vector twin. */
#include "simd/kernels.h"

#include "zquant/crc32c.h"

const zq_kernels zq_kernels_scalar = {
    "scalar",         zq_range_f32_ref,    zq_quantize_run_ref,         zq_pack_nibbles_ref,
    zq_f16_to_f32_n_ref, zq_f32_to_f16_n_ref, zq_transpose_f16_to_f32_ref, zq_transpose_u8_ref, zq_crc32c_ref,
    zq_decode_run_ref, zq_dot_row_ref, zq_dot_f16_ref, zq_softmax_ref, zq_silu_ref,
};

void zq_transpose_u8_ref(const uint8_t *src, size_t src_stride, size_t rows, size_t cols, uint8_t *dst)
{
    for (size_t k = 0; k < rows; k++)
        for (size_t c = 0; c < cols; c++) dst[c * rows + k] = src[k * src_stride + c];
}

static const zq_kernels *active;

/* Chosen once as the program loads, before any thread can ask: the hot
 * loops then read one pointer. */
__attribute__((constructor)) static void choose(void)
{
    const zq_kernels *v = zq_kernels_avx512();
    if (!v) v = zq_kernels_avx2();
    active = v ? v : &zq_kernels_scalar;
}

const zq_kernels *zq_kernels_active(void)
{
    if (!active) choose(); /* a caller in another constructor, still single-threaded */
    return active;
}

const char *zq_kernels_name(void) { return zq_kernels_active()->name; }
