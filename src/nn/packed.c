/* The packed Linear of packed.h. */
#include "nn/packed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "base/engine.h"
#include "simd/kernels.h"
#include "zquant/fp16.h"

void zq_packed_free(zq_packed_linear *l)
{
    free(l->rows);
    free(l->packed);
    free(l->wsum);
    free(l->wscale);
    free(l->bias_pad);
    memset(l, 0, sizeof *l);
}

static uint32_t stored_row(const zq_packed_linear *l, int j) { return l->rows ? l->rows[j] : (uint32_t)j; }

static uint64_t group_width(const zq_grid *g, uint64_t gj)
{
    uint64_t c0 = gj * g->group_cols;
    return g->cols - c0 < g->group_cols ? g->cols - c0 : g->group_cols;
}

/* One block of rows for the integer path: the rows unpacked to one code
 * a byte into codes (lanes x cols), each group's sum of codes and scale,
 * then the block packed for the kernels. */
static void pack_one_block(zq_packed_linear *l, int b, int8_t *codes)
{
    const zq_grid *g = &l->st.grid;
    int lanes = l->k->lanes, nrows = l->out - b * lanes < lanes ? l->out - b * lanes : lanes;
    size_t bpair = (size_t)(l->nibbles ? 4 : 8) * (size_t)lanes;
    const int8_t *rows[64];
    for (int r = 0; r < nrows; r++) {
        uint32_t sr = stored_row(l, b * lanes + r);
        const uint8_t *row = l->st.q + (size_t)sr * g->row_bytes;
        int8_t *dst = codes + (size_t)r * g->cols;
        if (l->nibbles) /* two codes a byte, the low one first, two's complement */
            for (uint64_t c = 0; c < g->cols; c += 2) {
                dst[c] = (int8_t)(((row[c / 2] & 15) ^ 8) - 8);
                if (c + 1 < g->cols) dst[c + 1] = (int8_t)(((row[c / 2] >> 4) ^ 8) - 8);
            }
        else
            memcpy(dst, row, (size_t)g->cols);
        for (uint64_t gj = 0; gj < g->col_groups; gj++) {
            zq_group q = zq_grid_group(g, sr, gj);
            int32_t s = 0;
            for (uint64_t c = q.col0; c < q.col0 + q.ncols; c++) s += dst[c];
            size_t at = (size_t)gj * l->wld + (size_t)b * (size_t)lanes + (size_t)r;
            l->wsum[at] = s;
            l->wscale[at] = zq_f16_to_f32(l->st.scale[q.index]);
        }
    }
    for (int gj = 0; gj < l->groups; gj++) {
        uint64_t c0 = (uint64_t)gj * l->group, width = group_width(g, (uint64_t)gj);
        for (int r = 0; r < nrows; r++) rows[r] = codes + (size_t)r * g->cols + c0;
        zq_int8_pack_block(rows, nrows, (size_t)width, lanes, l->nibbles,
                           l->packed + (size_t)b * l->bstride + (size_t)gj * l->pairs * bpair);
    }
}

enum { PACK_BLOCKS = 16 }; /* blocks of rows a packing task takes */

typedef struct {
    zq_packed_linear *l;
    int failed;
} pack_job;

static void pack_task(void *ctx, size_t t, int worker)
{
    (void)worker;
    pack_job *j = ctx;
    int8_t *codes = malloc((size_t)j->l->k->lanes * (size_t)j->l->st.grid.cols + 1);
    if (!codes) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int b = (int)t * PACK_BLOCKS; b < j->l->nblocks && b < (int)(t + 1) * PACK_BLOCKS; b++) pack_one_block(j->l, b, codes);
    free(codes);
}

/* The integer path's copy of the codes, block by block on the engine's
 * threads (each block is its own bytes: the thread count changes none). */
static zq_status pack_integer(zq_packed_linear *l, zq_error *err)
{
    const zq_grid *g = &l->st.grid;
    int lanes = l->k->lanes;
    l->nibbles = l->st.spec.format == ZQ_FORMAT_INT4;
    l->groups = (int)g->col_groups, l->group = g->group_cols;
    l->pairs = (size_t)((l->group + ZQ_INT8_PAIR - 1) / ZQ_INT8_PAIR);
    l->last_pairs = (size_t)((group_width(g, g->col_groups - 1) + ZQ_INT8_PAIR - 1) / ZQ_INT8_PAIR);
    l->nblocks = (l->out + lanes - 1) / lanes;
    l->wld = (size_t)l->nblocks * (size_t)lanes;
    size_t bpair = (size_t)(l->nibbles ? 4 : 8) * (size_t)lanes;
    l->bstride = ((size_t)(l->groups - 1) * l->pairs + l->last_pairs) * bpair;
    size_t total = (size_t)l->nblocks * l->bstride;
    size_t n = (size_t)l->groups * l->wld;
    l->packed = malloc(total ? total : 1);
    l->wsum = calloc(n + 1, sizeof *l->wsum);
    l->wscale = calloc(n + 1, sizeof *l->wscale);
    l->bias_pad = l->bias ? calloc(l->wld, sizeof *l->bias_pad) : NULL;
    pack_job j = {l, 0};
    if (l->packed && l->wsum && l->wscale && (!l->bias || l->bias_pad))
        zq_engine_run(((size_t)l->nblocks + PACK_BLOCKS - 1) / PACK_BLOCKS, 0, pack_task, &j);
    if (!l->packed || !l->wsum || !l->wscale || (l->bias && !l->bias_pad) || j.failed)
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory packing a Linear of %d x %d", l->out, l->in);
    if (l->bias) memcpy(l->bias_pad, l->bias, (size_t)l->out * sizeof *l->bias_pad);
    return ZQ_OK;
}

zq_status zq_packed_init(zq_packed_linear *l, const zq_stored_codes *st, const uint32_t *rows, int out,
                         const float *bias, int integer, zq_error *err)
{
    memset(l, 0, sizeof *l);
    l->st = *st;
    l->out = out, l->in = (int)st->grid.cols;
    l->bias = bias;
    if (rows) {
        l->rows = malloc((size_t)out * sizeof *l->rows);
        if (!l->rows) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        memcpy(l->rows, rows, (size_t)out * sizeof *l->rows);
    }
    const zq_qspec *s = &st->spec;
    int codes_fit = s->symmetric && (s->format == ZQ_FORMAT_INT8 || s->format == ZQ_FORMAT_INT4) &&
                    st->grid.group_cols <= 32768 && st->grid.col_groups > 0;
    if (integer && codes_fit) {
        l->k = zq_int8_active();
        zq_status r = pack_integer(l, err);
        if (r != ZQ_OK) {
            zq_packed_free(l);
            return r;
        }
    }
    return ZQ_OK;
}

size_t zq_packed_bytes(const zq_packed_linear *l)
{
    if (!l->k) return (size_t)(l->st.grid.rows * l->st.grid.row_bytes) +
                      (l->st.scale ? (size_t)(l->st.grid.row_groups * l->st.grid.col_groups) * (l->st.min ? 4 : 2) : 0);
    size_t n = (size_t)l->groups * l->wld;
    return (size_t)l->nblocks * l->bstride + n * (sizeof *l->wsum + sizeof *l->wscale);
}

/* Bytes of one token's codes, group after group, each padded to whole pairs. */
static size_t token_bytes(const zq_packed_linear *l)
{
    return ZQ_INT8_PAIR * ((size_t)(l->groups - 1) * l->pairs + l->last_pairs);
}

int zq_packed_integer(const zq_packed_linear *l, const zq_act_quant *aq, int id)
{
    /* the tokens' codes, scales and zero points live in the caller's scratch of in floats a token */
    if (!l->k || !aq || 8 + token_bytes(l) > 4 * (size_t)l->in) return 0;
    if (aq->mode == ZQ_AQ_TOKEN || aq->mode == ZQ_AQ_TOKEN_SYM) return 1;
    return aq->mode == ZQ_AQ_TENSOR && aq->absmax && aq->absmax[id] > 0; /* a zero range leaves inputs as they are */
}

/* ---- the integer path ---------------------------------------------------- */

enum { TILE_ROWS = 32, TILE_OUTPUTS = 64, PROLOGUE_ROWS = 16 };
/* Decoding's few tokens take wide tiles, so that a thread reads a long
 * run of consecutive packed rows (64 KB runs left this VM's prefetch
 * behind); the stack tile still holds one: DECODE_TOKENS *
 * DECODE_TILE_OUTPUTS <= TILE_ROWS * TILE_OUTPUTS. */
enum { DECODE_TOKENS = 8, DECODE_TILE_OUTPUTS = 256 };
_Static_assert(DECODE_TOKENS * DECODE_TILE_OUTPUTS <= TILE_ROWS * TILE_OUTPUTS, "a decoding tile fits the stack tile");

typedef struct {
    const zq_packed_linear *l;
    zq_act_mode mode;
    float absmax; /* ZQ_AQ_TENSOR */
    const float *x;
    int m;
    uint8_t *q; /* m rows of lda codes */
    size_t lda;
    float *scale;
    int32_t *zero;
    float *y;
    int row_tiles, blocks_per_tile;
} int_job;

/* One token's codes, laid out group after group, each padded with zeros
 * to whole pairs of steps: quantized in place, then each group moved to
 * its padded start, last group first (a group only moves right). */
static void quantize_token(const int_job *j, int i)
{
    const zq_packed_linear *l = j->l;
    const float *x = j->x + (size_t)i * l->in;
    uint8_t *dst = j->q + (size_t)i * j->lda;
    if (j->mode == ZQ_AQ_TOKEN) {
        j->scale[i] = l->k->quant_row_u8(x, (size_t)l->in, dst, &j->zero[i]);
    } else {
        float m = j->absmax;
        if (j->mode == ZQ_AQ_TOKEN_SYM) {
            m = 0;
            for (int c = 0; c < l->in; c++) m = fabsf(x[c]) > m ? fabsf(x[c]) : m;
        }
        j->scale[i] = zq_int8_quant_row_sym(x, (size_t)l->in, m, dst);
        j->zero[i] = 128;
    }
    size_t end = j->lda;
    for (int g = l->groups - 1; g >= 0; g--) {
        size_t width = (size_t)group_width(&l->st.grid, (uint64_t)g);
        size_t at = ZQ_INT8_PAIR * (size_t)g * l->pairs; /* the group's padded start */
        if (at != (uint64_t)g * l->group) memmove(dst + at, dst + (uint64_t)g * l->group, width);
        memset(dst + at + width, 0, end - at - width);
        end = at;
    }
}

static void prologue_task(void *ctx, size_t t, int worker)
{
    (void)worker;
    const int_job *j = ctx;
    for (int i = (int)t * PROLOGUE_ROWS; i < j->m && i < (int)(t + 1) * PROLOGUE_ROWS; i++) quantize_token(j, i);
}

/* A token with no codes (all its values equal, c): its row is c times
 * each output's sum of weights, + bias, in float. */
static void constant_token(const int_job *j, int i)
{
    const zq_packed_linear *l = j->l;
    float c = l->in ? j->x[(size_t)i * l->in] : 0, *y = j->y + (size_t)i * l->out;
    for (int o = 0; o < l->out; o++) {
        float s = 0;
        for (int g = 0; g < l->groups; g++)
            s = s + (float)l->wsum[(size_t)g * l->wld + o] * l->wscale[(size_t)g * l->wld + o];
        y[o] = l->bias ? c * s + l->bias[o] : c * s;
    }
}

static void main_task(void *ctx, size_t t, int worker)
{
    (void)worker;
    const int_job *j = ctx;
    const zq_packed_linear *l = j->l;
    int lanes = l->k->lanes, r = (int)(t % (size_t)j->row_tiles), c = (int)(t / (size_t)j->row_tiles);
    int i0 = r * TILE_ROWS, rows = j->m - i0 < TILE_ROWS ? j->m - i0 : TILE_ROWS;
    int b0 = c * j->blocks_per_tile, nb = l->nblocks - b0 < j->blocks_per_tile ? l->nblocks - b0 : j->blocks_per_tile;
    int o0 = b0 * lanes, width = l->out - o0 < nb * lanes ? l->out - o0 : nb * lanes;
    /* a tile whose blocks hold no padding rows is written in place; the
     * last one goes through the stack (its padding lanes lie past y's row),
     * as do the rows of constant tokens, which constant_token overwrites */
    float tile[TILE_ROWS * TILE_OUTPUTS];
    int direct = width == nb * lanes;
    zq_int8_tile T = {
        .a = j->q + (size_t)i0 * j->lda, .lda = j->lda, .m = rows, .scale = j->scale + i0, .zero = j->zero + i0,
        .packed = l->packed, .bstride = l->bstride, .groups = l->groups, .pairs = l->pairs,
        .last_pairs = l->last_pairs, .nibbles = l->nibbles, .wsum = l->wsum, .wscale = l->wscale, .wld = l->wld,
        .bias = l->bias_pad, .b0 = b0, .nb = nb, .y = direct ? j->y + (size_t)i0 * l->out + o0 : tile,
        .ldy = direct ? (size_t)l->out : (size_t)j->blocks_per_tile * (size_t)lanes,
    };
    l->k->gemm_tile(&T);
    for (int i = 0; !direct && i < rows; i++)
        memcpy(j->y + (size_t)(i0 + i) * l->out + o0, tile + (size_t)i * T.ldy, (size_t)width * sizeof *tile);
}

/* scratch: m * in floats (zq_linear_forward's), room for the codes */
void zq_packed_forward_integer(const zq_packed_linear *l, const zq_act_quant *aq, int id, const float *x, int m,
                               float *y, float *scratch)
{
    int lanes = l->k->lanes;
    int_job j = {l, aq->mode, aq->mode == ZQ_AQ_TENSOR ? aq->absmax[id] : 0, x, m, NULL, 0, NULL, NULL, y, 0, 0};
    j.lda = token_bytes(l);
    j.scale = scratch;
    j.zero = (int32_t *)(j.scale + m);
    j.q = (uint8_t *)(j.zero + m);
    zq_engine_run(((size_t)m + PROLOGUE_ROWS - 1) / PROLOGUE_ROWS, 0, prologue_task, &j);
    j.row_tiles = (m + TILE_ROWS - 1) / TILE_ROWS;
    j.blocks_per_tile = (m <= DECODE_TOKENS ? DECODE_TILE_OUTPUTS : TILE_OUTPUTS) / lanes;
    int col_tiles = (l->nblocks + j.blocks_per_tile - 1) / j.blocks_per_tile;
    zq_engine_run((size_t)j.row_tiles * (size_t)col_tiles, 0, main_task, &j);
    for (int i = 0; i < m; i++)
        if (!(j.scale[i] > 0) && j.mode == ZQ_AQ_TOKEN) constant_token(&j, i);
}

/* ---- the float path --------------------------------------------------------- */

/* A worker's decoded tile: rows x cols floats, at most DECODED (1 MB, in L2:
 * big enough that sgemm packs the tokens once per 256 rows of weights). */
enum { DECODED = 262144, FLOAT_TILE_ROWS = 256, MATVEC_TILE_ROWS = DECODE_TILE_OUTPUTS };
/* Up to this many tokens, the matrix-vector path (codes decoded in
 * registers); more, tiles of decoded weights through sgemm. */
enum { MATVEC_ROWS = 4 };
static _Thread_local float decoded[DECODED];

typedef struct {
    const zq_packed_linear *l;
    const float *x;
    int m;
    float *y;
    int tile_rows, kc, k_chunks;
    int matvec;        /* the matrix-vector path */
    const float *xsum; /* its asymmetric codes' [m][col groups] sums of x */
} float_job;

/* Decode's matrix-vector path: each output the kernel's dot_row of x
 * and the stored row (its codes decoded in registers). */
static void matvec_rows(const float_job *j, int o0, int rows)
{
    const zq_packed_linear *l = j->l;
    const zq_grid *g = &l->st.grid;
    const zq_kernels *k = zq_kernels_active();
    int nibbles = l->st.spec.format == ZQ_FORMAT_INT4, sym = l->st.spec.symmetric;
    for (int r = 0; r < rows; r++) {
        uint32_t sr = stored_row(l, o0 + r);
        const uint8_t *row = l->st.q + (size_t)sr * g->row_bytes;
        if (l->st.spec.format == ZQ_FORMAT_F16) {
            for (int i = 0; i < j->m; i++)
                j->y[(size_t)i * l->out + o0 + r] = k->dot_f16((const uint16_t *)(const void *)row,
                                                                j->x + (size_t)i * l->in, (size_t)g->cols);
            continue;
        }
        size_t at = (size_t)(sr / g->group_rows * g->col_groups); /* the row's scales and mins */
        for (int i = 0; i < j->m; i++)
            j->y[(size_t)i * l->out + o0 + r] =
                k->dot_row(row, nibbles, sym, (size_t)g->cols, (size_t)g->group_cols, l->st.scale + at,
                           sym ? NULL : l->st.min + at, j->x + (size_t)i * l->in,
                           sym ? NULL : j->xsum + (size_t)i * g->col_groups);
    }
}

/* Stored row sr, columns [c0, c0 + n), decoded group by group. */
static void decode_row(const zq_stored_codes *st, uint32_t sr, uint64_t c0, size_t n, float *out)
{
    const zq_grid *g = &st->grid;
    const uint8_t *row = st->q + (size_t)sr * g->row_bytes;
    if (st->spec.format == ZQ_FORMAT_F16) {
        zq_f16_to_f32_n((const uint16_t *)(const void *)row + c0, out, n);
        return;
    }
    for (uint64_t c = c0; c < c0 + n;) {
        zq_group q = zq_grid_group(g, sr, c / g->group_cols);
        uint64_t end = q.col0 + q.ncols < c0 + n ? q.col0 + q.ncols : c0 + n;
        zq_decode_run(&st->spec, row, c, (size_t)(end - c), st->scale[q.index], st->min ? st->min[q.index] : 0,
                      out + (c - c0));
        c = end;
    }
}

void zq_stored_row(const zq_stored_codes *st, uint32_t r, float *out) { decode_row(st, r, 0, (size_t)st->grid.cols, out); }

static void float_task(void *ctx, size_t t, int worker)
{
    (void)worker;
    const float_job *j = ctx;
    const zq_packed_linear *l = j->l;
    int o0 = (int)t * j->tile_rows, rows = l->out - o0 < j->tile_rows ? l->out - o0 : j->tile_rows;
    if (j->matvec) {
        matvec_rows(j, o0, rows);
        return;
    }
    for (int kc = 0; kc < j->k_chunks; kc++) {
        int c0 = kc * j->kc, cols = l->in - c0 < j->kc ? l->in - c0 : j->kc;
        for (int r = 0; r < rows; r++) decode_row(&l->st, stored_row(l, o0 + r), (uint64_t)c0, (size_t)cols, decoded + (size_t)r * cols);
        float beta = kc ? 1.0f : 0.0f;
        if (j->m == 1)
            zq_blas_sgemv(rows, cols, decoded, cols, j->x + c0, beta, j->y + o0);
        else
            zq_blas_sgemm(0, 1, j->m, rows, cols, j->x + c0, l->in, decoded, cols, beta, j->y + o0, l->out);
    }
}

void zq_packed_forward_float(const zq_packed_linear *l, const float *x, int m, float *y)
{
    float_job j = {l, x, m, y, 0, 0, 0, m <= MATVEC_ROWS, NULL};
    float *xsum = NULL;
    const zq_grid *g = &l->st.grid;
    if (m <= MATVEC_ROWS && !l->st.spec.symmetric) {
        xsum = malloc((size_t)m * g->col_groups * sizeof *xsum + 1);
        for (int i = 0; xsum && i < m; i++)
            for (uint64_t gj = 0; gj < g->col_groups; gj++) {
                float s = 0;
                for (uint64_t c = gj * g->group_cols; c < gj * g->group_cols + group_width(g, gj); c++)
                    s += x[(size_t)i * l->in + c];
                xsum[(size_t)i * g->col_groups + gj] = s;
            }
        if (!xsum) j.matvec = 0; /* no room for the sums: the tiled path, which needs none */
    }
    float *arranged = NULL; /* INT4 rows read x as zq_nibble_order lays it out */
    if (j.matvec && l->st.spec.format == ZQ_FORMAT_INT4) {
        arranged = malloc((size_t)m * (size_t)l->in * sizeof *arranged + 1);
        for (int i = 0; arranged && i < m; i++)
            zq_nibble_order(x + (size_t)i * l->in, (size_t)l->in, (size_t)g->group_cols, arranged + (size_t)i * l->in);
        if (arranged) j.x = arranged;
        else j.matvec = 0;
    }
    j.xsum = xsum;
    j.kc = l->in < DECODED ? l->in : DECODED;
    j.k_chunks = (l->in + j.kc - 1) / j.kc;
    j.tile_rows = DECODED / j.kc < FLOAT_TILE_ROWS ? DECODED / j.kc : FLOAT_TILE_ROWS;
    if (j.matvec) j.tile_rows = MATVEC_TILE_ROWS; /* no buffer: tiles as wide as the integer path's decoding */
    zq_engine_run((size_t)((l->out + j.tile_rows - 1) / j.tile_rows), 0, float_task, &j);
    free(xsum);
    free(arranged);
    if (l->bias)
        for (int r = 0; r < m; r++)
            for (int c = 0; c < l->out; c++) y[(size_t)r * l->out + c] += l->bias[c];
}
