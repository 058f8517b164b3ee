/* Input files: regular files only, read whole when small, and remembered
 * (see files.h). */
#include "base/files.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include "base/util.h"
#include "zquant/crc32c.h"

zq_status zq_open_regular(const char *path, int *fd, struct stat *st, zq_error *err)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer before the check below could refuse it */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot open", path);
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(*fd);
        *fd = -1;
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': not a regular file", path);
    }
    fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK);
    return ZQ_OK;
}

/* ---- the inputs of this process ------------------------------------------- */

/* A file is its device and inode; the change time tells a file from a
 * later one that reuses the inode of a deleted input (reading an input
 * never changes it). */
typedef struct {
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
    char *path;
} input;

static int same_file(const input *in, const struct stat *st)
{
    return in->dev == st->st_dev && in->ino == st->st_ino && in->ctime.tv_sec == st->st_ctim.tv_sec &&
           in->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static input *inputs;
static size_t ninputs, cap_inputs;
static pthread_mutex_t inputs_lock = PTHREAD_MUTEX_INITIALIZER;

void zq_note_input(const char *path, const struct stat *st)
{
    pthread_mutex_lock(&inputs_lock);
    int known = 0;
    for (size_t k = 0; k < ninputs && !known; k++) known = same_file(&inputs[k], st);
    if (!known && ninputs == cap_inputs) {
        size_t cap = cap_inputs ? 2 * cap_inputs : 16;
        input *g = realloc(inputs, cap * sizeof *g);
        if (g) inputs = g, cap_inputs = cap;
    }
    /* out of memory: the file goes unremembered; its own check then cannot
     * protect it, nothing else breaks */
    if (!known && ninputs < cap_inputs) {
        char *copy = strdup(path);
        if (copy) inputs[ninputs++] = (input){st->st_dev, st->st_ino, st->st_ctim, copy};
    }
    pthread_mutex_unlock(&inputs_lock);
}

const char *zq_input_same_as(const struct stat *st)
{
    const char *found = NULL;
    pthread_mutex_lock(&inputs_lock);
    for (size_t k = 0; k < ninputs && !found; k++)
        if (same_file(&inputs[k], st)) found = inputs[k].path;
    pthread_mutex_unlock(&inputs_lock);
    return found;
}

void zq_forget_inputs(void)
{
    pthread_mutex_lock(&inputs_lock);
    for (size_t k = 0; k < ninputs; k++) free(inputs[k].path);
    free(inputs);
    inputs = NULL;
    ninputs = cap_inputs = 0;
    pthread_mutex_unlock(&inputs_lock);
}

/* ---- small files, whole ---------------------------------------------------------- */

static zq_status read_whole(const char *path, size_t limit, int note, char **out, size_t *len, zq_error *err)
{
    int fd;
    struct stat st;
    ZQ_TRY(zq_open_regular(path, &fd, &st, err));
    if ((uint64_t)st.st_size > limit) {
        close(fd);
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': larger than %zu bytes", path, limit);
    }
    /* the size is a hint: the file may change under us, reads decide */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    zq_status status = buf ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "'%s': out of memory", path);
    while (status == ZQ_OK) {
        if (n == cap) {
            if (cap > limit) {
                status = zq_fail(err, ZQ_ERR_FORMAT, "'%s': larger than %zu bytes", path, limit);
                break;
            }
            char *g = realloc(buf, 2 * cap + 1);
            if (!g) {
                status = zq_fail(err, ZQ_ERR_NOMEM, "'%s': out of memory", path);
                break;
            }
            buf = g, cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) status = zq_fail_errno(err, ZQ_ERR_IO, "'%s': read error", path);
        if (got <= 0) break;
        n += (size_t)got;
    }
    close(fd);
    if (status == ZQ_OK && n > limit) status = zq_fail(err, ZQ_ERR_FORMAT, "'%s': larger than %zu bytes", path, limit);
    if (status != ZQ_OK) {
        free(buf);
        return status;
    }
    buf[n] = 0;
    if (note) zq_note_input(path, &st);
    *out = buf;
    if (len) *len = n;
    return ZQ_OK;
}

zq_status zq_read_small_file(const char *path, size_t limit, char **out, size_t *len, zq_error *err)
{
    return read_whole(path, limit, 0, out, len, err);
}

zq_status zq_read_input_file(const char *path, size_t limit, char **out, size_t *len, zq_error *err)
{
    return read_whole(path, limit, 1, out, len, err);
}

const char *zq_tmpdir(void)
{
    const char *dir = getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

zq_status zq_unnamed_file(const char *dir, int *fd, const char **used, zq_error *err)
{
    if (!dir) dir = zq_tmpdir();
    *used = dir;
    *fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*fd < 0) {
        char *path = zq_path_join(dir, ".zquant-XXXXXX");
        if (path) *fd = mkostemp(path, O_CLOEXEC);
        if (*fd >= 0) unlink(path);
        free(path);
    }
    return *fd >= 0 ? ZQ_OK : zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create a temporary file there", dir);
}

zq_status zq_file_crc32c(const char *path, uint64_t limit, uint32_t *crc, uint64_t *bytes, zq_error *err)
{
    int fd;
    struct stat st;
    ZQ_TRY(zq_open_regular(path, &fd, &st, err));
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    uint32_t c = 0;
    uint64_t total = 0;
    ssize_t got = 0;
    while (buf && (!limit || total < limit) &&
           (got = read(fd, buf, limit && limit - total < CHUNK ? (size_t)(limit - total) : CHUNK)) > 0) {
        c = zq_crc32c(c, buf, (size_t)got);
        total += (uint64_t)got;
    }
    int saved = errno;
    free(buf);
    close(fd);
    if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (got < 0) return errno = saved, zq_fail_errno(err, ZQ_ERR_IO, "'%s': read failed", path);
    *crc = c;
    *bytes = total;
    return ZQ_OK;
}

/* path with every symlink on its last component followed: the file a
 * rename must replace for the link to keep pointing at the output.
 * malloc'd; NULL with errno set on failure. */
char *zq_follow_links(const char *path)
{
    char *cur = strdup(path);
    for (int hops = 0; cur && hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) return cur;
        char link[PATH_MAX];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) break;
        link[n] = 0;
        char *dir = link[0] == '/' ? NULL : zq_path_dirname(cur);
        char *next = link[0] == '/' ? strdup(link) : dir ? zq_path_join(dir, link) : NULL;
        free(dir);
        free(cur);
        cur = next;
    }
    if (cur) errno = ELOOP;
    free(cur);
    return NULL;
}
