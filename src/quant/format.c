/* The weight formats (INT4, INT8, FP16) as a table, and the group grid
 * every walk over a quantized matrix goes through. */
#include <stddef.h>
#include <string.h>

#include "simd/kernels.h"
#include "zquant/quant.h"

void zq_pack_int4_ref(const uint8_t *q, size_t n, uint8_t *out)
{
    size_t k = 0;
    for (; k + 1 < n; k += 2) out[k / 2] = (uint8_t)((q[k] & 0x0f) | (q[k + 1] & 0x0f) << 4);
    if (k < n) out[k / 2] = (uint8_t)(q[k] & 0x0f);
}

static void pack_int4(const uint8_t *q, size_t n, uint8_t *out) { zq_kernels_active()->pack_int4(q, n, out); }
static void pack_int8(const uint8_t *q, size_t n, uint8_t *out) { memcpy(out, q, n); }

static int code_int4(const uint8_t *row, uint64_t c, int symmetric)
{
    int nib = (row[c / 2] >> ((c & 1) * 4)) & 0x0f;
    return symmetric ? (nib ^ 8) - 8 : nib;
}

static int code_int8(const uint8_t *row, uint64_t c, int symmetric)
{
    return symmetric ? (int)(int8_t)row[c] : (int)row[c];
}

static const zq_format formats[] = {
    {"int4", 4, 2, pack_int4, code_int4},
    {"int8", 8, 1, pack_int8, code_int8},
    {"f16", 16, 0, NULL, NULL},
};

const zq_format *zq_format_of(int bits)
{
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
        if (formats[k].bits == bits) return &formats[k];
    return NULL;
}

uint64_t zq_format_row_bytes(const zq_format *f, uint64_t cols)
{
    return f->codes_per_byte ? (cols + (uint64_t)f->codes_per_byte - 1) / (uint64_t)f->codes_per_byte : cols * 2;
}

void zq_grid_init(zq_grid *g, const zq_qspec *s, uint64_t rows, uint64_t cols)
{
    g->rows = rows;
    g->cols = cols;
    g->group_rows = 1;
    g->group_cols = cols;
    switch (s->gran) {
    case ZQ_GRAN_GROUP: g->group_cols = s->group_size < cols ? s->group_size : cols; break;
    case ZQ_GRAN_ROW: break;
    case ZQ_GRAN_TENSOR: g->group_rows = rows; break;
    case ZQ_GRAN_BLOCKS: g->group_rows = (rows + s->blocks - 1) / s->blocks; break;
    }
    if (g->group_rows == 0) g->group_rows = 1;
    if (g->group_cols == 0) g->group_cols = 1;
    g->row_groups = (rows + g->group_rows - 1) / g->group_rows;
    g->col_groups = (cols + g->group_cols - 1) / g->group_cols;
    const zq_format *f = zq_format_of(s->bits);
    g->row_bytes = f ? zq_format_row_bytes(f, cols) : 0;
}
