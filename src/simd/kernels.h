/* The hot loops as a table of kernels: the scalar set defines every output
 * bit (file contents, checksums); a vector set computes the same bits faster
 * and is chosen at run time when the CPU has it. `make SIMD=0` builds the
 * scalar set alone. tests/unit/test_kernels.c holds each vector kernel to its
 * scalar twin. */
#ifndef ZQ_KERNELS_H
#define ZQ_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "zquant/quant.h"

typedef struct {
    const char *name;
    /* zq_range_f32 */
    int (*range_f32)(const float *x, size_t n, float *lo, float *hi, size_t *bad_index);
    /* zq_quantize_run */
    void (*quantize_run)(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min,
                         uint8_t *q, zq_err_sums *sums);
    /* the nibble packing of zq_format.pack_row (INT4) */
    void (*pack_nibbles)(const uint8_t *q, size_t n, uint8_t *out);
    /* zq_f16_to_f32_n, zq_f32_to_f16_n */
    void (*f16_to_f32)(const uint16_t *in, float *out, size_t n);
    void (*f32_to_f16)(const float *in, uint16_t *out, size_t n);
    /* dst[c * rows + k] = float(src[k * src_stride + c]) for k < rows, c <
     * cols: a block of halves read across rows, written transposed */
    void (*transpose_f16_to_f32)(const uint16_t *src, size_t src_stride, size_t rows, size_t cols, float *dst);
    /* dst[c * rows + k] = src[k * src_stride + c]: bytes (INT8 codes) the
     * same way */
    void (*transpose_u8)(const uint8_t *src, size_t src_stride, size_t rows, size_t cols, uint8_t *dst);
    /* zq_crc32c */
    uint32_t (*crc32c)(uint32_t crc, const void *data, size_t len);
    /* zq_decode_run for INT8 and INT4 rows: out[k] = code(col0 + k) * s + m
     * (multiply, then add) */
    void (*decode_run)(const uint8_t *row, int nibbles, int symmetric, uint64_t col0, size_t n, float s, float m,
                       float *out);
    /* x . (a stored row's values), a weight-only Linear's matrix-vector
     * product with the codes decoded in registers: the row's cols codes
     * (INT8 or INT4) in groups of `group` inputs (the last may be
     * shorter), group g with FP16 scale scale[g] (and min[g]; min NULL
     * when symmetric). INT8: x in order, eight lanes; for each group,
     * lane l sums x_c * code_c over the group's inputs c with (c - group
     * start) % 8 == l in a chain of fused multiply-adds, then acc_l =
     * fma(that, scale_g, acc_l). INT4: x as zq_nibble_order arranges it,
     * sixteen lanes; input o of a group goes to lane (o % 32) / 2 of an
     * even-o or an odd-o chain, the group adds the two (even + odd), then
     * acc_l = fma(that, scale_g, acc_l), and at the end lane l += lane l
     * + 8. The eight lanes are added ((0+1)+(2+3))+((4+5)+(6+7)), then,
     * for asymmetric codes, xsum[g] * min_g for each group in order
     * (xsum: the group's sum of x). */
    float (*dot_row)(const uint8_t *row, int nibbles, int symmetric, size_t cols, size_t group, const uint16_t *scale,
                     const uint16_t *min, const float *x, const float *xsum);
    /* x . w for n FP16 values: eight lanes (k % 8) of fused
     * multiply-adds, added as dot_row's */
    float (*dot_f16)(const uint16_t *w, const float *x, size_t n);
    /* x[0..n) = softmax(scale * x), n > 0 (attention's probabilities):
     * y_j = x_j * scale, m = max y, e_j = zq_exp(y_j - m), their
     * sum in eight lanes (j % 8) added as dot_row's, x_j = e_j * (1 / sum) */
    void (*softmax)(float *x, size_t n, float scale);
    /* out[i] = SiLU(x[i]) = x[i] / (1 + zq_exp(-x[i])), times up[i] when
     * up is not NULL (SwiGLU), for n values; out may be x */
    void (*silu)(float *out, const float *x, const float *up, size_t n);
} zq_kernels;

extern const zq_kernels zq_kernels_scalar;
/* The AVX2 (+F16C, SSE4.2) set when this build has it and the CPU and OS
 * run it; NULL otherwise. */
const zq_kernels *zq_kernels_avx2(void);
/* The AVX2 set with its AVX-512 (F) twins where sixteen lanes gain;
 * NULL where AVX-512 or the AVX2 set does not run. */
const zq_kernels *zq_kernels_avx512(void);
/* The set in use. */
const zq_kernels *zq_kernels_active(void);

/* The scalar definitions, each beside the code it belongs to. */
int zq_range_f32_ref(const float *x, size_t n, float *lo, float *hi, size_t *bad_index);
void zq_quantize_run_ref(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min, uint8_t *q,
                         zq_err_sums *sums);
void zq_pack_nibbles_ref(const uint8_t *q, size_t n, uint8_t *out);
void zq_f16_to_f32_n_ref(const uint16_t *in, float *out, size_t n);
void zq_f32_to_f16_n_ref(const float *in, uint16_t *out, size_t n);
void zq_decode_run_ref(const uint8_t *row, int nibbles, int symmetric, uint64_t col0, size_t n, float s, float m,
                       float *out);
float zq_dot_f16_ref(const uint16_t *w, const float *x, size_t n);
float zq_dot_row_ref(const uint8_t *row, int nibbles, int symmetric, size_t cols, size_t group, const uint16_t *scale,
                     const uint16_t *min, const float *x, const float *xsum);
/* x (cols inputs in groups of `group`) as INT4 dot_row reads it: in each
 * group, each whole block of 32 inputs as its 16 even ones then its 16 odd
 * ones (a register's low and high nibbles); a tail under 32 in order. */
void zq_nibble_order(const float *x, size_t cols, size_t group, float *out);
/* Moving a CRC-32C state past len zero bytes (a linear map): state s
 * goes to t[0][s & 255] ^ t[1][s >> 8 & 255] ^ t[2][s >> 16 & 255] ^
 * t[3][s >> 24]; for kernels that run several streams and join them. */
void zq_crc32c_zeros_table(uint64_t len, uint32_t t[4][256]);
void zq_transpose_f16_to_f32_ref(const uint16_t *src, size_t src_stride, size_t rows, size_t cols, float *dst);
void zq_transpose_u8_ref(const uint8_t *src, size_t src_stride, size_t rows, size_t cols, uint8_t *dst);
void zq_softmax_ref(float *x, size_t n, float scale);
void zq_silu_ref(float *out, const float *x, const float *up, size_t n);

/* One stored code, as zq_format's code_at reads it; inline, so a kernel's
 * tail loop calls nothing and its vector registers stay live across it. */
static inline int zq_code_nibble(const uint8_t *row, uint64_t c, int symmetric)
{
    int nib = (row[c / 2] >> ((c & 1) * 4)) & 0x0f;
    return symmetric ? (nib ^ 8) - 8 : nib;
}

static inline int zq_code_byte(const uint8_t *row, uint64_t c, int symmetric)
{
    return symmetric ? (int)(int8_t)row[c] : (int)row[c];
}

/* The last w - k (< 32) INT4 codes of a group at c0, in order in x, into
 * dot_row's sixteen even and odd lanes: the vector sets' tail. */
static inline void zq_nibble_tail(const uint8_t *row, uint64_t c0, size_t k, size_t w, int symmetric, const float *x,
                                  float lanes[2][16])
{
    for (; k < w; k++) {
        float *lane = &lanes[k % 2][k % 32 / 2];
        *lane = fmaf(x[c0 + k], (float)zq_code_nibble(row, c0 + k, symmetric), *lane);
    }
}

/* Adding then subtracting 1.5 * 2^23 rounds a float to the nearest integer,
 * ties to even, for |x| < 2^22: exact, branch-free and vectorizable. Codes
 * are at most 2^8 in magnitude here. */
#define ZQ_RNE_MAGIC 12582912.0f

/* One weight's code, as the quantizers compute every code: (v - m) * inv
 * rounded to nearest even, clamped to [qlo, qhi]. For callers that must
 * quantize one value at a time (GPTQ, whose next value depends on this
 * one's error). */
static inline float zq_code_of(float v, float m, float inv, float qlo, float qhi)
{
    float c = ((v - m) * inv + ZQ_RNE_MAGIC) - ZQ_RNE_MAGIC;
    c = c < qlo ? qlo : c;
    return c > qhi ? qhi : c;
}

/* Eight lanes' partial sums into one, in the order every set adds them. */
static inline float zq_lanes_sum8(const float l[8])
{
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* e^x as every set computes it (softmax's, the row's maximum subtracted,
 * and SiLU's): x = n ln 2 + r with n = rne(x log2 e) and r
 * reduced by ln 2 in two parts (the first exact in 9 bits, so n * hi is
 * exact), e^r = 1 + r + r^2 p(r) with p of degree 5 (Cephes' expf
 * coefficients), Horner in fused multiply-adds, times 2^n made in the
 * exponent bits. Within 2 ulp of e^x (test_kernels.c measures it against
 * exp); 0 below -87, where 2^n would leave the normal range (e^-87 =
 * 1.6e-38 against a softmax sum of at least 1), +inf above 88 (where
 * 2^n would pass 2^127; e^88 = 1.65e38, FLT_MAX 3.4e38). */
#define ZQ_EXP_MIN -87.0f
#define ZQ_EXP_MAX 88.0f
#define ZQ_EXP_LOG2E 1.44269504088896341f
#define ZQ_EXP_LN2_HI 0.693359375f
#define ZQ_EXP_LN2_LO -2.12194440e-4f
#define ZQ_EXP_P0 1.9875691500e-4f
#define ZQ_EXP_P1 1.3981999507e-3f
#define ZQ_EXP_P2 8.3334519073e-3f
#define ZQ_EXP_P3 4.1665795894e-2f
#define ZQ_EXP_P4 1.6666665459e-1f
#define ZQ_EXP_P5 5.0000001201e-1f

static inline float zq_exp(float x)
{
    if (x != x) return x;
    if (x < ZQ_EXP_MIN) return 0.0f;
    if (x > ZQ_EXP_MAX) return INFINITY;
    float n = (x * ZQ_EXP_LOG2E + ZQ_RNE_MAGIC) - ZQ_RNE_MAGIC;
    float r = fmaf(n, -ZQ_EXP_LN2_HI, x);
    r = fmaf(n, -ZQ_EXP_LN2_LO, r);
    float p = fmaf(ZQ_EXP_P0, r, ZQ_EXP_P1);
    p = fmaf(p, r, ZQ_EXP_P2);
    p = fmaf(p, r, ZQ_EXP_P3);
    p = fmaf(p, r, ZQ_EXP_P4);
    p = fmaf(p, r, ZQ_EXP_P5);
    float e = fmaf(p, r * r, r + 1.0f);
    uint32_t b = (uint32_t)((int32_t)n + 127) << 23;
    float two_n;
    memcpy(&two_n, &b, sizeof two_n);
    return e * two_n;
}

#endif
