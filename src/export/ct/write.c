/* A .zq file as a Hugging Face folder vLLM loads: config.json with a
 * compressed-tensors quantization_config, the weights in safetensors
 * (sharded past 5 GB as Hugging Face shards), the tokenizer and generation
 * files copied from the original folder.
 *
 * Each quantized Linear becomes one of compressed-tensors' formats, with
 * zquant's codes and FP16 scales as they are:
 *  - "int-quantized" (W8A8, ZeroQuant's scheme as vLLM runs it): symmetric
 *    INT8 codes as P.weight (I8, the checkpoint's layout), one scale per
 *    output row as P.weight_scale [out, 1], INT8 token-wise dynamic inputs;
 *  - "pack-quantized" (weight-only INT4/INT8): codes + 2^(bits-1) packed
 *    32/bits to an int32 along the input (element k of a word at bits
 *    k*bits), P.weight_scale [out, groups], P.weight_shape, and for scale and
 *    minimum a zero point packed along the output - exact only when each
 *    minimum is a whole number of scales (w = (q - zp) * s).
 * Groups of tensors with equal schemes become config groups whose targets
 * are the modules' exact names. */
#include "export/export_impl.h"
#include "export/target.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/files.h"
#include "base/le.h"
#include "base/util.h"
#include "io/atomic.h"
#include "io/atomic_dir.h"
#include "io/st_write.h"
#include "zq/meta.h"
#include "simd/kernels.h"
#include "zquant/fp16.h"

#define CT_VERSION "0.12.2" /* the compressed-tensors whose rules this follows */
#define DEFAULT_SHARD_BYTES 5000000000ull /* Hugging Face's "5GB" */
#define DROP_BYTES ((size_t)16 << 20)     /* a large tensor's source leaves memory in steps of this */

typedef struct {
    int bits, symmetric;
    uint64_t group; /* 0: one scale per row (strategy channel) */
    int w8a8;       /* int-quantized with INT8 token-wise dynamic inputs */
} ct_scheme;

enum { PIECE_DATA, PIECE_CODES, PIECE_PACKED, PIECE_SCALE, PIECE_SHAPE, PIECE_ZERO };

typedef struct {
    char name[320];
    int ndim;
    int64_t shape[ZQ_MAX_DIMS];
    const char *dtype;
    size_t esize;
    size_t tensor; /* in the .zq */
    int piece;     /* PIECE_* */
    int shard;
} ct_entry;

typedef struct {
    ct_scheme s;
    int quantized, conv1d, group; /* group: index of its config group */
    char module[300];
} ct_plan;

/* ---- planning: what each tensor becomes ------------------------------------ */

static int same_scheme(const ct_scheme *a, const ct_scheme *b)
{
    return a->bits == b->bits && a->symmetric == b->symmetric && a->group == b->group && a->w8a8 == b->w8a8;
}

/* A scale-and-minimum group as an integer zero point: min = -k * scale with
 * k a code (0 .. 2^bits - 1), exactly; then w = (q - 2^(bits-1) - zp) * scale
 * with zp = k - 2^(bits-1), stored (+ 2^(bits-1)) as k. */
static int zero_point(uint16_t scale, uint16_t min, int bits, uint32_t *k)
{
    float sc = zq_f16_to_f32(scale), mn = zq_f16_to_f32(min);
    double v = sc > 0 ? -(double)mn / sc : -1;
    if (!(v == floor(v) && v >= 0 && v < (double)(1 << bits) && (float)(-v * sc) == mn)) return 0;
    *k = (uint32_t)v;
    return 1;
}

/* Whether every group of tensor i has an integer zero point. */
static zq_status mins_are_zero_points(zq_file *f, size_t i, int *ok, zq_error *err)
{
    const zq_tensor *t = zq_file_tensor(f, i);
    const void *sp, *mp;
    size_t len;
    ZQ_TRY(zq_file_section(f, i, ZQ_SEC_SCALE, &sp, &len, err));
    ZQ_TRY(zq_file_section(f, i, ZQ_SEC_MIN, &mp, &len, err));
    const uint16_t *s = sp, *m = mp;
    uint32_t k;
    *ok = 1;
    for (uint64_t g = 0; *ok && g < t->grid.row_groups * t->grid.col_groups; g++) *ok = zero_point(s[g], m[g], zq_format_get(t->spec.format)->code_bits, &k);
    zq_file_release(f, i);
    return ZQ_OK;
}

/* vLLM's weight-only kernels (Marlin) take groups of these along the input,
 * or one scale per row. */
static int marlin_group(uint64_t group) { return group == 32 || group == 64 || group == 128; }

/* Whether a layer runs as int-quantized W8A8: 8-bit codes whose input the
 * runtime quantizes token by token (int-quantized is 8 bits wide). */
static int runs_w8a8(zq_act_mode act, const zq_format *fmt)
{
    return zq_act_mode_per_token(act) && fmt->ct_num_bits == 8;
}

zq_status zq_ct_fit(const char *tensor, uint64_t in, zq_act_mode act, zq_qspec *spec, zq_error *err)
{
    if (!spec->symmetric)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': --for vllm: vLLM's kernels take symmetric weights (drop --asym)",
                       tensor);
    if (act == ZQ_AQ_TENSOR)
        return zq_fail(err, ZQ_ERR_USAGE, "--for vllm: static int8-tensor activation scales are calibrated by zquant "
                       "eval, not stored; use int8-token");
    if (runs_w8a8(act, zq_format_get(spec->format))) { /* one scale per output row */
        if (spec->gran == ZQ_GRAN_GROUP) spec->gran = ZQ_GRAN_ROW;
        return ZQ_OK;
    }
    if (spec->gran == ZQ_GRAN_GROUP && !marlin_group(spec->group_size))
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': --for vllm: vLLM's INT4/INT8 weight-only kernels take groups of 32, 64 "
                       "or 128, not %u", tensor, spec->group_size);
    if (spec->gran == ZQ_GRAN_GROUP && in % spec->group_size) spec->gran = ZQ_GRAN_ROW;
    if (spec->gran == ZQ_GRAN_TENSOR || spec->gran == ZQ_GRAN_BLOCKS)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': --for vllm: weight-only %s takes groups along the input or one per "
                       "row", tensor, zq_format_get(spec->format)->label);
    return ZQ_OK;
}

static zq_status plan_quantized(zq_file *f, size_t i, zq_act_mode act, ct_plan *p, zq_error *err)
{
    const zq_tensor *t = zq_file_tensor(f, i);
    const zq_grid *g = &t->grid;
    const char *path = zq_file_path(f);
    size_t n = strlen(t->name);
    if (n < 8 || strcmp(t->name + n - 7, ".weight") || n - 7 >= sizeof p->module)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is quantized but is not a Linear's weight", path, t->name);
    memcpy(p->module, t->name, n - 7);
    p->module[n - 7] = 0;
    if (act == ZQ_AQ_TENSOR)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': static int8-tensor activation scales are not stored in a .zq; %s",
                       path, zq_target_get(ZQ_TARGET_CT)->hint);
    const zq_format *fmt = zq_format_get(t->spec.format);
    if (!fmt->ct_num_bits)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': compressed-tensors has no type for %s codes", path,
                       t->name, fmt->label);
    p->quantized = 1;
    p->s.bits = fmt->ct_num_bits;
    p->s.symmetric = t->spec.symmetric;
    p->s.group = g->col_groups > 1 ? g->group_cols : 0;
    p->s.w8a8 = runs_w8a8(act, fmt);
    if (p->s.w8a8 && (p->s.group || !t->spec.symmetric))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': vLLM's INT8 W8A8 needs symmetric weights with one scale "
                       "per output row, not %s; %s", path, t->name,
                       t->spec.symmetric ? "groups along the input" : "scale and minimum", zq_target_get(ZQ_TARGET_CT)->hint);
    if (p->s.group && g->cols % p->s.group)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %llu inputs do not split into groups of %llu; %s", path,
                       t->name, (unsigned long long)g->cols, (unsigned long long)p->s.group, zq_target_get(ZQ_TARGET_CT)->hint);
    if (p->s.group && !marlin_group(p->s.group))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': groups of %llu; vLLM's kernels (Marlin) take 32, 64, "
                       "128 or one per row; %s", path, t->name, (unsigned long long)p->s.group, zq_target_get(ZQ_TARGET_CT)->hint);
    if (!t->spec.symmetric) {
        int ok;
        ZQ_TRY(mins_are_zero_points(f, i, &ok, err));
        if (!ok)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': its minimums are not whole numbers of scales, so no "
                           "integer zero point holds them; %s (symmetric)", path, t->name, zq_target_get(ZQ_TARGET_CT)->hint);
    }
    return ZQ_OK;
}

/* Which of a block's kernels vLLM runs a part in, when it fuses several:
 * q/k/v, gate/up, a mixture's experts (one kernel for all); 0: its own. */
static int fused_class(zq_part p)
{
    if (p <= ZQ_PART_V || p == ZQ_PART_QKV) return 1;
    if (p == ZQ_PART_UP || p == ZQ_PART_GATE || p == ZQ_PART_GATE_UP) return 2;
    return p >= ZQ_PART_EXP_GATE ? 3 : 0;
}

/* Layers vLLM fuses into one kernel (q/k/v, gate/up, experts) must share a scheme. */
static zq_status check_fused(zq_file *f, const zq_arch_desc *d, const ct_plan *plan, zq_error *err)
{
    size_t n = zq_file_count(f);
    for (size_t i = 0; d && i < n; i++) {
        int li, lj;
        const zq_arch_tensor *ri = zq_export_row(d, zq_file_tensor(f, i)->name, &li, NULL);
        if (!ri || ri->flags & ZQ_T_BIAS) continue;
        int fused_i = fused_class(ri->part);
        for (size_t j = i + 1; fused_i && j < n; j++) {
            const zq_arch_tensor *rj = zq_export_row(d, zq_file_tensor(f, j)->name, &lj, NULL);
            if (!rj || rj->flags & ZQ_T_BIAS || lj != li) continue;
            int fused_j = fused_class(rj->part);
            if (fused_j != fused_i) continue;
            if (plan[i].quantized != plan[j].quantized || (plan[i].quantized && !same_scheme(&plan[i].s, &plan[j].s)))
                return zq_fail(err, ZQ_ERR_FORMAT, "'%s': '%s' and '%s' are fused into one layer by vLLM but are "
                               "quantized differently; %s", zq_file_path(f), zq_file_tensor(f, i)->name,
                               zq_file_tensor(f, j)->name, zq_target_get(ZQ_TARGET_CT)->hint);
        }
    }
    return ZQ_OK;
}

/* ---- the config ------------------------------------------------------------ */

static cJSON *quant_args(int bits, int symmetric, uint64_t group, const char *strategy, int dynamic)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "num_bits", bits);
    cJSON_AddStringToObject(a, "type", "int");
    cJSON_AddBoolToObject(a, "symmetric", symmetric);
    if (group) cJSON_AddNumberToObject(a, "group_size", (double)group);
    else cJSON_AddNullToObject(a, "group_size");
    cJSON_AddStringToObject(a, "strategy", strategy);
    cJSON_AddNullToObject(a, "block_structure");
    cJSON_AddBoolToObject(a, "dynamic", dynamic);
    cJSON_AddNullToObject(a, "actorder");
    if (dynamic) cJSON_AddNullToObject(a, "observer");
    else cJSON_AddStringToObject(a, "observer", "minmax");
    cJSON_AddObjectToObject(a, "observer_kwargs");
    return a;
}

static const char *format_of(const ct_scheme *s)
{
    return s->w8a8 ? "int-quantized" : "pack-quantized";
}

/* config.json: the original, with quantization_config. */
static char *config_json(zq_file *f, const ct_plan *plan, const ct_scheme *groups, int ngroups, const zq_activation *act,
                         zq_error *err)
{
    cJSON *root = cJSON_Parse(zq_file_config(f));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        root = cJSON_CreateObject();
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "torch_dtype");
    cJSON_AddStringToObject(root, "torch_dtype", "float16");
    cJSON *q = cJSON_AddObjectToObject(root, "quantization_config");
    cJSON_AddStringToObject(q, "quant_method", "compressed-tensors");
    int mixed = 0;
    for (int k = 1; k < ngroups; k++) mixed |= strcmp(format_of(&groups[k]), format_of(&groups[0])) != 0;
    cJSON_AddStringToObject(q, "format", mixed ? "mixed-precision" : ngroups ? format_of(&groups[0]) : "dense");
    cJSON_AddStringToObject(q, "quantization_status", "compressed");
    cJSON_AddStringToObject(q, "version", CT_VERSION);
    cJSON *cg = cJSON_AddObjectToObject(q, "config_groups");
    for (int k = 0; k < ngroups; k++) {
        char name[32];
        snprintf(name, sizeof name, "group_%d", k);
        cJSON *g = cJSON_AddObjectToObject(cg, name);
        cJSON *targets = cJSON_AddArrayToObject(g, "targets");
        for (size_t i = 0; i < zq_file_count(f); i++)
            if (plan[i].quantized && plan[i].group == k) cJSON_AddItemToArray(targets, cJSON_CreateString(plan[i].module));
        const ct_scheme *s = &groups[k];
        cJSON_AddItemToObject(g, "weights", quant_args(s->bits, s->symmetric, s->group, s->group ? "group" : "channel", 0));
        if (s->w8a8) cJSON_AddItemToObject(g, "input_activations", quant_args(8, act->symmetric, 0, "token", 1));
        else cJSON_AddNullToObject(g, "input_activations");
        cJSON_AddNullToObject(g, "output_activations");
        if (mixed) cJSON_AddStringToObject(g, "format", format_of(s));
    }
    cJSON *ignore = cJSON_AddArrayToObject(q, "ignore");
    cJSON_AddItemToArray(ignore, cJSON_CreateString("lm_head"));
    cJSON_AddNullToObject(q, "kv_cache_scheme");
    cJSON_AddObjectToObject(q, "sparsity_config");
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    return text;
}

/* ---- the tensors ------------------------------------------------------------- */

static void add(ct_entry *e, size_t *n, size_t tensor, int piece, const char *module, const char *suffix, int ndim,
                int64_t d0, int64_t d1, const char *dtype, size_t esize)
{
    ct_entry *x = &e[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s%s", module, suffix);
    x->ndim = ndim;
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->dtype = dtype;
    x->esize = esize;
    x->tensor = tensor;
    x->piece = piece;
}

/* The safetensors entries of every tensor, in .zq order. */
static size_t entries(zq_file *f, const ct_plan *plan, ct_entry *e)
{
    size_t n = 0;
    for (size_t i = 0; i < zq_file_count(f); i++) {
        const zq_tensor *t = zq_file_tensor(f, i);
        if (zq_arch_is_buffer(t->name)) continue;
        if (!plan[i].quantized) {
            ct_entry *x = &e[n];
            add(e, &n, i, PIECE_DATA, t->name, "", t->ndim, 0, 0, ZQ_ST_F16);
            memcpy(x->shape, t->shape, sizeof x->shape);
            continue;
        }
        const ct_scheme *s = &plan[i].s;
        int64_t rows = (int64_t)t->grid.rows, cols = (int64_t)t->grid.cols, pf = 32 / s->bits;
        int64_t groups = s->group ? cols / (int64_t)s->group : 1;
        if (s->w8a8) {
            add(e, &n, i, PIECE_CODES, plan[i].module, ".weight", 2, plan[i].conv1d ? cols : rows,
                plan[i].conv1d ? rows : cols, "I8", 1);
        } else {
            add(e, &n, i, PIECE_PACKED, plan[i].module, ".weight_packed", 2, rows, (cols + pf - 1) / pf, "I32", 4);
            add(e, &n, i, PIECE_SHAPE, plan[i].module, ".weight_shape", 1, 2, 0, "I64", 8);
            if (!s->symmetric)
                add(e, &n, i, PIECE_ZERO, plan[i].module, ".weight_zero_point", 2, (rows + pf - 1) / pf, groups, "I32", 4);
        }
        add(e, &n, i, PIECE_SCALE, plan[i].module, ".weight_scale", 2, rows, groups, ZQ_ST_F16);
    }
    return n;
}

static uint64_t entry_bytes(const ct_entry *e)
{
    uint64_t n = e->esize;
    for (int d = 0; d < e->ndim; d++) n *= (uint64_t)e->shape[d];
    return n;
}

typedef struct {
    zq_atomic *out;
    unsigned char buf[1 << 20];
    size_t len;
} sink;

static zq_status put(sink *s, const void *p, size_t n, zq_error *err)
{
    if (s->len + n > sizeof s->buf) {
        ZQ_TRY(zq_atomic_write(s->out, s->buf, s->len, err));
        s->len = 0;
    }
    if (n > sizeof s->buf) return zq_atomic_write(s->out, p, n, err);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return ZQ_OK;
}

uint32_t zq_ct_pack(const int *values, int n, int bits)
{
    uint32_t w = 0, offset = 1u << (bits - 1), mask = (1u << bits) - 1;
    for (int k = 0; k < n; k++) w |= (((uint32_t)values[k] + offset) & mask) << (k * bits);
    return w;
}

/* One row of codes as int32 words of 32/bits values, into out. A .zq row
 * read as little-endian words is already compressed-tensors' layout (INT4:
 * element 2k in the low nibble of byte k, so element k of a word sits at
 * bits 4k; INT8: a byte each); symmetric codes are two's complement and
 * compressed-tensors stores code + 2^(bits-1), which flips each value's top
 * bit. Scale-and-minimum codes are unsigned, stored as they are. The last
 * word of a row whose width is not a whole number of words is packed value
 * by value, its padding zero. */
static void pack_row(const zq_tensor *t, const uint8_t *row, unsigned char *out)
{
    const zq_format *fmt = zq_format_get(t->spec.format);
    int bits = fmt->code_bits, pf = 32 / bits;
    uint64_t whole = t->grid.cols / (uint64_t)pf;
    uint32_t flip = 0; /* the top bit of each code of a word */
    for (int k = 0; t->spec.symmetric && k < pf; k++) flip |= 1u << (k * bits + bits - 1);
    for (uint64_t w = 0; w < whole; w++) zq_store_le32(out + 4 * w, zq_load_le32(row + 4 * w) ^ flip);
    int rest = (int)(t->grid.cols - whole * (uint64_t)pf), v[8];
    if (!rest) return;
    for (int k = 0; k < rest; k++)
        v[k] = fmt->code_at(row, whole * (uint64_t)pf + (uint64_t)k, t->spec.symmetric) -
               (t->spec.symmetric ? 0 : 1 << (bits - 1));
    zq_store_le32(out + 4 * whole, zq_ct_pack(v, rest, bits));
}

static zq_status write_entry(zq_file *f, const ct_entry *e, const ct_plan *p, sink *s, zq_error *err)
{
    const zq_tensor *t = zq_file_tensor(f, e->tensor);
    const zq_grid *g = &t->grid;
    const void *q = NULL, *sc = NULL, *mn = NULL;
    size_t len;
    if (e->piece == PIECE_DATA || (e->piece == PIECE_CODES && !p->conv1d)) { /* the stored bytes as they are */
        zq_section_kind k = e->piece == PIECE_DATA ? ZQ_SEC_DATA : ZQ_SEC_Q;
        if (!zq_tensor_numel(t)) return ZQ_OK;
        ZQ_TRY(zq_file_section(f, e->tensor, k, &q, &len, err));
        for (size_t at = 0; at < len; at += DROP_BYTES) { /* INT8 codes are int8 bytes */
            ZQ_TRY(put(s, (const unsigned char *)q + at, len - at < DROP_BYTES ? len - at : DROP_BYTES, err));
            zq_file_drop(f, e->tensor, k, at);
        }
        return ZQ_OK;
    }
    if (e->piece == PIECE_SHAPE) {
        unsigned char b[16];
        zq_store_le64(b, g->rows);
        zq_store_le64(b + 8, g->cols);
        return put(s, b, 16, err);
    }
    ZQ_TRY(zq_file_section(f, e->tensor, ZQ_SEC_Q, &q, &len, err));
    ZQ_TRY(zq_file_section(f, e->tensor, ZQ_SEC_SCALE, &sc, &len, err));
    if (!t->spec.symmetric) ZQ_TRY(zq_file_section(f, e->tensor, ZQ_SEC_MIN, &mn, &len, err));
    const uint8_t *codes = q;
    const uint16_t *scales = sc, *mins = mn;
    uint64_t groups = p->s.group ? g->cols / p->s.group : 1;
    /* one row (or, for a transposed matrix, the whole piece) at a time */
    uint64_t bytes = entry_bytes(e), row = e->piece == PIECE_CODES && p->conv1d ? bytes : bytes / (uint64_t)e->shape[0];
    unsigned char *buf = malloc(row ? row : 1);
    if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    if (e->piece == PIECE_CODES) { /* the checkpoint's [in, out] layout */
        zq_kernels_active()->transpose_u8(codes, g->row_bytes, g->rows, g->cols, buf);
        st = put(s, buf, bytes, err);
    } else if (e->piece == PIECE_PACKED) {
        for (uint64_t r = 0; st == ZQ_OK && r < g->rows; r++) {
            pack_row(t, codes + r * g->row_bytes, buf);
            st = put(s, buf, row, err);
            if (r * g->row_bytes % DROP_BYTES < g->row_bytes) zq_file_drop(f, e->tensor, ZQ_SEC_Q, r * g->row_bytes);
        }
    } else if (e->piece == PIECE_SCALE) { /* [out, groups]: CT group j is zquant's */
        for (uint64_t r = 0; st == ZQ_OK && r < g->rows; r++) {
            for (uint64_t j = 0; j < groups; j++) zq_store_le16(buf + 2 * j, scales[zq_grid_group(g, r, j).index]);
            st = put(s, buf, row, err);
        }
    } else { /* PIECE_ZERO: each group's k (see zero_point), packed along the output */
        int bits = p->s.bits, pf = 32 / bits;
        for (uint64_t r0 = 0; st == ZQ_OK && r0 < g->rows; r0 += (uint64_t)pf) {
            for (uint64_t j = 0; j < groups; j++) {
                uint32_t w = 0;
                for (int k = 0; k < pf && r0 + (uint64_t)k < g->rows; k++) {
                    uint64_t gi = zq_grid_group(g, r0 + (uint64_t)k, j).index;
                    uint32_t zp = 0;
                    zero_point(scales[gi], mins[gi], bits, &zp); /* exact: plan_quantized checked every group */
                    w |= zp << (k * bits);
                }
                zq_store_le32(buf + 4 * j, w);
            }
            st = put(s, buf, row, err);
        }
    }
    free(buf);
    return st;
}

/* One safetensors file of entries [first, last). */
static zq_status write_shard(zq_file *f, const ct_plan *plan, const ct_entry *e, size_t first, size_t last,
                             const char *path, const char *shown, uint64_t *bytes, const zq_export_opts *o,
                             uint64_t *done, uint64_t total, zq_error *err)
{
    zq_st_entry *se = malloc((last - first + 1) * sizeof *se);
    if (!se) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t k = first; k < last; k++) se[k - first] = (zq_st_entry){e[k].name, e[k].ndim, e[k].shape, e[k].dtype, e[k].esize};
    size_t hlen;
    unsigned char *h = zq_st_header(se, last - first, &hlen);
    free(se);
    if (!h) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_atomic out;
    zq_status st = zq_atomic_open_as(&out, path, shown, 0, err);
    sink *s = st == ZQ_OK ? malloc(sizeof *s) : NULL;
    if (st == ZQ_OK && !s) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) {
        s->out = &out;
        s->len = 0;
        st = zq_atomic_write(&out, h, hlen, err);
    }
    *bytes += hlen;
    for (size_t k = first; st == ZQ_OK && k < last; k++) {
        st = write_entry(f, &e[k], &plan[e[k].tensor], s, err);
        *bytes += entry_bytes(&e[k]);
        *done += entry_bytes(&e[k]);
        if (k + 1 == last || e[k + 1].tensor != e[k].tensor) zq_file_release(f, e[k].tensor);
        if (o->progress) o->progress(o->progress_ctx, *done, total, e[k].name);
    }
    if (st == ZQ_OK && s->len) st = zq_atomic_write(&out, s->buf, s->len, err);
    free(s);
    free(h);
    if (st == ZQ_OK) return zq_atomic_commit(&out, err);
    zq_atomic_abort(&out);
    return st;
}

static zq_status write_file(const zq_atomic_dir *d, const char *name, const void *data, size_t len, uint64_t *bytes,
                           zq_error *err)
{
    char *path = zq_atomic_dir_file(d, name), *shown = zq_atomic_dir_shown(d, name);
    zq_atomic out;
    zq_status st = path && shown ? zq_atomic_open_as(&out, path, shown, 0, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    free(path), free(shown);
    if (st != ZQ_OK) return st;
    if (st == ZQ_OK) st = zq_atomic_write(&out, data, len, err);
    if (st == ZQ_OK) return *bytes += len, zq_atomic_commit(&out, err);
    zq_atomic_abort(&out);
    return st;
}

/* The files of the original folder a runtime needs besides the weights. */
static zq_status copy_model_files(const zq_export_opts *o, const zq_atomic_dir *d, zq_export_report *r, zq_error *err)
{
    for (const char *const *name = zq_model_files; *name; name++) {
        const char *one[] = {*name, NULL};
        char *shown, *data;
        size_t len;
        ZQ_TRY(zq_export_find_file(o, one, &shown, &data, &len, err));
        zq_status st = data ? write_file(d, *name, data, len, &r->bytes, err) : ZQ_OK;
        if (st == ZQ_OK && data) r->files++;
        free(shown), free(data);
        ZQ_TRY(st);
    }
    return ZQ_OK;
}

zq_status zq_export_ct(const zq_export_opts *o, zq_file *f, zq_export_report *r, zq_error *err)
{
    size_t n = zq_file_count(f);
    const zq_arch_desc *desc = zq_arch_find(zq_file_model_type(f));
    zq_act_mode act = zq_act_mode_of(zq_file_activation(f));
    ct_plan *plan = calloc(n + 1, sizeof *plan);
    ct_scheme *groups = calloc(n + 1, sizeof *groups);
    ct_entry *e = calloc(4 * n + 1, sizeof *e);
    zq_status st = plan && groups && e ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    int ngroups = 0, int4_with_act = 0;
    for (size_t i = 0; st == ZQ_OK && i < n; i++) {
        const zq_tensor *t = zq_file_tensor(f, i);
        if (!zq_qspec_quantized(&t->spec)) continue;
        st = plan_quantized(f, i, act, &plan[i], err);
        plan[i].conv1d = t->transposed;
        int4_with_act |= zq_act_mode_per_token(act) && !plan[i].s.w8a8;
        int k = 0;
        while (k < ngroups && !same_scheme(&groups[k], &plan[i].s)) k++;
        if (k == ngroups) groups[ngroups++] = plan[i].s;
        plan[i].group = k;
        r->quantized++;
    }
    if (st == ZQ_OK) st = check_fused(f, desc, plan, err);
    char *config = st == ZQ_OK ? config_json(f, plan, groups, ngroups, zq_file_activation(f), err) : NULL;
    if (st == ZQ_OK && !config) st = ZQ_ERR_NOMEM;
    size_t ne = st == ZQ_OK ? entries(f, plan, e) : 0;
    /* shards of at most 5 GB (a bigger tensor gets one of its own) */
    int nshards = 1;
    uint64_t in_shard = 0, total = 0;
    for (size_t k = 0; k < ne; k++) {
        uint64_t b = entry_bytes(&e[k]);
        if (in_shard && in_shard + b > (o->shard_bytes ? o->shard_bytes : DEFAULT_SHARD_BYTES)) nshards++, in_shard = 0;
        e[k].shard = nshards - 1;
        in_shard += b;
        total += b;
    }
    const char *inputs[] = {o->input, o->model_dir, NULL};
    zq_atomic_dir dir = {0};
    if (st == ZQ_OK) st = zq_atomic_dir_open(&dir, o->output, o->force, inputs, err);
    if (st == ZQ_OK) st = write_file(&dir, "config.json", config, strlen(config), &r->bytes, err);
    cJSON *index = cJSON_CreateObject(), *map = cJSON_CreateObject();
    uint64_t done = 0;
    for (int sh = 0, first = 0; st == ZQ_OK && sh < nshards; sh++) {
        size_t last = (size_t)first;
        while (last < ne && e[last].shard == sh) last++;
        char name[64];
        if (nshards == 1) snprintf(name, sizeof name, "model.safetensors");
        else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", sh + 1, nshards);
        char *path = zq_atomic_dir_file(&dir, name), *shown = zq_atomic_dir_shown(&dir, name);
        st = path && shown ? write_shard(f, plan, e, (size_t)first, last, path, shown, &r->bytes, o, &done, total, err)
                           : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        free(path), free(shown);
        for (size_t k = (size_t)first; k < last; k++) cJSON_AddStringToObject(map, e[k].name, name);
        r->files++;
        first = (int)last;
    }
    if (st == ZQ_OK && nshards > 1) {
        cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
        cJSON_AddNumberToObject(meta, "total_size", (double)total);
        cJSON_AddItemToObject(index, "weight_map", map);
        map = NULL;
        char *text = cJSON_Print(index);
        st = text ? write_file(&dir, "model.safetensors.index.json", text, strlen(text), &r->bytes, err)
                  : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        free(text);
        r->files++;
    }
    cJSON_Delete(map);
    cJSON_Delete(index);
    if (st == ZQ_OK) st = copy_model_files(o, &dir, r, err);
    if (st == ZQ_OK) r->files++; /* config.json */
    if (st == ZQ_OK) st = zq_atomic_dir_commit(&dir, err);
    else zq_atomic_dir_abort(&dir);
    for (size_t i = 0; i < n; i++) r->tensors += !zq_arch_is_buffer(zq_file_tensor(f, i)->name);
    size_t at = 0;
    for (int k = 0; k < ngroups && at < sizeof r->summary; k++)
        at += (size_t)snprintf(r->summary + at, sizeof r->summary - at, "%s%s W%d%s%s", k ? ", " : "",
                               format_of(&groups[k]), groups[k].bits, groups[k].w8a8 ? "A8" : "A16",
                               groups[k].group ? " groups" : " per row");
    if (!ngroups) snprintf(r->summary, sizeof r->summary, "FP16 only");
    if (int4_with_act)
        snprintf(r->note, sizeof r->note, "INT4 layers are written as W4A16: no vLLM kernel runs INT4 weights with "
                 "INT8 activations (attention stays W8A8)");
    free(config);
    free(plan);
    free(groups);
    free(e);
    return st;
}
