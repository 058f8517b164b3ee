/* The engine's threads: one pool that every parallel loop of the engine
 * runs on (BLAS tiles, attention heads, GPTQ rows). What a task computes
 * never depends on which thread runs it or how many there are: callers
 * split work by its shape alone. With N threads the pool has N - 1 and
 * the caller of a run is its N-th worker. */
#ifndef ZQ_ENGINE_H
#define ZQ_ENGINE_H

#include <stddef.h>

#include "base/pool.h"

/* fn(ctx, t, worker) for every t in [0, ntasks), worker < slots (the
 * per-worker scratch the caller has; 0: it has none). On the pool, unless
 * the caller is already one of its tasks, the engine has one thread or
 * more than slots, or another thread holds the pool: then one after the
 * other on the caller's thread, as worker 0 (inside a task: the task's
 * own worker, and then below the slots whoever sized them for the pool). */
void zq_engine_run(size_t ntasks, int slots, zq_task_fn fn, void *ctx);
/* fn(ctx, 0, worker) once on every pool thread at the same time, each
 * waiting for all to start (so each allocates what it needs at once);
 * returns how many ran it (0: no pool). */
int zq_engine_each_thread(zq_task_fn fn, void *ctx);
/* The calling thread's worker number inside a zq_engine_run task, else -1. */
int zq_engine_worker(void);
/* An upper bound on the threads the engine may use from now on (an
 * address-space limit with room for fewer; 0: none). */
void zq_engine_cap_threads(int n);

#endif
