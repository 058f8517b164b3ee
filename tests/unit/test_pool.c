/* The thread pool's hand-over (base/pool.c): every task of every batch
 * runs exactly once, with its own batch's function and context, whether
 * the workers are spinning for it or asleep, and a batch's results are
 * all there when wait returns. Batches alternate between two functions
 * and contexts of different sizes, so a claim made against a previous
 * batch's slot would show as a task counted twice, in the wrong batch or
 * past its batch's end. */
#include <stdatomic.h>
#include <time.h>

#include "base/pool.h"
#include "test.h"

enum { MAX_TASKS = 48 };

typedef struct {
    int batch;
    _Atomic int runs[MAX_TASKS];
    _Atomic int wrong; /* a task run with the other function */
} tally;

static void count_even(void *ctx, size_t t, int worker)
{
    (void)worker;
    tally *c = ctx;
    if (c->batch % 2) atomic_fetch_add(&c->wrong, 1);
    if (t < MAX_TASKS) atomic_fetch_add(&c->runs[t], 1);
}

static void count_odd(void *ctx, size_t t, int worker)
{
    (void)worker;
    tally *c = ctx;
    if (c->batch % 2 == 0) atomic_fetch_add(&c->wrong, 1);
    if (t < MAX_TASKS) atomic_fetch_add(&c->runs[t], 1);
}

static int batches_run_exactly_once(int threads, int batches, int help, int nap_every)
{
    zq_pool *p = zq_pool_create(threads);
    if (!p) return 0;
    static tally c[2];
    uint32_t rng = 99u;
    int bad = 0;
    for (int b = 0; b < batches; b++) {
        tally *t = &c[b % 2];
        size_t n = test_next(&rng) % MAX_TASKS;
        t->batch = b;
        atomic_store(&t->wrong, 0);
        for (int k = 0; k < MAX_TASKS; k++) atomic_store(&t->runs[k], 0);
        zq_pool_submit(p, n, b % 2 ? count_odd : count_even, t);
        if (help) zq_pool_help(p, zq_pool_size(p));
        zq_pool_wait(p);
        for (size_t k = 0; k < MAX_TASKS; k++) bad += atomic_load(&t->runs[k]) != (k < n);
        bad += atomic_load(&t->wrong);
        if (nap_every && b % nap_every == 0) nanosleep(&(struct timespec){0, 1000000}, NULL); /* past the spin */
    }
    zq_pool_free(p);
    return bad == 0;
}

TEST(pool_runs_every_task_once_while_workers_spin)
{
    CHECK(batches_run_exactly_once(3, 20000, 1, 0));
    CHECK(batches_run_exactly_once(1, 20000, 0, 0));
}

TEST(pool_runs_every_task_once_after_workers_sleep)
{
    CHECK(batches_run_exactly_once(2, 300, 1, 3));
    CHECK(batches_run_exactly_once(3, 300, 0, 2));
}
