/* What signals must know: the temp files to remove when the process dies
 * (every writer registers its temp file while it is open), and the inputs
 * mapped into memory, so that a fault in one (another process truncated the
 * file under us: SIGBUS) becomes a clean error naming it. A handler can
 * neither allocate nor take locks: both tables are fixed storage. */
#include "io/cleanup.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zquant/error.h"
#include "zquant/signals.h"

#define PATH_ROOM 4096

#define MAX_PENDING 8
static char pending[MAX_PENDING][PATH_ROOM];
static volatile sig_atomic_t pending_used[MAX_PENDING]; /* 1: a file, 2: a folder of files */

#define MAX_MAPS 1024
static struct {
    const char *base;
    size_t len;
    char path[PATH_ROOM];
} maps[MAX_MAPS];
static volatile sig_atomic_t map_used[MAX_MAPS];
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

/* A temp folder's files, then the folder, with calls a handler may make
 * (no opendir: it allocates): the entries as the kernel lists them. */
static void remove_folder(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (long at = 0; at < n;) {
            const struct linux_dirent64 {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *e = (const void *)(buf + at);
            if (strcmp(e->name, ".") && strcmp(e->name, "..")) unlinkat(fd, e->name, 0);
            at += e->reclen;
        }
    close(fd);
    rmdir(dir);
}

static void remove_temp_files(void)
{
    for (int k = 0; k < MAX_PENDING; k++) /* files first: they may sit in a folder below */
        if (pending_used[k] == 1) unlink(pending[k]);
    for (int k = 0; k < MAX_PENDING; k++)
        if (pending_used[k] == 2) remove_folder(pending[k]);
}

static char note[PATH_ROOM + 256];
static volatile sig_atomic_t note_len;

void zq_signal_note(const char *line)
{
    note_len = 0; /* a handler running now prints nothing half-written */
    size_t n = line ? strlen(line) : 0;
    if (n >= sizeof note) n = sizeof note - 1;
    if (n) memcpy(note, line, n);
    note_len = (sig_atomic_t)n;
}

static void on_signal(int sig)
{
    if (note_len) (void)!write(STDERR_FILENO, note, (size_t)note_len);
    remove_temp_files();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The line in one write(): a reader of the pipe gets it whole. */
static void say_line(const char *before, const char *name, const char *after)
{
    static char line[PATH_ROOM + 256];
    size_t n = 0;
    const char *parts[3] = {before, name, after};
    for (int k = 0; k < 3; k++)
        for (const char *p = parts[k]; *p && n < sizeof line - 1; p++) line[n++] = *p;
    (void)!write(STDERR_FILENO, line, n);
}

static void on_bus(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    const char *addr = info->si_addr, *name = NULL;
    for (int k = 0; k < MAX_MAPS && !name; k++)
        if (map_used[k] && addr >= maps[k].base && addr < maps[k].base + maps[k].len) name = maps[k].path;
    if (!name) { /* not an input of ours: a bug, let it crash as usual */
        signal(sig, SIG_DFL);
        return;
    }
    say_line("zquant: '", name, "': the file shrank while it was being read (truncated by another process?)\n");
    remove_temp_files();
    _exit(ZQ_ERR_IO);
}

void zq_install_signal_cleanup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = NULL;
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    /* a FIFO output whose reader went away is a write error, not a death */
    signal(SIGPIPE, SIG_IGN);
}

static int add(const char *path, int kind)
{
    if (strlen(path) >= PATH_ROOM) return -1;
    for (int k = 0; k < MAX_PENDING; k++) {
        if (!pending_used[k]) {
            memcpy(pending[k], path, strlen(path) + 1);
            pending_used[k] = kind;
            return k;
        }
    }
    return -1;
}

int zq_cleanup_add(const char *path) { return add(path, 1); }
int zq_cleanup_add_folder(const char *path) { return add(path, 2); }

void zq_cleanup_remove(int slot)
{
    if (slot >= 0 && slot < MAX_PENDING) pending_used[slot] = 0;
}

int zq_cleanup_map(const void *base, size_t len, const char *path)
{
    int slot = -1;
    pthread_mutex_lock(&map_lock);
    for (int k = 0; k < MAX_MAPS && slot < 0; k++)
        if (!map_used[k]) slot = k;
    if (slot >= 0) {
        maps[slot].base = base;
        maps[slot].len = len;
        size_t n = strlen(path) < PATH_ROOM - 1 ? strlen(path) : PATH_ROOM - 1;
        memcpy(maps[slot].path, path, n);
        maps[slot].path[n] = 0;
        map_used[slot] = 1; /* last: a handler sees the entry whole or not at all */
    }
    pthread_mutex_unlock(&map_lock);
    return slot;
}

void zq_cleanup_unmap(int slot)
{
    if (slot >= 0 && slot < MAX_MAPS) map_used[slot] = 0;
}
