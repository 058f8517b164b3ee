/* safetensors: 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data area; offsets are relative to the data area. Nothing in the
 * header is trusted until checked against the file. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/cleanup.h"
#include "io/source_impl.h"
#include "base/files.h"
#include "base/le.h"
#include "base/utf8.h"
#include "base/util.h"

#define HEADER_LIMIT (100u << 20)
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define JSON_INT_MAX 9007199254740992.0 /* 2^53: beyond it a JSON number is not an exact integer */

typedef struct {
    char *path;
    unsigned char *map;
    int fd; /* kept for zq_source_read_stored; -1 */
    uint64_t size;
    uint64_t data_start;
    int map_slot; /* in the table a SIGBUS handler reads */
} st_file;

typedef struct {
    uint32_t file;
    uint64_t offset; /* absolute, in its file */
} st_loc;

typedef struct {
    st_file *files;
    size_t nfiles;
    st_loc *locs;
    size_t nlocs;
} st_impl;

typedef struct {
    uint64_t begin, end;
    size_t index;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static zq_status read_st(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0,
                         uint64_t ncols, float *out, zq_error *err)
{
    (void)err;
    st_impl *im = src->impl;
    const zq_tensor_info *t = &src->tensors[i];
    const st_file *f = &im->files[im->locs[i].file];
    size_t es = zq_dtype_size(t->dtype);
    const unsigned char *base = f->map + im->locs[i].offset;
    for (uint64_t r = 0; r < nrows; r++)
        zq_convert_to_f32(t->dtype, base + ((row0 + r) * t->cols + col0) * es, out + r * ncols, ncols);
    return ZQ_OK;
}

/* madvise over the pages holding rows [row0, row0+nrows) of tensor i;
 * inward: only pages wholly inside them, so a neighbour's stay mapped. */
static void advise_rows(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, int advice, int inward)
{
    st_impl *im = src->impl;
    const zq_tensor_info *t = &src->tensors[i];
    const st_file *f = &im->files[im->locs[i].file];
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), es = zq_dtype_size(t->dtype);
    uint64_t begin = im->locs[i].offset + row0 * t->cols * es, end = begin + nrows * t->cols * es;
    uint64_t lo = inward ? zq_align_up(begin, page) : begin / page * page;
    uint64_t hi = inward ? end / page * page : end;
    if (hi > lo) madvise(f->map + lo, hi - lo, advice);
}

static void release_st(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    advise_rows(src, i, row0, nrows, MADV_DONTNEED, 1);
}

/* pread, not the mapping: see zq_source_read_stored. A file that ends
 * before the bytes its header promised shrank after it was opened. */
static zq_status read_stored_st(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, void *dst, zq_error *err)
{
    st_impl *im = src->impl;
    const zq_tensor_info *t = &src->tensors[i];
    const st_file *f = &im->files[im->locs[i].file];
    uint64_t es = zq_dtype_size(t->dtype), at = im->locs[i].offset + row0 * t->cols * es, n = nrows * t->cols * es;
    unsigned char *p = dst;
    while (n) {
        ssize_t k = pread(f->fd, p, n, (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': tensor '%s': read failed", f->path, t->name);
        if (k == 0)
            return zq_fail(err, ZQ_ERR_IO, "'%s': the file shrank while it was being read (truncated by another process?)",
                           f->path);
        p += k;
        at += (uint64_t)k;
        n -= (uint64_t)k;
    }
    return ZQ_OK;
}

static void close_st(zq_source *src)
{
    st_impl *im = src->impl;
    if (!im) return;
    for (size_t k = 0; k < im->nfiles; k++) {
        if (im->files[k].fd >= 0) close(im->files[k].fd);
        zq_cleanup_unmap(im->files[k].map_slot);
        if (im->files[k].map) munmap(im->files[k].map, im->files[k].size);
        free(im->files[k].path);
    }
    free(im->files);
    free(im->locs);
    free(im);
    src->impl = NULL;
}

static const void *raw_st(zq_source *src, size_t i)
{
    st_impl *im = src->impl;
    return im->files[im->locs[i].file].map + im->locs[i].offset;
}

/* One call maps a wave's pages, instead of a fault every 64 KiB inside the
 * workers; a kernel without MADV_POPULATE_READ (before 5.14) just faults. */
static void prefetch_st(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    advise_rows(src, i, row0, nrows, MADV_POPULATE_READ, 0);
}

static const zq_source_ops st_ops = {read_st, release_st, close_st, raw_st, prefetch_st, NULL, NULL, read_stored_st};

static zq_status ensure_impl(zq_source *src, zq_error *err)
{
    if (src->impl) return ZQ_OK;
    src->impl = calloc(1, sizeof(st_impl));
    if (!src->impl) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    src->ops = &st_ops;
    return ZQ_OK;
}

static int parse_dtype(const char *s, zq_dtype *dt)
{
    static const struct { const char *name; zq_dtype dt; } known[] = {
        {"F16", ZQ_DT_F16}, {"BF16", ZQ_DT_BF16}, {"F32", ZQ_DT_F32}, {"F64", ZQ_DT_F64},
        {"I8", ZQ_DT_I8},   {"I32", ZQ_DT_I32},   {"I64", ZQ_DT_I64}};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (strcmp(s, known[k].name) == 0) { *dt = known[k].dt; return 1; }
    return 0;
}

static int json_uint(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= JSON_INT_MAX) || d != (double)(uint64_t)d) return 0;
    *v = (uint64_t)d;
    return 1;
}

/* Checks one header entry and appends it; fills the span it claims. */
static zq_status parse_entry(zq_source *src, st_impl *im, const char *path, const cJSON *e,
                             uint64_t data_size, span *sp, zq_error *err)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': entry is not a JSON object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': missing \"dtype\"", path, name);
    if (!cJSON_IsArray(shape)) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': missing \"shape\"", path, name);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': \"data_offsets\" is not a pair", path, name);
    zq_dtype dtype;
    if (!parse_dtype(dt->valuestring, &dtype))
        return zq_fail(err, ZQ_ERR_FORMAT,
                       "'%s': tensor '%s': dtype '%s' is not supported (zquant reads F16, BF16, F32, F64, I8, I32 and I64)",
                       path, name, dt->valuestring);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ZQ_MAX_DIMS)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %d dimensions (at most %d)", path, name, ndim, ZQ_MAX_DIMS);
    int64_t dims[ZQ_MAX_DIMS];
    uint64_t numel = 1;
    int d = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, shape) {
        uint64_t v;
        if (!json_uint(it, &v))
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': shape holds something other than a size", path, name);
        if (v && numel > UINT64_MAX / 16 / v)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': shape overflows", path, name);
        numel *= v;
        dims[d++] = (int64_t)v;
    }
    uint64_t b, en;
    if (!json_uint(cJSON_GetArrayItem(offs, 0), &b) || !json_uint(cJSON_GetArrayItem(offs, 1), &en))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': data_offsets are not sizes", path, name);
    if (b > en) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': data_offsets end before they begin", path, name);
    if (en > data_size)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': data_offsets [%llu, %llu] past end of file (data area is %llu bytes)",
                       path, name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_size);
    uint64_t want = numel * zq_dtype_size(dtype);
    if (en - b != want)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %llu bytes of data but shape and dtype %s need %llu",
                       path, name, (unsigned long long)(en - b), dt->valuestring, (unsigned long long)want);
    size_t index;
    ZQ_TRY(zq_source_add(src, name, dtype, ndim, dims, &index, err));
    if (index >= im->nlocs) {
        size_t cap = im->nlocs ? im->nlocs * 2 : 64;
        while (cap <= index) cap *= 2;
        st_loc *l = realloc(im->locs, cap * sizeof *l);
        if (!l) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        im->locs = l;
        im->nlocs = cap;
    }
    im->locs[index].file = (uint32_t)(im->nfiles - 1);
    im->locs[index].offset = im->files[im->nfiles - 1].data_start + b;
    sp->begin = b;
    sp->end = en;
    sp->index = index;
    return ZQ_OK;
}

static zq_status check_spans(zq_source *src, const char *path, span *spans, size_t n, uint64_t data_size,
                             zq_error *err)
{
    qsort(spans, n, sizeof *spans, span_cmp);
    uint64_t at = 0;
    for (size_t k = 0; k < n; k++) {
        const char *name = src->tensors[spans[k].index].name;
        if (spans[k].begin < at)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': data overlaps tensor '%s'", path, name,
                           src->tensors[spans[k - 1].index].name);
        if (spans[k].begin > at)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %llu bytes before it belong to no tensor",
                           path, name, (unsigned long long)(spans[k].begin - at));
        at = spans[k].end;
    }
    if (at != data_size)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': %llu bytes at the end of the data area belong to no tensor", path,
                       (unsigned long long)(data_size - at));
    return ZQ_OK;
}

static zq_status map_file(st_file *f, zq_error *err)
{
    int fd;
    struct stat sb;
    ZQ_TRY(zq_open_regular(f->path, &fd, &sb, err));
    zq_note_input(f->path, &sb);
    f->size = (uint64_t)sb.st_size;
    if (f->size < 8) {
        close(fd);
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': truncated: %llu bytes, not even the 8-byte header length",
                       f->path, (unsigned long long)f->size);
    }
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    f->fd = fd;
    if (m == MAP_FAILED) /* ENOMEM: no address space left for it (ulimit -v) */
        return zq_fail_errno(err, errno == ENOMEM ? ZQ_ERR_NOMEM : ZQ_ERR_IO, "'%s': cannot map it into memory", f->path);
    f->map = m;
    f->map_slot = zq_cleanup_map(m, f->size, f->path);
    madvise(m, f->size, MADV_SEQUENTIAL);
    return ZQ_OK;
}

/* Opens one safetensors file and appends its tensors to src. */
static zq_status add_file(zq_source *src, const char *path, zq_error *err)
{
    ZQ_TRY(ensure_impl(src, err));
    st_impl *im = src->impl;
    st_file *files = realloc(im->files, (im->nfiles + 1) * sizeof *files);
    if (!files) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    im->files = files;
    st_file *f = &files[im->nfiles++];
    memset(f, 0, sizeof *f);
    f->map_slot = -1;
    f->fd = -1;
    if (!(f->path = strdup(path))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    ZQ_TRY(map_file(f, err));

    uint64_t hlen = zq_load_le64(f->map);
    if (hlen > f->size - 8)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': header length %llu runs past the end of the file (%llu bytes)",
                       path, (unsigned long long)hlen, (unsigned long long)f->size);
    if (hlen > HEADER_LIMIT)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': header length %llu is over the %u-byte limit", path,
                       (unsigned long long)hlen, HEADER_LIMIT);
    f->data_start = 8 + hlen;
    uint64_t data_size = f->size - f->data_start;

    cJSON *root = cJSON_ParseWithLength((const char *)f->map + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': header is not a JSON object", path);
    }
    if (zq_json_bad_utf8(root->child)) { /* names go into .zq metadata and --json output */
        cJSON_Delete(root);
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': header is not valid UTF-8 (a tensor name or metadata string)", path);
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    span *spans = calloc(n ? n : 1, sizeof *spans);
    zq_status st = spans ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    size_t ns = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (st != ZQ_OK) break;
        if (strcmp(e->string, "__metadata__") == 0) continue;
        st = parse_entry(src, im, path, e, data_size, &spans[ns], err);
        if (st == ZQ_OK) ns++;
    }
    if (st == ZQ_OK) st = check_spans(src, path, spans, ns, data_size, err);
    free(spans);
    cJSON_Delete(root);
    return st;
}

static const zq_source *sort_src; /* qsort has no context argument */

static int by_name(const void *a, const void *b)
{
    return strcmp(sort_src->tensors[*(const size_t *)a].name, sort_src->tensors[*(const size_t *)b].name);
}

/* A name twice (in one header, or in two shards) would leave which tensor
 * is meant to chance: refused, naming where each is. */
static zq_status check_unique(zq_source *src, zq_error *err)
{
    st_impl *im = src->impl;
    size_t *order = malloc((src->count ? src->count : 1) * sizeof *order);
    if (!order) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < src->count; i++) order[i] = i;
    sort_src = src;
    qsort(order, src->count, sizeof *order, by_name);
    zq_status st = ZQ_OK;
    for (size_t k = 1; k < src->count && st == ZQ_OK; k++) {
        size_t a = order[k - 1], b = order[k];
        if (strcmp(src->tensors[a].name, src->tensors[b].name)) continue;
        const char *fa = im->files[im->locs[a].file].path, *fb = im->files[im->locs[b].file].path;
        st = strcmp(fa, fb) ? zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is in two shards, '%s' and '%s'",
                                      src->path, src->tensors[a].name, fa, fb)
                            : zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' appears twice in its header", fa,
                                      src->tensors[a].name);
    }
    free(order);
    return st;
}

zq_status zq_safetensors_open(zq_source *src, const char *file, zq_error *err)
{
    ZQ_TRY(add_file(src, file, err));
    return check_unique(src, err);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int by_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A tensor the index lists twice (JSON keeps both) has no one shard. */
static zq_status check_index_unique(const cJSON *map, const char *index_path, zq_error *err)
{
    size_t n = (size_t)cJSON_GetArraySize(map), k = 0;
    const cJSON **e = malloc((n ? n : 1) * sizeof *e);
    if (!e) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (const cJSON *it = map->child; it; it = it->next) e[k++] = it;
    qsort(e, n, sizeof *e, by_key);
    zq_status st = ZQ_OK;
    for (k = 1; k < n && st == ZQ_OK; k++)
        if (!strcmp(e[k]->string, e[k - 1]->string))
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is listed twice, in '%s' and in '%s'", index_path,
                         e[k]->string, e[k - 1]->valuestring, e[k]->valuestring);
    free(e);
    return st;
}

zq_status zq_safetensors_open_sharded(zq_source *src, const char *folder, const char *index_path, zq_error *err)
{
    char *text = NULL;
    ZQ_TRY(zq_read_input_file(index_path, HEADER_LIMIT, &text, NULL, err));
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map) || zq_json_bad_utf8(map)) {
        cJSON_Delete(root);
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': not JSON with a \"weight_map\" object", index_path);
    }
    size_t n = (size_t)cJSON_GetArraySize(map), nshards = 0;
    char **shards = calloc(n ? n : 1, sizeof *shards);
    zq_status st = shards ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (st != ZQ_OK) break;
        if (!cJSON_IsString(e) || !*e->valuestring || strchr(e->valuestring, '/'))
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': shard is not a file name in this folder",
                         index_path, e->string);
        else
            shards[nshards++] = e->valuestring;
    }
    if (st == ZQ_OK) st = check_index_unique(map, index_path, err);
    if (st == ZQ_OK) {
        qsort(shards, nshards, sizeof *shards, cmp_str);
        for (size_t k = 0; k < nshards && st == ZQ_OK; k++) {
            if (k && strcmp(shards[k], shards[k - 1]) == 0) continue;
            char *p = zq_path_join(folder, shards[k]);
            st = p ? add_file(src, p, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            free(p);
        }
    }
    if (st == ZQ_OK) st = check_unique(src, err);
    /* every tensor the index names must be in the shard it names */
    st_impl *im = src->impl;
    cJSON_ArrayForEach(e, map) {
        if (st != ZQ_OK) break;
        size_t k = 0;
        while (k < src->count && strcmp(src->tensors[k].name, e->string) != 0) k++;
        const char *base = NULL;
        if (k < src->count) {
            base = strrchr(im->files[im->locs[k].file].path, '/');
            base = base ? base + 1 : im->files[im->locs[k].file].path;
        }
        if (!base || strcmp(base, e->valuestring) != 0)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': not found in shard '%s'", index_path, e->string,
                         e->valuestring);
    }
    free(shards);
    cJSON_Delete(root);
    return st;
}
