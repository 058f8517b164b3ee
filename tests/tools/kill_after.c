/* A test's fault injector, preloaded (LD_PRELOAD) into a zquant run: after
 * the Nth successful rename() onto a path ending in SUFFIX, the process dies
 * of SIGKILL, as if killed from outside at that exact point. The library
 * has no hook for this; ZQ_KILL_AFTER="SUFFIX:N" arms it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    static int seen;
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int rc = real(from, to);
    const char *arm = getenv("ZQ_KILL_AFTER");
    const char *colon = arm ? strrchr(arm, ':') : NULL;
    if (rc == 0 && colon) {
        char suffix[256];
        snprintf(suffix, sizeof suffix, "%.*s", (int)(colon - arm), arm);
        if (ends_with(to, suffix) && ++seen == atoi(colon + 1)) raise(SIGKILL);
    }
    return rc;
}
