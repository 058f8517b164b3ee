/* The engine's thread count and its pool (engine.h). The pool is made on
 * first use and again when the count changes; if threads cannot be
 * started, work runs on the caller's thread: the same results, slower. */
#include "base/engine.h"

#include <pthread.h>
#include <unistd.h>

#include "zquant/block.h"

static int requested; /* 0: one per core */
static int cap;       /* 0: none */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static zq_pool *pool;
static _Thread_local int worker_id = -1;

void zq_engine_set_threads(int n) { requested = n > 0 ? n : 0; }

void zq_engine_cap_threads(int n) { cap = n > 0 ? n : 0; }

int zq_engine_threads(void)
{
    int n = requested;
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    return cap && n > cap ? cap : n;
}

int zq_engine_worker(void) { return worker_id; }

typedef struct {
    zq_task_fn fn;
    void *ctx;
    pthread_barrier_t *all_started;
} job;

static void trampoline(void *ctx, size_t t, int worker)
{
    const job *j = ctx;
    worker_id = worker;
    if (j->all_started) pthread_barrier_wait(j->all_started);
    j->fn(j->ctx, t, worker);
    worker_id = -1;
}

/* The pool, with the lock held: n - 1 threads, the caller being the n-th
 * worker of every run (one thread fewer to wake per run: decoding runs
 * hundreds of small ones a token); NULL: run on the caller's thread (lock
 * not held). */
static zq_pool *take_pool(int slots)
{
    int n = zq_engine_threads();
    if (n <= 1 || (slots && n > slots) || worker_id >= 0 || pthread_mutex_trylock(&lock) != 0) return NULL;
    if (pool && zq_pool_size(pool) != n - 1) zq_pool_free(pool), pool = NULL;
    if (!pool) pool = zq_pool_create(n - 1);
    if (!pool || zq_pool_size(pool) != n - 1) {
        zq_pool_free(pool), pool = NULL;
        pthread_mutex_unlock(&lock);
    }
    return pool;
}

void zq_engine_run(size_t ntasks, int slots, zq_task_fn fn, void *ctx)
{
    zq_pool *p = ntasks > 1 ? take_pool(slots) : NULL;
    if (!p) {
        int w = worker_id >= 0 && (!slots || worker_id < slots) ? worker_id : 0;
        for (size_t t = 0; t < ntasks; t++) fn(ctx, t, w);
        return;
    }
    job j = {fn, ctx, NULL};
    zq_pool_submit(p, ntasks, trampoline, &j);
    zq_pool_help(p, zq_pool_size(p));
    zq_pool_wait(p);
    pthread_mutex_unlock(&lock);
}

int zq_engine_each_thread(zq_task_fn fn, void *ctx)
{
    zq_pool *p = take_pool(0);
    if (!p) return 0;
    int n = zq_pool_size(p);
    pthread_barrier_t all;
    pthread_barrier_init(&all, NULL, (unsigned)n);
    job j = {fn, ctx, &all};
    zq_pool_submit(p, (size_t)n, trampoline, &j);
    zq_pool_wait(p);
    pthread_barrier_destroy(&all);
    pthread_mutex_unlock(&lock);
    return n;
}
