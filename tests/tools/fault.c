/* A test's fault injector, preloaded (LD_PRELOAD) into a zquant run so the
 * library needs no hooks:
 *   ZQ_KILL_AFTER="SUFFIX:N"  after the Nth successful rename() onto a path
 *                             ending in SUFFIX, die of SIGKILL, as if killed
 *                             from outside at that exact point;
 *   ZQ_INT_AFTER="SUFFIX:N"   the same, but SIGINT (a Ctrl-C: zquant's handler
 *                             must leave nothing behind);
 *   ZQ_MKDIR_AFTER="SUFFIX:N" the same, but make the folder ZQ_MKDIR_PATH, as
 *                             another process could meanwhile;
 *   ZQ_TRUNCATE="PATH:BYTES"  when zquant first asks the kernel to read
 *                             mapped pages ahead (madvise MADV_POPULATE_READ)
 *                             or first preads, truncate PATH to BYTES first,
 *                             as another process could at any time;
 *   ZQ_CRASH_IN=FUNCTION      crash (SIGSEGV) inside libhdf5's H5Ovisit2 or
 *                             H5Dread, as libhdf5 does on some crafted files;
 *   ZQ_REFUSE_DIRECT=N        from the Nth pwrite to a file opened O_DIRECT
 *                             on, fail it with EINVAL, as a file system
 *                             that takes the flag but not the write does;
 *   ZQ_FULL_UNNAMED=N         from the Nth pwrite to a file without a name
 *                             (a temporary one: no link left) on, fail it
 *                             with ENOSPC, as a full disk does. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* "WHAT:N" from the environment: WHAT into buf, N returned; -1 if unset */
static long armed(const char *var, char *buf, size_t size)
{
    const char *arm = getenv(var);
    const char *colon = arm ? strrchr(arm, ':') : NULL;
    if (!colon) return -1;
    snprintf(buf, size, "%.*s", (int)(colon - arm), arm);
    return atol(colon + 1);
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    static int seen;
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int rc = real(from, to);
    char suffix[256];
    long n = armed("ZQ_KILL_AFTER", suffix, sizeof suffix);
    if (rc == 0 && n > 0 && ends_with(to, suffix) && ++seen == n) raise(SIGKILL);
    static int seen_int, seen_mkdir;
    n = armed("ZQ_INT_AFTER", suffix, sizeof suffix);
    if (rc == 0 && n > 0 && ends_with(to, suffix) && ++seen_int == n) raise(SIGINT);
    n = armed("ZQ_MKDIR_AFTER", suffix, sizeof suffix);
    if (rc == 0 && n > 0 && ends_with(to, suffix) && ++seen_mkdir == n && getenv("ZQ_MKDIR_PATH"))
        mkdir(getenv("ZQ_MKDIR_PATH"), 0755);
    return rc;
}

static void truncate_once(void)
{
    static int done;
    char path[4096];
    long bytes = armed("ZQ_TRUNCATE", path, sizeof path);
    if (bytes < 0 || __atomic_exchange_n(&done, 1, __ATOMIC_SEQ_CST)) return;
    if (truncate(path, bytes) != 0) perror("fault: truncate");
}

int madvise(void *addr, size_t len, int advice)
{
    static int (*real)(void *, size_t, int);
    if (!real) real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "madvise");
    if (advice == MADV_POPULATE_READ) truncate_once();
    return real(addr, len, advice);
}

ssize_t pread(int fd, void *buf, size_t n, off_t at)
{
    static ssize_t (*real)(int, void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
    truncate_once();
    return real(fd, buf, n, at);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t at)
{
    static ssize_t (*real)(int, void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread64");
    truncate_once();
    return real(fd, buf, n, at);
}

static int refuse_direct(int fd)
{
    static long seen;
    const char *arm = getenv("ZQ_REFUSE_DIRECT");
    int fl = arm ? fcntl(fd, F_GETFL) : 0;
    if (!arm || fl < 0 || !(fl & O_DIRECT) || ++seen < atol(arm)) return 0;
    errno = EINVAL;
    return 1;
}

static int full_unnamed(int fd)
{
    static long seen;
    const char *arm = getenv("ZQ_FULL_UNNAMED");
    struct stat st;
    if (!arm || fstat(fd, &st) != 0 || st.st_nlink != 0 || ++seen < atol(arm)) return 0;
    errno = ENOSPC;
    return 1;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t at)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    return refuse_direct(fd) || full_unnamed(fd) ? -1 : real(fd, buf, n, at);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t at)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    return refuse_direct(fd) || full_unnamed(fd) ? -1 : real(fd, buf, n, at);
}

/* libhdf5's entry points, by their ABI (hid_t is int64_t in 1.10) */
static void crash_if(const char *fn)
{
    const char *want = getenv("ZQ_CRASH_IN");
    if (want && strcmp(want, fn) == 0) raise(SIGSEGV);
}

int H5Ovisit2(int64_t obj, int idx, int order, void *op, void *data, unsigned fields)
{
    static int (*real)(int64_t, int, int, void *, void *, unsigned);
    if (!real) real = (int (*)(int64_t, int, int, void *, void *, unsigned))dlsym(RTLD_NEXT, "H5Ovisit2");
    crash_if("H5Ovisit2");
    return real(obj, idx, order, op, data, fields);
}

int H5Dread(int64_t ds, int64_t mem_type, int64_t mem_space, int64_t file_space, int64_t plist, void *buf)
{
    static int (*real)(int64_t, int64_t, int64_t, int64_t, int64_t, void *);
    if (!real) real = (int (*)(int64_t, int64_t, int64_t, int64_t, int64_t, void *))dlsym(RTLD_NEXT, "H5Dread");
    crash_if("H5Dread");
    return real(ds, mem_type, mem_space, file_space, plist, buf);
}
