/* HDF5 behind a process boundary. libhdf5 (1.10) can crash on a crafted
 * file (a segfault in its object walk was found by fuzzing), and zquant
 * must not crash with it. So an HDF5 file is opened, walked and read by a
 * helper process forked for it, which runs hdf5.c's reader and answers over
 * a socket: first the tensors and the config, then one block of floats per
 * request. When the helper dies, the call that was waiting on it gets an
 * error naming the file and the signal; no libhdf5 code runs in the caller.
 * libhdf5 also trusts sizes a file gives (fuzzing found a config attribute
 * that made it allocate 4 GB and spend seconds filling it): the helper may
 * map at most 3 GB beyond what it starts with, so such a file fails fast.
 * (The trust boundary is the process: a file that made libhdf5 loop
 * forever would still make the command wait.) */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/files.h"
#include "io/source_impl.h"

enum { TAG_TENSOR = 1, TAG_CONFIG, TAG_DONE, TAG_ERROR, TAG_DATA };

/* Bytes of floats per request: bounds what the helper holds at once. */
#define BLOCK_BYTES ((uint64_t)16 << 20)
/* What libhdf5 may allocate in the helper, beyond what it starts with. */
#define HELPER_HEADROOM ((uint64_t)3 << 30)

typedef struct {
    int sock;
    pid_t pid;
    int dead; /* the helper is gone: every read fails */
    pthread_mutex_t lock;
} remote;

/* ---- the wire ------------------------------------------------------------------- */

static int put(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        c += k, n -= (size_t)k;
    }
    return 1;
}

static int get(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t k = recv(fd, c, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        c += k, n -= (size_t)k;
    }
    return 1;
}

static int put_u32(int fd, uint32_t v) { return put(fd, &v, 4); }

static int put_error(int fd, const zq_error *e)
{
    uint32_t len = (uint32_t)strlen(e->msg);
    return put_u32(fd, TAG_ERROR) && put_u32(fd, (uint32_t)e->code) && put_u32(fd, len) && put(fd, e->msg, len);
}

/* An error the helper sent, after its tag. */
static zq_status get_error(int fd, zq_error *err)
{
    uint32_t code, len;
    char msg[sizeof err->msg];
    if (!get(fd, &code, 4) || !get(fd, &len, 4) || len >= sizeof msg || !get(fd, msg, len)) return ZQ_ERR_INTERNAL;
    msg[len] = 0;
    return zq_fail(err, code ? (zq_status)code : ZQ_ERR_INTERNAL, "%s", msg);
}

/* ---- the helper ------------------------------------------------------------------- */

static void serve_reads(zq_source *src, int sock)
{
    uint64_t q[5]; /* tensor, row0, nrows, col0, ncols */
    float *buf = NULL;
    size_t cap = 0;
    while (get(sock, q, sizeof q)) {
        zq_error e = {0};
        size_t need = (size_t)(q[2] * q[4]) * sizeof(float);
        zq_status st = q[0] < src->count && need <= BLOCK_BYTES ? ZQ_OK : zq_fail(&e, ZQ_ERR_INTERNAL, "bad request");
        if (st == ZQ_OK && need > cap) {
            free(buf);
            buf = malloc(need ? need : 1);
            cap = buf ? need : 0;
            if (!buf) st = zq_fail(&e, ZQ_ERR_NOMEM, "out of memory reading HDF5");
        }
        if (st == ZQ_OK) st = zq_source_read(src, (size_t)q[0], q[1], q[2], q[3], q[4], buf, &e);
        if (!(st == ZQ_OK ? put_u32(sock, TAG_DATA) && put(sock, buf, need) : put_error(sock, &e))) break;
    }
    free(buf);
}

/* In the child: the listing, then blocks on request, until the parent
 * closes its end. */
static void serve(const char *file, int sock)
{
    zq_source *src = calloc(1, sizeof *src);
    zq_error e = {0};
    zq_status st = src && (src->path = strdup(file)) ? ZQ_OK : zq_fail(&e, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_hdf5_open_here(src, file, &e);
    if (st != ZQ_OK) {
        put_error(sock, &e);
        _exit(0);
    }
    int ok = 1;
    for (size_t i = 0; ok && i < src->count; i++) {
        const zq_tensor_info *t = &src->tensors[i];
        uint32_t len = (uint32_t)strlen(t->name);
        ok = put_u32(sock, TAG_TENSOR) && put_u32(sock, (uint32_t)t->dtype) && put_u32(sock, (uint32_t)t->ndim) &&
             put(sock, t->shape, (size_t)t->ndim * sizeof t->shape[0]) && put_u32(sock, len) && put(sock, t->name, len);
    }
    if (ok && src->config) {
        uint64_t len = strlen(src->config);
        ok = put_u32(sock, TAG_CONFIG) && put(sock, &len, 8) && put(sock, src->config, (size_t)len);
    }
    if (ok && put_u32(sock, TAG_DONE)) serve_reads(src, sock);
    _exit(0); /* not exit: the parent's stdio buffers and atexit work are not ours */
}

/* ---- the caller's side ------------------------------------------------------------- */

/* After the helper went silent: why, as an error. */
static zq_status helper_died(zq_source *src, remote *r, const char *what, zq_error *err)
{
    int status = 0;
    if (!r->dead && r->pid > 0) waitpid(r->pid, &status, 0);
    r->dead = 1;
    r->pid = -1;
    if (WIFSIGNALED(status))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': libhdf5 crashed (%s) %s: the file is malformed", src->path,
                       strsignal(WTERMSIG(status)), what);
    return zq_fail(err, ZQ_ERR_FORMAT, "'%s': the HDF5 reader stopped %s", src->path, what);
}

static zq_status read_remote(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0, uint64_t ncols,
                             float *out, zq_error *err)
{
    remote *r = src->impl;
    uint64_t per = ncols ? BLOCK_BYTES / sizeof(float) / ncols : nrows;
    if (per == 0) per = 1; /* a row wider than a block: read it in column pieces */
    zq_status st = ZQ_OK;
    pthread_mutex_lock(&r->lock);
    for (uint64_t r0 = 0; st == ZQ_OK && r0 < nrows; r0 += per) {
        uint64_t nr = nrows - r0 < per ? nrows - r0 : per;
        for (uint64_t c0 = 0; st == ZQ_OK && c0 < ncols;) {
            uint64_t nc = nr * (ncols - c0) * sizeof(float) <= BLOCK_BYTES ? ncols - c0 : BLOCK_BYTES / sizeof(float);
            uint64_t q[5] = {i, row0 + r0, nr, col0 + c0, nc};
            uint32_t tag = 0;
            if (r->dead || !put(r->sock, q, sizeof q) || !get(r->sock, &tag, 4)) {
                st = helper_died(src, r, "reading a dataset", err);
                break;
            }
            if (tag == TAG_ERROR) st = get_error(r->sock, err);
            else if (nc == ncols) { /* whole rows: straight into place */
                if (!get(r->sock, out + r0 * ncols, (size_t)(nr * nc) * sizeof(float)))
                    st = helper_died(src, r, "reading a dataset", err);
            } else { /* one wide row, a piece at a time */
                if (!get(r->sock, out + r0 * ncols + c0, (size_t)nc * sizeof(float)))
                    st = helper_died(src, r, "reading a dataset", err);
            }
            c0 += nc;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return st;
}

static void close_remote(zq_source *src)
{
    remote *r = src->impl;
    if (!r) return;
    if (r->sock >= 0) close(r->sock); /* the helper sees the end and exits */
    if (r->pid > 0) waitpid(r->pid, NULL, 0);
    pthread_mutex_destroy(&r->lock);
    free(r);
    src->impl = NULL;
}

static const zq_source_ops remote_ops = {read_remote, NULL, close_remote, NULL, NULL, NULL, NULL, NULL};

/* The helper's listing into src. */
static zq_status receive_listing(zq_source *src, remote *r, zq_error *err)
{
    for (;;) {
        uint32_t tag;
        if (!get(r->sock, &tag, 4)) return helper_died(src, r, "reading the file's structure", err);
        if (tag == TAG_DONE) return ZQ_OK;
        if (tag == TAG_ERROR) return get_error(r->sock, err);
        if (tag == TAG_CONFIG) {
            uint64_t len;
            if (!get(r->sock, &len, 8) || len > ((uint64_t)1 << 30)) return helper_died(src, r, "sending the config", err);
            free(src->config);
            if (!(src->config = malloc((size_t)len + 1))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            if (!get(r->sock, src->config, (size_t)len)) return helper_died(src, r, "sending the config", err);
            src->config[len] = 0;
            continue;
        }
        uint32_t dtype, ndim, len;
        int64_t shape[ZQ_MAX_DIMS];
        char name[4096];
        if (tag != TAG_TENSOR || !get(r->sock, &dtype, 4) || !get(r->sock, &ndim, 4) || ndim > ZQ_MAX_DIMS ||
            !get(r->sock, shape, ndim * sizeof shape[0]) || !get(r->sock, &len, 4) || len >= sizeof name ||
            !get(r->sock, name, len))
            return helper_died(src, r, "listing the datasets", err);
        name[len] = 0;
        size_t index;
        ZQ_TRY(zq_source_add(src, name, (zq_dtype)dtype, (int)ndim, shape, &index, err));
    }
}

/* In the helper: its address space may grow by HELPER_HEADROOM, no more
 * (nor past a limit it already has). */
static void bound_memory(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (!f) return;
    int got = fscanf(f, "%llu", &pages);
    fclose(f);
    struct rlimit lim;
    if (got != 1 || getrlimit(RLIMIT_AS, &lim) != 0) return;
    rlim_t want = (rlim_t)(pages * (unsigned long long)sysconf(_SC_PAGESIZE) + HELPER_HEADROOM);
    if (lim.rlim_cur == RLIM_INFINITY || want < lim.rlim_cur) {
        lim.rlim_cur = want;
        setrlimit(RLIMIT_AS, &lim);
    }
}

zq_status zq_hdf5_open(zq_source *src, const char *file, zq_error *err)
{
    int fd;
    struct stat sb;
    ZQ_TRY(zq_open_regular(file, &fd, &sb, err)); /* before libhdf5 opens it: a FIFO would block */
    close(fd);
    zq_note_input(file, &sb);
    remote *r = calloc(1, sizeof *r);
    if (!r) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    r->sock = r->pid = -1;
    pthread_mutex_init(&r->lock, NULL);
    src->impl = r;
    src->ops = &remote_ops;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot start the HDF5 reader", file);
    r->pid = fork();
    if (r->pid == 0) {
        /* the helper keeps its end, stdio and nothing else: another source's
         * socket held open here would keep that helper from seeing its end */
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGBUS, SIGPIPE};
        for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) signal(sigs[k], SIG_DFL);
        int keep = pair[1];
        if (keep > 3) close_range(3, (unsigned)keep - 1, 0);
        close_range((unsigned)keep + 1, ~0u, 0);
        bound_memory();
        serve(file, keep);
    }
    close(pair[1]);
    r->sock = pair[0];
    if (r->pid < 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot start the HDF5 reader", file);
    return receive_listing(src, r, err);
}
