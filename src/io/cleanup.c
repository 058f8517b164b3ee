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
#include <unistd.h>

#include "zquant/error.h"
#include "zquant/signals.h"

#define PATH_ROOM 4096

#define MAX_PENDING 8
static char pending[MAX_PENDING][PATH_ROOM];
static volatile sig_atomic_t pending_used[MAX_PENDING];

#define MAX_MAPS 1024
static struct {
    const char *base;
    size_t len;
    char path[PATH_ROOM];
} maps[MAX_MAPS];
static volatile sig_atomic_t map_used[MAX_MAPS];
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

static void remove_temp_files(void)
{
    for (int k = 0; k < MAX_PENDING; k++)
        if (pending_used[k]) unlink(pending[k]);
}

static void on_signal(int sig)
{
    remove_temp_files();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void say(const char *s) { (void)!write(STDERR_FILENO, s, strlen(s)); }

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
    say("zquant: '");
    say(name);
    say("': the file shrank while it was being read (truncated by another process?)\n");
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

int zq_cleanup_add(const char *path)
{
    if (strlen(path) >= PATH_ROOM) return -1;
    for (int k = 0; k < MAX_PENDING; k++) {
        if (!pending_used[k]) {
            memcpy(pending[k], path, strlen(path) + 1);
            pending_used[k] = 1;
            return k;
        }
    }
    return -1;
}

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
