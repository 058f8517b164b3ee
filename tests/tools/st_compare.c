/* st_compare A B [TOL]: exits 0 when both checkpoints hold the same tensor
 * names and shapes and every value differs by at most TOL (default 0: bit
 * for bit as floats). Reads through libzquant's own source reader, so any
 * input zquant reads can be compared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zquant/source.h"

static long find(const zq_source *s, const char *name)
{
    for (size_t i = 0; i < zq_source_count(s); i++)
        if (strcmp(zq_source_tensor(s, i)->name, name) == 0) return (long)i;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: st_compare A B [TOL]\n");
        return 2;
    }
    double tol = argc > 3 ? atof(argv[3]) : 0.0;
    zq_source *a = NULL, *b = NULL;
    zq_error err = {0};
    if (zq_source_open(argv[1], &a, &err) || zq_source_open(argv[2], &b, &err)) {
        fprintf(stderr, "st_compare: %s\n", err.msg);
        return 2;
    }
    int bad = zq_source_count(a) != zq_source_count(b);
    if (bad) fprintf(stderr, "st_compare: %zu vs %zu tensors\n", zq_source_count(a), zq_source_count(b));
    for (size_t i = 0; i < zq_source_count(a); i++) {
        const zq_tensor_info *ta = zq_source_tensor(a, i);
        long j = find(b, ta->name);
        if (j < 0) {
            fprintf(stderr, "st_compare: '%s' missing from %s\n", ta->name, argv[2]);
            bad = 1;
            continue;
        }
        const zq_tensor_info *tb = zq_source_tensor(b, (size_t)j);
        if (ta->ndim != tb->ndim || memcmp(ta->shape, tb->shape, sizeof ta->shape[0] * (size_t)ta->ndim)) {
            fprintf(stderr, "st_compare: '%s' shapes differ\n", ta->name);
            bad = 1;
            continue;
        }
        float *x = malloc(ta->numel * 4 + 4), *y = malloc(ta->numel * 4 + 4);
        if (zq_source_read(a, i, 0, ta->rows, 0, ta->cols, x, &err) ||
            zq_source_read(b, (size_t)j, 0, tb->rows, 0, tb->cols, y, &err)) {
            fprintf(stderr, "st_compare: %s\n", err.msg);
            return 2;
        }
        double worst = 0;
        uint64_t at = 0;
        for (uint64_t k = 0; k < ta->numel; k++) {
            double d = fabs((double)x[k] - (double)y[k]);
            if (d > worst || isnan(d)) worst = isnan(d) ? INFINITY : d, at = k;
        }
        if (worst > tol) {
            fprintf(stderr, "st_compare: '%s' differs by %g at element %llu (%.9g vs %.9g)\n", ta->name, worst,
                    (unsigned long long)at, x[at], y[at]);
            bad = 1;
        }
        free(x);
        free(y);
    }
    zq_source_close(a);
    zq_source_close(b);
    return bad;
}
