/* The pairwise tree sum, a part at a time (tree.h). Adding parts left to
 * right and merging the two top subtrees whenever they hold as many parts
 * leaves subtrees of 2^a, 2^b, ... parts (a > b > ...); folding them from
 * the right at the end gives exactly sum(0..p) + sum(p..n), p the largest
 * power of two below n, at every level. */
#include "base/tree.h"

#include <stdlib.h>
#include <string.h>

#include "zquant/sum.h"

#define ZQ_TREE_DEFINE(sfx, type)                                                         \
    void zq_tree_##sfx##_init(zq_tree_##sfx *t, type *buf, size_t n)                      \
    {                                                                                     \
        t->buf = buf, t->n = n, t->top = 0;                                               \
    }                                                                                     \
    type *zq_tree_##sfx##_next(zq_tree_##sfx *t) { return t->buf + (size_t)t->top * t->n; } \
    static void merge_##sfx(zq_tree_##sfx *t) /* the top subtree into the one below */   \
    {                                                                                     \
        type *left = t->buf + (size_t)(t->top - 2) * t->n, *right = left + t->n;          \
        for (size_t i = 0; i < t->n; i++) left[i] += right[i];                            \
        t->count[t->top - 2] += t->count[t->top - 1];                                     \
        t->top--;                                                                         \
    }                                                                                     \
    void zq_tree_##sfx##_add(zq_tree_##sfx *t)                                            \
    {                                                                                     \
        t->count[t->top++] = 1;                                                           \
        while (t->top > 1 && t->count[t->top - 2] == t->count[t->top - 1]) merge_##sfx(t); \
    }                                                                                     \
    const type *zq_tree_##sfx##_sum(zq_tree_##sfx *t)                                     \
    {                                                                                     \
        if (!t->top) memset(t->buf, 0, t->n * sizeof *t->buf);                            \
        while (t->top > 1) merge_##sfx(t);                                                \
        return t->buf;                                                                    \
    }

ZQ_TREE_DEFINE(f32, float)
ZQ_TREE_DEFINE(f64, double)

/* Parts already in memory: each copied to the stack's slot, then added. */
#define ZQ_SUM_PARTS(sfx, type)                                                           \
    int zq_sum_parts_##sfx(const type *parts, int nparts, size_t n, type *out)            \
    {                                                                                     \
        type *buf = malloc((size_t)zq_tree_levels(nparts) * (n ? n : 1) * sizeof *buf);   \
        if (!buf) return 0;                                                               \
        zq_tree_##sfx t;                                                                  \
        zq_tree_##sfx##_init(&t, buf, n);                                                 \
        for (int p = 0; p < nparts; p++) {                                                \
            memcpy(zq_tree_##sfx##_next(&t), parts + (size_t)p * n, n * sizeof *buf);     \
            zq_tree_##sfx##_add(&t);                                                      \
        }                                                                                 \
        memcpy(out, zq_tree_##sfx##_sum(&t), n * sizeof *out);                            \
        free(buf);                                                                        \
        return 1;                                                                         \
    }

ZQ_SUM_PARTS(f32, float)
ZQ_SUM_PARTS(f64, double)

/* out (rows x cols, row stride ld) = beta out + the sum, the last merge
 * done in the same pass (left + right, then added: the same bits as
 * merging first), so the tile is read and written once. */
void zq_tree_f32_finish(zq_tree_f32 *t, float *out, size_t rows, size_t cols, size_t ld, float beta)
{
    if (!t->top) memset(t->buf, 0, t->n * sizeof *t->buf), t->top = 1, t->count[0] = 0;
    while (t->top > 2) merge_f32(t);
    const float *left = t->buf, *right = t->top == 2 ? t->buf + t->n : NULL;
    for (size_t i = 0; i < rows; i++) {
        float *o = out + i * ld;
        const float *l = left + i * cols, *r = right ? right + i * cols : NULL;
        if (r && beta == 0.0f)
            for (size_t j = 0; j < cols; j++) o[j] = l[j] + r[j];
        else if (r)
            for (size_t j = 0; j < cols; j++) o[j] = beta * o[j] + (l[j] + r[j]);
        else if (beta == 0.0f)
            for (size_t j = 0; j < cols; j++) o[j] = l[j];
        else
            for (size_t j = 0; j < cols; j++) o[j] = beta * o[j] + l[j];
    }
}
