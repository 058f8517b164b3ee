/* The W8A8 Linear of int8_linear.h. */
#include "nn/int8_linear.h"

#include <stdlib.h>
#include <string.h>

#include "zquant/fp16.h"

void zq_int8_linear_free(zq_int8_linear *l)
{
    free(l->packed);
    free(l->offset);
    free(l->wsum);
    free(l->wscale);
    memset(l, 0, sizeof *l);
}

zq_status zq_int8_linear_init(zq_int8_linear *l, const zq_grid *grid, const uint8_t *codes, const uint16_t *scales,
                              zq_error *err)
{
    memset(l, 0, sizeof *l);
    if (grid->row_bytes != grid->cols || grid->rows > 0x7fffffff || grid->cols > 0x7fffffff || grid->group_cols > 32768)
        return zq_fail(err, ZQ_ERR_INTERNAL, "the integer Linear takes INT8 rows and groups of at most 32768 inputs");
    l->k = zq_int8_active();
    l->out = (int)grid->rows, l->in = (int)grid->cols;
    l->groups = (int)grid->col_groups, l->group = grid->group_cols;
    size_t total = 0, n = (size_t)l->groups * (size_t)l->out;
    l->offset = calloc((size_t)l->groups + 1, sizeof *l->offset);
    for (int g = 0; l->offset && g < l->groups; g++) {
        uint64_t width = grid->cols - (uint64_t)g * l->group < l->group ? grid->cols - (uint64_t)g * l->group : l->group;
        l->offset[g] = total;
        total += zq_int8_packed_bytes(l->out, (size_t)width, l->k->lanes);
    }
    l->packed = malloc(total ? total : 1);
    l->wsum = calloc(n + 1, sizeof *l->wsum);
    l->wscale = malloc((n + 1) * sizeof *l->wscale);
    if (!l->offset || !l->packed || !l->wsum || !l->wscale) {
        zq_int8_linear_free(l);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory for an integer Linear");
    }
    const int8_t *w = (const int8_t *)codes;
    for (int g = 0; g < l->groups; g++) {
        uint64_t c0 = (uint64_t)g * l->group, width = grid->cols - c0 < l->group ? grid->cols - c0 : l->group;
        zq_int8_pack(w + c0, grid->row_bytes, l->out, (size_t)width, l->k->lanes, l->packed + l->offset[g]);
        for (int j = 0; j < l->out; j++) {
            zq_group q = zq_grid_group(grid, (uint64_t)j, (uint64_t)g);
            int32_t s = 0;
            for (uint64_t c = 0; c < width; c++) s += w[(uint64_t)j * grid->row_bytes + c0 + c];
            l->wsum[(size_t)g * l->out + j] = s;
            l->wscale[(size_t)g * l->out + j] = zq_f16_to_f32(scales[q.index]);
        }
    }
    return ZQ_OK;
}

zq_status zq_int8_linear_forward(const zq_int8_linear *l, const float *x, int m, const float *bias, float *y,
                                 zq_error *err)
{
    const zq_int8_kernels *k = l->k;
    int nblocks = (l->out + k->lanes - 1) / k->lanes, ldo = nblocks * k->lanes;
    size_t lda = ((size_t)l->in + 3) / 4 * 4 + 4 * (size_t)l->groups; /* each group's codes padded to whole steps */
    uint8_t *q = calloc((size_t)m * lda + 1, 1);
    int32_t *dots = malloc(((size_t)l->groups * (size_t)m * (size_t)ldo + 1) * sizeof *dots);
    float *scale = malloc(((size_t)m + 1) * sizeof *scale);
    int32_t *zero = malloc(((size_t)m + 1) * sizeof *zero);
    uint8_t *row = malloc((size_t)l->in + 1);
    if (!q || !dots || !scale || !zero || !row) {
        free(q), free(dots), free(scale), free(zero), free(row);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    /* prologue: each token's codes, laid out group after group, each group
     * from a multiple of 4 (the packed weights' steps), zero padded */
    for (int i = 0; i < m; i++) {
        scale[i] = k->quant_row_u8(x + (size_t)i * l->in, (size_t)l->in, row, &zero[i]);
        size_t at = 0;
        for (int g = 0; g < l->groups; g++) {
            uint64_t c0 = (uint64_t)g * l->group, width = (uint64_t)l->in - c0 < l->group ? (uint64_t)l->in - c0 : l->group;
            memcpy(q + (size_t)i * lda + at, row + c0, (size_t)width);
            at += ((size_t)width + 3) / 4 * 4;
        }
    }
    /* main loop: per group, every token against every weight row */
    size_t at = 0;
    for (int g = 0; g < l->groups; g++) {
        uint64_t c0 = (uint64_t)g * l->group, width = (uint64_t)l->in - c0 < l->group ? (uint64_t)l->in - c0 : l->group;
        size_t k4 = ((size_t)width + 3) / 4;
        k->dot_packed(q + at, lda, m, l->packed + l->offset[g], nblocks, k4, dots + (size_t)g * m * ldo, (size_t)ldo);
        at += 4 * k4;
    }
    /* epilogue: each token's scales and bias */
    for (int i = 0; i < m; i++) {
        float *yi = y + (size_t)i * l->out;
        if (scale[i] > 0) {
            k->epilogue(dots + (size_t)i * ldo, (size_t)m * ldo, l->wsum, l->wscale, l->groups, l->out, scale[i],
                        zero[i], bias, yi);
            continue;
        }
        float c = l->in ? x[(size_t)i * l->in] : 0; /* a constant token: c times each row's sum of weights */
        for (int j = 0; j < l->out; j++) {
            float s = 0;
            for (int g = 0; g < l->groups; g++)
                s = s + (float)l->wsum[(size_t)g * l->out + j] * l->wscale[(size_t)g * l->out + j];
            yi[j] = bias ? c * s + bias[j] : c * s;
        }
    }
    free(q), free(dots), free(scale), free(zero), free(row);
    return ZQ_OK;
}
