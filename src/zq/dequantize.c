/* zq_dequantize_file: a .zq file to a safetensors checkpoint of floats, one
 * tensor in memory at a time. */
#include "zquant/dequantize.h"

#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"
#include "io/st_write.h"
#include "zq/meta.h"
#include "zquant/fp16.h"
#include "zquant/zq.h"

/* The safetensors header, tensors in the .zq table's order. */
static unsigned char *build_header(const zq_file *f, size_t esize, size_t *len)
{
    size_t n = zq_file_count(f);
    zq_st_entry *e = malloc((n ? n : 1) * sizeof *e);
    if (!e) return NULL;
    for (size_t i = 0; i < n; i++) {
        const zq_tensor *t = zq_file_tensor(f, i);
        e[i] = (zq_st_entry){t->name, t->ndim, t->shape, esize == 2 ? "F16" : "F32", esize};
    }
    unsigned char *h = zq_st_header(e, n, len);
    free(e);
    return h;
}

zq_status zq_dequantize_file(const char *zq_path, const char *out_path, int dtype_f16, int force, zq_error *err)
{
    zq_file *f = NULL;
    ZQ_TRY(zq_file_open(zq_path, ZQ_VERIFY_ALL, &f, err));
    size_t esize = dtype_f16 ? 2 : 4, hlen = 0;
    unsigned char *header = build_header(f, esize, &hlen);
    zq_atomic out;
    zq_status st = header ? zq_atomic_open(&out, out_path, force, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (!header) {
        zq_file_close(f);
        return st;
    }
    if (st != ZQ_OK) {
        free(header);
        zq_file_close(f);
        return st;
    }
    st = zq_atomic_write(&out, header, hlen, err);
    /* one tensor in memory at a time */
    for (size_t i = 0; st == ZQ_OK && i < zq_file_count(f); i++) {
        uint64_t n = zq_tensor_numel(zq_file_tensor(f, i));
        if (n == 0) continue;
        float *buf = malloc(n * sizeof *buf);
        if (!buf) {
            st = zq_fail(err, ZQ_ERR_NOMEM, "'%s': tensor '%s': out of memory", zq_path, zq_file_tensor(f, i)->name);
            break;
        }
        st = zq_file_read_float(f, i, buf, err);
        if (st == ZQ_OK && dtype_f16) {
            uint16_t *h = malloc(n * 2);
            if (!h) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            else {
                zq_f32_to_f16_n(buf, h, n);
                st = zq_atomic_write(&out, h, n * 2, err);
                free(h);
            }
        } else if (st == ZQ_OK) {
            st = zq_atomic_write(&out, buf, n * 4, err);
        }
        free(buf);
    }
    free(header);
    zq_file_close(f);
    if (st == ZQ_OK) return zq_atomic_commit(&out, err);
    zq_atomic_abort(&out);
    return st;
}
