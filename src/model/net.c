/* Weights for the engine, by Hugging Face name, from either kind of file.
 * Linear weights always come out [out, in]: GPT-2's Conv1D [in, out] ones
 * are transposed, and fused projections (GPT-2's c_attn, NeoX's
 * query_key_value) are split into q, k and v. */
#include "zquant/net.h"
#include "zquant/zq.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "model/check.h"
#include "nn/nn.h"
#include "nn/packed.h"
#include "zquant/source.h"


typedef struct {
    float **buf; /* what the block owns */
    int nbuf;
    zq_packed_linear **packed; /* its Linears run from stored codes */
    int npacked;
    zq_block blk;
    zq_net_tensor *units; /* its tensors: Linear weights, then vectors */
    int nunits;
    zq_linear *experts; /* blk.experts */
    int loaded;
} block_slot;

/* Room for a block's tensors: every part of the row once, each expert's three. */
#define SLOT_ROOM(a) (48 + 3 * (size_t)(a)->n_experts)

#define NPARTS (ZQ_PART_HEAD + 1)

struct zq_net {
    char *path;
    zq_arch arch;
    zq_source *src;
    int cache_all, all_quantized;
    uint64_t budget;
    int packed;                /* zq_net_run_packed */
    int packed_any;            /* ... and the file has stored codes or FP16 matrices it runs from */
    zq_stored_codes embed;     /* packed: the embedding as stored, when WEIGHT(EMBED) is not loaded */
    zq_packed_linear *head;    /* packed: the head run from its stored values */
    zq_act_mode packed_mode;
    block_slot *blocks;
    float *outer[NPARTS][2]; /* the tensors outside blocks: [part][0] weight, [part][1] bias */
    /* the embedding's and the head's weight when the file stores it as
     * codes or FP16 (their index + 1): left there until the FP path asks
     * (outer_weight), as the packed path never expands them */
    long deferred[NPARTS];
    int outer_dropped;       /* zq_net_drop_outer */
};

#define WEIGHT(n, part) ((n)->outer[part][0])
#define BIAS(n, part) ((n)->outer[part][1])

const zq_arch *zq_net_arch(const zq_net *n) { return &n->arch; }
const char *zq_net_path(const zq_net *n) { return n->path; }
const zq_activation *zq_net_activation(const zq_net *n)
{
    return zq_source_activation(n->src);
}
void zq_net_mark_all_quantized(zq_net *n) { n->all_quantized = 1; }
int zq_net_runs_packed(const zq_net *n) { return n->packed && n->packed_any; }

/* ---- finding and reading tensors ----------------------------------------- */

static size_t count(const zq_net *n) { return zq_source_count(n->src); }

static const char *name_at(const zq_net *n, size_t i)
{
    return zq_source_tensor(n->src, i)->name;
}

/* The tensor whose name is `want` or ends in "." + want (any wrapper prefix). */
static long find(const zq_net *n, const char *want)
{
    size_t wl = strlen(want);
    long best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < count(n); i++) {
        const char *s = name_at(n, i);
        size_t sl = strlen(s);
        if (sl < wl || strcmp(s + sl - wl, want) != 0 || (sl > wl && s[sl - wl - 1] != '.')) continue;
        if (best < 0 || sl < best_len) best = (long)i, best_len = sl;
    }
    return best;
}

static uint64_t numel_at(const zq_net *n, size_t i) { return zq_source_tensor(n->src, i)->numel; }

static int quantized_at(const zq_net *n, size_t i)
{
    return n->all_quantized || zq_source_act_quantized(n->src, i);
}

/* Reads tensor i as float; a Conv1D weight ([in, out] on disk) as [out, in]. */
static zq_status read_tensor(zq_net *n, size_t i, int conv1d, float *out, zq_error *err)
{
    const zq_tensor_info *t = zq_source_tensor(n->src, i);
    zq_status st = conv1d ? zq_source_read_columns(n->src, i, 0, t->cols, out, err)
                          : zq_source_read(n->src, i, 0, t->rows, 0, t->cols, out, err);
    /* the floats are the copy from here: the file's pages leave the
     * process (a 7B checkpoint's would otherwise pile up in its RSS) */
    zq_source_release(n->src, i);
    return st;
}

/* Loads the tensor named `want` with exactly `expect` elements into a new
 * buffer; a missing tensor is an error unless optional. */
static zq_status load(zq_net *n, const char *want, uint64_t expect, int conv1d, int optional, float **out,
                      long *index, zq_error *err)
{
    *out = NULL;
    long i = find(n, want);
    if (index) *index = i;
    if (i < 0) {
        if (optional) return ZQ_OK;
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' not found (model_type %s)", n->path, want,
                       n->arch.model_type);
    }
    if (numel_at(n, (size_t)i) != expect)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %llu elements, the config implies %llu", n->path,
                       name_at(n, (size_t)i), (unsigned long long)numel_at(n, (size_t)i), (unsigned long long)expect);
    float *buf = malloc(expect * sizeof *buf + 1);
    if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "'%s': out of memory loading '%s'", n->path, want);
    zq_status st = read_tensor(n, (size_t)i, conv1d, buf, err);
    /* as quantize refuses them: a NaN would only show as "ppl nan" or ids 0 0 0 */
    for (uint64_t k = 0; st == ZQ_OK && k < expect; k++)
        if (!isfinite(buf[k]))
            st = zq_fail(err, ZQ_ERR_DATA, "'%s': tensor '%s': NaN or Inf (element %llu of %llu, as read)", n->path,
                         name_at(n, (size_t)i), (unsigned long long)k, (unsigned long long)expect);
    if (st != ZQ_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return ZQ_OK;
}

/* ---- blocks ---------------------------------------------------------------- */

typedef struct {
    zq_net *n;
    block_slot *s;
    int layer, expert;
    char name[256];
    zq_error *err;
    zq_stored_codes qkv_codes; /* a fused projection's, packed by fused() */
    long qkv_index;
} loader;

static const char *nm(loader *L, const char *fmt)
{
    snprintf(L->name, sizeof L->name, fmt, L->layer, L->expert); /* an expert's name has its number second */
    return L->name;
}

static zq_status keep(loader *L, float *p)
{
    if (p) L->s->buf[L->s->nbuf++] = p;
    return ZQ_OK;
}

/* Records a loaded tensor of the block under its checkpoint name. */
static zq_status unit(loader *L, long idx, float *p, int rows, int cols, int conv1d, int vector)
{
    if (!p) return ZQ_OK;
    zq_net_tensor *u = &L->s->units[L->s->nunits];
    *u = (zq_net_tensor){strdup(name_at(L->n, (size_t)idx)), p, rows, cols, conv1d, 0, vector};
    if (!u->name) return zq_fail(L->err, ZQ_ERR_NOMEM, "out of memory");
    L->s->nunits++;
    return ZQ_OK;
}

static zq_status vec(loader *L, const char *fmt, int len, int optional, const float **out)
{
    float *p;
    long idx;
    ZQ_TRY(load(L->n, nm(L, fmt), (uint64_t)len, 0, optional, &p, &idx, L->err));
    *out = p;
    keep(L, p);
    return unit(L, idx, p, len, 1, 0, 1);
}

/* A Linear part: its weight, and its bias when the table lists one (a
 * bias is optional: some checkpoints of a family have them). */
/* The stored codes of tensor idx when the net runs packed and the file
 * has them for a matrix of out x in; st->q NULL otherwise. */
static zq_status stored_codes(loader *L, long idx, int out_dim, int in_dim, int conv1d, zq_stored_codes *st)
{
    memset(st, 0, sizeof *st);
    if (!L->n->packed || idx < 0) return ZQ_OK;
    ZQ_TRY(zq_source_codes(L->n->src, (size_t)idx, st, L->err));
    /* FP16 values keep the checkpoint's layout: a Conv1D's [in, out] is read as FP32, transposed */
    if (st->spec.format == ZQ_FORMAT_F16 && conv1d) memset(st, 0, sizeof *st);
    if (st->q && (st->grid.rows != (uint64_t)out_dim || st->grid.cols != (uint64_t)in_dim))
        return zq_fail(L->err, ZQ_ERR_FORMAT, "'%s': tensor '%s': codes of %llu x %llu, the config implies %d x %d",
                       L->n->path, name_at(L->n, (size_t)idx), (unsigned long long)st->grid.rows,
                       (unsigned long long)st->grid.cols, out_dim, in_dim);
    return ZQ_OK;
}

/* A Linear run from stored codes: rows (out of them, NULL: all) of the
 * stored matrix, owned by the block. */
static zq_status packed_linear(loader *L, const zq_stored_codes *st, const uint32_t *rows, int out_dim,
                               const float *bias, const zq_packed_linear **out)
{
    zq_packed_linear *p = calloc(1, sizeof *p);
    if (!p) return zq_fail(L->err, ZQ_ERR_NOMEM, "out of memory");
    int integer = L->n->packed_mode != ZQ_AQ_NONE && L->n->packed_mode != ZQ_AQ_CALIBRATE;
    zq_status r = zq_packed_init(p, st, rows, out_dim, bias, integer, L->err);
    if (r != ZQ_OK) {
        free(p);
        return r;
    }
    L->s->packed[L->s->npacked++] = p;
    *out = p;
    return ZQ_OK;
}

static zq_status lin(loader *L, const zq_arch_tensor *w, const zq_arch_tensor *bias, zq_linear *dst)
{
    int out_dim, in_dim, conv1d = (w->flags & ZQ_T_CONV1D) != 0;
    zq_arch_linear_shape(&L->n->arch, w->part, &out_dim, &in_dim);
    float *wp = NULL, *b = NULL;
    long idx = find(L->n, nm(L, w->name));
    zq_stored_codes st;
    ZQ_TRY(stored_codes(L, idx, out_dim, in_dim, conv1d, &st));
    if (!st.q) {
        ZQ_TRY(load(L->n, nm(L, w->name), (uint64_t)out_dim * in_dim, conv1d, 0, &wp, &idx, L->err));
        keep(L, wp);
        ZQ_TRY(unit(L, idx, wp, out_dim, in_dim, conv1d, 0));
    }
    if (bias) {
        long bidx;
        ZQ_TRY(load(L->n, nm(L, bias->name), (uint64_t)out_dim, 0, 1, &b, &bidx, L->err));
        keep(L, b);
        ZQ_TRY(unit(L, bidx, b, out_dim, 1, 0, 1));
    }
    int is_fused = w->part == ZQ_PART_QKV || w->part == ZQ_PART_GATE_UP;
    /* a fused one's parts get their own (fused()); experts and the router
     * share the slots of the MLP whose input they read */
    static const int moe_slot[] = {ZQ_PART_UP, ZQ_PART_GATE, ZQ_PART_UP, ZQ_PART_DOWN}; /* router, gate, up, down */
    int slot = is_fused ? 0 : w->part >= ZQ_PART_ROUTER ? moe_slot[w->part - ZQ_PART_ROUTER] : (int)w->part;
    *dst = (zq_linear){.w = wp, .b = b, .out = out_dim, .in = in_dim, .quantized = quantized_at(L->n, (size_t)idx),
                        .id = L->layer * ZQ_LINEAR_SLOTS + slot};
    /* a fused projection is split into its parts' packed Linears by the caller */
    if (st.q && !is_fused) {
        ZQ_TRY(packed_linear(L, &st, NULL, out_dim, b, &dst->packed));
        if (dst->packed->k) zq_source_drop(L->n->src, (size_t)idx); /* packed: the stored rows only as a fallback */
    }
    if (st.q && is_fused) L->qkv_codes = st, L->qkv_index = idx;
    return ZQ_OK;
}

/* A fused Linear's parts in the engine's order: q, k, v (q/k/v), or gate,
 * up (Phi-3's gate_up_proj), each with its rows and calibration slot. */
typedef struct {
    zq_linear *dst[3];
    int rows[3], slot[3], n;
    int per_head; /* NeoX: rows grouped per head, [h][q|k|v][hd] */
} fused_parts;

static fused_parts parts_of(const zq_arch *a, zq_block *b, const zq_arch_tensor *w)
{
    int qd = a->n_heads * a->head_dim, kvd = a->n_kv_heads * a->head_dim;
    if (w->part == ZQ_PART_GATE_UP)
        return (fused_parts){{&b->gate, &b->up}, {a->inter, a->inter}, {ZQ_PART_GATE, ZQ_PART_UP}, 2, 0};
    return (fused_parts){{&b->q, &b->k, &b->v}, {qd, kvd, kvd}, {ZQ_PART_Q, ZQ_PART_K, ZQ_PART_V}, 3,
                         (w->flags & ZQ_T_QKV_PER_HEAD) != 0};
}

/* The stored row of row r of part p: the parts one after the other, or
 * NeoX's per-head interleaving (every part of heads x hd rows). */
static size_t fused_row(const zq_arch *a, const fused_parts *f, int p, size_t r)
{
    size_t hd = (size_t)a->head_dim, at = 0;
    if (f->per_head) return (r / hd * 3 + (size_t)p) * hd + r % hd;
    for (int k = 0; k < p; k++) at += (size_t)f->rows[k];
    return at + r;
}

/* The parts of a fused projection run from its stored codes. */
static zq_status fused_packed(loader *L, const zq_linear *all, const fused_parts *f)
{
    const zq_arch *a = &L->n->arch;
    uint32_t *map = malloc((size_t)all->out * sizeof *map);
    if (!map) return zq_fail(L->err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    for (int p = 0, at = 0; p < f->n && st == ZQ_OK; at += f->rows[p++]) {
        for (int r = 0; r < f->rows[p]; r++) map[r] = (uint32_t)fused_row(a, f, p, (size_t)r);
        *f->dst[p] = (zq_linear){.b = all->b ? all->b + at : NULL, .out = f->rows[p], .in = a->hidden,
                                 .quantized = all->quantized, .id = L->layer * ZQ_LINEAR_SLOTS + f->slot[p]};
        st = packed_linear(L, &L->qkv_codes, map, f->rows[p], f->dst[p]->b, &f->dst[p]->packed);
    }
    free(map);
    if (st == ZQ_OK && f->dst[0]->packed->k) zq_source_drop(L->n->src, (size_t)L->qkv_index);
    return st;
}

/* A fused projection: views into one buffer, its rows (and its bias) in
 * the engine's order first. */
static zq_status fused(loader *L, const zq_arch_tensor *w, const zq_arch_tensor *bias, zq_block *b)
{
    const zq_arch *a = &L->n->arch;
    int C = a->hidden;
    fused_parts f = parts_of(a, b, w);
    zq_linear all;
    int first = L->s->nunits;
    memset(&L->qkv_codes, 0, sizeof L->qkv_codes);
    ZQ_TRY(lin(L, w, bias, &all));
    size_t rows = (size_t)all.out;
    if (f.per_head) {
        for (int k = first; k < L->s->nunits; k++) L->s->units[k].neox_qkv = 1; /* the weight and its bias */
        float *wp = (float *)all.w, *bp = (float *)all.b;
        float *tw = wp ? malloc(rows * C * sizeof *tw) : NULL, *tb = malloc(rows * sizeof *tb);
        if ((wp && !tw) || !tb) {
            free(tw);
            free(tb);
            return zq_fail(L->err, ZQ_ERR_NOMEM, "out of memory");
        }
        for (int part = 0, at = 0; part < f.n; at += f.rows[part++])
            for (size_t r = 0; r < (size_t)f.rows[part]; r++) {
                size_t from = fused_row(a, &f, part, r), to = (size_t)at + r;
                if (wp) memcpy(tw + to * C, wp + from * C, (size_t)C * sizeof *tw);
                if (bp) tb[to] = bp[from];
            }
        if (wp) memcpy(wp, tw, rows * C * sizeof *tw);
        if (bp) memcpy(bp, tb, rows * sizeof *tb);
        free(tw);
        free(tb);
    }
    if (L->qkv_codes.q) return fused_packed(L, &all, &f);
    for (int p = 0, at = 0; p < f.n; at += f.rows[p++])
        *f.dst[p] = (zq_linear){.w = all.w + (size_t)at * C, .b = all.b ? all.b + at : NULL, .out = f.rows[p], .in = C,
                                .quantized = all.quantized, .id = L->layer * ZQ_LINEAR_SLOTS + f.slot[p]};
    return ZQ_OK;
}

static zq_linear *linear_of(zq_block *b, zq_part p)
{
    zq_linear *lin[ZQ_LINEAR_SLOTS] = {&b->q, &b->k, &b->v, &b->o, &b->up, &b->gate, &b->down};
    return p < ZQ_LINEAR_SLOTS ? lin[p] : NULL;
}

static const zq_arch_tensor *bias_of(const zq_arch_tensor *rows, zq_part p)
{
    for (const zq_arch_tensor *e = rows; e->name; e++)
        if (e->part == p && (e->flags & ZQ_T_BIAS)) return e;
    return NULL;
}

/* Every block tensor the architecture's row lists, in its order. */
static zq_status load_block(zq_net *n, int layer, block_slot *s, zq_error *err)
{
    const zq_arch *a = &n->arch;
    const zq_arch_tensor *rows = a->desc->tensors;
    loader L = {.n = n, .s = s, .layer = layer, .err = err};
    zq_block *b = &s->blk;
    size_t room = SLOT_ROOM(a);
    if (!s->buf) s->buf = calloc(room, sizeof *s->buf);
    if (!s->packed) s->packed = calloc(room, sizeof *s->packed);
    if (!s->units) s->units = calloc(room, sizeof *s->units);
    if (!s->experts && a->n_experts) s->experts = calloc(3 * (size_t)a->n_experts, sizeof *s->experts);
    if (!s->buf || !s->packed || !s->units || (a->n_experts && !s->experts))
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    memset(b, 0, sizeof *b);
    int sparse = zq_arch_layer_moe(a, layer);
    b->n_experts = sparse ? a->n_experts : 0;
    b->experts = s->experts;
    b->window = zq_arch_layer_window(a, layer);
    b->local_rope = b->window && a->rope_local_theta > 0;
    for (const zq_arch_tensor *e = rows; e->name; e++) {
        if (!zq_part_in_block(e->part)) continue;
        int bias = (e->flags & ZQ_T_BIAS) != 0, optional = (e->flags & ZQ_T_OPTIONAL) != 0;
        if (e->part == ZQ_PART_NORM1) ZQ_TRY(vec(&L, e->name, a->hidden, optional, bias ? &b->norm1_b : &b->norm1_w));
        else if (e->part == ZQ_PART_NORM2) ZQ_TRY(vec(&L, e->name, a->hidden, optional, bias ? &b->norm2_b : &b->norm2_w));
        else if (e->part == ZQ_PART_Q_NORM) ZQ_TRY(vec(&L, e->name, a->head_dim, optional, &b->q_norm_w));
        else if (e->part == ZQ_PART_K_NORM) ZQ_TRY(vec(&L, e->name, a->head_dim, optional, &b->k_norm_w));
        else if (e->part == ZQ_PART_POST_NORM1) ZQ_TRY(vec(&L, e->name, a->hidden, optional, &b->post_norm1_w));
        else if (e->part == ZQ_PART_POST_NORM2) ZQ_TRY(vec(&L, e->name, a->hidden, optional, &b->post_norm2_w));
        else if (bias) continue; /* loaded with its weight */
        else if (e->part == ZQ_PART_QKV || e->part == ZQ_PART_GATE_UP) ZQ_TRY(fused(&L, e, bias_of(rows, e->part), b));
        else if (e->part == ZQ_PART_ROUTER) {
            if (sparse) ZQ_TRY(lin(&L, e, bias_of(rows, e->part), &b->router));
        } else if (e->part >= ZQ_PART_EXP_GATE) {
            for (L.expert = 0; sparse && L.expert < a->n_experts; L.expert++)
                ZQ_TRY(lin(&L, e, NULL, &b->experts[3 * L.expert + (e->part - ZQ_PART_EXP_GATE)]));
        } else if (!sparse || (e->part != ZQ_PART_UP && e->part != ZQ_PART_GATE && e->part != ZQ_PART_DOWN))
            ZQ_TRY(lin(&L, e, bias_of(rows, e->part), linear_of(b, e->part)));
    }
    s->loaded = 1;
    return ZQ_OK;
}

static void drop_block(block_slot *s)
{
    for (int k = 0; k < s->npacked; k++) zq_packed_free(s->packed[k]), free(s->packed[k]);
    s->npacked = 0;
    for (int k = 0; k < s->nbuf; k++) free(s->buf[k]);
    for (int k = 0; k < s->nunits; k++) free((char *)s->units[k].name);
    s->nunits = 0;
    s->nbuf = 0;
    s->loaded = 0;
}

zq_status zq_net_block(zq_net *n, int layer, zq_block *blk, zq_error *err)
{
    if (layer < 0 || layer >= n->arch.n_layers) return zq_fail(err, ZQ_ERR_INTERNAL, "no layer %d", layer);
    block_slot *s = &n->blocks[layer];
    if (!s->loaded) {
        zq_status st = load_block(n, layer, s, err);
        if (st != ZQ_OK) {
            drop_block(s);
            return st;
        }
    }
    *blk = s->blk;
    return ZQ_OK;
}

int zq_net_block_tensors(zq_net *n, int layer, const zq_net_tensor **units)
{
    if (layer < 0 || layer >= n->arch.n_layers || !n->blocks[layer].loaded) return 0;
    *units = n->blocks[layer].units;
    return n->blocks[layer].nunits;
}

void zq_net_release_block(zq_net *n, int layer)
{
    if (!n->cache_all && layer >= 0 && layer < n->arch.n_layers) drop_block(&n->blocks[layer]);
}

/* Bytes the weights take in memory when blocks are loaded as n says;
 * *stored (may be NULL): whether any tensor runs from stored values. */
static uint64_t weight_bytes(zq_net *n, int *stored)
{
    uint64_t total = 0;
    if (stored) *stored = 0;
    for (size_t i = 0; i < zq_source_count(n->src); i++) {
        zq_stored_codes st;
        zq_error ignore = {0};
        if (n->packed && zq_source_codes(n->src, i, &st, &ignore) == ZQ_OK && st.q) {
            /* packed layouts keep the stored codes' size (nibbles stay
             * nibbles) and add a float sum and scale per group; counting
             * them twice made a 7B w8a8 file (6.7 GB) miss a 12 GB budget
             * and repack every block for every decoded token */
            total += st.grid.rows * st.grid.row_bytes + st.grid.row_groups * st.grid.col_groups * 8;
            if (stored) *stored = 1;
        } else
            total += zq_source_tensor(n->src, i)->numel * 4;
    }
    return total;
}

/* The stored codes of the outer tensor of `part` (its weight), when the
 * file has them for a [rows, cols] matrix. */
static zq_status outer_codes(zq_net *n, zq_part part, int rows, int cols, zq_stored_codes *st, zq_error *err)
{
    memset(st, 0, sizeof *st);
    for (const zq_arch_tensor *e = n->arch.desc->tensors; e->name; e++) {
        if (e->part != part || (e->flags & ZQ_T_BIAS)) continue;
        long i = find(n, e->name);
        if (i >= 0) ZQ_TRY(zq_source_codes(n->src, (size_t)i, st, err));
        if (st->q && (st->grid.rows != (uint64_t)rows || st->grid.cols != (uint64_t)cols)) memset(st, 0, sizeof *st);
        return ZQ_OK;
    }
    return ZQ_OK;
}

zq_status zq_net_run_packed(zq_net *n, zq_act_mode mode, zq_error *err)
{
    const zq_arch *a = &n->arch;
    for (int l = 0; l < a->n_layers; l++) drop_block(&n->blocks[l]);
    n->packed = 1;
    n->packed_mode = mode;
    /* the head (its own, or the embedding it is tied to) and the embedding
     * as stored: FP16 values or codes, not FP32 copies */
    zq_stored_codes emb, head;
    ZQ_TRY(outer_codes(n, ZQ_PART_EMBED, a->vocab, a->emb_dim, &emb, err));
    ZQ_TRY(outer_codes(n, ZQ_PART_HEAD, a->vocab, a->emb_dim, &head, err));
    int tied = !WEIGHT(n, ZQ_PART_HEAD) && !n->deferred[ZQ_PART_HEAD];
    const zq_stored_codes *h = tied ? &emb : &head;
    if (h->q && !a->mlm_head) {
        n->head = calloc(1, sizeof *n->head);
        if (!n->head) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        zq_status st = zq_packed_init(n->head, h, NULL, a->vocab, BIAS(n, ZQ_PART_HEAD), 0, err);
        if (st != ZQ_OK) {
            free(n->head);
            n->head = NULL;
            return st;
        }
        if (!tied) free(WEIGHT(n, ZQ_PART_HEAD)), WEIGHT(n, ZQ_PART_HEAD) = NULL, n->deferred[ZQ_PART_HEAD] = 0;
    }
    if (emb.q && (!tied || n->head)) {
        n->embed = emb;
        free(WEIGHT(n, ZQ_PART_EMBED));
        WEIGHT(n, ZQ_PART_EMBED) = NULL;
        n->deferred[ZQ_PART_EMBED] = 0;
    }
    n->cache_all = weight_bytes(n, &n->packed_any) <= n->budget;
    return ZQ_OK;
}
int zq_net_linear_ids(const zq_net *n) { return n->arch.n_layers * ZQ_LINEAR_SLOTS; }

zq_status zq_net_weight_bytes(zq_net *n, uint64_t *bytes, zq_error *err)
{
    const zq_arch *a = &n->arch;
    uint64_t total = 0;
    for (int l = 0; l < a->n_layers; l++) {
        zq_block blk;
        ZQ_TRY(zq_net_block(n, l, &blk, err));
        const block_slot *s = &n->blocks[l];
        for (int k = 0; k < s->nunits; k++) total += (uint64_t)s->units[k].rows * (uint64_t)s->units[k].cols * 4;
        for (int k = 0; k < s->npacked; k++) total += zq_packed_bytes(s->packed[k]);
        zq_net_release_block(n, l);
    }
    /* the head: its own matrix, or the embedding it is tied to */
    total += n->head ? zq_packed_bytes(n->head) : (uint64_t)a->vocab * (uint64_t)a->emb_dim * 4;
    *bytes = total;
    return ZQ_OK;
}

/* ---- embeddings and head ---------------------------------------------------- */

static zq_status load_outer(zq_net *n, zq_error *err)
{
    const zq_arch *a = &n->arch;
    for (const zq_arch_tensor *e = a->desc->tensors; e->name; e++) {
        if (zq_part_in_block(e->part)) continue;
        float **dst = &n->outer[e->part][(e->flags & ZQ_T_BIAS) != 0];
        if (e->part == ZQ_PART_TYPES) {
            /* only token type 0 is used: the first row of [types, hidden] */
            long i = find(n, e->name);
            if (i < 0 || numel_at(n, (size_t)i) % (uint64_t)a->hidden)
                return zq_fail(err, ZQ_ERR_FORMAT, "'%s': no usable token_type_embeddings", n->path);
            *dst = malloc(numel_at(n, (size_t)i) * sizeof **dst);
            if (!*dst) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            ZQ_TRY(read_tensor(n, (size_t)i, 0, *dst, err));
            continue;
        }
        uint64_t size = zq_arch_tensor_size(a, e);
        long i = find(n, e->name);
        zq_stored_codes st;
        zq_error ignore = {0};
        if ((e->part == ZQ_PART_EMBED || e->part == ZQ_PART_HEAD) && !(e->flags & ZQ_T_BIAS) && i >= 0 &&
            numel_at(n, (size_t)i) == size && zq_source_codes(n->src, (size_t)i, &st, &ignore) == ZQ_OK && st.q) {
            n->deferred[e->part] = i + 1;
            continue;
        }
        if (size) ZQ_TRY(load(n, e->name, size, 0, (e->flags & ZQ_T_OPTIONAL) != 0, dst, NULL, err));
    }
    return ZQ_OK;
}

/* WEIGHT(part), read now if it was deferred */
static zq_status outer_weight(zq_net *n, zq_part part, zq_error *err)
{
    long i = n->deferred[part] - 1;
    if (WEIGHT(n, part) || i < 0) return ZQ_OK;
    n->deferred[part] = 0;
    return load(n, name_at(n, (size_t)i), numel_at(n, (size_t)i), 0, 0, &WEIGHT(n, part), NULL, err);
}

zq_status zq_net_embed(zq_net *n, const int32_t *tokens, int B, int T, int pos0, float *x, zq_error *err)
{
    const zq_arch *a = &n->arch;
    int C = a->hidden, E = a->emb_dim;
    if (n->outer_dropped) return zq_fail(err, ZQ_ERR_INTERNAL, "'%s': the embedding was let go", n->path);
    if (pos0 + T > a->max_pos)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': a context of %d tokens is longer than the model's %d", n->path,
                       pos0 + T, a->max_pos);
    if (!n->embed.q) ZQ_TRY(outer_weight(n, ZQ_PART_EMBED, err));
    float *row = WEIGHT(n, ZQ_PART_EMBED) ? NULL : malloc((size_t)E * sizeof *row);
    if (!WEIGHT(n, ZQ_PART_EMBED) && !row) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t id = tokens[(size_t)b * T + t];
            if (id < 0 || id >= a->vocab) {
                free(row);
                return zq_fail(err, ZQ_ERR_DATA, "token id %d is outside the vocabulary (0..%d)", id, a->vocab - 1);
            }
            float *o = x + ((size_t)b * T + t) * C;
            const float *e = row ? row : WEIGHT(n, ZQ_PART_EMBED) + (size_t)id * E;
            if (row) zq_stored_row(&n->embed, (uint32_t)id, row); /* the stored row, decoded */
            if (a->emb_proj) {
                for (int c = 0; c < C; c++) {
                    float s = 0;
                    for (int k = 0; k < E; k++) s += WEIGHT(n, ZQ_PART_PROJ_IN)[(size_t)c * E + k] * e[k];
                    o[c] = s;
                }
            } else {
                memcpy(o, e, (size_t)C * sizeof *o);
            }
            if (WEIGHT(n, ZQ_PART_POS)) {
                const float *p = WEIGHT(n, ZQ_PART_POS) + (size_t)(pos0 + t + a->pos_offset) * C;
                for (int c = 0; c < C; c++) o[c] += p[c];
            }
            if (WEIGHT(n, ZQ_PART_TYPES))
                for (int c = 0; c < C; c++) o[c] += WEIGHT(n, ZQ_PART_TYPES)[c];
            if (a->embed_scale > 0)
                for (int c = 0; c < C; c++) o[c] *= a->embed_scale;
        }
    free(row);
    if (WEIGHT(n, ZQ_PART_EMB_NORM))
        zq_layernorm(x, x, WEIGHT(n, ZQ_PART_EMB_NORM), BIAS(n, ZQ_PART_EMB_NORM), B * T, C, a->norm_eps);
    return ZQ_OK;
}

zq_status zq_net_head(zq_net *n, const float *x, int rows, float *logits, float *scratch, zq_error *err)
{
    const zq_arch *a = &n->arch;
    if (n->outer_dropped) return zq_fail(err, ZQ_ERR_INTERNAL, "'%s': the head was let go", n->path);
    int C = a->hidden, E = a->emb_dim, V = a->vocab;
    const float *h = x;
    if (a->final_norm) {
        zq_norm_forward(a, scratch, x, WEIGHT(n, ZQ_PART_FINAL_NORM), BIAS(n, ZQ_PART_FINAL_NORM), rows, NULL);
        h = scratch;
    }
    if (a->mlm_head) { /* dense, activation, LayerNorm, then the decoder */
        zq_linear t = {.w = WEIGHT(n, ZQ_PART_MLM_DENSE), .b = BIAS(n, ZQ_PART_MLM_DENSE), .out = C, .in = C};
        zq_linear_forward(&t, NULL, NULL, h, scratch, rows, 0);
        zq_activate(a->act, scratch, scratch, NULL, (size_t)rows * C);
        zq_layernorm(scratch, scratch, WEIGHT(n, ZQ_PART_MLM_NORM), BIAS(n, ZQ_PART_MLM_NORM), rows, C, a->norm_eps);
        h = scratch;
    }
    if (a->emb_proj) {
        zq_linear p = {.w = WEIGHT(n, ZQ_PART_PROJ_OUT), .out = E, .in = C};
        float *tmp = malloc((size_t)rows * E * sizeof *tmp);
        if (!tmp) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        zq_linear_forward(&p, NULL, NULL, h, tmp, rows, 0);
        memcpy(scratch, tmp, (size_t)rows * E * sizeof *tmp);
        free(tmp);
        h = scratch;
    }
    /* packed, or tied to the embedding when the model has no head of its own */
    if (!n->head) ZQ_TRY(outer_weight(n, ZQ_PART_HEAD, err));
    if (!n->head && !WEIGHT(n, ZQ_PART_HEAD)) ZQ_TRY(outer_weight(n, ZQ_PART_EMBED, err));
    const float *head_w = WEIGHT(n, ZQ_PART_HEAD) ? WEIGHT(n, ZQ_PART_HEAD) : WEIGHT(n, ZQ_PART_EMBED);
    zq_linear head = {.w = n->head ? NULL : head_w, .b = n->head ? NULL : BIAS(n, ZQ_PART_HEAD), .out = V, .in = E,
                      .packed = n->head};
    zq_linear_forward(&head, NULL, NULL, h, logits, rows, 0);
    float cap = a->final_softcap; /* Gemma 2: cap * tanh(logit / cap) */
    for (size_t i = 0; cap > 0 && i < (size_t)rows * V; i++) logits[i] = tanhf(logits[i] / cap) * cap;
    return ZQ_OK;
}

/* ---- opening ---------------------------------------------------------------- */

static size_t phys_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (size_t)pages * (size_t)size : (size_t)8 << 30;
}

static zq_status generation_config(zq_net *n, const char *path, zq_error *err)
{
    static const char *const names[] = {"generation_config.json", NULL};
    char *shown, *text;
    size_t len;
    ZQ_TRY(zq_model_file(path, names, &shown, &text, &len, err));
    zq_arch_generation_config(&n->arch, text);
    free(shown), free(text);
    return ZQ_OK;
}

zq_status zq_net_open(const char *path, size_t budget, zq_net **out, zq_error *err)
{
    *out = NULL;
    ZQ_TRY(zq_blas_load(err)); /* before the weights take the room */
    zq_net *n = calloc(1, sizeof *n);
    if (!n || !(n->path = strdup(path))) {
        free(n);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    zq_status st = zq_source_open_model(path, &n->src, err);
    const char *config = st == ZQ_OK ? zq_source_config(n->src) : NULL;
    if (st == ZQ_OK) st = zq_arch_from_config(config, path, &n->arch, err);
    if (st == ZQ_OK) st = generation_config(n, path, err);
    if (st == ZQ_OK) st = zq_check_source(&n->arch, n->src, 1, err);
    if (st == ZQ_OK) {
        n->blocks = calloc((size_t)n->arch.n_layers, sizeof *n->blocks);
        if (!n->blocks) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    if (st == ZQ_OK) {
        n->budget = budget ? budget : phys_memory() / 2;
        n->cache_all = weight_bytes(n, NULL) <= n->budget;
        st = load_outer(n, err);
    }
    if (st != ZQ_OK) {
        zq_net_close(n);
        return st;
    }
    *out = n;
    return ZQ_OK;
}

void zq_net_drop_outer(zq_net *n)
{
    for (int p = 0; p < NPARTS; p++) {
        free(n->outer[p][0]), free(n->outer[p][1]);
        n->outer[p][0] = n->outer[p][1] = NULL;
    }
    if (n->head) zq_packed_free(n->head), free(n->head);
    n->head = NULL;
    n->outer_dropped = 1;
}

void zq_net_close(zq_net *n)
{
    if (!n) return;
    for (int l = 0; n->blocks && l < n->arch.n_layers; l++) {
        block_slot *s = &n->blocks[l];
        drop_block(s);
        free(s->buf), free(s->packed), free(s->units), free(s->experts);
    }
    free(n->blocks);
    for (int p = 0; p < NPARTS; p++) free(n->outer[p][0]), free(n->outer[p][1]);
    if (n->head) zq_packed_free(n->head), free(n->head);
    zq_source_close(n->src);
    free(n->path);
    free(n);
}

void zq_net_tensor_layout(const zq_net_tensor *u, int heads, const float *in, float *out, int to_checkpoint)
{
    size_t R = (size_t)u->rows, C = (size_t)u->cols;
    if (u->conv1d) { /* checkpoint [cols, rows] */
        for (size_t r = 0; r < R; r++)
            for (size_t c = 0; c < C; c++) {
                if (to_checkpoint) out[c * R + r] = in[r * C + c];
                else out[r * C + c] = in[c * R + r];
            }
    } else if (u->neox_qkv) { /* checkpoint row (h*3 + part)*d + i is row (part*heads + h)*d + i here */
        size_t d = R / (3 * (size_t)heads);
        for (size_t h = 0; h < (size_t)heads; h++)
            for (size_t part = 0; part < 3; part++)
                for (size_t i = 0; i < d; i++) {
                    size_t file = (h * 3 + part) * d + i, mem = (part * heads + h) * d + i;
                    memcpy(out + (to_checkpoint ? file : mem) * C, in + (to_checkpoint ? mem : file) * C, C * sizeof *in);
                }
    } else {
        memcpy(out, in, R * C * sizeof *in);
    }
}
