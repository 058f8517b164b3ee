/* GGUF parsing, bounds-checked (see read.h). */
#include "export/gguf/read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/files.h"
#include "base/le.h"
#include "base/util.h"
#include "io/cleanup.h"
#include "zquant/fp16.h"

#define MAX_COUNT (1u << 24) /* keys, tensors, array elements: far beyond any real file */

static const struct {
    int type;
    const char *name;
    unsigned block, bytes;
} ggml_types[] = {{GGML_F32, "F32", 1, 4},     {GGML_F16, "F16", 1, 2},      {GGML_BF16, "BF16", 1, 2},
                  {GGML_Q4_0, "Q4_0", 32, 18}, {GGML_Q4_1, "Q4_1", 32, 20}, {GGML_Q8_0, "Q8_0", 32, 34}};

static int type_index(int type)
{
    for (size_t k = 0; k < sizeof ggml_types / sizeof *ggml_types; k++)
        if (ggml_types[k].type == type) return (int)k;
    return -1;
}

const char *zq_ggml_type_name(int type)
{
    int k = type_index(type);
    return k < 0 ? NULL : ggml_types[k].name;
}

uint64_t zq_ggml_row_bytes(int type, uint64_t n)
{
    int k = type_index(type);
    return k < 0 ? 0 : n / ggml_types[k].block * ggml_types[k].bytes;
}

void zq_ggml_decode_row(int type, const unsigned char *row, uint64_t n, float *out)
{
    if (type == GGML_F32) {
        for (uint64_t i = 0; i < n; i++) out[i] = zq_load_lef32(row + 4 * i);
    } else if (type == GGML_F16 || type == GGML_BF16) {
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)zq_load_le(row + 2 * i, 2);
            out[i] = type == GGML_F16 ? zq_f16_to_f32(h) : zq_bf16_to_f32(h);
        }
    } else if (type == GGML_Q8_0) {
        for (uint64_t b = 0; b < n / GGML_QK; b++, row += 34) {
            float d = zq_f16_to_f32((uint16_t)zq_load_le(row, 2));
            for (int j = 0; j < GGML_QK; j++) out[b * GGML_QK + j] = d * (float)(int8_t)row[2 + j];
        }
    } else { /* Q4_0: d * (nibble - 8); Q4_1: d * nibble + m */
        int q41 = type == GGML_Q4_1;
        for (uint64_t b = 0; b < n / GGML_QK; b++, row += q41 ? 20 : 18) {
            float d = zq_f16_to_f32((uint16_t)zq_load_le(row, 2));
            float m = q41 ? zq_f16_to_f32((uint16_t)zq_load_le(row + 2, 2)) : 0;
            const unsigned char *qs = row + (q41 ? 4 : 2);
            for (int j = 0; j < GGML_QK / 2; j++) {
                int lo = qs[j] & 15, hi = qs[j] >> 4;
                out[b * GGML_QK + j] = q41 ? d * (float)lo + m : d * (float)(lo - 8);
                out[b * GGML_QK + j + GGML_QK / 2] = q41 ? d * (float)hi + m : d * (float)(hi - 8);
            }
        }
    }
}

/* ---- the header ------------------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
    int bad;
} cursor;

static uint64_t take(cursor *c, int n)
{
    if (c->bad || (size_t)(c->end - c->p) < (size_t)n) {
        c->bad = 1;
        return 0;
    }
    uint64_t v = zq_load_le(c->p, n);
    c->p += n;
    return v;
}

static const unsigned char *take_bytes(cursor *c, uint64_t n)
{
    if (c->bad || (uint64_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *at = c->p;
    c->p += n;
    return at;
}

static char *take_string(cursor *c)
{
    uint64_t n = take(c, 8);
    const unsigned char *s = n < (1u << 20) ? take_bytes(c, n) : NULL;
    if (!s) {
        c->bad = 1;
        return NULL;
    }
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = 0;
    }
    return out;
}

static int scalar_size(int type)
{
    static const int sizes[] = {[GGUF_U8] = 1, [GGUF_I8] = 1, [GGUF_U16] = 2, [GGUF_I16] = 2, [GGUF_U32] = 4,
                                [GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1, [GGUF_U64] = 8, [GGUF_I64] = 8,
                                [GGUF_F64] = 8};
    return type >= 0 && type <= GGUF_F64 && type != GGUF_STRING && type != GGUF_ARRAY ? sizes[type] : 0;
}

static void skip_value(cursor *c, int type)
{
    if (type == GGUF_STRING) {
        uint64_t n = take(c, 8);
        take_bytes(c, n);
    } else if (scalar_size(type)) {
        take_bytes(c, (uint64_t)scalar_size(type));
    } else {
        c->bad = 1;
    }
}

static zq_status distinct_tensors(const zq_gguf *g, zq_error *err);

static zq_status parse(zq_gguf *g, zq_error *err)
{
    cursor c = {g->map, g->map + g->size, 0};
    const char *path = g->path;
    if (take(&c, 4) != 0x46554747u) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': not a GGUF file (no \"GGUF\" magic)", path);
    g->version = (uint32_t)take(&c, 4);
    if (g->version < 2 || g->version > 3)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': GGUF version %u (zquant reads 2 and 3)", path, g->version);
    uint64_t nt = take(&c, 8), nkv = take(&c, 8);
    if (c.bad || nt > MAX_COUNT || nkv > MAX_COUNT)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': truncated or implausible header (%llu tensors, %llu keys)", path,
                       (unsigned long long)nt, (unsigned long long)nkv);
    g->kv = calloc(nkv + 1, sizeof *g->kv);
    g->t = calloc(nt + 1, sizeof *g->t);
    if (!g->kv || !g->t) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (uint64_t k = 0; k < nkv && !c.bad; k++, g->nkv++) {
        zq_gguf_kv *kv = &g->kv[k];
        kv->key = take_string(&c);
        kv->type = (int)take(&c, 4);
        if (kv->type == GGUF_ARRAY) {
            kv->elem_type = (int)take(&c, 4);
            kv->count = take(&c, 8);
            kv->val = c.p;
            if (kv->count > MAX_COUNT || kv->elem_type == GGUF_ARRAY) c.bad = 1;
            for (uint64_t e = 0; e < kv->count && !c.bad; e++) skip_value(&c, kv->elem_type);
        } else {
            kv->val = c.p;
            skip_value(&c, kv->type);
        }
    }
    if (c.bad) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': the key-value metadata is truncated or malformed", path);
    uint64_t align = 32;
    if (zq_gguf_uint(g, "general.alignment", &align) && (align == 0 || align > 65536 || (align & (align - 1))))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': general.alignment %llu is not a power of two", path,
                       (unsigned long long)align);
    g->alignment = (uint32_t)align;
    for (uint64_t k = 0; k < nt && !c.bad; k++) {
        zq_gguf_tensor *t = &g->t[k];
        t->name = take_string(&c);
        g->nt = k + 1; /* owns the name from here on */
        t->ndim = (int)take(&c, 4);
        if (t->ndim < 1 || t->ndim > 4) c.bad = 1;
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim && !c.bad; d++) {
            t->ne[d] = take(&c, 8);
            if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) / numel) c.bad = 1;
            else numel *= t->ne[d];
        }
        t->type = (int)take(&c, 4);
        uint64_t off = take(&c, 8);
        if (c.bad || !t->name) break;
        if (!zq_ggml_type_name(t->type))
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': ggml type %d (zquant reads F32, F16, BF16, Q8_0, "
                           "Q4_0 and Q4_1)", path, t->name, t->type);
        if (t->type >= GGML_Q4_0 && t->type <= GGML_Q8_0 && t->ne[0] % GGML_QK)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': %llu values per row, not whole blocks of 32", path,
                           t->name, (unsigned long long)t->ne[0]);
        t->bytes = zq_ggml_row_bytes(t->type, t->ne[0]) * (numel / t->ne[0]);
        t->data = (const unsigned char *)(uintptr_t)off; /* relative until the data start is known */
    }
    if (c.bad) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': the tensor table is truncated or malformed", path);
    uint64_t start = zq_align_up((uint64_t)(c.p - g->map), align);
    for (size_t k = 0; k < g->nt; k++) {
        zq_gguf_tensor *t = &g->t[k];
        uint64_t off = (uint64_t)(uintptr_t)t->data;
        if (off % align || start > g->size || off > g->size - start || t->bytes > g->size - start - off)
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': its data (offset %llu, %llu bytes) is misaligned or "
                           "runs past the end of the file", path, t->name, (unsigned long long)off,
                           (unsigned long long)t->bytes);
        t->data = g->map + start + off;
    }
    return distinct_tensors(g, err);
}

static int by_data(const void *a, const void *b)
{
    const zq_gguf_tensor *x = *(const zq_gguf_tensor *const *)a, *y = *(const zq_gguf_tensor *const *)b;
    return (x->data > y->data) - (x->data < y->data);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const zq_gguf_tensor *const *)a)->name, (*(const zq_gguf_tensor *const *)b)->name);
}

/* Every tensor once: no name twice, no two tensors' bytes overlapping
 * (either would make one of them mean whatever the other holds). */
static zq_status distinct_tensors(const zq_gguf *g, zq_error *err)
{
    const zq_gguf_tensor **v = malloc((g->nt + 1) * sizeof *v);
    if (!v) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < g->nt; k++) v[k] = &g->t[k];
    zq_status st = ZQ_OK;
    qsort(v, g->nt, sizeof *v, by_name);
    for (size_t k = 1; st == ZQ_OK && k < g->nt; k++)
        if (!strcmp(v[k - 1]->name, v[k]->name))
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is listed twice", g->path, v[k]->name);
    qsort(v, g->nt, sizeof *v, by_data);
    for (size_t k = 1; st == ZQ_OK && k < g->nt; k++)
        if (v[k - 1]->data + v[k - 1]->bytes > v[k]->data)
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensors '%s' and '%s' share bytes of the data", g->path, v[k - 1]->name,
                         v[k]->name);
    free(v);
    return st;
}

zq_status zq_gguf_open(const char *path, zq_gguf **out, zq_error *err)
{
    *out = NULL;
    zq_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    g->map_slot = -1;
    int fd;
    struct stat sb;
    zq_status st = zq_open_regular(path, &fd, &sb, err);
    if (st == ZQ_OK) {
        zq_note_input(path, &sb);
        g->size = (uint64_t)sb.st_size;
        void *m = g->size ? mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
        close(fd);
        if (!g->size) st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': empty file", path);
        else if (m == MAP_FAILED)
            st = zq_fail_errno(err, errno == ENOMEM ? ZQ_ERR_NOMEM : ZQ_ERR_IO, "'%s': cannot map it into memory", path);
        else g->map = m, g->map_slot = zq_cleanup_map(m, g->size, path);
    }
    if (st == ZQ_OK) st = parse(g, err);
    if (st != ZQ_OK) {
        zq_gguf_close(g);
        return st;
    }
    *out = g;
    return ZQ_OK;
}

void zq_gguf_close(zq_gguf *g)
{
    if (!g) return;
    for (size_t k = 0; k < g->nkv; k++) free(g->kv[k].key);
    for (size_t k = 0; k < g->nt; k++) free(g->t[k].name);
    free(g->kv);
    free(g->t);
    zq_cleanup_unmap(g->map_slot);
    if (g->map) munmap(g->map, g->size);
    free(g->path);
    free(g);
}

const zq_gguf_kv *zq_gguf_find(const zq_gguf *g, const char *key)
{
    for (size_t k = 0; k < g->nkv; k++)
        if (g->kv[k].key && !strcmp(g->kv[k].key, key)) return &g->kv[k];
    return NULL;
}

const zq_gguf_tensor *zq_gguf_tensor_named(const zq_gguf *g, const char *name)
{
    for (size_t k = 0; k < g->nt; k++)
        if (!strcmp(g->t[k].name, name)) return &g->t[k];
    return NULL;
}

int zq_gguf_uint(const zq_gguf *g, const char *key, uint64_t *v)
{
    const zq_gguf_kv *kv = zq_gguf_find(g, key);
    if (!kv) return 0;
    static const int signed_type[] = {[GGUF_I8] = 1, [GGUF_I16] = 1, [GGUF_I32] = 1, [GGUF_I64] = 1, [GGUF_F64] = 0};
    int n = kv->type == GGUF_F32 || kv->type == GGUF_F64 || kv->type == GGUF_BOOL ? 0 : scalar_size(kv->type);
    if (!n) return 0;
    uint64_t x = zq_load_le(kv->val, n);
    if (kv->type <= GGUF_I64 && signed_type[kv->type] && (x >> (8 * n - 1)) & 1) return 0; /* negative */
    *v = x;
    return 1;
}

int zq_gguf_float(const zq_gguf *g, const char *key, double *v)
{
    const zq_gguf_kv *kv = zq_gguf_find(g, key);
    if (!kv || (kv->type != GGUF_F32 && kv->type != GGUF_F64)) return 0;
    if (kv->type == GGUF_F32) {
        *v = zq_load_lef32(kv->val);
    } else {
        uint64_t u = zq_load_le(kv->val, 8);
        memcpy(v, &u, 8);
    }
    return 1;
}

char *zq_gguf_string(const zq_gguf *g, const char *key)
{
    const zq_gguf_kv *kv = zq_gguf_find(g, key);
    if (!kv || kv->type != GGUF_STRING) return NULL;
    uint64_t n = zq_load_le(kv->val, 8);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, kv->val + 8, n);
        s[n] = 0;
    }
    return s;
}

int zq_gguf_runs_windows(const char *arch)
{
    static const char *const windowed[] = {"gemma2", "gemma3", NULL};
    for (int k = 0; windowed[k]; k++)
        if (!strcmp(windowed[k], arch)) return 1;
    return 0;
}
