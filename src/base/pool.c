/* A fixed set of worker threads running numbered tasks (see pool.h).
 *
 * Decoding hands the pool hundreds of batches a token, each a few
 * microseconds of work, so handing over must cost less than a sleep and a
 * wake: threads claim tasks with a compare-and-swap on one word and, after
 * a batch, spin for a while on that word before they sleep on a condition
 * variable (as llama.cpp's threads spin between a graph's nodes). The word
 * holds the batch's generation (high bits) and the next task (low bits),
 * so a thread still holding an old batch can never claim a task of a new
 * one. A batch's function, context and size sit in one of two slots,
 * chosen by the generation's parity: a batch is submitted only once the
 * previous one is done, and its slot is written before the word moves to
 * its generation, so a thread holding the previous generation (whose
 * slot is the other one) never reads a new batch's size or function. A
 * thread holding an older one may read a slot being rewritten, but its
 * claim fails. Every access to shared words is sequentially consistent. */
#include "base/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { GEN_SHIFT = 40 };
#define TASK_MASK ((UINT64_C(1) << GEN_SHIFT) - 1)
#define GEN_MASK ((UINT64_C(1) << (64 - GEN_SHIFT)) - 1)
/* how long a thread spins for the next batch before it sleeps */
#define SPIN_NS 200000L

typedef struct {
    _Atomic(zq_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic size_t ntasks;
} batch;

struct zq_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    _Atomic uint64_t ticket; /* generation << GEN_SHIFT | next task */
    _Atomic size_t finished;
    _Atomic int stopping;
    batch slot[2];
    uint64_t generation; /* the submitter's own count */
};

typedef struct {
    zq_pool *pool;
    int worker;
} worker_arg;

static uint64_t generation_of(uint64_t ticket) { return ticket >> GEN_SHIFT; }

static void pause_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long elapsed_ns(const struct timespec *since)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - since->tv_sec) * 1000000000L + (t.tv_nsec - since->tv_nsec);
}

/* Runs batch `gen`'s tasks until none is left to claim. */
static void run_batch(zq_pool *p, uint64_t gen, int worker)
{
    const batch *b = &p->slot[gen & 1];
    zq_task_fn fn = atomic_load(&b->fn);
    void *ctx = atomic_load(&b->ctx);
    size_t n = atomic_load(&b->ntasks);
    for (;;) {
        uint64_t v = atomic_load(&p->ticket);
        do {
            if (generation_of(v) != gen || (v & TASK_MASK) >= n) return;
        } while (!atomic_compare_exchange_weak(&p->ticket, &v, v + 1));
        fn(ctx, (size_t)(v & TASK_MASK), worker);
        if (atomic_fetch_add(&p->finished, 1) + 1 == n) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_broadcast(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

/* The next generation after `seen`, spinning first, then asleep. */
static uint64_t next_batch(zq_pool *p, uint64_t seen)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned spins = 1;; spins++) {
        uint64_t g = generation_of(atomic_load(&p->ticket));
        if (g != seen || atomic_load(&p->stopping)) return g;
        pause_cpu();
        if (spins % 64) continue;
        if (elapsed_ns(&start) > SPIN_NS) break;
        sched_yield(); /* a thread of another process (an MPI rank, say) waiting for this core runs */
    }
    pthread_mutex_lock(&p->lock);
    uint64_t g;
    while ((g = generation_of(atomic_load(&p->ticket))) == seen && !atomic_load(&p->stopping))
        pthread_cond_wait(&p->wake, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return g;
}

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    zq_pool *p = wa->pool;
    int id = wa->worker;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        seen = next_batch(p, seen);
        if (atomic_load(&p->stopping)) break;
        run_batch(p, seen, id);
    }
    return NULL;
}

zq_pool *zq_pool_create(int nthreads)
{
    if (nthreads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = c > 0 ? (int)c : 1;
    }
    zq_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->ticket, TASK_MASK); /* generation 0: nothing to claim */
    for (int k = 0; k < nthreads; k++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) *wa = (worker_arg){p, k};
        if (!wa || pthread_create(&p->threads[k], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
        p->n = k + 1;
    }
    if (p->n == 0) {
        zq_pool_free(p);
        return NULL;
    }
    return p;
}

int zq_pool_size(const zq_pool *p) { return p->n; }

void zq_pool_submit(zq_pool *p, size_t ntasks, zq_task_fn fn, void *ctx)
{
    /* 2^24 generations: parities alternate across the wrap too; the
     * workers start at 0 with nothing to claim, the first batch is 1 */
    uint64_t gen = (p->generation + 1) & GEN_MASK;
    p->generation = gen;
    batch *b = &p->slot[gen & 1];
    atomic_store(&b->fn, fn);
    atomic_store(&b->ctx, ctx);
    atomic_store(&b->ntasks, ntasks);
    atomic_store(&p->finished, 0);
    atomic_store(&p->ticket, gen << GEN_SHIFT);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void zq_pool_help(zq_pool *p, int worker) { run_batch(p, p->generation, worker); }

void zq_pool_wait(zq_pool *p)
{
    size_t n = atomic_load(&p->slot[p->generation & 1].ntasks);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned spins = 1; atomic_load(&p->finished) < n; spins++) {
        pause_cpu();
        if (spins % 64 == 0 && elapsed_ns(&start) > SPIN_NS) break;
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->finished) < n) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void zq_pool_free(zq_pool *p)
{
    if (!p) return;
    atomic_store(&p->stopping, 1);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int k = 0; k < p->n; k++) pthread_join(p->threads[k], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}
