/* Temp files to remove when the process dies of a signal: every writer
 * registers its temp file here while it is open. */
#include "io/cleanup.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "zquant/signals.h"

/* Temp paths a signal handler may have to unlink: fixed storage, because a
 * handler can neither allocate nor take locks. */
#define MAX_PENDING 8
#define PENDING_PATH 4096
static char pending[MAX_PENDING][PENDING_PATH];
static volatile sig_atomic_t pending_used[MAX_PENDING];

static void on_signal(int sig)
{
    for (int k = 0; k < MAX_PENDING; k++)
        if (pending_used[k]) unlink(pending[k]);
    signal(sig, SIG_DFL);
    raise(sig);
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
}

int zq_cleanup_add(const char *path)
{
    if (strlen(path) >= PENDING_PATH) return -1;
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
