/* zq_cmp A B: exits 0 when two .zq files are the same bytes; else names
 * the first difference a person can act on: the metadata (and the first
 * differing key of the tensor table or the recipe), or the first tensor,
 * in file order, whose section differs, with the section and the first
 * differing byte. Exit 1: they differ; 2: a file cannot be read. */
#include <stdio.h>
#include <string.h>

#include "zquant/zq.h"

/* The first byte where a and b differ, as a short context of a. */
static void first_text_difference(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "zq_cmp: metadata differs at byte %zu, after '%.*s'\n", i, (int)(i - from), a + from);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: zq_cmp A.zq B.zq\n");
        return 2;
    }
    zq_file *f[2] = {NULL, NULL};
    zq_error err = {0};
    for (int k = 0; k < 2; k++)
        if (zq_file_open(argv[1 + k], 1, &f[k], &err) != ZQ_OK) {
            fprintf(stderr, "zq_cmp: %s\n", err.msg);
            zq_file_close(f[0]);
            return 2;
        }
    int differ = 0;
    size_t n = zq_file_count(f[0]);
    if (n != zq_file_count(f[1])) {
        fprintf(stderr, "zq_cmp: %zu tensors against %zu\n", n, zq_file_count(f[1]));
        differ = 1;
    }
    for (size_t i = 0; !differ && i < n; i++) {
        const zq_tensor *ta = zq_file_tensor(f[0], i), *tb = zq_file_tensor(f[1], i);
        if (strcmp(ta->name, tb->name)) {
            fprintf(stderr, "zq_cmp: tensor %zu is '%s' against '%s'\n", i, ta->name, tb->name);
            differ = 1;
        }
        for (int s = 0; !differ && s < ZQ_SEC_COUNT; s++) {
            const void *da = NULL, *db = NULL;
            size_t la = 0, lb = 0;
            if (!ta->sec[s].present && !tb->sec[s].present) continue;
            if (ta->sec[s].present != tb->sec[s].present ||
                zq_file_section(f[0], i, (zq_section_kind)s, &da, &la, &err) != ZQ_OK ||
                zq_file_section(f[1], i, (zq_section_kind)s, &db, &lb, &err) != ZQ_OK || la != lb ||
                memcmp(da, db, la)) {
                size_t at = 0;
                while (da && db && at < la && at < lb && ((const unsigned char *)da)[at] == ((const unsigned char *)db)[at]) at++;
                fprintf(stderr, "zq_cmp: first differing tensor '%s', section '%s' (byte %zu of %zu)\n", ta->name,
                        zq_section_name((zq_section_kind)s), at, la);
                differ = 1;
            }
        }
    }
    /* the same tensors: whatever else differs is in the metadata (recipe,
     * error statistics, offsets) */
    if (!differ && strcmp(zq_file_metadata(f[0]), zq_file_metadata(f[1]))) {
        first_text_difference(zq_file_metadata(f[0]), zq_file_metadata(f[1]));
        differ = 1;
    }
    zq_file_close(f[0]);
    zq_file_close(f[1]);
    return differ;
}
