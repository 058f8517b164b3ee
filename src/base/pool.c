/* A fixed set of worker threads running numbered tasks (see pool.h). */
#include "base/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct zq_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    unsigned long generation;
    int stopping;
    zq_task_fn fn;
    void *ctx;
    size_t ntasks, next, finished;
};

typedef struct {
    zq_pool *pool;
    int worker;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    zq_pool *p = wa->pool;
    int id = wa->worker;
    free(wa);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stopping && p->next >= p->ntasks) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping) break;
        size_t t = p->next++;
        zq_task_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->lock);
        fn(ctx, t, id);
        pthread_mutex_lock(&p->lock);
        if (++p->finished == p->ntasks) pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
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
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    p->next = 0;
    p->finished = 0;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void zq_pool_help(zq_pool *p, int worker)
{
    pthread_mutex_lock(&p->lock);
    while (p->next < p->ntasks) {
        size_t t = p->next++;
        pthread_mutex_unlock(&p->lock);
        p->fn(p->ctx, t, worker);
        pthread_mutex_lock(&p->lock);
        if (++p->finished == p->ntasks) pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
}

void zq_pool_wait(zq_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->finished < p->ntasks) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void zq_pool_free(zq_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int k = 0; k < p->n; k++) pthread_join(p->threads[k], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}
