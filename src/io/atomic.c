/* Output files that appear whole or not at all: a temp file beside the
 * target, fsync, rename; on any error or signal the temp file goes. Devices
 * and FIFOs are written into (through a spool when they cannot seek). */
#include "io/atomic.h"
#include "zquant/quantize.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/files.h"
#include "base/util.h"
#include "io/cleanup.h"
#include "io/direct.h"

static void release(zq_atomic *a)
{
    zq_direct_abandon(a->direct);
    a->direct = NULL;
    zq_cleanup_remove(a->slot);
    a->slot = -1;
    if (a->fd >= 0) close(a->fd);
    if (a->stream && a->sink >= 0) close(a->sink);
    a->fd = a->sink = -1;
    free(a->tmp);
    free(a->final);
    free(a->target);
    a->tmp = a->final = a->target = NULL;
}

/* A device or FIFO target: written into, never replaced. One that cannot
 * seek (a FIFO, a terminal) gets the bytes at commit, from an unnamed spool
 * file that no signal can leave behind. */
static zq_status open_stream(zq_atomic *a, zq_error *err)
{
    int fd = open(a->final, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot open for writing", a->final);
    a->stream = 1;
    if (lseek(fd, 0, SEEK_CUR) >= 0) { /* /dev/null and the like */
        a->fd = fd;
        return ZQ_OK;
    }
    a->sink = fd;
    const char *dir;
    zq_status st = zq_unnamed_file(NULL, &a->fd, &dir, err);
    return st == ZQ_OK ? ZQ_OK : zq_fail_context(err, "'%s': its spool file", a->final);
}

zq_status zq_output_check(const char *path, int force, int *stream, zq_error *err)
{
    /* what the path names, as the kernel resolves it (/dev/stdout's magic
     * links included) */
    struct stat st;
    *stream = 0;
    if (stat(path, &st) != 0) return ZQ_OK;
    const char *input = zq_input_same_as(&st);
    if (input)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': is the input '%s': writing it would destroy it; choose another output",
                       path, input);
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) *stream = 1;
    else if (S_ISDIR(st.st_mode)) return zq_fail(err, ZQ_ERR_IO, "'%s': is a directory", path);
    else if (!S_ISREG(st.st_mode)) return zq_fail(err, ZQ_ERR_IO, "'%s': not a regular file, a character device or a FIFO", path);
    else if (!force) return zq_fail(err, ZQ_ERR_EXISTS, "'%s': already exists (use --force to overwrite)", path);
    return ZQ_OK;
}

zq_status zq_output_allowed(const char *path, int force, zq_error *err)
{
    int stream;
    return zq_output_check(path, force, &stream, err);
}

zq_status zq_atomic_open(zq_atomic *a, const char *path, int force, zq_error *err)
{
    return zq_atomic_open_as(a, path, path, force, err);
}

zq_status zq_atomic_open_as(zq_atomic *a, const char *path, const char *shown, int force, zq_error *err)
{
    memset(a, 0, sizeof *a);
    a->fd = a->sink = -1;
    a->slot = -1;
    a->force = force;
    a->final = strdup(shown);
    a->target = zq_follow_links(path);
    if (!a->final || !a->target) {
        zq_status st = errno == ELOOP ? zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot follow its symlinks", path)
                                      : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        release(a);
        return st;
    }
    int stream = 0;
    zq_status bad = zq_output_check(path, force, &stream, err);
    if (bad == ZQ_OK && stream) bad = open_stream(a, err);
    if (bad != ZQ_OK || a->stream) {
        if (bad != ZQ_OK) release(a);
        return bad;
    }
    char *dir = zq_path_dirname(a->target);
    const char *base = strrchr(a->target, '/');
    base = base ? base + 1 : a->target;
    size_t n = (dir ? strlen(dir) : 0) + strlen(base) + 32;
    a->tmp = malloc(n);
    if (!dir || !a->tmp) {
        free(dir);
        release(a);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    snprintf(a->tmp, n, "%s/.%s.tmp-XXXXXX", dir, base);
    free(dir);
    a->fd = mkostemp(a->tmp, O_CLOEXEC);
    if (a->fd < 0) {
        zq_status fail = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create a temp file beside it", a->final);
        free(a->tmp);
        a->tmp = NULL;
        release(a);
        return fail;
    }
    mode_t mask = umask(0); /* mkostemp makes 0600; outputs are ordinary files */
    umask(mask);
    fchmod(a->fd, 0666 & ~mask);
    a->slot = zq_cleanup_add(a->tmp);
    a->direct = zq_direct_start(a->fd, 0);
    return ZQ_OK;
}

/* Starts the disk writing what is already written, in the background, so
 * the final fsync has little left to wait for. */
static void kick_writeback(zq_atomic *a, size_t len)
{
    enum { KICK = 32u << 20 };
    if (a->stream) return;
    a->unkicked += len;
    if (a->unkicked < KICK) return;
    off_t end = lseek(a->fd, 0, SEEK_CUR);
    if (end > (off_t)a->unkicked) sync_file_range(a->fd, end - (off_t)a->unkicked, (off_t)a->unkicked, SYNC_FILE_RANGE_WRITE);
    a->unkicked = 0;
}

static zq_status write_all(int fd, const char *p, size_t len, const char *name, zq_error *err)
{
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': write failed", name);
        p += k;
        len -= (size_t)k;
    }
    return ZQ_OK;
}

zq_status zq_atomic_write(zq_atomic *a, const void *data, size_t len, zq_error *err)
{
    if (a->direct) return zq_direct_write(a->direct, data, len, a->final, err);
    kick_writeback(a, len);
    return write_all(a->fd, data, len, a->final, err);
}

/* Buffered from here on: what is staged is written, the position after it. */
static zq_status end_direct(zq_atomic *a, zq_error *err)
{
    zq_direct *d = a->direct;
    a->direct = NULL;
    return d ? zq_direct_finish(d, a->final, err) : ZQ_OK;
}

zq_status zq_atomic_seek(zq_atomic *a, uint64_t offset, zq_error *err)
{
    if (a->direct && offset >= zq_direct_end(a->direct))
        return zq_direct_write(a->direct, NULL, offset - zq_direct_end(a->direct), a->final, err);
    ZQ_TRY(end_direct(a, err));
    if (lseek(a->fd, (off_t)offset, SEEK_SET) < 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': seek failed", a->final);
    return ZQ_OK;
}

zq_status zq_atomic_pwrite(zq_atomic *a, const void *data, size_t len, uint64_t offset, zq_error *err)
{
    if (a->direct && zq_direct_patch(a->direct, data, len, offset)) return ZQ_OK;
    ZQ_TRY(end_direct(a, err));
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

/* The spool, whole, into the FIFO or device. */
static zq_status drain_spool(zq_atomic *a, zq_error *err)
{
    enum { CHUNK = 1u << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    for (off_t at = 0; st == ZQ_OK;) {
        ssize_t k = pread(a->fd, buf, CHUNK, at);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot read the spool back", a->final);
        if (k <= 0) break;
        st = write_all(a->sink, buf, (size_t)k, a->final, err);
        at += k;
    }
    free(buf);
    return st;
}

zq_status zq_atomic_commit(zq_atomic *a, zq_error *err)
{
    zq_status st = ZQ_OK;
    if (a->stream) {
        if (a->sink >= 0) st = drain_spool(a, err);
        release(a);
        return st;
    }
    st = end_direct(a, err);
    if (st == ZQ_OK && fsync(a->fd) != 0) st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': fsync failed", a->final);
    if (st == ZQ_OK && close(a->fd) != 0) st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': close failed", a->final);
    a->fd = -1;
    if (st == ZQ_OK && !a->force && access(a->target, F_OK) == 0)
        st = zq_fail(err, ZQ_ERR_EXISTS, "'%s': appeared while writing (use --force to overwrite)", a->final);
    if (st == ZQ_OK && rename(a->tmp, a->target) != 0)
        st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot rename the temp file into place", a->final);
    if (st != ZQ_OK) {
        unlink(a->tmp);
    } else {
        /* make the rename itself durable */
        char *dir = zq_path_dirname(a->target);
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
