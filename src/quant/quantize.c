/* The quantize job. Each tensor is cut into chunks of whole rows of its
 * [out, in] matrix; a wave of chunks runs on the pool, then the wave's output
 * is written in chunk order. Chunk boundaries depend only on the tensor, so
 * the file (error figures included) is the same for any thread count. */
#include "zquant/quantize.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "lkd/lkd_impl.h"
#include "quant/job.h"
#include "quant/recipe.h"
#include "export/target.h"
#include "model/check.h"
#include "base/util.h"
#include "zq/meta.h"
#include "zquant/crc32c.h"
#include "zquant/fp16.h"
#include "zquant/arch.h"
#include "zquant/source.h"

#define CHUNK_ELEMS (1u << 18)

const zq_preset zq_presets[] = {
    {"w8a8", ZQ_FORMAT_INT8, ZQ_FORMAT_INT8, ZQ_AQ_TOKEN},
    {"w8a16", ZQ_FORMAT_INT8, ZQ_FORMAT_INT8, ZQ_AQ_NONE},
    {"w4/8a16", ZQ_FORMAT_INT8, ZQ_FORMAT_INT4, ZQ_AQ_NONE},
    {"w4/8a8", ZQ_FORMAT_INT8, ZQ_FORMAT_INT4, ZQ_AQ_TOKEN},
    {"w4a16", ZQ_FORMAT_INT4, ZQ_FORMAT_INT4, ZQ_AQ_NONE},
    {NULL, ZQ_FORMAT_F16, ZQ_FORMAT_F16, ZQ_AQ_NONE},
};

const zq_preset *zq_preset_find(const char *name)
{
    for (const zq_preset *p = zq_presets; p->name; p++)
        if (strcmp(p->name, name) == 0) return p;
    return NULL;
}

void zq_preset_names(char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (const zq_preset *p = zq_presets; p->name && at < size; p++)
        at += (size_t)snprintf(buf + at, size - at, "%s%s", at ? ", " : "", p->name);
}

void zq_quantize_opts_init(zq_quantize_opts *o)
{
    memset(o, 0, sizeof *o);
    o->preset = "w8a8";
    o->base.format = ZQ_FORMAT_INT8;
    o->base.symmetric = 1;
    o->base.gran = ZQ_GRAN_GROUP;
    o->base.group_size = 128;
    o->calib_samples = 128;
    o->seq_len = 256;
    o->damp = 0.01f;
    o->data_memory = (size_t)256 << 20;
}

/* ---- planning: which tensor gets which spec ---------------------------- */

static int matches_any(const char *const *globs, size_t n, const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (fnmatch(globs[k], name, 0) == 0) return 1;
    return 0;
}

static zq_act_mode act_of(const zq_quantize_opts *o, const zq_preset *preset)
{
    return o->act_given ? o->act : preset->act;
}

/* Makes spec one the --for target stores exactly for a tensor info. */
static zq_status fit_target(const zq_quantize_opts *o, zq_act_mode act, const zq_tensor_info *info,
                            zq_tensor_role role, zq_qspec *spec, zq_error *err)
{
    if (info->ndim != 2) { /* no target stores a vector's codes */
        spec->format = ZQ_FORMAT_F16;
        return ZQ_OK;
    }
    uint64_t in = (uint64_t)info->shape[role.transposed ? 0 : 1];
    return zq_target_get(o->target)->fit(info->name, in, act, spec, err);
}

static zq_status plan_spec(const zq_quantize_opts *o, const zq_preset *preset, const zq_tensor_info *info,
                           zq_tensor_role role, zq_qspec *spec, zq_error *err)
{
    *spec = o->base;
    zq_format_id role_format = role.role == ZQ_ROLE_MLP ? preset->mlp : preset->attention;
    spec->format = role.role == ZQ_ROLE_OTHER ? ZQ_FORMAT_F16 : role_format;
    if (matches_any(o->include, o->ninclude, info->name)) spec->format = role_format;
    if (matches_any(o->exclude, o->nexclude, info->name)) spec->format = ZQ_FORMAT_F16;
    for (size_t k = 0; k < o->nrules; k++) {
        if (fnmatch(o->rules[k].glob, info->name, 0) != 0) continue;
        zq_qspec s = *spec;
        if (!zq_qspec_quantized(&s)) s.format = role_format; /* "g64" alone on an FP16 tensor means: quantize it */
        ZQ_TRY(zq_qspec_parse(o->rules[k].spec, &s, err));
        *spec = s;
    }
    if (o->target && zq_qspec_quantized(spec)) return fit_target(o, act_of(o, preset), info, role, spec, err);
    return ZQ_OK;
}

/* ---- running one tensor ------------------------------------------------ */

typedef enum { JOB_COPY, JOB_STATS, JOB_QUANT } job_kind;

typedef struct {
    uint8_t *out;
    size_t out_cap;
    size_t len;
    uint32_t crc;   /* of out, computed by the worker */
    zq_err_sums sums;
    zq_error err;
} chunk_slot;

typedef struct {
    float *buf; /* a chunk as [out, in] rows */
    uint8_t *codes;
    unsigned char *stored; /* a chunk's rows as the file stores them */
    size_t buf_cap, codes_cap, stored_cap;
} scratch;

typedef struct {
    zq_source *src;
    size_t si;
    const zq_tensor_info *info;
    const zq_tensor *t;
    job_kind kind;
    uint64_t rows, cols; /* the matrix the chunks cut: [out, in], or the source's own for a copy */
    uint64_t rows_per_chunk, nchunks;
    uint16_t *scales, *mins;
    int given;      /* scales (and mins) come from the source (GPTQ's), not the ranges */
    float *lo, *hi; /* JOB_STATS: range of each (row, col group) */
    scratch *scr;
} tensor_job;

/* A batch of consecutive chunks, one slot each. */
typedef struct {
    tensor_job *j;
    chunk_slot *slots;
    uint64_t first;
    size_t n;
} wave;

static zq_status report_nonfinite(const tensor_job *j, uint64_t r, uint64_t c, zq_error *err)
{
    /* back to the coordinates the user's checkpoint has */
    uint64_t a = j->t->transposed ? c : r, b = j->t->transposed ? r : c;
    return zq_fail(err, ZQ_ERR_DATA, "'%s': tensor '%s': NaN or Inf at [%llu, %llu]", zq_source_path(j->src),
                   j->info->name, (unsigned long long)a, (unsigned long long)b);
}

static zq_status load_rows(tensor_job *j, scratch *s, uint64_t r0, uint64_t nr, zq_error *err)
{
    if (!j->t->transposed) return zq_source_read(j->src, j->si, r0, nr, 0, j->cols, s->buf, err);
    /* source is [in, out]: output rows r0.. are source columns r0.. */
    return zq_source_read_columns(j->src, j->si, r0, nr, s->buf, err);
}

/* A file's rows are read with pread (zq_source_read_stored), not through
 * the mapping: faulting its pages in and dropping them again cost the
 * workers more than the copy does. Columns (a transposed source), copies
 * that convert (BF16 or F32 kept as FP16) and other sources are read as
 * before, mapped rows released chunk by chunk. */
static int reads_stored(const tensor_job *j)
{
    if (!zq_source_mapped(j->src, j->si)) return 0;
    return j->kind == JOB_COPY ? j->info->dtype == ZQ_DT_F16 : !j->t->transposed;
}

static zq_status run_chunk(tensor_job *j, uint64_t chunk, chunk_slot *slot, scratch *s)
{
    zq_error *err = &slot->err;
    const zq_tensor *t = j->t;
    const zq_grid *g = &t->grid;
    uint64_t r0 = chunk * j->rows_per_chunk;
    uint64_t nr = j->rows - r0 < j->rows_per_chunk ? j->rows - r0 : j->rows_per_chunk;
    int stored = reads_stored(j);
    size_t es = zq_dtype_size(j->info->dtype);
    if (j->kind == JOB_COPY) {
        size_t n = (size_t)(nr * j->cols);
        if (stored) ZQ_TRY(zq_source_read_stored(j->src, j->si, r0, nr, slot->out, err));
        else ZQ_TRY(zq_source_read_f16(j->src, j->si, r0, nr, (uint16_t *)slot->out, err));
        size_t bad = zq_f16_find_nonfinite((const uint16_t *)slot->out, n);
        if (bad < n) return report_nonfinite(j, r0 + bad / j->cols, bad % j->cols, err);
        slot->len = n * 2;
        return ZQ_OK;
    }
    /* Rows are converted a few at a time, so range and codes run on rows
     * still in L1 (one row) or L2 (64 columns of a transposed source: two
     * whole cache lines of each of its rows); requests to a reader's
     * process come a chunk at once. */
    if (stored) ZQ_TRY(zq_source_read_stored(j->src, j->si, r0, nr, s->stored, err));
    uint64_t step = stored ? 1 : !zq_source_mapped(j->src, j->si) ? nr : 64;
    const zq_format *fmt = zq_format_get(t->spec.format);
    for (uint64_t r = 0; r < nr; r++) {
        if (stored) zq_convert_to_f32(j->info->dtype, s->stored + r * j->cols * es, s->buf, (size_t)j->cols);
        else if (r % step == 0) ZQ_TRY(load_rows(j, s, r0 + r, nr - r < step ? nr - r : step, err));
        const float *x = s->buf + r % step * j->cols;
        uint8_t *row_out = slot->out + r * g->row_bytes;
        for (uint64_t gj = 0; gj < g->col_groups; gj++) {
            zq_group grp = zq_grid_group(g, r0 + r, gj);
            uint64_t c0 = grp.col0, idx = grp.index;
            size_t n = (size_t)grp.ncols, bad;
            if (j->kind == JOB_STATS || g->group_rows == 1) {
                float lo, hi;
                if (!zq_range_f32(x + c0, n, &lo, &hi, &bad)) return report_nonfinite(j, r0 + r, c0 + bad, err);
                if (j->kind == JOB_STATS) {
                    j->lo[(r0 + r) * g->col_groups + gj] = lo;
                    j->hi[(r0 + r) * g->col_groups + gj] = hi;
                    continue;
                }
                if (!j->given && !zq_group_params(&t->spec, lo, hi, &j->scales[idx], &j->mins[idx]))
                    return zq_fail(err, ZQ_ERR_DATA, "'%s': tensor '%s': values near row %llu too large for an FP16 scale",
                                   zq_source_path(j->src), j->info->name, (unsigned long long)(r0 + r));
            }
            /* codes one per byte are the packed row already */
            uint8_t *codes = fmt->codes_per_byte == 1 ? row_out + c0 : s->codes + c0;
            zq_quantize_run(&t->spec, x + c0, n, j->scales[idx], j->mins[idx], codes, &slot->sums);
        }
        if (j->kind == JOB_QUANT && fmt->codes_per_byte != 1) fmt->pack_row(s->codes, (size_t)j->cols, row_out);
    }
    slot->len = j->kind == JOB_QUANT ? (size_t)(nr * g->row_bytes) : 0;
    return ZQ_OK;
}

static void chunk_task(void *ctx, size_t task, int worker)
{
    wave *w = ctx;
    chunk_slot *slot = &w->slots[task];
    slot->len = 0;
    slot->sums = (zq_err_sums){0, 0};
    slot->err.code = ZQ_OK;
    tensor_job *j = w->j;
    uint64_t chunk = w->first + task, r0 = chunk * j->rows_per_chunk;
    uint64_t nr = j->rows - r0 < j->rows_per_chunk ? j->rows - r0 : j->rows_per_chunk;
    /* chunks that read whole source rows map them in bulk first and let
     * them go after; column readers (GPT-2) share rows, see run_pass */
    int own_rows = (!j->t->transposed || j->kind == JOB_COPY) && !reads_stored(j);
    if (own_rows) zq_source_prefetch_rows(j->src, j->si, r0, nr);
    zq_status st = run_chunk(j, chunk, slot, &j->scr[worker]);
    if (own_rows && j->kind != JOB_STATS) zq_source_release_rows(j->src, j->si, r0, nr);
    /* checksumming here spreads it over the workers; the collecting thread
     * only joins CRCs while it copies the bytes into the file */
    if (st == ZQ_OK) slot->crc = zq_crc32c(0, slot->out, slot->len);
}

typedef struct {
    zq_pool *pool;
    zq_writer *w;
    const zq_quantize_opts *o;
    uint64_t done, total;
    chunk_slot *slots; /* two halves: one wave computes while the other is written */
    size_t nslots;     /* per half */
    scratch *scr;
} runner;

static void submit(runner *rn, tensor_job *j, wave *w, int half, uint64_t first)
{
    w->j = j;
    w->slots = rn->slots + (size_t)half * rn->nslots;
    w->first = first;
    w->n = (size_t)(j->nchunks - first < rn->nslots ? j->nchunks - first : rn->nslots);
    zq_pool_submit(rn->pool, w->n, chunk_task, w);
}

/* Takes a finished wave: reports its first error, else writes its output
 * (JOB_COPY, JOB_QUANT) in chunk order and adds its error sums. */
static zq_status collect(runner *rn, const wave *w, zq_err_sums *sums, zq_error *err)
{
    const tensor_job *j = w->j;
    for (size_t k = 0; k < w->n; k++) {
        const chunk_slot *s = &w->slots[k];
        if (s->err.code != ZQ_OK) {
            *err = s->err;
            return s->err.code;
        }
        if (j->kind == JOB_STATS) continue;
        ZQ_TRY(zq_writer_write_crc(rn->w, s->out, s->len, s->crc, err));
        sums->err2 += s->sums.err2;
        sums->signal2 += s->sums.signal2;
    }
    if (j->kind == JOB_STATS) return ZQ_OK;
    uint64_t r0 = w->first * j->rows_per_chunk, n = w->n * j->rows_per_chunk;
    rn->done += (j->rows - r0 < n ? j->rows - r0 : n) * j->cols * zq_dtype_size(j->info->dtype);
    if (rn->o->progress) rn->o->progress(rn->o->progress_ctx, rn->done, rn->total, j->info->name);
    return ZQ_OK;
}

/* Runs every chunk of j, writing wave k while wave k+1 computes. */
static zq_status run_pass(runner *rn, tensor_job *j, zq_err_sums *sums, zq_error *err)
{
    j->scr = rn->scr;
    wave waves[2];
    int cur = 0;
    if (j->t->transposed && j->kind != JOB_COPY) zq_source_prefetch_rows(j->src, j->si, 0, j->info->rows);
    submit(rn, j, &waves[0], 0, 0);
    for (;;) {
        zq_pool_wait(rn->pool);
        uint64_t next = waves[cur].first + waves[cur].n;
        int more = next < j->nchunks;
        if (more) submit(rn, j, &waves[1 - cur], 1 - cur, next);
        zq_status st = collect(rn, &waves[cur], sums, err);
        if (st != ZQ_OK || !more) {
            if (more) zq_pool_wait(rn->pool); /* no worker may outlive the buffers */
            return st;
        }
        cur = 1 - cur;
    }
}

/* Buffers only grow: freeing and faulting in fresh pages for every tensor
 * costs more than the quantization itself. */
static int grow(void **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 1;
    void *n = realloc(*p, need);
    if (!n) return 0;
    *p = n;
    *cap = need;
    return 1;
}

static zq_status ensure_scratch(runner *rn, uint64_t elems, uint64_t cols, uint64_t out_bytes, size_t dtype_size,
                                zq_error *err)
{
    int ok = 1;
    for (int k = 0; k < zq_pool_size(rn->pool); k++) {
        scratch *s = &rn->scr[k];
        ok &= grow((void **)&s->buf, &s->buf_cap, elems * sizeof(float));
        ok &= grow((void **)&s->stored, &s->stored_cap, elems * dtype_size);
        ok &= grow((void **)&s->codes, &s->codes_cap, cols + 1);
    }
    for (size_t k = 0; k < 2 * rn->nslots; k++)
        ok &= grow((void **)&rn->slots[k].out, &rn->slots[k].out_cap, out_bytes + 1);
    return ok ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
}

static zq_status write_array(zq_writer *w, size_t ti, zq_section_kind k, const void *p, size_t len, zq_error *err)
{
    ZQ_TRY(zq_writer_begin_section(w, ti, k, err));
    ZQ_TRY(zq_writer_write(w, p, len, err));
    return zq_writer_end_section(w, err);
}

static zq_status params_from_stats(tensor_job *j, zq_error *err)
{
    const zq_grid *g = &j->t->grid;
    for (uint64_t gi = 0; gi < g->row_groups; gi++)
        for (uint64_t gj = 0; gj < g->col_groups; gj++) {
            zq_group grp = zq_grid_group(g, gi * g->group_rows, gj);
            float lo = INFINITY, hi = -INFINITY;
            for (uint64_t r = grp.row0; r < grp.row0 + grp.nrows; r++) {
                lo = fminf(lo, j->lo[r * g->col_groups + gj]);
                hi = fmaxf(hi, j->hi[r * g->col_groups + gj]);
            }
            uint64_t idx = grp.index;
            if (!zq_group_params(&j->t->spec, lo, hi, &j->scales[idx], &j->mins[idx]))
                return zq_fail(err, ZQ_ERR_DATA, "'%s': tensor '%s': values too large for an FP16 scale",
                               zq_source_path(j->src), j->info->name);
        }
    return ZQ_OK;
}

/* Scales the source chose for this tensor (see zq_source_group_params). */
static zq_status given_params(tensor_job *j, uint64_t ngroups, zq_error *err)
{
    uint16_t *scale, *min;
    size_t n;
    ZQ_TRY(zq_source_group_params(j->src, j->info->name, &scale, &min, &n, err));
    zq_status st = ZQ_OK;
    if (scale && (n != ngroups || (!j->t->spec.symmetric && !min)))
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %zu chosen scales%s for a grid of %llu groups",
                     zq_source_path(j->src), j->info->name, n, min || j->t->spec.symmetric ? "" : " and no mins",
                     (unsigned long long)ngroups);
    else if (scale) {
        memcpy(j->scales, scale, n * sizeof *scale);
        if (min) memcpy(j->mins, min, n * sizeof *min);
        j->given = 1;
    }
    free(scale), free(min);
    return st;
}

static zq_status run_tensor(runner *rn, zq_source *src, size_t si, size_t ti, const zq_tensor *t,
                            zq_err_sums *sums, zq_error *err)
{
    tensor_job j = {0};
    j.src = src;
    j.si = si;
    j.info = zq_source_tensor(src, si);
    j.t = t;
    int quant = zq_qspec_quantized(&t->spec);
    if (quant) {
        j.rows = t->grid.rows;
        j.cols = t->grid.cols;
    } else {
        j.rows = j.info->rows;
        j.cols = j.info->cols;
    }
    if (j.rows == 0 || j.cols == 0) return ZQ_OK; /* empty tensor: no bytes, no sections */
    j.rows_per_chunk = j.cols >= CHUNK_ELEMS ? 1 : CHUNK_ELEMS / j.cols;
    if (j.rows_per_chunk > j.rows) j.rows_per_chunk = j.rows;
    j.nchunks = zq_ceil_div(j.rows, j.rows_per_chunk);
    uint64_t elems = j.rows_per_chunk * j.cols;
    uint64_t out_bytes = quant ? j.rows_per_chunk * t->grid.row_bytes : elems * 2;
    ZQ_TRY(ensure_scratch(rn, elems, j.cols, out_bytes, zq_dtype_size(j.info->dtype), err));

    zq_status st = ZQ_OK;
    if (!quant) {
        j.kind = JOB_COPY;
        st = zq_writer_begin_section(rn->w, ti, ZQ_SEC_DATA, err);
        if (st == ZQ_OK) st = run_pass(rn, &j, sums, err);
        if (st == ZQ_OK) st = zq_writer_end_section(rn->w, err);
        return st;
    }
    uint64_t ngroups = t->grid.row_groups * t->grid.col_groups;
    j.scales = calloc(ngroups, sizeof *j.scales);
    j.mins = calloc(ngroups, sizeof *j.mins);
    if (!j.scales || !j.mins) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = given_params(&j, ngroups, err);
    if (st == ZQ_OK && t->grid.group_rows > 1 && !j.given) {
        /* a group spans chunks: find every group's range first */
        j.kind = JOB_STATS;
        j.lo = malloc(j.rows * t->grid.col_groups * sizeof *j.lo);
        j.hi = malloc(j.rows * t->grid.col_groups * sizeof *j.hi);
        zq_err_sums none = {0, 0};
        st = !j.lo || !j.hi ? zq_fail(err, ZQ_ERR_NOMEM, "out of memory") : run_pass(rn, &j, &none, err);
        if (st == ZQ_OK) st = params_from_stats(&j, err);
    }
    j.kind = JOB_QUANT;
    if (st == ZQ_OK) st = zq_writer_begin_section(rn->w, ti, ZQ_SEC_Q, err);
    if (st == ZQ_OK) st = run_pass(rn, &j, sums, err);
    if (st == ZQ_OK) st = zq_writer_end_section(rn->w, err);
    if (st == ZQ_OK) st = write_array(rn->w, ti, ZQ_SEC_SCALE, j.scales, ngroups * 2, err);
    if (st == ZQ_OK && !t->spec.symmetric) st = write_array(rn->w, ti, ZQ_SEC_MIN, j.mins, ngroups * 2, err);
    free(j.scales);
    free(j.mins);
    free(j.lo);
    free(j.hi);
    return st;
}

/* ---- the job ----------------------------------------------------------- */

/* A rule, include or exclude that names no tensor is almost always a typo
 * or another model's name (a tied model has no lm_head.weight): said before
 * any work, unless o->allow_unmatched. */
static zq_status check_matched(const zq_quantize_opts *o, zq_source *src, zq_error *err)
{
    if (o->allow_unmatched || !zq_source_count(src)) return ZQ_OK;
    const char *example = zq_source_tensor(src, zq_source_count(src) / 2)->name;
    for (int kind = 0; kind < 3; kind++) {
        size_t n = kind == 0 ? o->nrules : kind == 1 ? o->ninclude : o->nexclude;
        for (size_t k = 0; k < n; k++) {
            const char *glob = kind == 0 ? o->rules[k].glob : kind == 1 ? o->include[k] : o->exclude[k];
            size_t i = 0;
            while (i < zq_source_count(src) && fnmatch(glob, zq_source_tensor(src, i)->name, 0) != 0) i++;
            if (i < zq_source_count(src)) continue;
            static const char *const what[] = {"--rule", "--include", "--exclude"};
            return zq_fail(err, ZQ_ERR_USAGE, "%s '%s%s%s' matches no tensor of '%s' (its names look like '%s'; "
                           "--allow-unmatched to go on)", what[kind], glob, kind == 0 ? "=" : "",
                           kind == 0 ? o->rules[k].spec : "", zq_source_path(src), example);
        }
    }
    return ZQ_OK;
}

static zq_status check_opts(const zq_quantize_opts *o, const zq_preset **preset, zq_error *err)
{
    *preset = zq_preset_find(o->preset ? o->preset : "w8a8");
    if (!*preset) {
        char names[128];
        zq_preset_names(names, sizeof names);
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': unknown preset (%s)", o->preset, names);
    }
    for (size_t k = 0; k < o->nrules; k++) { /* bad specs fail before any work */
        zq_qspec probe = o->base;
        ZQ_TRY(zq_qspec_parse(o->rules[k].spec, &probe, err));
    }
    return ZQ_OK;
}

/* How each tensor of src is stored (plan[i] for tensor i; names are
 * src's). */
static zq_status plan_tensors(const zq_quantize_opts *o, const zq_preset *preset, zq_source *src,
                              const zq_model *model, zq_tensor *plan, zq_error *err)
{
    ZQ_TRY(check_matched(o, src, err));
    for (size_t i = 0; i < zq_source_count(src); i++) {
        const zq_tensor_info *info = zq_source_tensor(src, i);
        zq_tensor_role role = zq_model_classify(model, info);
        zq_tensor *t = &plan[i];
        memset(t, 0, sizeof *t);
        t->name = info->name;
        t->role = role.role;
        t->layer = role.layer;
        t->ndim = info->ndim;
        memcpy(t->shape, info->shape, sizeof t->shape);
        t->source_dtype = info->dtype;
        ZQ_TRY(plan_spec(o, preset, info, role, &t->spec, err));
        if (zq_qspec_quantized(&t->spec)) {
            t->transposed = role.transposed && info->ndim == 2;
            uint64_t rows, cols;
            zq_tensor_matrix(t, &rows, &cols);
            zq_grid_init(&t->grid, &t->spec, rows, cols);
        }
    }
    return ZQ_OK;
}

zq_status zq_quantize_plan_source(const zq_quantize_opts *o, zq_source *src, zq_tensor **plan, zq_act_mode *act,
                                  zq_error *err)
{
    *plan = NULL;
    const zq_preset *preset;
    ZQ_TRY(check_opts(o, &preset, err));
    zq_model model;
    ZQ_TRY(zq_model_detect(zq_source_config(src), zq_source_path(src), &model, err));
    zq_tensor *p = calloc(zq_source_count(src) + 1, sizeof *p);
    if (!p) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = plan_tensors(o, preset, src, &model, p, err);
    if (st != ZQ_OK) {
        free(p);
        return st;
    }
    *act = act_of(o, preset);
    *plan = p;
    return ZQ_OK;
}

zq_status zq_quantize_plan(const zq_quantize_opts *o, const zq_model *model, const zq_tensor_info *info,
                           zq_qspec *spec, zq_act_mode *act, zq_error *err)
{
    const zq_preset *preset;
    ZQ_TRY(check_opts(o, &preset, err));
    *act = act_of(o, preset);
    return plan_spec(o, preset, info, zq_model_classify(model, info), spec, err);
}

struct zq_quantize_job {
    const zq_quantize_opts *o;
    zq_source *src;
    zq_writer *w;
    zq_tensor *plan;
    unsigned char *written;
    char *recipe;
    runner rn;
    zq_quantize_report rep;
};

static void job_free(zq_quantize_job *j)
{
    runner *rn = &j->rn;
    for (size_t k = 0; rn->slots && k < 2 * rn->nslots; k++) free(rn->slots[k].out);
    for (int k = 0; rn->scr && rn->pool && k < zq_pool_size(rn->pool); k++) {
        free(rn->scr[k].buf);
        free(rn->scr[k].codes);
        free(rn->scr[k].stored);
    }
    free(rn->slots);
    free(rn->scr);
    if (rn->pool) zq_pool_free(rn->pool);
    zq_writer_abort(j->w);
    free(j->recipe);
    free(j->plan);
    free(j->written);
    free(j);
}

void zq_quantize_job_abort(zq_quantize_job *j)
{
    if (j) job_free(j);
}

zq_status zq_quantize_job_begin(const zq_quantize_opts *o, zq_source *src, zq_quantize_job **out, zq_error *err)
{
    *out = NULL;
    const zq_preset *preset;
    ZQ_TRY(check_opts(o, &preset, err));
    zq_quantize_job *j = calloc(1, sizeof *j);
    if (!j) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    j->o = o;
    j->src = src;
    zq_activation act;
    zq_act_mode_record(act_of(o, preset), &act);
    zq_model model;
    size_t n = zq_source_count(src);
    j->plan = calloc(n + 1, sizeof *j->plan);
    j->written = calloc(n + 1, 1);
    j->recipe = zq_recipe_json(o, preset, act_of(o, preset), zq_source_path(src));
    zq_status st = j->plan && j->written && j->recipe ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_model_detect(zq_source_config(src), zq_source_path(src), &model, err);
    zq_arch arch; /* a config with the sizes: the tensors must have them (a file that contradicts itself exports to nothing that loads) */
    zq_error ignore = {0};
    if (st == ZQ_OK && model.known && zq_arch_from_config(zq_source_config(src), zq_source_path(src), &arch, &ignore) == ZQ_OK)
        st = zq_check_source(&arch, src, 0, err);
    if (st == ZQ_OK) st = zq_writer_open(o->output, o->force, o->zstd_level, &j->w, err);
    if (st == ZQ_OK) st = zq_writer_set_info(j->w, model.model_type, zq_source_config(src), j->recipe, &act, err);
    if (st == ZQ_OK) st = zq_attach_model_files(j->w, zq_source_path(src), err);
    if (st == ZQ_OK) st = plan_tensors(o, preset, src, &model, j->plan, err);
    for (size_t i = 0; st == ZQ_OK && i < n; i++) st = zq_writer_add_tensor(j->w, &j->plan[i], err);
    runner *rn = &j->rn;
    rn->o = o;
    rn->w = j->w;
    if (st == ZQ_OK && !(rn->pool = zq_pool_create(o->threads))) st = zq_fail(err, ZQ_ERR_NOMEM, "cannot start threads");
    if (st == ZQ_OK) {
        rn->nslots = (size_t)zq_pool_size(rn->pool) * 2;
        rn->slots = calloc(2 * rn->nslots, sizeof *rn->slots);
        rn->scr = calloc((size_t)zq_pool_size(rn->pool), sizeof *rn->scr);
        if (!rn->slots || !rn->scr) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const zq_tensor_info *info = zq_source_tensor(src, i);
        rn->total += info->numel * zq_dtype_size(info->dtype);
    }
    if (st != ZQ_OK) {
        job_free(j);
        return st;
    }
    *out = j;
    return ZQ_OK;
}

zq_status zq_quantize_job_tensor(zq_quantize_job *j, size_t ti, zq_source *from, size_t si, zq_error *err)
{
    if (ti >= zq_source_count(j->src) || j->written[ti])
        return zq_fail(err, ZQ_ERR_INTERNAL, "tensor %zu quantized twice, or out of range", ti);
    zq_err_sums sums = {0, 0};
    zq_status st = run_tensor(&j->rn, from, si, ti, &j->plan[ti], &sums, err);
    zq_source_release(from, si);
    ZQ_TRY(st);
    j->written[ti] = 1;
    const zq_tensor_info *info = zq_source_tensor(j->src, ti);
    zq_quantize_report *rep = &j->rep;
    rep->tensors++;
    rep->input_bytes += info->numel * zq_dtype_size(info->dtype);
    rep->fp16_bytes += info->numel * 2;
    if (!zq_qspec_quantized(&j->plan[ti].spec)) return ZQ_OK;
    rep->quantized++;
    double rel = sums.signal2 > 0 ? sqrt(sums.err2 / sums.signal2) : 0.0;
    double sqnr = sums.err2 > 0 ? 10.0 * log10(sums.signal2 / sums.err2) : INFINITY;
    zq_writer_set_error_stats(j->w, ti, rel, sqnr);
    if (rel >= rep->worst_rel_rmse) {
        rep->worst_rel_rmse = rel;
        snprintf(rep->worst_tensor, sizeof rep->worst_tensor, "%s", info->name);
    }
    return ZQ_OK;
}

zq_status zq_quantize_job_finish(zq_quantize_job *j, zq_quantize_report *rep, zq_error *err)
{
    zq_status st = ZQ_OK;
    for (size_t i = 0; st == ZQ_OK && i < zq_source_count(j->src); i++)
        if (!j->written[i]) st = zq_quantize_job_tensor(j, i, j->src, i, err);
    if (st == ZQ_OK) {
        st = zq_writer_commit(j->w, &j->rep.output_bytes, err);
        j->w = NULL;
    }
    if (st == ZQ_OK) *rep = j->rep;
    job_free(j);
    return st;
}

zq_status zq_quantize_source(const zq_quantize_opts *o, zq_source *src, zq_quantize_report *rep, zq_error *err)
{
    memset(rep, 0, sizeof *rep);
    zq_quantize_job *j;
    ZQ_TRY(zq_quantize_job_begin(o, src, &j, err));
    return zq_quantize_job_finish(j, rep, err);
}

zq_status zq_quantize(const zq_quantize_opts *o, zq_quantize_report *rep, zq_error *err)
{
    memset(rep, 0, sizeof *rep);
    const zq_preset *preset;
    ZQ_TRY(check_opts(o, &preset, err)); /* before opening anything */
    if (o->method == ZQ_METHOD_GPTQ) return zq_quantize_gptq(o, rep, err);
    zq_source *src = NULL;
    ZQ_TRY(zq_source_open(o->input, &src, err));
    zq_status st = zq_quantize_source(o, src, rep, err);
    zq_source_close(src);
    return st;
}
