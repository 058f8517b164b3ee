/* The weight formats (INT4, INT8, FP16) as one table, and the group grid
 * every walk over a quantized matrix goes through. */
#include <stddef.h>
#include <string.h>

#include "export/gguf/read.h"
#include "simd/kernels.h"
#include "zquant/quant.h"

void zq_pack_nibbles_ref(const uint8_t *q, size_t n, uint8_t *out)
{
    size_t k = 0;
    for (; k + 1 < n; k += 2) out[k / 2] = (uint8_t)((q[k] & 0x0f) | (q[k + 1] & 0x0f) << 4);
    if (k < n) out[k / 2] = (uint8_t)(q[k] & 0x0f);
}

static void pack_nibbles(const uint8_t *q, size_t n, uint8_t *out) { zq_kernels_active()->pack_nibbles(q, n, out); }
static void pack_bytes(const uint8_t *q, size_t n, uint8_t *out) { memcpy(out, q, n); }

static int code_nibble(const uint8_t *row, uint64_t c, int symmetric) { return zq_code_nibble(row, c, symmetric); }
static int code_byte(const uint8_t *row, uint64_t c, int symmetric) { return zq_code_byte(row, c, symmetric); }

static const zq_format formats[ZQ_FORMAT_COUNT] = {
    [ZQ_FORMAT_F16] =
        {
            .name = "f16",
            .label = "FP16",
            .code_bits = 16,
            .ggml_sym = -1,
            .ggml_asym = -1,
        },
    [ZQ_FORMAT_INT8] =
        {
            .name = "int8",
            .label = "INT8",
            .code_bits = 8,
            .codes_per_byte = 1,
            .sym_lo = -128,
            .sym_hi = 127,
            .asym_hi = 255,
            .sym_divisor = 128.0f,
            .asym_divisor = 256.0f,
            .pack_row = pack_bytes,
            .code_at = code_byte,
            .ggml_block = GGML_QK,
            .ggml_sym = GGML_Q8_0,
            .ggml_asym = -1, /* Q8_1's min is not the codes' offset but a sum for the dot kernels */
            .ct_num_bits = 8,
        },
    [ZQ_FORMAT_INT4] =
        {
            .name = "int4",
            .label = "INT4",
            .code_bits = 4,
            .codes_per_byte = 2,
            .sym_lo = -8,
            .sym_hi = 7,
            .asym_hi = 15,
            .sym_divisor = 8.0f,
            .asym_divisor = 16.0f,
            .pack_row = pack_nibbles,
            .code_at = code_nibble,
            .ggml_block = GGML_QK,
            .ggml_sym = GGML_Q4_0,
            .ggml_asym = GGML_Q4_1,
            .ct_num_bits = 4,
        },
};

const zq_format *zq_format_get(zq_format_id id) { return &formats[id]; }

int zq_format_named(const char *name, zq_format_id *id)
{
    for (int k = 0; k < ZQ_FORMAT_COUNT; k++)
        if (!strcmp(formats[k].name, name)) {
            *id = (zq_format_id)k;
            return 1;
        }
    return 0;
}

int zq_format_of_width(int num_bits, zq_format_id *id)
{
    for (int k = 0; k < ZQ_FORMAT_COUNT; k++)
        if (formats[k].code_bits == num_bits) {
            *id = (zq_format_id)k;
            return 1;
        }
    return 0;
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
    g->row_bytes = zq_format_row_bytes(zq_format_get(s->format), cols);
}
