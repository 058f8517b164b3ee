/* The data's activations at one depth, every batch of them: in memory
 * while the run's data memory holds them, else in a file without a name,
 * read back a batch at a time. GPTQ with 128 sequences of 2048 tokens at
 * Llama-2-7B's width holds 4 GB in each of its three streams; in the file
 * they cost page cache the kernel can take back, not the process's memory,
 * and a batch's read (32 MB) is short next to its block's forward (seconds).
 * The floats are the same either way, so are the results. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/files.h"
#include "lkd/lkd_impl.h"

zq_status zq_batches_open(zq_batches *s, int nb, size_t per, const char *spill_dir, zq_error *err)
{
    memset(s, 0, sizeof *s);
    s->nb = nb;
    s->per = per;
    s->fd = -1;
    if (!spill_dir) {
        if (!(s->mem = malloc((size_t)nb * per * sizeof(float))))
            return zq_fail(err, ZQ_ERR_NOMEM, "out of memory for %d batches of activations", nb);
        return ZQ_OK;
    }
    ZQ_TRY(zq_unnamed_file(spill_dir, &s->fd, &s->dir, err));
    if (ftruncate(s->fd, (off_t)((size_t)nb * per * sizeof(float))) != 0) { /* holes: no room taken yet */
        zq_status st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': no room for the data's activations", s->dir);
        zq_batches_close(s);
        return st;
    }
    return ZQ_OK;
}

void zq_batches_close(zq_batches *s)
{
    free(s->mem);
    if (s->fd >= 0) close(s->fd);
    s->mem = NULL;
    s->fd = -1;
}

/* pread or pwrite of a whole batch: short transfers continued, failures
 * named */
static zq_status transfer(const zq_batches *s, int b, void *buf, int write, zq_error *err)
{
    size_t len = s->per * sizeof(float), done = 0;
    off_t at = (off_t)((size_t)b * len);
    while (done < len) {
        ssize_t n = write ? pwrite(s->fd, (char *)buf + done, len - done, at + (off_t)done)
                          : pread(s->fd, (char *)buf + done, len - done, at + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = write ? ENOSPC : EIO;
            return zq_fail_errno(err, ZQ_ERR_IO, write ? "'%s': no room for the data's activations (a temporary file "
                                 "there; a larger --data-memory keeps them in memory)" : "'%s': cannot read back the "
                                 "data's activations (a temporary file there)", s->dir);
        }
        done += (size_t)n;
    }
    return ZQ_OK;
}

zq_status zq_batch_read(const zq_batches *s, int b, float *buf, const float **x, zq_error *err)
{
    if (s->mem) {
        *x = s->mem + (size_t)b * s->per;
        return ZQ_OK;
    }
    *x = buf;
    return transfer(s, b, buf, 0, err);
}

float *zq_batch_slot(const zq_batches *s, int b, float *buf) { return s->mem ? s->mem + (size_t)b * s->per : buf; }

zq_status zq_batch_write(const zq_batches *s, int b, const float *x, zq_error *err)
{
    if (s->mem) {
        float *at = s->mem + (size_t)b * s->per;
        if (at != x) memcpy(at, x, s->per * sizeof *x);
        return ZQ_OK;
    }
    return transfer(s, b, (void *)x, 1, err);
}
