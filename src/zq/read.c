/* Reading a .zq file: mmap, check the header and the metadata, then hand out
 * pointers into the mapping (sections are 64-byte aligned, ready to upload). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "base/files.h"
#include "base/utf8.h"
#include "io/cleanup.h"
#include "zq/meta.h"
#include "zquant/crc32c.h"
#include "zquant/fp16.h"

struct zq_file {
    char *path;
    unsigned char *map;
    int map_slot; /* in the table a SIGBUS handler reads */
    uint64_t size;
    uint64_t data_start;
    char *metadata;
    char *config;
    char *model_type;
    zq_activation act;
    zq_tensor *tensors;
    size_t count;
    void **inflated; /* [count * ZQ_SEC_COUNT] decompressed sections */
    unsigned char *unverified; /* [count * ZQ_SEC_COUNT] CRCs still to check (ZQ_VERIFY_ON_USE) */
    zq_attached *files;
    size_t nfiles;
};

#define BAD(...) zq_fail(err, ZQ_ERR_FORMAT, __VA_ARGS__)

typedef struct {
    uint64_t begin, end;
} range;

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static zq_status check_overlaps(zq_file *f, zq_error *err)
{
    range *r = malloc((f->count * ZQ_SEC_COUNT + f->nfiles + 1) * sizeof *r);
    if (!r) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t k = 0; k < f->nfiles; k++)
        if (f->files[k].length) r[n++] = (range){f->files[k].offset, f->files[k].offset + f->files[k].length};
    for (size_t i = 0; i < f->count; i++)
        for (int k = 0; k < ZQ_SEC_COUNT; k++)
            if (f->tensors[i].sec[k].present && f->tensors[i].sec[k].length)
                r[n++] = (range){f->tensors[i].sec[k].offset, f->tensors[i].sec[k].offset + f->tensors[i].sec[k].length};
    qsort(r, n, sizeof *r, range_cmp);
    zq_status st = ZQ_OK;
    for (size_t k = 1; k < n && st == ZQ_OK; k++)
        if (r[k].begin < r[k - 1].end) st = BAD("'%s': two sections overlap at offset %llu", f->path, (unsigned long long)r[k].begin);
    free(r);
    return st;
}

static zq_status parse_activation(zq_file *f, const cJSON *a, zq_error *err)
{
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(a, "bits");
    const cJSON *gran = cJSON_GetObjectItemCaseSensitive(a, "granularity");
    if (!cJSON_IsNumber(bits) || !cJSON_IsString(gran) || strlen(gran->valuestring) >= sizeof f->act.granularity)
        return BAD("'%s': metadata has no valid \"activation\"", f->path);
    f->act.bits = bits->valueint;
    strcpy(f->act.granularity, gran->valuestring);
    f->act.dynamic = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "dynamic"));
    f->act.symmetric = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "symmetric"));
    if (!zq_activation_known(&f->act))
        return BAD("'%s': activation {bits %d, granularity \"%s\", dynamic %d, symmetric %d} is not a scheme zquant-format(5) "
                   "defines", f->path, f->act.bits, f->act.granularity, f->act.dynamic, f->act.symmetric);
    return ZQ_OK;
}

static zq_status parse_metadata(zq_file *f, zq_error *err)
{
    cJSON *root = cJSON_Parse(f->metadata);
    zq_status st = ZQ_OK;
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(tensors) || !cJSON_IsObject(config) || zq_json_bad_utf8(root->child)) {
        cJSON_Delete(root);
        return BAD("'%s': metadata is not the JSON zquant writes", f->path);
    }
    f->config = cJSON_PrintUnformatted(config);
    f->model_type = strdup(cJSON_IsString(mt) ? mt->valuestring : "");
    if (!f->config || !f->model_type) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = parse_activation(f, cJSON_GetObjectItemCaseSensitive(root, "activation"), err);
    size_t n = (size_t)cJSON_GetArraySize(tensors);
    if (st == ZQ_OK) {
        f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
        f->inflated = calloc((n ? n : 1) * ZQ_SEC_COUNT, sizeof *f->inflated);
        if (!f->tensors || !f->inflated) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, tensors) {
        if (st != ZQ_OK) break;
        st = zq_tensor_from_json(it, &f->tensors[f->count], f->path, f->data_start, f->size, err);
        f->count++; /* counted even on failure so close frees the name */
    }
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (st == ZQ_OK && files && !cJSON_IsArray(files)) st = BAD("'%s': metadata \"files\" is not a list", f->path);
    size_t nf = (size_t)cJSON_GetArraySize(files);
    if (st == ZQ_OK && nf && !(f->files = calloc(nf, sizeof *f->files))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(it, files) {
        if (st != ZQ_OK) break;
        st = zq_attached_from_json(it, &f->files[f->nfiles], f->path, f->data_start, f->size, err);
        for (size_t k = 0; st == ZQ_OK && k < f->nfiles; k++)
            if (!strcmp(f->files[k].name, f->files[f->nfiles].name))
                st = BAD("'%s': file '%s' is attached twice", f->path, f->files[k].name);
        f->nfiles++;
    }
    cJSON_Delete(root);
    if (st == ZQ_OK) st = check_overlaps(f, err);
    return st;
}

static zq_status verify_attached(const zq_file *f, const zq_attached *a, zq_error *err)
{
    if (zq_crc32c(0, f->map + a->offset, a->length) != a->crc32c)
        return zq_fail(err, ZQ_ERR_CORRUPT, "'%s': attached file '%s' checksum mismatch", f->path, a->name);
    return ZQ_OK;
}

size_t zq_file_attached_count(const zq_file *f) { return f->nfiles; }
const zq_attached *zq_file_attached_entry(const zq_file *f, size_t k) { return &f->files[k]; }

zq_status zq_file_attached(zq_file *f, const char *name, const void **data, size_t *len, zq_error *err)
{
    *data = NULL;
    *len = 0;
    for (size_t k = 0; k < f->nfiles; k++) {
        if (strcmp(f->files[k].name, name)) continue;
        ZQ_TRY(verify_attached(f, &f->files[k], err));
        *data = f->map + f->files[k].offset;
        *len = (size_t)f->files[k].length;
    }
    return ZQ_OK;
}

static void drop_pages(zq_file *f, size_t i);

int zq_is_zq_file(const char *path)
{
    char magic[8];
    struct stat sb;
    /* O_NONBLOCK: a FIFO would block; only a regular file counts */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int yes = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
              read(fd, magic, sizeof magic) == (ssize_t)sizeof magic && !memcmp(magic, ZQ_MAGIC, 8);
    if (fd >= 0) close(fd);
    return yes;
}

zq_status zq_file_open(const char *path, int verify, zq_file **out, zq_error *err)
{
    *out = NULL;
    zq_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    f->map_slot = -1;
    zq_status st = ZQ_OK;
    int fd = -1;
    struct stat sb;
    st = zq_open_regular(path, &fd, &sb, err);
    if (st == ZQ_OK) zq_note_input(path, &sb);
    if (st == ZQ_OK && (uint64_t)sb.st_size < ZQ_HEADER_SIZE)
        st = BAD("'%s': truncated: shorter than the 32-byte header", path);
    if (st == ZQ_OK) {
        f->size = (uint64_t)sb.st_size;
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) /* ENOMEM: no address space left for it (ulimit -v) */
            st = zq_fail_errno(err, errno == ENOMEM ? ZQ_ERR_NOMEM : ZQ_ERR_IO, "'%s': cannot map it into memory", path);
        else f->map = m, f->map_slot = zq_cleanup_map(m, f->size, path);
    }
    if (fd >= 0) close(fd);
    uint64_t mlen = 0;
    if (st == ZQ_OK) {
        zq_header h;
        int magic = zq_header_decode(f->map, &h);
        mlen = h.metadata_len;
        f->data_start = h.data_start;
        if (!magic) st = BAD("'%s': not a .zq file (bad magic)", path);
        else if (h.version != ZQ_FORMAT_VERSION)
            st = BAD("'%s': format version %u; this zquant reads version %u", path, h.version, ZQ_FORMAT_VERSION);
        else if (mlen > f->size - ZQ_HEADER_SIZE) st = BAD("'%s': truncated: metadata runs past the end", path);
        else if (f->data_start % ZQ_ALIGN || f->data_start < ZQ_HEADER_SIZE + mlen || f->data_start > f->size)
            st = BAD("'%s': data start %llu is not valid", path, (unsigned long long)f->data_start);
        else if (zq_crc32c(0, f->map + ZQ_HEADER_SIZE, mlen) != h.metadata_crc32c)
            st = zq_fail(err, ZQ_ERR_CORRUPT, "'%s': metadata checksum mismatch", path);
    }
    if (st == ZQ_OK) {
        f->metadata = malloc(mlen + 1);
        if (!f->metadata) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        else {
            memcpy(f->metadata, f->map + ZQ_HEADER_SIZE, mlen);
            f->metadata[mlen] = 0;
            st = parse_metadata(f, err);
        }
    }
    if (st == ZQ_OK && verify == ZQ_VERIFY_ON_USE) {
        f->unverified = malloc(f->count * ZQ_SEC_COUNT + 1);
        if (!f->unverified) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        else memset(f->unverified, 1, f->count * ZQ_SEC_COUNT + 1);
    }
    for (size_t i = 0; st == ZQ_OK && verify == ZQ_VERIFY_ALL && i < f->count; i++) {
        for (int k = 0; k < ZQ_SEC_COUNT && st == ZQ_OK; k++)
            if (f->tensors[i].sec[k].present) st = zq_file_verify_section(f, i, (zq_section_kind)k, err);
        drop_pages(f, i);
    }
    for (size_t k = 0; st == ZQ_OK && verify && k < f->nfiles; k++) st = verify_attached(f, &f->files[k], err);
    if (st != ZQ_OK) {
        zq_file_close(f);
        return st;
    }
    *out = f;
    return ZQ_OK;
}

void zq_file_close(zq_file *f)
{
    if (!f) return;
    /* the munmap below drops every page at once: no tensor's need dropping first */
    for (size_t i = 0; i < f->count; i++) free(f->tensors[i].name);
    for (size_t k = 0; f->inflated && k < f->count * ZQ_SEC_COUNT; k++) free(f->inflated[k]);
    free(f->inflated);
    free(f->unverified);
    free(f->tensors);
    for (size_t k = 0; k < f->nfiles; k++) free(f->files[k].name);
    free(f->files);
    zq_cleanup_unmap(f->map_slot);
    if (f->map) munmap(f->map, f->size);
    free(f->metadata);
    free(f->config);
    free(f->model_type);
    free(f->path);
    free(f);
}

const char *zq_file_path(const zq_file *f) { return f->path; }
size_t zq_file_count(const zq_file *f) { return f->count; }
const zq_tensor *zq_file_tensor(const zq_file *f, size_t i) { return &f->tensors[i]; }
const char *zq_file_model_type(const zq_file *f) { return f->model_type; }
const char *zq_file_config(const zq_file *f) { return f->config; }
const char *zq_file_metadata(const zq_file *f) { return f->metadata; }
const zq_activation *zq_file_activation(const zq_file *f) { return &f->act; }
uint64_t zq_file_size(const zq_file *f) { return f->size; }

long zq_file_find(const zq_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return (long)i;
    return -1;
}

/* Asks the kernel to start reading [offset, offset + len) of the file: a
 * file not in the page cache (a .zq just written, with O_DIRECT) is then
 * read while the step before it is checked, not a fault at a time. Only
 * when the range's first page is not cached: the kernel's walk over
 * cached pages costs what the read saves (a third of a warm export). */
static void read_ahead(const zq_file *f, uint64_t offset, uint64_t len)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), a = offset / page * page;
    unsigned char cached = 0;
    if (a >= f->size || (mincore(f->map + a, 1, &cached) == 0 && (cached & 1))) return;
    if (len > f->size - a) len = f->size - a;
    madvise(f->map + a, len, MADV_WILLNEED);
}

/* In steps, each step's pages dropped after when drop says so: verifying a
 * file keeps a step resident, not its largest tensor. The next step (past
 * the section's end: what the file holds next) is read ahead. */
static zq_status check_crc(zq_file *f, size_t i, zq_section_kind kind, int drop, zq_error *err)
{
    const zq_section *s = &f->tensors[i].sec[kind];
    if (!s->present) return ZQ_OK;
    enum { STEP = 16u << 20 };
    uint32_t crc = 0;
    for (uint64_t at = 0; at < s->length; at += STEP) {
        read_ahead(f, s->offset + at + STEP, STEP);
        crc = zq_crc32c(crc, f->map + s->offset + at, s->length - at < STEP ? s->length - at : STEP);
        if (drop) zq_file_drop(f, i, kind, at + STEP);
    }
    if (crc != s->crc32c)
        return zq_fail(err, ZQ_ERR_CORRUPT, "'%s': tensor '%s': section '%s' checksum mismatch", f->path,
                       f->tensors[i].name, zq_section_name(kind));
    return ZQ_OK;
}

zq_status zq_file_verify_section(zq_file *f, size_t i, zq_section_kind kind, zq_error *err)
{
    return check_crc(f, i, kind, 1, err);
}

zq_status zq_file_section(zq_file *f, size_t i, zq_section_kind kind, const void **data, size_t *len, zq_error *err)
{
    const zq_section *s = &f->tensors[i].sec[kind];
    if (!s->present)
        return zq_fail(err, ZQ_ERR_INTERNAL, "'%s': tensor '%s': no section '%s'", f->path, f->tensors[i].name,
                       zq_section_name(kind));
    unsigned char *unverified = f->unverified ? &f->unverified[i * ZQ_SEC_COUNT + kind] : NULL;
    if (unverified && *unverified) {
        /* the caller reads the bytes next: a section of up to 64 MiB stays
         * mapped for it (the caller drops it), a larger one is read twice
         * rather than kept whole */
        ZQ_TRY(check_crc(f, i, kind, s->length > (64u << 20), err));
        *unverified = 0;
    }
    *len = (size_t)s->size;
    if (!s->compressed) {
        *data = f->map + s->offset;
        return ZQ_OK;
    }
    void **slot = &f->inflated[i * ZQ_SEC_COUNT + kind];
    if (!*slot) {
        void *buf = malloc(s->size ? s->size : 1);
        if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        size_t got = ZSTD_decompress(buf, s->size, f->map + s->offset, s->length);
        if (ZSTD_isError(got) || got != s->size) {
            free(buf);
            return zq_fail(err, ZQ_ERR_CORRUPT, "'%s': tensor '%s': section '%s' does not decompress to %llu bytes",
                           f->path, f->tensors[i].name, zq_section_name(kind), (unsigned long long)s->size);
        }
        *slot = buf;
    }
    *data = *slot;
    return ZQ_OK;
}

void zq_file_drop(zq_file *f, size_t i, zq_section_kind k, uint64_t upto)
{
    const zq_section *s = &f->tensors[i].sec[k];
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), n = upto < s->length ? upto : s->length;
    if (!s->present || !n || s->offset + s->length > f->size) return;
    uint64_t a = s->offset / page * page; /* a page shared with what follows comes back if read */
    madvise(f->map + a, s->offset + n - a, MADV_DONTNEED);
}

/* Tensor i's mapped sections leave this process's memory (they come back
 * from the page cache if read again): a pass over the whole file, such as
 * verifying or exporting it, keeps one tensor resident, not the file. */
static void drop_pages(zq_file *f, size_t i)
{
    for (int k = 0; k < ZQ_SEC_COUNT; k++) zq_file_drop(f, i, (zq_section_kind)k, UINT64_MAX);
}

void zq_file_release(zq_file *f, size_t i)
{
    drop_pages(f, i);
    for (int k = 0; k < ZQ_SEC_COUNT; k++) {
        free(f->inflated[i * ZQ_SEC_COUNT + k]);
        f->inflated[i * ZQ_SEC_COUNT + k] = NULL;
    }
}

static zq_status dequantize(zq_file *f, size_t i, float *out, int original_layout, zq_error *err)
{
    const zq_tensor *t = &f->tensors[i];
    const void *p;
    size_t len;
    if (zq_tensor_numel(t) == 0) return ZQ_OK;
    if (!zq_qspec_quantized(&t->spec)) {
        ZQ_TRY(zq_file_section(f, i, ZQ_SEC_DATA, &p, &len, err));
        uint64_t n = zq_tensor_numel(t);
        uint16_t tmp[4096];
        for (uint64_t k = 0; k < n; k += 4096) {
            size_t m = n - k < 4096 ? (size_t)(n - k) : 4096;
            memcpy(tmp, (const uint16_t *)p + k, m * 2); /* the mapping is aligned, a decompressed copy too */
            zq_f16_to_f32_n(tmp, out + k, m);
        }
        return ZQ_OK;
    }
    const void *qp, *sp, *mp = NULL;
    ZQ_TRY(zq_file_section(f, i, ZQ_SEC_Q, &qp, &len, err));
    ZQ_TRY(zq_file_section(f, i, ZQ_SEC_SCALE, &sp, &len, err));
    if (!t->spec.symmetric) ZQ_TRY(zq_file_section(f, i, ZQ_SEC_MIN, &mp, &len, err));
    const zq_grid *g = &t->grid;
    float *row = malloc((g->cols ? g->cols : 1) * sizeof *row);
    if (!row) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    const uint16_t *scales = sp, *mins = mp;
    for (uint64_t r = 0; r < g->rows; r++) {
        const uint8_t *packed = (const uint8_t *)qp + r * g->row_bytes;
        for (uint64_t j = 0; j < g->col_groups; j++) {
            zq_group grp = zq_grid_group(g, r, j);
            zq_decode_run(&t->spec, packed, grp.col0, (size_t)grp.ncols, scales[grp.index],
                          mins ? mins[grp.index] : 0, row + grp.col0);
        }
        if (t->transposed && original_layout)
            for (uint64_t c = 0; c < g->cols; c++) out[c * g->rows + r] = row[c];
        else
            memcpy(out + r * g->cols, row, g->cols * sizeof *row);
    }
    free(row);
    return ZQ_OK;
}

zq_status zq_file_read_float(zq_file *f, size_t i, float *out, zq_error *err)
{
    return dequantize(f, i, out, 1, err);
}

zq_status zq_file_read_matrix(zq_file *f, size_t i, float *out, zq_error *err)
{
    return dequantize(f, i, out, 0, err);
}
