/* Tree sums built a part at a time (zquant/sum.h gives the order): each
 * part is written where zq_tree_*_next says, then added; only a pairwise
 * stack is kept, zq_tree_levels(nparts) buffers of n values. Two
 * instantiations of one accumulator: float (gradients, products) and
 * double (losses). */
#ifndef ZQ_TREE_H
#define ZQ_TREE_H

#include <stddef.h>

/* Buffers of n values a sum of nparts parts needs: the stack holds at most
 * one subtree per bit of the count, plus the part being written. */
static inline int zq_tree_levels(long nparts)
{
    int bits = 0;
    while (nparts > 1) nparts >>= 1, bits++;
    return bits + 2;
}

#define ZQ_TREE_DECLARE(sfx, type)                                                       \
    typedef struct {                                                                     \
        type *buf; /* zq_tree_levels(nparts) x n */                                      \
        size_t n;                                                                        \
        int top;           /* subtrees on the stack */                                   \
        long count[64];    /* parts in each, strictly decreasing powers of two */        \
    } zq_tree_##sfx;                                                                     \
    void zq_tree_##sfx##_init(zq_tree_##sfx *t, type *buf, size_t n);                    \
    /* where the next part is to be written (n values) */                                \
    type *zq_tree_##sfx##_next(zq_tree_##sfx *t);                                        \
    /* the part written there joins the sum */                                           \
    void zq_tree_##sfx##_add(zq_tree_##sfx *t);                                          \
    /* the sum of every part added (n zeros when none), in the stack's first buffer */   \
    const type *zq_tree_##sfx##_sum(zq_tree_##sfx *t);

ZQ_TREE_DECLARE(f32, float)
ZQ_TREE_DECLARE(f64, double)

/* out (rows x cols of the n = rows * cols summed, row stride ld) =
 * beta out + the sum, in one pass with the last merge. */
void zq_tree_f32_finish(zq_tree_f32 *t, float *out, size_t rows, size_t cols, size_t ld, float beta);

#endif
