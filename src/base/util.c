/* Paths and whole small files (see util.h). */
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *zq_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t n = a;
    if (n && p[n - 1] != '/') p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

char *zq_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, path, n);
    p[n] = 0;
    return p;
}

zq_status zq_read_small_file(const char *path, size_t limit, char **out, size_t *len, zq_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot open", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > limit + 4096 + 1) {
                fclose(f);
                free(buf);
                return zq_fail(err, ZQ_ERR_FORMAT, "'%s': larger than %zu bytes", path, limit);
            }
            char *nb = realloc(buf, cap);
            if (!nb) { fclose(f); free(buf); return zq_fail(err, ZQ_ERR_NOMEM, "'%s': out of memory", path); }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return zq_fail(err, ZQ_ERR_IO, "'%s': read error", path); }
    if (n > limit) { free(buf); return zq_fail(err, ZQ_ERR_FORMAT, "'%s': larger than %zu bytes", path, limit); }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return ZQ_OK;
}
