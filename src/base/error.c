/* Recording failures as values: the first message wins, errno appended on request. */
#include "zquant/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vrecord(zq_error *err, zq_status code, const char *fmt, va_list ap, int errnum)
{
    if (!err || err->code != ZQ_OK) return;
    err->code = code;
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (errnum && n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(errnum));
}

zq_status zq_fail(zq_error *err, zq_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, code, fmt, ap, 0);
    va_end(ap);
    return code;
}

zq_status zq_fail_errno(zq_error *err, zq_status code, const char *fmt, ...)
{
    int errnum = errno;
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, code, fmt, ap, errnum);
    va_end(ap);
    return code;
}

const char *zq_status_name(zq_status code)
{
    switch (code) {
    case ZQ_OK: return "ok";
    case ZQ_ERR_USAGE: return "usage";
    case ZQ_ERR_FORMAT: return "format";
    case ZQ_ERR_IO: return "io";
    case ZQ_ERR_NOMEM: return "nomem";
    case ZQ_ERR_CORRUPT: return "corrupt";
    case ZQ_ERR_DATA: return "data";
    case ZQ_ERR_EXISTS: return "exists";
    case ZQ_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

zq_status zq_fail_context(zq_error *err, const char *fmt, ...)
{
    char before[sizeof err->msg], was[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(before, sizeof before, fmt, ap);
    va_end(ap);
    memcpy(was, err->msg, sizeof was);
    was[sizeof was - 1] = 0;
    size_t n = strlen(before), m = strlen(was), room = sizeof err->msg - 1; /* truncated at the end, if at all */
    if (n + 2 > room) n = room - 2;
    memcpy(err->msg, before, n);
    memcpy(err->msg + n, ": ", 2);
    if (m > room - n - 2) m = room - n - 2;
    memcpy(err->msg + n + 2, was, m);
    err->msg[n + 2 + m] = 0;
    return err->code;
}
