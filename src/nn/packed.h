/* A quantized Linear run from its stored codes (zquant's inference
 * backend), never expanded to a full-precision matrix:
 *  - integer path (symmetric INT8 or INT4 weights, inputs quantized to
 *    INT8 as the activation scheme says: int8-token, int8-token-sym,
 *    int8-tensor): codes packed once for the integer kernels
 *    (simd/int8.h: INT4 stays two codes a byte), each token quantized in
 *    the prologue, INT32 sums per group, scales and bias in the epilogue;
 *  - float path (weight-only schemes, asymmetric weights, or a scheme the
 *    integer path does not take): the stored rows, a tile of rows
 *    decoded at a time into FP32 in the worker's cache-sized scratch and
 *    multiplied by one single-threaded sgemm; the inputs quantized first
 *    as the FP path emulates them.
 * Work is cut into tiles by the shapes alone and an output's arithmetic
 * does not depend on its tile, so the thread count never changes a bit. */
#ifndef ZQ_NN_PACKED_H
#define ZQ_NN_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "simd/int8.h"
#include "zquant/block.h"
#include "zquant/error.h"
#include "zquant/source.h"

struct zq_packed_linear {
    int out, in;
    /* the stored rows, for the float path: row j is stored row rows[j]
     * (NULL: j), its groups those of the stored grid */
    zq_stored_codes st;
    uint32_t *rows;
    const float *bias; /* the Linear's own, NULL: none */
    /* the integer path (k NULL: none) */
    const zq_int8_kernels *k;
    int nibbles, groups, nblocks;
    uint64_t group;            /* inputs per group, the last may be shorter */
    size_t pairs, last_pairs;  /* of a full group; of the last */
    size_t bstride, wld;       /* packed bytes per block of rows; outputs padded to whole blocks */
    int8_t *packed;
    int32_t *wsum;             /* [groups][wld] */
    float *wscale, *bias_pad;  /* [groups][wld]; [wld] or NULL */
};
typedef struct zq_packed_linear zq_packed_linear;

/* From stored codes: rows (out of them, NULL: all in order) chosen from
 * the stored matrix; bias (out values, or NULL) is the caller's and must
 * outlive l. integer: also pack for the integer path when the codes
 * allow it (symmetric INT8/INT4, groups of at most 32768 inputs). */
zq_status zq_packed_init(zq_packed_linear *l, const zq_stored_codes *st, const uint32_t *rows, int out,
                         const float *bias, int integer, zq_error *err);
void zq_packed_free(zq_packed_linear *l);

/* Whether l runs a forward under aq as integers. */
int zq_packed_integer(const zq_packed_linear *l, const zq_act_quant *aq, int id);
/* y (m, out) = act_quant(x) W^T + b, x (m, in), as integers (when
 * zq_packed_integer says so); scratch: m * in floats. */
void zq_packed_forward_integer(const zq_packed_linear *l, const zq_act_quant *aq, int id, const float *x, int m,
                               float *y, float *scratch);
/* y (m, out) = x W^T + b, x as the Linear sees it (already quantized as
 * the FP path emulates the scheme). */
void zq_packed_forward_float(const zq_packed_linear *l, const float *x, int m, float *y);

/* Stored row r of st decoded to floats (grid.cols of them). */
void zq_stored_row(const zq_stored_codes *st, uint32_t r, float *out);

/* Bytes the weights take in memory (packed codes, scales, sums). */
size_t zq_packed_bytes(const zq_packed_linear *l);

#endif
