/* Direct output through a ring of stages (see direct.h). Blocks of 4 KiB
 * suit every common device's logical block size (512 or 4096 bytes); a
 * stage of 4 MiB is the size at which a direct write here reaches the
 * disk's speed (dd: 4 MiB writes 1.8-2.0 GB/s, 1 MiB 1.5); four of them
 * let the writer fall three writes behind when the disk stalls (GPT-2-
 * medium w8a8 to compressed-tensors: 0.22-0.34 s with two, 0.21-0.26 s). */
#include "io/direct.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

enum { BLOCK = 4096, STAGE = 4u << 20, NSTAGE = 4 };

struct zq_direct {
    int fd;
    unsigned char *stage[NSTAGE];
    int filling;   /* the stage that takes the bytes */
    size_t len;    /* bytes in it */
    uint64_t base; /* its first byte's offset in the file, a block boundary */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* the writes handed to the thread, oldest first: stages head,
     * head + 1, ... (mod NSTAGE), busy of them */
    size_t io_len[NSTAGE];
    uint64_t io_at[NSTAGE];
    int head, busy, stopping;
    int io_errno; /* the first failed write's; later ones are skipped */
    int direct;   /* fd still has O_DIRECT (the thread clears it) */
};

static int set_direct(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT);
}

/* One write, whole. A direct write refused (EINVAL), or a short one that
 * would leave the next unaligned, makes this and every later write
 * buffered. Returns 0 or an errno. */
static int write_at(zq_direct *d, const unsigned char *p, size_t n, uint64_t at)
{
    while (n) {
        ssize_t k = pwrite(d->fd, p, n, (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        int go_buffered = d->direct && ((k < 0 && errno == EINVAL) || (k > 0 && k % BLOCK));
        if (go_buffered) {
            if (set_direct(d->fd, 0) != 0) return errno;
            d->direct = 0;
        }
        if (k < 0 && go_buffered) continue;
        if (k < 0) return errno;
        if (k == 0) return EIO;
        p += k;
        n -= (size_t)k;
        at += (uint64_t)k;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    zq_direct *d = arg;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->busy && !d->stopping) pthread_cond_wait(&d->cond, &d->lock);
        if (!d->busy) break;
        const unsigned char *p = d->stage[d->head];
        size_t n = d->io_len[d->head];
        uint64_t at = d->io_at[d->head];
        int failed = d->io_errno;
        pthread_mutex_unlock(&d->lock);
        int e = failed ? 0 : write_at(d, p, n, at);
        pthread_mutex_lock(&d->lock);
        if (e) d->io_errno = e;
        d->head = (d->head + 1) % NSTAGE;
        d->busy--;
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* Waits until at most `most` writes are in flight; 0, or the errno of a
 * write that failed so far. */
static int wait_writes(zq_direct *d, int most)
{
    pthread_mutex_lock(&d->lock);
    while (d->busy > most) pthread_cond_wait(&d->cond, &d->lock);
    int e = d->io_errno;
    pthread_mutex_unlock(&d->lock);
    return e;
}

static zq_status failed(int e, const char *name, zq_error *err)
{
    errno = e;
    return zq_fail_errno(err, ZQ_ERR_IO, "'%s': write failed", name);
}

/* The filling stage (whole blocks) goes to the thread; the next one,
 * once the thread is done with it, takes the bytes. */
static zq_status hand_off(zq_direct *d, const char *name, zq_error *err)
{
    int e = wait_writes(d, NSTAGE - 2);
    if (e) return failed(e, name, err);
    int k = d->filling;
    pthread_mutex_lock(&d->lock);
    d->io_len[k] = d->len;
    d->io_at[k] = d->base;
    d->busy++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    d->base += d->len;
    d->len = 0;
    d->filling = (k + 1) % NSTAGE;
    return ZQ_OK;
}

static void free_direct(zq_direct *d)
{
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    for (int k = 0; k < NSTAGE; k++) free(d->stage[k]);
    free(d);
}

zq_direct *zq_direct_start(int fd, uint64_t offset)
{
    if (offset % BLOCK) return NULL;
    zq_direct *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->fd = fd;
    d->base = offset;
    int have = 1;
    for (int k = 0; k < NSTAGE; k++) have &= (d->stage[k] = aligned_alloc(BLOCK, STAGE)) != NULL;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    if (!have || set_direct(fd, 1) != 0) {
        free_direct(d);
        return NULL;
    }
    d->direct = 1;
    if (pthread_create(&d->thread, NULL, writer_main, d) != 0) {
        set_direct(fd, 0);
        free_direct(d);
        return NULL;
    }
    return d;
}

zq_status zq_direct_write(zq_direct *d, const void *p, size_t len, const char *name, zq_error *err)
{
    const unsigned char *from = p;
    while (len) {
        size_t k = STAGE - d->len < len ? STAGE - d->len : len;
        if (from) memcpy(d->stage[d->filling] + d->len, from, k);
        else memset(d->stage[d->filling] + d->len, 0, k);
        d->len += k;
        len -= k;
        if (from) from += k;
        if (d->len == STAGE) ZQ_TRY(hand_off(d, name, err));
    }
    return ZQ_OK;
}

uint64_t zq_direct_end(const zq_direct *d) { return d->base + d->len; }

int zq_direct_patch(zq_direct *d, const void *p, size_t len, uint64_t offset)
{
    if (offset < d->base || offset + len > d->base + d->len) return 0;
    memcpy(d->stage[d->filling] + (offset - d->base), p, len);
    return 1;
}

static int stop(zq_direct *d)
{
    int e = wait_writes(d, 0);
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    return e;
}

zq_status zq_direct_finish(zq_direct *d, const char *name, zq_error *err)
{
    /* the last block goes padded to its end; the file is cut back after */
    uint64_t end = zq_direct_end(d);
    size_t padded = (size_t)zq_align_up(d->len, BLOCK);
    memset(d->stage[d->filling] + d->len, 0, padded - d->len);
    d->len = padded;
    zq_status st = padded ? hand_off(d, name, err) : ZQ_OK;
    int e = stop(d);
    if (st == ZQ_OK && e) st = failed(e, name, err);
    if (st == ZQ_OK && d->direct && set_direct(d->fd, 0) != 0)
        st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot leave direct I/O", name);
    if (st == ZQ_OK && ftruncate(d->fd, (off_t)end) != 0)
        st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot set its length", name);
    if (st == ZQ_OK && lseek(d->fd, (off_t)end, SEEK_SET) < 0)
        st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': seek failed", name);
    free_direct(d);
    return st;
}

void zq_direct_abandon(zq_direct *d)
{
    if (!d) return;
    stop(d);
    free_direct(d);
}
