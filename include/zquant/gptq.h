/* GPTQ (Frantar et al., 2023) for one weight matrix: columns quantized one
 * after another, each one's rounding error spread over the columns not yet
 * quantized through the Cholesky factor of the inverse Hessian of the
 * layer's input, so the layer's output moves as little as possible. The
 * result is ordinary zquant codes and FP16 scales on the spec's grid.
 *
 * Engine API: what zquant's own commands build on; it may change between
 * versions (the stable API is error, source, quant, zq, quantize, export). */
#ifndef ZQUANT_GPTQ_H
#define ZQUANT_GPTQ_H

#include <stdint.h>

#include "zquant/error.h"
#include "zquant/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* W [rows, cols] (row-major, rows = outputs) is updated in place (to the
 * error-compensated weights, column by column before each is quantized);
 * H [cols, cols] = 2 X^T X / n of the input X is consumed. damp: the
 * fraction of H's mean diagonal added to it (GPTQ: 0.01); block: columns
 * per lazy update (GPTQ: 128). A column whose H diagonal is 0 (an input
 * that never varies) gets weight 0. Groups run along the input
 * (ZQ_GRAN_GROUP, or one per row): a group's scale (and min) comes from the
 * updated weights when its first column is reached. codes: rows * cols bytes
 * as zq_quantize_run writes them; scale, min: [rows, col_groups] FP16 (min
 * unused when symmetric).
 *
 * act_order: columns are taken in decreasing order of H's diagonal (the
 * inputs that matter most first, while most columns are left to absorb
 * their error). The groups stay the contiguous runs of the grid, so every
 * group's scale is fixed before any update, from the weights as given
 * (round to nearest's scales): a group's columns are reached out of order
 * and its scale cannot wait for its first one. */
zq_status zq_gptq(const zq_qspec *spec, float *W, uint64_t rows, uint64_t cols, float *H, float damp, int block,
                  int act_order, uint8_t *codes, uint16_t *scale, uint16_t *min, zq_error *err);

/* zq_gptq in two steps, for matrices that share an input (q/k/v, up/gate):
 * what depends on H alone is computed once. */
typedef struct {
    int n;
    float *U;              /* the caller's H, become the factor (in the column order below) */
    uint32_t *order;       /* act order: loop column j is grid column order[j]; NULL: grid order */
    unsigned char *dead;   /* [n]: inputs that never vary, whose weights become 0 */
} zq_gptq_hessian;

/* H [n, n] is consumed: it becomes h->U (h keeps pointing at it). */
zq_status zq_gptq_prepare(float *H, int n, float damp, int act_order, zq_gptq_hessian *h, zq_error *err);
/* zq_gptq for one W [rows, n] with a prepared Hessian (not changed). */
zq_status zq_gptq_run(const zq_qspec *spec, float *W, uint64_t rows, uint64_t cols, const zq_gptq_hessian *h, int block,
                      uint8_t *codes, uint16_t *scale, uint16_t *min, zq_error *err);
void zq_gptq_hessian_free(zq_gptq_hessian *h); /* frees what prepare allocated, not U */

#ifdef __cplusplus
}
#endif
#endif
