/* Quantization as data: weight formats, specs, the group grid, the
 * reference quantizer, and activation schemes.
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

/* ---- formats: how a tensor's values are stored ---------------------------- */

/* A format is a row of the table below, named by its id. The ids are
 * stable: the .zq metadata names a tensor's format by the row's name, and
 * the integer kernels that run a format hang on its row. */
typedef enum {
    ZQ_FORMAT_F16 = 0, /* not codes: the tensor kept as FP16 values */
    ZQ_FORMAT_INT8,
    ZQ_FORMAT_INT4,
    ZQ_FORMAT_COUNT
} zq_format_id;

typedef struct {
    const char *name;   /* "int4", "int8", "f16": as .zq metadata, specs and inspect spell it */
    const char *label;  /* "INT4", "INT8", "FP16": as messages spell it */
    int code_bits;      /* width of one code; 16 for FP16 values */
    int codes_per_byte; /* 2 or 1; 0: not codes but FP16 values */
    /* The code range: symmetric codes are two's complement in
     * [sym_lo, sym_hi], asymmetric ones unsigned in [0, asym_hi]. */
    int sym_lo, sym_hi, asym_hi;
    /* The scale of a group (Microsoft's rule): max|w| / sym_divisor when
     * symmetric, (max - min) / asym_divisor when not. */
    float sym_divisor, asym_divisor;
    /* n codes (one per byte, two's complement when symmetric) into a packed
     * row: INT8 one byte each; INT4 two per byte, element 2k in the low
     * nibble, 2k+1 in the high one, an odd tail padded with zero. */
    void (*pack_row)(const uint8_t *codes, size_t n, uint8_t *out);
    /* The code of column c of a packed row (signed when symmetric). */
    int (*code_at)(const uint8_t *row, uint64_t c, int symmetric);
    /* What the runtimes call it, where they have it: the ggml types that hold
     * groups of ggml_block codes along a row with one FP16 scale (ggml_sym)
     * or a scale and a min (ggml_asym), -1 for none; compressed-tensors'
     * num_bits of its "int" type, 0 for none. */
    int ggml_block, ggml_sym, ggml_asym;
    int ct_num_bits;
} zq_format;

/* The row of format id (id < ZQ_FORMAT_COUNT). */
const zq_format *zq_format_get(zq_format_id id);
/* The format spelled name ("int4", "int8", "f16"); 0 when none is. */
int zq_format_named(const char *name, zq_format_id *id);
/* The format whose codes are num_bits wide (compressed-tensors' and the
 * old .zq metadata's way of naming one); 0 when none is. */
int zq_format_of_width(int num_bits, zq_format_id *id);
/* Packed bytes of a row of cols values. */
uint64_t zq_format_row_bytes(const zq_format *f, uint64_t cols);

/* ---- specs: what to do with one tensor --------------------------------------- */

typedef enum {
    ZQ_GRAN_GROUP = 0, /* group_size weights along the input dimension of a row */
    ZQ_GRAN_ROW,       /* one group per output row */
    ZQ_GRAN_TENSOR,    /* one group for the whole matrix */
    ZQ_GRAN_BLOCKS     /* `blocks` contiguous runs of whole output rows (DeepSpeed) */
} zq_granularity;

typedef struct {
    zq_format_id format; /* ZQ_FORMAT_F16: keep the tensor as FP16 */
    int symmetric;
    zq_granularity gran;
    uint32_t group_size; /* ZQ_GRAN_GROUP */
    uint32_t blocks;     /* ZQ_GRAN_BLOCKS */
} zq_qspec;

/* Whether spec stores codes (else the tensor stays FP16). */
int zq_qspec_quantized(const zq_qspec *spec);

/* The codes spec stores, as floats for the quantizers' clamps. */
static inline void zq_code_range(const zq_qspec *spec, float *lo, float *hi)
{
    const zq_format *f = zq_format_get(spec->format);
    *lo = spec->symmetric ? (float)f->sym_lo : 0.0f;
    *hi = spec->symmetric ? (float)f->sym_hi : (float)f->asym_hi;
}

/* SPEC: a format name ("int4", "int8", "fp16" or "f16"), then optional
 * ":gN" | ":row" | ":tensor" | ":blocksN", then optional ":sym" | ":asym".
 * Fields not given keep *out's. */
zq_status zq_qspec_parse(const char *text, zq_qspec *out, zq_error *err);
void zq_qspec_format(const zq_qspec *spec, char *buf, size_t size);

/* ---- the group grid ----------------------------------------------------------- */

typedef struct {
    uint64_t rows, cols;             /* the [out, in] matrix */
    uint64_t group_rows, group_cols; /* one group's extent */
    uint64_t row_groups, col_groups; /* how many groups down and across */
    uint64_t row_bytes;              /* packed bytes of one row */
} zq_grid;

void zq_grid_init(zq_grid *g, const zq_qspec *spec, uint64_t rows, uint64_t cols);

/* One group of a grid: rows [row0, row0+nrows) x columns [col0, col0+ncols);
 * its scale (and min) is number `index` of the row-major [row_groups,
 * col_groups] table. */
typedef struct {
    uint64_t index;
    uint64_t row0, nrows;
    uint64_t col0, ncols;
} zq_group;

/* The group that holds row r in column group gj: every walk over a grid
 * (quantizing, range statistics, fake quantization, reading back) is a loop
 * over rows or row groups and column groups calling this. Inline: it runs
 * once per group, in the quantizer's innermost loop. */
static inline zq_group zq_grid_group(const zq_grid *g, uint64_t r, uint64_t gj)
{
    zq_group q;
    uint64_t gi = r / g->group_rows;
    q.index = gi * g->col_groups + gj;
    q.row0 = gi * g->group_rows;
    q.nrows = g->rows - q.row0 < g->group_rows ? g->rows - q.row0 : g->group_rows;
    q.col0 = gj * g->group_cols;
    q.ncols = g->cols - q.col0 < g->group_cols ? g->cols - q.col0 : g->group_cols;
    return q;
}

/* ---- the quantizer -------------------------------------------------------------- */

/* Per-row statistics, accumulated in double so sums do not depend on threads. */
typedef struct {
    double err2;    /* sum of (w - w')^2 */
    double signal2; /* sum of w^2 */
} zq_err_sums;

/* min and max of x[0..n); returns 0 if a value is NaN or infinite (then
 * *bad_index says where). */
int zq_range_f32(const float *x, size_t n, float *lo, float *hi, size_t *bad_index);

/* The fp16 scale (and min) of a group with range [lo, hi]; returns 0 when the
 * scale does not fit in FP16. */
int zq_group_params(const zq_qspec *spec, float lo, float hi, uint16_t *scale, uint16_t *min);

/* Quantizes n weights with one scale/min into codes (q[k]: the code's byte,
 * two's complement when symmetric), and adds the squared error to *sums. */
void zq_quantize_run(const zq_qspec *spec, const float *x, size_t n, uint16_t scale, uint16_t min,
                     uint8_t *q, zq_err_sums *sums);

/* out = what quantizing the [rows, cols] matrix w with spec and reading it
 * back gives (the straight-through estimator's forward value); an FP16
 * spec rounds to FP16. */
zq_status zq_fake_quant_matrix(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols, float *out,
                               zq_error *err);
/* Every group's FP16 scale and min, [row_groups, col_groups], as quantize
 * computes them from w's ranges. */
zq_status zq_matrix_group_params(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols, uint16_t *scales,
                                 uint16_t *mins, zq_error *err);
/* The same with each group's FP16 scale (and min) given, [row_groups,
 * col_groups] as the file stores them (GPTQ's, or learned ones): w is
 * rounded onto that grid, clamped where it falls outside. NULL scales:
 * from w's own ranges, as above. */
zq_status zq_fake_quant_matrix_with(const zq_qspec *spec, const float *w, uint64_t rows, uint64_t cols,
                                    const uint16_t *scales, const uint16_t *mins, float *out, zq_error *err);
/* Rows [r0, r1) of it, on g (the matrix's grid) with the scales given
 * (codes: room for g's group_cols). Each row is its own: threads may make
 * a matrix a slice of rows each. out may equal w. */
void zq_fake_quant_rows(const zq_qspec *spec, const zq_grid *g, const float *w, uint64_t r0, uint64_t r1,
                        const uint16_t *scales, const uint16_t *mins, float *out, uint8_t *codes);

/* Decodes one packed row segment [col0, col0+n) of a tensor stored as
 * spec says, sharing one scale/min, into floats: zq_quantize_run read
 * back. */
void zq_decode_run(const zq_qspec *spec, const uint8_t *row, uint64_t col0, size_t n, uint16_t scale, uint16_t min,
                   float *out);

/* The vector kernel set in use: "avx2" or "scalar". The scalar kernels
 * define file contents; vector twins compute the same bits. */
const char *zq_kernels_name(void);
/* The integer (W8A8) kernel set in use: "avx512-vnni", "avx-vnni", "avx2"
 * or "scalar"; every set computes the scalar set's bits. */
const char *zq_int8_kernels_name(void);

/* ---- activations ------------------------------------------------------------------ */

/* How the input of a quantized Linear is quantized: the scheme a .zq file
 * records for the runtime, and what zquant emulates. CALIBRATE is not a
 * scheme: it only collects the static ranges that TENSOR then uses. */
typedef enum { ZQ_AQ_NONE = 0, ZQ_AQ_TOKEN, ZQ_AQ_TENSOR, ZQ_AQ_CALIBRATE, ZQ_AQ_TOKEN_SYM } zq_act_mode;

/* "int8-token" (dynamic, per token, asymmetric: ZeroQuant's), "int8-token-sym"
 * (dynamic, per token, symmetric: vLLM's usual W8A8), "int8-tensor"
 * (static), "none". */
zq_status zq_act_mode_parse(const char *text, zq_act_mode *out, zq_error *err);
const char *zq_act_mode_name(zq_act_mode m);

/* The scheme as a .zq file records it. */
typedef struct {
    int bits;             /* 8, or 16 for no activation quantization */
    char granularity[16]; /* "token", "tensor" or "none" */
    int dynamic;          /* ranges computed at run time */
    int symmetric;
} zq_activation;

void zq_act_mode_record(zq_act_mode m, zq_activation *rec);
/* The scheme a quantized checkpoint says its runtime applies (a
 * compressed-tensors folder's input_activations), NULL when none; and
 * whether tensor i is the weight of a Linear whose input it quantizes. */
typedef struct zq_source zq_source;
const zq_activation *zq_source_activation(const zq_source *src);
int zq_source_act_quantized(const zq_source *src, size_t i);
/* The scheme a record is; ZQ_AQ_NONE for one that is none of them. */
zq_act_mode zq_act_mode_of(const zq_activation *rec);
int zq_activation_equal(const zq_activation *a, const zq_activation *b);
/* Whether rec is one of the schemes above, as zquant-format(5) defines them. */
int zq_activation_known(const zq_activation *rec);
/* Whether inputs are quantized token by token at run time (either sign). */
int zq_act_mode_per_token(zq_act_mode m);

/* Fake-quantizes rows of x in place, as the schemes say: token: per row,
 * asymmetric uint8 (scale (max-min)/255, zero point round(-min/scale));
 * tensor: symmetric int8 with scale absmax/127. */
void zq_fake_quant_tokens(float *x, int rows, int cols);
/* per row, symmetric int8: scale absmax/127 */
void zq_fake_quant_tokens_sym(float *x, int rows, int cols);
void zq_fake_quant_tensor(float *x, size_t n, float absmax);

#ifdef __cplusplus
}
#endif
#endif
