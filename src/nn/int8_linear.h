/* A W8A8 Linear as the integer backend runs it (simd/int8.h's three stages):
 * symmetric INT8 weight codes with one FP16 scale per group of inputs (or
 * per row, or per block of rows: every zquant grid whose groups span whole
 * rows' runs of inputs), packed once for the active kernel set, and inputs
 * quantized token by token as the int8-token scheme says. One thread; the
 * engine's tiles come next. */
#ifndef ZQ_NN_INT8_LINEAR_H
#define ZQ_NN_INT8_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "simd/int8.h"
#include "zquant/error.h"
#include "zquant/quant.h"

typedef struct {
    int out, in;
    int groups;        /* along the input */
    uint64_t group;    /* inputs per group (the last may be shorter) */
    const zq_int8_kernels *k;
    int8_t *packed;    /* group g's rows packed for k, at offset[g] */
    size_t *offset;
    int32_t *wsum;     /* [groups][out]: each group's sum of codes */
    float *wscale;     /* [groups][out]: each group's scale */
} zq_int8_linear;

/* From a grid's packed codes (INT8, symmetric, rows of grid->row_bytes)
 * and its FP16 scales [row_groups, col_groups]. */
zq_status zq_int8_linear_init(zq_int8_linear *l, const zq_grid *grid, const uint8_t *codes, const uint16_t *scales,
                              zq_error *err);
void zq_int8_linear_free(zq_int8_linear *l);

/* y[m, out] = x[m, in] quantized per token, times the weights, + bias
 * (NULL: none). A token whose values are all equal has no codes (its
 * scale would be 0): its row is the exact float product. */
zq_status zq_int8_linear_forward(const zq_int8_linear *l, const float *x, int m, const float *bias, float *y,
                                 zq_error *err);

#endif
