/* The integer backend's kernels, as a table with a scalar set that defines
 * every result and vector twins chosen at run time (AVX2; AVX-VNNI;
 * AVX-512 VNNI). They are the three stages of a W8A8 Linear, shaped as a
 * GPU kernel's tile would be:
 *  - prologue: an activation row quantized as the int8-token scheme says
 *    (zq_fake_quant_tokens' exact arithmetic, so the codes are the ones the
 *    FP path emulates), giving uint8 codes, a scale and a zero point;
 *  - main loop: uint8 x int8 dot products of a tile of rows against a tile
 *    of weight rows, accumulated exactly in int32 (vpdpbusd, or
 *    vpmaddwd on widened halves: AVX2's vpmaddubsw saturates for uint8
 *    codes above 127, so it is not used);
 *  - epilogue: each group's integer sum, corrected for the zero point,
 *    scaled by token scale x weight scale and summed in FP32 group by group,
 *    then the bias.
 * Integer sums are exact, and the epilogue's float operations are the same
 * in the same order in every set (multiply, then add; no fused
 * multiply-add), so every set gives the scalar set's bits. Weights are
 * symmetric codes (int8, or INT4 nibbles unpacked to int8 by the caller). */
#ifndef ZQ_SIMD_INT8_H
#define ZQ_SIMD_INT8_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    /* One activation row of k values to codes: scale = (max - min) / 255,
     * zero = rne(-min / scale), q = clamp(rne(x / scale) + zero, 0, 255).
     * Returns the scale; 0 for a constant row (then q and *zero are 0: the
     * row is exact only as a float, and the caller runs it so). */
    float (*quant_row_u8)(const float *x, size_t k, uint8_t *q, int32_t *zero);
    /* out[i * ldo + j] = sum over c < k of a[i * lda + c] * w[j * ldw + c],
     * for i < m, j < n; k at most 65536 (the int32 sum cannot overflow). */
    void (*dot_u8s8)(const uint8_t *a, size_t lda, const int8_t *w, size_t ldw, int m, int n, size_t k, int32_t *out,
                     size_t ldo);
    /* y[j] = bias[j] + sum over g < groups of
     *        (float)(dots[g * dstride + j] - zero * wsum[g * n + j]) * (scale * wscale[g * n + j])
     * for j < n, groups added in order; bias may be NULL (then 0). wsum:
     * each group's sum of weight codes; wscale: its FP32 scale. */
    void (*epilogue)(const int32_t *dots, size_t dstride, const int32_t *wsum, const float *wscale, int groups, int n,
                     float scale, int32_t zero, const float *bias, float *y);
    /* The main loop on weights packed for it (zq_int8_pack): blocks of
     * `lanes` weight rows interleaved four codes at a time, so that one
     * vector of accumulators holds `lanes` outputs and no sum crosses
     * lanes. out[i * ldo + j] = sum over c < 4 * k4 of a[i * lda + c] *
     * W[j][c] for i < m and j < nblocks * lanes (W's padding rows and
     * columns are zero codes). */
    int lanes;
    void (*dot_packed)(const uint8_t *a, size_t lda, int m, const int8_t *packed, int nblocks, size_t k4, int32_t *out,
                       size_t ldo);
} zq_int8_kernels;

extern const zq_int8_kernels zq_int8_scalar;

/* Bytes of n weight rows of k codes packed for `lanes`: rows padded to a
 * whole number of blocks, k to a multiple of 4. */
size_t zq_int8_packed_bytes(int n, size_t k, int lanes);
/* Packs w (n rows of k codes, ldw apart) as dot_packed reads it: block b,
 * step s, lane l, byte t holds W[b * lanes + l][4 * s + t] (0 past the
 * ends). */
void zq_int8_pack(const int8_t *w, size_t ldw, int n, size_t k, int lanes, int8_t *out);
/* The vector sets this build and CPU run, best first; NULL-terminated. */
const zq_int8_kernels *const *zq_int8_vector_sets(void);
/* The set in use: the best vector set, else the scalar one. */
const zq_int8_kernels *zq_int8_active(void);

#endif
