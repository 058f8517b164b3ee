/* Weight quantization: specs, group geometry, and the reference quantizer.
 *
 * A weight matrix is always seen as [out, in] (rows = output features), the
 * layout a GEMM kernel wants; GPT-2's [in, out] Conv1D weights are transposed
 * into it before quantization. A group is a rectangle of group_rows x
 * group_cols; groups tile the matrix row-major and the last group of a row or
 * column may be shorter.
 *
 * Symmetric (Microsoft's rule): scale = fp16(max|w| / 2^(b-1)),
 *   q = clamp(rne(w * (1/scale)), -2^(b-1), 2^(b-1)-1), w' = q * scale.
 * Asymmetric: scale = fp16((max - min) / 2^b), m = fp16(min),
 *   q = clamp(rne((w - m) * (1/scale)), 0, 2^b-1), w' = q * scale + m.
 * All arithmetic is float32 with the fp16-rounded scale, so any reader can
 * reproduce the file bit for bit. A zero scale stores q = 0. */
#ifndef ZQUANT_QUANT_H
#define ZQUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZQ_MAX_GROUP_SIZE (1u << 20)

typedef enum {
    ZQ_GRAN_GROUP = 0, /* group_size weights along the input dimension of a row */
    ZQ_GRAN_ROW,       /* one group per output row */
    ZQ_GRAN_TENSOR,    /* one group for the whole matrix */
    ZQ_GRAN_BLOCKS     /* `blocks` contiguous runs of whole output rows (DeepSpeed) */
} zq_granularity;

typedef struct {
    int bits; /* 4 or 8; 16 means: keep FP16 */
    int symmetric;
    zq_granularity gran;
    uint32_t group_size; /* ZQ_GRAN_GROUP */
    uint32_t blocks;     /* ZQ_GRAN_BLOCKS */
} zq_qspec;

/* SPEC: "fp16" | "int4" | "int8", then optional ":gN" | ":row" | ":tensor" |
 * ":blocksN", then optional ":sym" | ":asym". Fields not given keep *out's. */
zq_status zq_qspec_parse(const char *text, zq_qspec *out, zq_error *err);
void zq_qspec_format(const zq_qspec *spec, char *buf, size_t size);

typedef struct {
    uint64_t rows, cols;             /* the [out, in] matrix */
    uint64_t group_rows, group_cols; /* one group's extent */
    uint64_t row_groups, col_groups; /* how many groups down and across */
    uint64_t row_bytes;              /* packed bytes of one row */
} zq_grid;

void zq_grid_init(zq_grid *g, const zq_qspec *spec, uint64_t rows, uint64_t cols);

/* Per-row statistics, accumulated in double so sums do not depend on threads. */
typedef struct {
    double err2;    /* sum of (w - w')^2 */
    double signal2; /* sum of w^2 */
} zq_err_sums;

/* min and max of x[0..n); returns 0 if a value is NaN or infinite (then
 * *bad_index says where). */
int zq_range_f32(const float *x, size_t n, float *lo, float *hi, size_t *bad_index);
int zq_range_f32_ref(const float *x, size_t n, float *lo, float *hi, size_t *bad_index);

/* The fp16 scale (and min) of a group with range [lo, hi]; returns 0 when the
 * scale does not fit in FP16. */
int zq_group_params(const zq_qspec *spec, float lo, float hi, uint16_t *scale, uint16_t *min);

/* Quantizes n weights with one scale/min into codes (q[k]: the code's byte,
 * two's complement when symmetric), and adds the squared error to *sums. */
void zq_quantize_run(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min,
                     uint8_t *q, zq_err_sums *sums);
/* The scalar definitions: the fast paths must match them bit for bit. */
void zq_quantize_run_ref(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min,
                         uint8_t *q, zq_err_sums *sums);

/* out = what quantizing the [rows, cols] matrix w with spec and reading it
 * back gives (the straight-through estimator's forward value); bits 16
 * rounds to FP16. */
zq_status zq_fake_quant_matrix(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols, float *out,
                               zq_error *err);

/* Packs n codes into a row of `bits`: INT8 one byte each; INT4 two per byte,
 * element 2k in the low nibble, 2k+1 in the high one, an odd tail padded with
 * zero. */
void zq_pack_row(int bits, const uint8_t *q, size_t n, uint8_t *out);
/* Dequantizes one packed row segment [col0, col0+n) sharing one scale/min. */
void zq_dequantize_run(int bits, int symmetric, const uint8_t *row, uint64_t col0, size_t n, uint16_t scale,
                       uint16_t min, float *out);

#ifdef __cplusplus
}
#endif
#endif
