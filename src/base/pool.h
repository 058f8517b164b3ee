/* A fixed set of worker threads that run numbered tasks. Work is handed
 * over with submit and collected with wait, so the caller can write one
 * batch's results while the next batch computes. Which thread runs a task
 * never changes its result. */
#ifndef ZQ_POOL_H
#define ZQ_POOL_H

#include <stddef.h>

typedef struct zq_pool zq_pool;
typedef void (*zq_task_fn)(void *ctx, size_t task, int worker);

/* nthreads <= 0: one per online core. NULL on failure. */
zq_pool *zq_pool_create(int nthreads);
int zq_pool_size(const zq_pool *p);
/* Starts fn(ctx, t, worker) for t in [0, ntasks); one batch at a time. */
void zq_pool_submit(zq_pool *p, size_t ntasks, zq_task_fn fn, void *ctx);
/* The calling thread runs the submitted batch's tasks too, as `worker`,
 * until none is left to start (then zq_pool_wait). */
void zq_pool_help(zq_pool *p, int worker);
/* Returns when the submitted batch is done. */
void zq_pool_wait(zq_pool *p);
void zq_pool_free(zq_pool *p); /* accepts NULL */

#endif
