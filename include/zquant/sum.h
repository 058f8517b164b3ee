/* The one order zquant adds partial results in. A sum of n parts (one
 * per sequence of a batch, one per process of a data-parallel job) is a
 * pairwise tree: sum(parts 0..n) = sum(0..p) + sum(p..n) with p the largest
 * power of two below n. When each of R processes holds an equal run of
 * m = n / R parts, m a power of two, every run is a subtree and the R run
 * sums combine by the same rule: R processes reach the bits of one,
 * whatever the floating-point rounding. */
#ifndef ZQUANT_SUM_H
#define ZQUANT_SUM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = the tree sum over p of parts[p * n + i], p in [0, nparts);
 * out may not overlap parts; nparts 0 gives zeros. 0 when memory runs
 * out (for a stack of log2(nparts) + 2 rows of n), else 1. */
int zq_sum_parts_f32(const float *parts, int nparts, size_t n, float *out);
int zq_sum_parts_f64(const double *parts, int nparts, size_t n, double *out);

#ifdef __cplusplus
}
#endif
#endif
