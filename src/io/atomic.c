/* Output files that appear whole or not at all: a temp file beside the
 * target, fsync, rename; on any error or signal the temp file goes. */
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "io/cleanup.h"

static void release(zq_atomic *a)
{
    zq_cleanup_remove(a->slot);
    a->slot = -1;
    if (a->fd >= 0) close(a->fd);
    a->fd = -1;
    free(a->tmp);
    free(a->final);
    a->tmp = a->final = NULL;
}

zq_status zq_atomic_open(zq_atomic *a, const char *path, int force, zq_error *err)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->slot = -1;
    a->force = force;
    if (!force && access(path, F_OK) == 0)
        return zq_fail(err, ZQ_ERR_EXISTS, "'%s': already exists (use --force to overwrite)", path);
    char *dir = zq_path_dirname(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = (dir ? strlen(dir) : 0) + strlen(base) + 32;
    a->tmp = malloc(n);
    a->final = strdup(path);
    if (!dir || !a->tmp || !a->final) {
        free(dir);
        release(a);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    snprintf(a->tmp, n, "%s/.%s.tmp-XXXXXX", dir, base);
    free(dir);
    a->fd = mkostemp(a->tmp, O_CLOEXEC);
    if (a->fd < 0) {
        zq_status st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create a temp file beside it", path);
        release(a);
        return st;
    }
    mode_t mask = umask(0); /* mkostemp makes 0600; outputs are ordinary files */
    umask(mask);
    fchmod(a->fd, 0666 & ~mask);
    a->slot = zq_cleanup_add(a->tmp);
    return ZQ_OK;
}

/* Starts the disk writing what is already written, in the background, so
 * the final fsync has little left to wait for. */
static void kick_writeback(zq_atomic *a, size_t len)
{
    enum { KICK = 32u << 20 };
    a->unkicked += len;
    if (a->unkicked < KICK) return;
    off_t end = lseek(a->fd, 0, SEEK_CUR);
    if (end > (off_t)a->unkicked) sync_file_range(a->fd, end - (off_t)a->unkicked, (off_t)a->unkicked, SYNC_FILE_RANGE_WRITE);
    a->unkicked = 0;
}

zq_status zq_atomic_write(zq_atomic *a, const void *data, size_t len, zq_error *err)
{
    kick_writeback(a, len);
    const char *p = data;
    while (len) {
        ssize_t k = write(a->fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': write failed", a->final);
        p += k;
        len -= (size_t)k;
    }
    return ZQ_OK;
}

zq_status zq_atomic_pwrite(zq_atomic *a, const void *data, size_t len, uint64_t offset, zq_error *err)
{
    const char *p = data;
    while (len) {
        ssize_t k = pwrite(a->fd, p, len, (off_t)offset);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': write failed", a->final);
        p += k;
        len -= (size_t)k;
        offset += (uint64_t)k;
    }
    return ZQ_OK;
}

zq_status zq_atomic_commit(zq_atomic *a, zq_error *err)
{
    zq_status st = ZQ_OK;
    if (fsync(a->fd) != 0) st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': fsync failed", a->final);
    if (st == ZQ_OK && close(a->fd) != 0) st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': close failed", a->final);
    a->fd = -1;
    if (st == ZQ_OK && !a->force && access(a->final, F_OK) == 0)
        st = zq_fail(err, ZQ_ERR_EXISTS, "'%s': appeared while writing (use --force to overwrite)", a->final);
    if (st == ZQ_OK && rename(a->tmp, a->final) != 0)
        st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot rename the temp file into place", a->final);
    if (st != ZQ_OK) {
        unlink(a->tmp);
    } else {
        /* make the rename itself durable */
        char *dir = zq_path_dirname(a->final);
        int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    release(a);
    return st;
}

void zq_atomic_abort(zq_atomic *a)
{
    if (a->tmp) unlink(a->tmp);
    release(a);
}
