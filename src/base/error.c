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
