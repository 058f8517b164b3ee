/* Small helpers shared inside the library: paths, integer arithmetic. */
#ifndef ZQ_UTIL_H
#define ZQ_UTIL_H

#include <stddef.h>
#include <stdint.h>

char *zq_path_join(const char *dir, const char *name); /* malloc'd */
char *zq_path_dirname(const char *path);               /* malloc'd */
static inline uint64_t zq_align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
static inline uint64_t zq_ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

#endif
