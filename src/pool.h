/* A fixed set of worker threads that run numbered tasks; the caller's
 * thread works too. Which thread runs a task never changes its result. */
#ifndef ZQ_POOL_H
#define ZQ_POOL_H

#include <stddef.h>

typedef struct zq_pool zq_pool;
typedef void (*zq_task_fn)(void *ctx, size_t task, int worker);

/* nthreads <= 0: one per online core. NULL on failure. */
zq_pool *zq_pool_create(int nthreads);
int zq_pool_size(const zq_pool *p);
/* Runs fn(ctx, t, worker) for t in [0, ntasks); returns when all are done. */
void zq_pool_run(zq_pool *p, size_t ntasks, zq_task_fn fn, void *ctx);
void zq_pool_free(zq_pool *p); /* accepts NULL */

#endif
