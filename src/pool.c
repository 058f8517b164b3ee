#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct zq_pool {
    int n; /* threads in all, the caller's included */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    unsigned long generation;
    int stopping;
    zq_task_fn fn;
    void *ctx;
    size_t ntasks, next, finished;
};

static void work(zq_pool *p, int worker)
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->next >= p->ntasks) {
            pthread_mutex_unlock(&p->lock);
            return;
        }
        size_t t = p->next++;
        pthread_mutex_unlock(&p->lock);
        p->fn(p->ctx, t, worker);
        pthread_mutex_lock(&p->lock);
        if (++p->finished == p->ntasks) pthread_cond_broadcast(&p->done);
        pthread_mutex_unlock(&p->lock);
    }
}

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
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stopping && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        work(p, id);
    }
}

zq_pool *zq_pool_create(int nthreads)
{
    if (nthreads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = c > 0 ? (int)c : 1;
    }
    zq_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = nthreads;
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int k = 1; k < nthreads; k++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&p->threads[k], NULL, worker_main, (wa->pool = p, wa->worker = k, wa)) != 0) {
            free(wa);
            p->n = k; /* run with the threads we got */
            break;
        }
    }
    return p;
}

int zq_pool_size(const zq_pool *p) { return p->n; }

void zq_pool_run(zq_pool *p, size_t ntasks, zq_task_fn fn, void *ctx)
{
    if (ntasks == 0) return;
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    p->next = 0;
    p->finished = 0;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    work(p, 0);
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
    for (int k = 1; k < p->n; k++) pthread_join(p->threads[k], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

