/* Config against tensors for checkpoints and .zq files (check.h). */
#include "model/check.h"

#include <stdlib.h>

zq_status zq_check_source(const zq_arch *a, const zq_source *src, int complete, zq_error *err)
{
    size_t n = zq_source_count(src);
    zq_tensor_size *t = malloc((n + 1) * sizeof *t);
    if (!t) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) t[i] = (zq_tensor_size){zq_source_tensor(src, i)->name, zq_source_tensor(src, i)->numel};
    zq_status st = zq_arch_check_tensors(a, t, n, complete, zq_source_path(src), err);
    free(t);
    return st;
}

zq_status zq_check_zq(const zq_arch *a, const zq_file *f, int complete, zq_error *err)
{
    size_t n = zq_file_count(f);
    zq_tensor_size *t = malloc((n + 1) * sizeof *t);
    if (!t) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const zq_tensor *x = zq_file_tensor(f, i);
        uint64_t k = 1;
        for (int d = 0; d < x->ndim; d++) k *= (uint64_t)x->shape[d];
        t[i] = (zq_tensor_size){x->name, k};
    }
    zq_status st = zq_arch_check_tensors(a, t, n, complete, zq_file_path(f), err);
    free(t);
    return st;
}
