/* Runs every registered unit test (or those named on the command line) and
 * prints one line per test, then "N passed, N failed". */
#include <stdlib.h>

#include "test.h"

#define MAX_TESTS 256

typedef struct {
    const char *name;
    test_fn fn;
} test_case;
static test_case tests[MAX_TESTS];
static int ntests;
int test_failures;

void test_register(const char *name, test_fn fn)
{
    if (ntests < MAX_TESTS) tests[ntests++] = (test_case){name, fn};
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2) return 1;
    for (int k = 1; k < argc; k++)
        if (strcmp(argv[k], name) == 0) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int k = 0; k < ntests; k++) {
        if (!selected(tests[k].name, argc, argv)) continue;
        test_failures = 0;
        tests[k].fn();
        printf("%s unit/%s\n", test_failures ? "FAIL" : "ok  ", tests[k].name);
        if (test_failures) failed++;
        else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
