/* The integer backend's kernels, as a table with a scalar set that defines
 * every result and vector twins chosen at run time (AVX2; AVX-VNNI;
 * AVX-512 VNNI). A quantized Linear runs as a GPU kernel's tile would:
 *  - prologue: each activation row quantized as the file's scheme says,
 *    with exactly the arithmetic of the FP path's emulation of it
 *    (zq_fake_quant_tokens, _tokens_sym, _tensor), giving uint8 codes, a
 *    scale and a zero point (symmetric codes are stored + 128, zero 128);
 *  - main loop: a tile of token rows against a tile of weight rows,
 *    uint8 x int8 products summed exactly in int32 group by group
 *    (vpdpbusd, or vpmaddwd on widened halves: AVX2's vpmaddubsw
 *    saturates for codes above 127, so it is not used), INT4 weights
 *    unpacked from nibbles in registers;
 *  - epilogue, per group as its sum completes: the sum corrected for the
 *    zero point (exactly, in int32), times the weight scale and added in
 *    FP32 in group order (one fused multiply-add); at the end times the
 *    token's scale, then the bias.
 * Integer sums are exact and the float operations are the same in the
 * same order in every set, so
 * every set gives the scalar set's bits, for any tile shape: an output's
 * value never depends on which tile or thread computed it. */
#ifndef ZQ_SIMD_INT8_H
#define ZQ_SIMD_INT8_H

#include <stddef.h>
#include <stdint.h>

/* Codes in a packed block come in steps of 4 along the input: a group's
 * codes are padded with zeros to a whole number of pairs of steps (8
 * codes), in the token rows and in the weights alike. */
#define ZQ_INT8_PAIR 8

/* One tile: token rows [0, m) against weight blocks [b0, b0 + nb). */
typedef struct {
    /* token i's codes at a + i * lda; group g's from byte g * ZQ_INT8_PAIR * pairs */
    const uint8_t *a;
    size_t lda;
    int m;
    const float *scale;  /* per token */
    const int32_t *zero; /* per token */
    /* weights: block b (lanes rows) from packed + b * bstride, holding
     * its groups one after another, group g's pairs of steps from g *
     * pairs * bpair, bpair the bytes of one pair of steps of a block: 8 *
     * lanes (INT8) or 4 * lanes (INT4); the last group has last_pairs */
    const int8_t *packed;
    size_t bstride;
    int groups;
    size_t pairs, last_pairs;
    int nibbles; /* INT4: a block's pair of steps is 4 bytes a lane, low nibbles the first step */
    /* per group g and weight row j (padded to whole blocks with zeros):
     * wsum[g * wld + j] its sum of codes, wscale[g * wld + j] its scale;
     * bias[j] or NULL */
    const int32_t *wsum;
    const float *wscale;
    size_t wld;
    const float *bias;
    int b0, nb;
    /* y[i * ldy + l]: output row b0 * lanes + l of token i, l < nb * lanes */
    float *y;
    size_t ldy;
} zq_int8_tile;

typedef struct {
    const char *name;
    /* One activation row of k values to codes: scale = (max - min) / 255,
     * zero = rne(-min / scale), q = clamp(rne(x / scale) + zero, 0, 255).
     * Returns the scale; 0 for a constant row (then q and *zero are 0: the
     * row is exact only as a float, and the caller runs it so). */
    float (*quant_row_u8)(const float *x, size_t k, uint8_t *q, int32_t *zero);
    /* Weight rows per packed block: one vector of accumulators holds
     * `lanes` outputs, no sum crosses lanes. */
    int lanes;
    /* y = the tile's outputs: for each token i and row j,
     *   acc = 0; for g in order: acc = fma((float)(dot_g - zero_i * wsum_gj), wscale_gj, acc);
     *   y = acc * scale_i; y = bias ? y + bias_j : y */
    void (*gemm_tile)(const zq_int8_tile *t);
} zq_int8_kernels;

extern const zq_int8_kernels zq_int8_scalar;

/* Symmetric codes of a row with the given |max| (a token's own, or a
 * static range), as zq_fake_quant_tensor rounds: scale = absmax / 127,
 * q = clamp(rne(x / scale), -127, 127), stored as q + 128 (zero point
 * 128). Returns the scale; 0 when absmax is 0 (then q is 128 and the row
 * is left as zq_fake_quant_tensor leaves it: unquantized). */
float zq_int8_quant_row_sym(const float *x, size_t k, float absmax, uint8_t *q);

/* Bytes of n weight rows of k codes packed for `lanes`: rows padded to
 * whole blocks, k to whole pairs of steps; half as many for nibbles. */
size_t zq_int8_packed_bytes(int n, size_t k, int lanes, int nibbles);
/* Packs one block: rows[l] (l < nrows <= lanes; the rest zero) holds k
 * codes, int8 (nibble codes in [-8, 7] when nibbles), as gemm_tile reads
 * them: step s, lane l, byte t holds rows[l][4 * s + t] (0 past k); with
 * nibbles, the byte of step 2p holds step 2p + 1's code in its high
 * nibble. Writes zq_int8_packed_bytes(lanes, k, lanes, nibbles) bytes. */
void zq_int8_pack_block(const int8_t *const *rows, int nrows, size_t k, int lanes, int nibbles, int8_t *out);
/* The vector sets this build and CPU run, best first; NULL-terminated. */
const zq_int8_kernels *const *zq_int8_vector_sets(void);
/* The set in use: the best vector set, else the scalar one. */
const zq_int8_kernels *zq_int8_active(void);

#endif
