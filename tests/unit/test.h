/* A test framework in one header: TEST(name) defines and registers a case;
 * CHECK records a failure with its line and carries on. */
#ifndef ZQ_TEST_H
#define ZQ_TEST_H

#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
extern int test_failures; /* of the case running */

#define TEST(name)                                                            \
    static void name(void);                                                   \
    __attribute__((constructor)) static void register_##name(void) { test_register(#name, name); } \
    static void name(void)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            test_failures++;                                                  \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                     \
    } while (0)

#define CHECK_EQ_U(a, b)                                                      \
    do {                                                                      \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
        if (a_ != b_) {                                                       \
            test_failures++;                                                  \
            fprintf(stderr, "  %s:%d: %s == %llu, expected %llu\n", __FILE__, __LINE__, #a, a_, b_); \
        }                                                                     \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                 \
    do {                                                                      \
        double a_ = (a), b_ = (b);                                            \
        if (!(fabs(a_ - b_) <= (tol))) {                                      \
            test_failures++;                                                  \
            fprintf(stderr, "  %s:%d: %s == %.9g, expected %.9g\n", __FILE__, __LINE__, #a, a_, b_); \
        }                                                                     \
    } while (0)

/* A test's random numbers: xorshift32 from a seed of the test's own, so a
 * failure repeats. */
static inline uint32_t test_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

#endif
