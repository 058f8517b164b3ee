/* The reference quantizer: group ranges, scales, codes and their error, the
 * straight-through fake quantization LKD trains with, and reading codes
 * back. The _ref functions define every stored bit; the entry points run
 * the active kernel set (see simd/kernels.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simd/kernels.h"
#include "zquant/fp16.h"
#include "zquant/quant.h"


int zq_range_f32_ref(const float *x, size_t n, float *lo, float *hi, size_t *bad_index)
{
    /* eight lanes so the compiler can keep them in one vector register */
    float mn[8], mx[8];
    uint32_t nonfinite = 0;
    for (int l = 0; l < 8; l++) mn[l] = INFINITY, mx[l] = -INFINITY;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) {
            float v = x[i + l];
            uint32_t b;
            memcpy(&b, &v, 4);
            nonfinite |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
            mn[l] = v < mn[l] ? v : mn[l];
            mx[l] = v > mx[l] ? v : mx[l];
        }
    }
    for (; i < n; i++) {
        float v = x[i];
        nonfinite |= (uint32_t)!isfinite(v);
        mn[0] = v < mn[0] ? v : mn[0];
        mx[0] = v > mx[0] ? v : mx[0];
    }
    if (nonfinite) {
        for (size_t k = 0; k < n; k++)
            if (!isfinite(x[k])) { *bad_index = k; break; }
        return 0;
    }
    float a = mn[0], b = mx[0];
    for (int l = 1; l < 8; l++) {
        a = mn[l] < a ? mn[l] : a;
        b = mx[l] > b ? mx[l] : b;
    }
    *lo = a;
    *hi = b;
    return 1;
}

int zq_group_params(const zq_qspec *spec, float lo, float hi, uint16_t *scale, uint16_t *min)
{
    float s;
    if (spec->symmetric) {
        float amax = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
        s = amax / zq_format_get(spec->format)->sym_divisor;
        *min = 0;
    } else {
        s = (hi - lo) / zq_format_get(spec->format)->asym_divisor;
        *min = zq_f32_to_f16(lo);
        if (!isfinite(zq_f16_to_f32(*min))) return 0;
    }
    *scale = zq_f32_to_f16(s);
    return isfinite(zq_f16_to_f32(*scale));
}

void zq_quantize_run_ref(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min,
                         uint8_t *q, zq_err_sums *sums)
{
    const float s = zq_f16_to_f32(scale);
    const float m = spec->symmetric ? 0.0f : zq_f16_to_f32(min);
    const float inv = s != 0.0f ? 1.0f / s : 0.0f;
    float qlo, qhi;
    zq_code_range(spec, &qlo, &qhi);
    float e2[8] = {0}, w2[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) {
            float v = x[i + l];
            float c = zq_code_of(v, m, inv, qlo, qhi);
            float d = v - (c * s + m);
            e2[l] += d * d;
            w2[l] += v * v;
            q[i + l] = (uint8_t)(int)c; /* two's complement byte for negative codes */
        }
    }
    for (; i < n; i++) {
        float v = x[i];
        float c = zq_code_of(v, m, inv, qlo, qhi);
        float d = v - (c * s + m);
        e2[0] += d * d;
        w2[0] += v * v;
        q[i] = (uint8_t)(int)c;
    }
    double se = 0, sw = 0;
    for (int l = 0; l < 8; l++) se += e2[l], sw += w2[l];
    sums->err2 += se;
    sums->signal2 += sw;
}

int zq_range_f32(const float *x, size_t n, float *lo, float *hi, size_t *bad_index)
{
    return zq_kernels_active()->range_f32(x, n, lo, hi, bad_index);
}

void zq_quantize_run(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min, uint8_t *q,
                     zq_err_sums *sums)
{
    zq_kernels_active()->quantize_run(spec, x, n, scale, min, q, sums);
}

void zq_decode_run_ref(const uint8_t *row, int nibbles, int symmetric, uint64_t col0, size_t n, float s, float m,
                       float *out)
{
    const zq_format *f = zq_format_get(nibbles ? ZQ_FORMAT_INT4 : ZQ_FORMAT_INT8);
    for (size_t k = 0; k < n; k++) out[k] = (float)f->code_at(row, col0 + k, symmetric) * s + m;
}

float zq_dot_f16_ref(const uint16_t *w, const float *x, size_t n)
{
    float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t k = 0; k < n; k++) p[k % 8] = fmaf(x[k], zq_f16_to_f32(w[k]), p[k % 8]);
    return zq_lanes_sum8(p);
}

/* Where INT4 input o of a group (o < w, the group's width) sits in x as
 * zq_nibble_order arranges it: a whole block of 32 holds its even inputs,
 * then its odd ones; a shorter tail stays in order. */
static size_t nibble_slot(size_t o, size_t w)
{
    return o < w / 32 * 32 ? o / 32 * 32 + o % 2 * 16 + o % 32 / 2 : o;
}

void zq_nibble_order(const float *x, size_t cols, size_t group, float *out)
{
    for (size_t c0 = 0; c0 < cols; c0 += group) {
        size_t w = cols - c0 < group ? cols - c0 : group;
        for (size_t o = 0; o < w; o++) out[c0 + nibble_slot(o, w)] = x[c0 + o];
    }
}

/* INT8: eight lanes by input; INT4: sixteen, input o of a group to lane
 * (o % 32) / 2 of the even or the odd chain, which a 16-byte load of
 * nibbles gives a register as they lie, low nibbles even. */
float zq_dot_row_ref(const uint8_t *row, int nibbles, int symmetric, size_t cols, size_t group, const uint16_t *scale,
                     const uint16_t *min, const float *x, const float *xsum)
{
    const zq_format *f = zq_format_get(nibbles ? ZQ_FORMAT_INT4 : ZQ_FORMAT_INT8);
    float acc[16] = {0};
    size_t groups = (cols + group - 1) / group;
    for (size_t g = 0; g < groups; g++) {
        size_t c0 = g * group, w = cols - c0 < group ? cols - c0 : group;
        float p[2][16] = {{0}}, s = zq_f16_to_f32(scale[g]);
        for (size_t o = 0; o < w; o++) {
            float code = (float)f->code_at(row, c0 + o, symmetric);
            if (nibbles) p[o % 2][o % 32 / 2] = fmaf(x[c0 + nibble_slot(o, w)], code, p[o % 2][o % 32 / 2]);
            else p[0][o % 8] = fmaf(x[c0 + o], code, p[0][o % 8]);
        }
        for (int l = 0; l < 16; l++) acc[l] = fmaf(nibbles ? p[0][l] + p[1][l] : p[0][l], s, acc[l]);
    }
    for (int l = 0; nibbles && l < 8; l++) acc[l] = acc[l] + acc[l + 8];
    float total = zq_lanes_sum8(acc);
    for (size_t g = 0; !symmetric && g < groups; g++) total = total + xsum[g] * zq_f16_to_f32(min[g]);
    return total;
}

void zq_decode_run(const zq_qspec *spec, const uint8_t *row, uint64_t col0, size_t n, uint16_t scale, uint16_t min,
                   float *out)
{
    const float s = zq_f16_to_f32(scale);
    const float m = spec->symmetric ? 0.0f : zq_f16_to_f32(min);
    zq_kernels_active()->decode_run(row, spec->format == ZQ_FORMAT_INT4, spec->symmetric, col0, n, s, m, out);
}

zq_status zq_fake_quant_matrix(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols, float *out,
                               zq_error *err)
{
    return zq_fake_quant_matrix_with(spec, w, rows, cols, NULL, NULL, out, err);
}

zq_status zq_matrix_group_params(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols, uint16_t *scales,
                                 uint16_t *mins, zq_error *err)
{
    zq_grid g;
    zq_grid_init(&g, spec, rows, cols);
    for (uint64_t gi = 0; gi < g.row_groups; gi++)
        for (uint64_t gj = 0; gj < g.col_groups; gj++) {
            zq_group q = zq_grid_group(&g, gi * g.group_rows, gj);
            float lo = INFINITY, hi = -INFINITY, l, h;
            size_t bad;
            for (uint64_t r = q.row0; r < q.row0 + q.nrows; r++) {
                if (!zq_range_f32(w + r * cols + q.col0, (size_t)q.ncols, &l, &h, &bad))
                    return zq_fail(err, ZQ_ERR_DATA, "NaN or Inf in a weight being tuned (row %llu)", (unsigned long long)r);
                lo = l < lo ? l : lo;
                hi = h > hi ? h : hi;
            }
            if (!zq_group_params(spec, lo, hi, &scales[q.index], &mins[q.index]))
                return zq_fail(err, ZQ_ERR_DATA, "a tuned weight outgrew an FP16 scale");
        }
    return ZQ_OK;
}

void zq_fake_quant_rows(const zq_qspec *spec, const zq_grid *g, const float *w, uint64_t r0, uint64_t r1,
                        const uint16_t *scales, const uint16_t *mins, float *out, uint8_t *codes)
{
    zq_err_sums ignore = {0, 0};
    uint64_t cols = g->cols;
    for (uint64_t r = r0; r < r1; r++)
        for (uint64_t gj = 0; gj < g->col_groups; gj++) {
            zq_group q = zq_grid_group(g, r, gj);
            uint16_t scale = scales[q.index], min = mins ? mins[q.index] : 0;
            float s = zq_f16_to_f32(scale), m = spec->symmetric ? 0.0f : zq_f16_to_f32(min);
            zq_quantize_run(spec, w + r * cols + q.col0, (size_t)q.ncols, scale, min, codes, &ignore);
            for (uint64_t k = 0; k < q.ncols; k++) {
                int code = spec->symmetric ? (int)(int8_t)codes[k] : (int)codes[k];
                out[r * cols + q.col0 + k] = (float)code * s + m;
            }
        }
}

zq_status zq_fake_quant_matrix_with(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols,
                                    const uint16_t *scales, const uint16_t *mins, float *out, zq_error *err)
{
    if (!zq_qspec_quantized(spec)) {
        for (uint64_t i = 0; i < rows * cols; i++) out[i] = zq_f16_to_f32(zq_f32_to_f16(w[i]));
        return ZQ_OK;
    }
    zq_grid g;
    zq_grid_init(&g, spec, rows, cols);
    size_t ng = (size_t)(g.row_groups * g.col_groups);
    uint8_t *codes = malloc(g.group_cols + 1);
    uint16_t *own = scales ? NULL : malloc(2 * ng * sizeof *own);
    zq_status st = codes && (scales || own) ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK && own) {
        st = zq_matrix_group_params(spec, w, rows, cols, own, own + ng, err);
        scales = own, mins = own + ng;
    }
    if (st == ZQ_OK) zq_fake_quant_rows(spec, &g, w, 0, rows, scales, mins, out, codes);
    free(codes);
    free(own);
    return st;
}
