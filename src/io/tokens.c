/* Token files: raw little-endian uint32 ids (read and written), or .npy
 * arrays of integers (read). */
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "base/files.h"
#include "io/atomic.h"
#include "zquant/tokenizer.h"

#define TOKENS_LIMIT ((size_t)1 << 34)

static zq_status npy_tokens(const char *path, const unsigned char *d, size_t len, int32_t **ids, size_t *n,
                            zq_error *err)
{
    if (len < 10) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': truncated .npy header", path);
    size_t hl = d[6] == 1 ? (size_t)zq_load_le(d + 8, 2) : len >= 12 ? (size_t)zq_load_le32(d + 8) : 0;
    size_t start = (d[6] == 1 ? 10 : 12) + hl;
    if (start > len) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': .npy header runs past the end", path);
    char hdr[1024];
    size_t hn = hl < sizeof hdr - 1 ? hl : sizeof hdr - 1;
    memcpy(hdr, d + (d[6] == 1 ? 10 : 12), hn);
    hdr[hn] = 0;
    char *descr = strstr(hdr, "'descr'");
    char kind = 0;
    int size = 0;
    if (descr) {
        char *q = strchr(descr + 7, '\'');
        if (q && (q[1] == '<' || q[1] == '|') && (q[2] == 'i' || q[2] == 'u')) kind = q[2], size = q[3] - '0';
    }
    if (!kind || (size != 1 && size != 2 && size != 4 && size != 8))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': .npy dtype must be a little-endian integer", path);
    if (strstr(hdr, "'fortran_order': True"))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': Fortran-ordered .npy is not supported", path);
    size_t count = (len - start) / (size_t)size;
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
