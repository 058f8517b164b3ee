/* GPTQ on one matrix (see zquant/gptq.h): the inverse Hessian's upper
 * Cholesky factor U, then per block of columns: each column quantized with
 * zquant's rounding rule, its error e = (w - q) / U[j][j] subtracted from the
 * block's later columns as e * U[j][k], and the block's errors applied to
 * every later column at once as one GEMM. */
#include "zquant/gptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "zquant/fp16.h"

zq_status zq_gptq(const zq_qspec *spec, float *W, uint64_t rows, uint64_t cols, float *H, float damp, int block,
                  uint8_t *codes, uint16_t *scale, uint16_t *min, zq_error *err)
{
    if (!zq_qspec_quantized(spec) || (spec->gran != ZQ_GRAN_GROUP && spec->gran != ZQ_GRAN_ROW))
        return zq_fail(err, ZQ_ERR_USAGE, "GPTQ quantizes INT4/INT8 with groups along the input or one per row");
    if (block < 1 || cols > (uint64_t)INT32_MAX / 2) return zq_fail(err, ZQ_ERR_USAGE, "GPTQ: bad block or size");
    ZQ_TRY(zq_blas_load(err));
    zq_grid g;
    zq_grid_init(&g, spec, rows, cols);
    int n = (int)cols;
    double mean = 0;
    for (int i = 0; i < n; i++) {
        float *d = &H[(size_t)i * n + i];
        if (*d == 0.0f) { /* an input that is always 0: its weights do not matter */
            *d = 1.0f;
            for (uint64_t r = 0; r < rows; r++) W[r * cols + (uint64_t)i] = 0.0f;
        }
        mean += *d;
    }
    float add = (float)(damp * mean / n);
    for (int i = 0; i < n; i++) H[(size_t)i * n + i] += add;
    if (!zq_cholesky_inverse_upper(H, n))
        return zq_fail(err, ZQ_ERR_DATA, "GPTQ: the Hessian is not positive definite even dampened (raise --damp)");
    const float *U = H;
    float *E = malloc(rows * (size_t)block * sizeof *E); /* the block's scaled errors, negated, [rows, block] */
    if (!E) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (uint64_t i1 = 0; i1 < cols; i1 += (uint64_t)block) {
        uint64_t i2 = i1 + (uint64_t)block < cols ? i1 + (uint64_t)block : cols, nb = i2 - i1;
        for (uint64_t j = i1; j < i2; j++) {
            uint64_t gj = j / g.group_cols;
            if (j % g.group_cols == 0) /* a group starts: its scale from the weights as they now are */
                for (uint64_t r = 0; r < rows; r++) {
                    zq_group grp = zq_grid_group(&g, r, gj);
                    float lo, hi;
                    size_t bad;
                    if (!zq_range_f32(W + r * cols + grp.col0, (size_t)grp.ncols, &lo, &hi, &bad) ||
                        !zq_group_params(spec, lo, hi, &scale[grp.index], &min[grp.index])) {
                        free(E);
                        return zq_fail(err, ZQ_ERR_DATA, "GPTQ: row %llu, group %llu: values that FP16 cannot scale",
                                       (unsigned long long)r, (unsigned long long)gj);
                    }
                }
            float d = U[j * cols + j];
            for (uint64_t r = 0; r < rows; r++) {
                uint64_t gi = zq_grid_group(&g, r, gj).index;
                float w = W[r * cols + j];
                zq_err_sums sums = {0};
                uint8_t *c = &codes[r * cols + j];
                zq_quantize_run(spec, &w, 1, scale[gi], min[gi], c, &sums);
                int q = spec->symmetric ? (int)(int8_t)*c : (int)*c;
                float deq = (float)q * zq_f16_to_f32(scale[gi]) + (spec->symmetric ? 0.0f : zq_f16_to_f32(min[gi]));
                float e = (w - deq) / d;
                E[r * (uint64_t)block + (j - i1)] = -e; /* the GEMM below adds */
                float *row = W + r * cols;
                for (uint64_t k = j + 1; k < i2; k++) row[k] -= e * U[j * cols + k];
            }
        }
        if (i2 < cols) /* W[:, i2:] -= errors . U[i1:i2, i2:] */
            zq_gemm_nn((int)rows, (int)(cols - i2), (int)nb, E, block, U + i1 * cols + i2, (int)cols, 1.0f, W + i2,
                       (int)cols);
    }
    free(E);
    return ZQ_OK;
}
