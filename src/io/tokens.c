/* Token files: raw little-endian uint32 ids (read and written), or .npy
 * arrays of integers (read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/files.h"
#include "base/le.h"
#include "base/utf8.h"
#include "io/atomic.h"
#include "zquant/tokenizer.h"

#define TOKENS_LIMIT ((size_t)1 << 34)

/* The text after 'key': in a .npy header dict, NULL if absent. */
static const char *npy_field(const char *hdr, const char *key)
{
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *p = strstr(hdr, quoted);
    if (!p) return NULL;
    p += strlen(quoted);
    while (*p == ' ') p++;
    if (*p++ != ':') return NULL;
    while (*p == ' ') p++;
    return p;
}

/* The element count of a shape tuple such as (3, 1024) or (7,) or (). */
static int npy_count(const char *p, uint64_t *count)
{
    if (!p || *p++ != '(') return 0;
    *count = 1;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ')') return 1;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || (v && *count > UINT64_MAX / v)) return 0;
        *count *= v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p != ')') return 0;
    }
}

static zq_status npy_tokens(const char *path, const unsigned char *d, size_t len, int32_t **ids, size_t *n,
                            zq_error *err)
{
    if (len < 10 || d[6] < 1 || d[6] > 3 || (d[6] > 1 && len < 12))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': truncated or unknown .npy header", path);
    size_t at = d[6] == 1 ? 10 : 12;
    size_t hl = d[6] == 1 ? (size_t)zq_load_le(d + 8, 2) : (size_t)zq_load_le32(d + 8);
    if (hl > len - at) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': .npy header runs past the end", path);
    size_t start = at + hl;
    char *hdr = malloc(hl + 1);
    if (!hdr) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    memcpy(hdr, d + at, hl);
    hdr[hl] = 0;
    const char *descr = npy_field(hdr, "descr"), *order = npy_field(hdr, "fortran_order");
    char kind = 0;
    int size = 0;
    if (descr && descr[0] == '\'' && (descr[1] == '<' || descr[1] == '|') && (descr[2] == 'i' || descr[2] == 'u') &&
        descr[3] && descr[4] == '\'') /* descr[3] first: the header may end right after 'i */
        kind = descr[2], size = descr[3] - '0';
    uint64_t count = 0;
    zq_status st = ZQ_OK;
    if (!kind || (size != 1 && size != 2 && size != 4 && size != 8))
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': .npy dtype must be a little-endian integer", path);
    else if (!order || strncmp(order, "False", 5) != 0)
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': Fortran-ordered .npy is not supported", path);
    else if (!npy_count(npy_field(hdr, "shape"), &count))
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': .npy header has no readable shape", path);
    else if (count > (len - start) / (uint64_t)size || (len - start) != count * (uint64_t)size)
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': the .npy header's shape holds %llu values, the file %zu bytes of them",
                     path, (unsigned long long)count, len - start);
    free(hdr);
    ZQ_TRY(st);
    *ids = malloc((count ? count : 1) * sizeof **ids);
    if (!*ids) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const unsigned char *p = d + start + i * (size_t)size;
        uint64_t u = zq_load_le(p, size);
        int64_t v = (int64_t)u;
        if (kind == 'i' && size < 8 && (u >> (8 * size - 1)) & 1) v = (int64_t)(u | ~((1ull << (8 * size)) - 1)); /* sign-extend */
        if (v < 0 || v > INT32_MAX) {
            free(*ids);
            *ids = NULL;
            return zq_fail(err, ZQ_ERR_DATA, "'%s': token %zu is %lld, not a token id", path, i, (long long)v);
        }
        (*ids)[i] = (int32_t)v;
    }
    *n = count;
    return ZQ_OK;
}

/* Every id of a real vocabulary is below 2^24, so a token file has a zero
 * byte in each id; text has none. Its start (cut at a whole character) is
 * checked, so a long text file costs nothing more. */
static int looks_like_text(const char *d, size_t len)
{
    size_t n = len < 4096 ? len : 4096;
    if (n < 4 || memchr(d, 0, n)) return 0;
    while (n < len && n > 0 && ((unsigned char)d[n] & 0xC0) == 0x80) n--; /* back to a character's start */
    return zq_utf8_valid(d, n);
}

zq_status zq_tokens_read(const char *path, int32_t **ids, size_t *n, zq_error *err)
{
    char *d;
    size_t len;
    *ids = NULL;
    *n = 0;
    ZQ_TRY(zq_read_input_file(path, TOKENS_LIMIT, &d, &len, err));
    zq_status st = ZQ_OK;
    if (len >= 6 && memcmp(d, "\x93NUMPY", 6) == 0) {
        st = npy_tokens(path, (const unsigned char *)d, len, ids, n, err);
    } else if (looks_like_text(d, len)) {
        st = zq_fail(err, ZQ_ERR_DATA, "'%s': looks like text, not token ids: give it with --text (or tokenize it with "
                     "zquant tokenize)", path);
    } else if (len % 4) {
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': %zu bytes is not a whole number of uint32 ids", path, len);
    } else {
        *n = len / 4;
        *ids = malloc((*n ? *n : 1) * sizeof **ids);
        if (!*ids) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; st == ZQ_OK && i < *n; i++) {
            const unsigned char *p = (const unsigned char *)d + 4 * i;
            uint32_t v = zq_load_le32(p);
            if (v > INT32_MAX) st = zq_fail(err, ZQ_ERR_DATA, "'%s': token %zu is %u, not a token id", path, i, v);
            else (*ids)[i] = (int32_t)v;
        }
    }
    free(d);
    if (st == ZQ_OK && *n == 0) st = zq_fail(err, ZQ_ERR_DATA, "'%s': no tokens", path);
    if (st != ZQ_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

zq_status zq_tokens_write(const char *path, const int32_t *ids, size_t n, int force, zq_error *err)
{
    unsigned char *le = malloc(n * 4 + 1);
    if (!le) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) zq_store_le32(le + 4 * i, (uint32_t)ids[i]);
    zq_atomic f;
    zq_status st = zq_atomic_open(&f, path, force, err);
    if (st == ZQ_OK) st = zq_atomic_write(&f, le, n * 4, err);
    if (st == ZQ_OK) st = zq_atomic_commit(&f, err);
    else zq_atomic_abort(&f);
    free(le);
    return st;
}
