/* zquant errors: every fallible call returns a zq_status and, on failure,
 * fills a caller-owned zq_error with one line naming the file, the tensor and
 * what is wrong. The numeric values are stable: the CLI maps them to exit codes
 * (see zquant(1)). */
#ifndef ZQUANT_ERROR_H
#define ZQUANT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZQ_OK = 0,
    ZQ_ERR_USAGE = 2,       /* bad option or argument */
    ZQ_ERR_FORMAT = 3,      /* input file malformed or unsupported */
    ZQ_ERR_IO = 4,          /* cannot open, read, write or rename */
    ZQ_ERR_NOMEM = 5,       /* allocation failed */
    ZQ_ERR_CORRUPT = 6,     /* checksum mismatch in a .zq file */
    ZQ_ERR_DATA = 7,        /* values that cannot be quantized (NaN, Inf, overflow) */
    ZQ_ERR_EXISTS = 8,      /* output exists and --force was not given */
    ZQ_ERR_INTERNAL = 9
} zq_status;

typedef struct {
    zq_status code;
    char msg[1024];
} zq_error;

/* Records the failure (first one wins: later context must not bury the cause)
 * and returns its code, so error paths stay one line long. */
zq_status zq_fail(zq_error *err, zq_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like zq_fail, with ": strerror(errno)" appended. */
zq_status zq_fail_errno(zq_error *err, zq_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts context before the message already recorded ("tensor 'x': " + it),
 * keeping its code; returns that code. */
zq_status zq_fail_context(zq_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *zq_status_name(zq_status code);

#define ZQ_TRY(expr)                          \
    do {                                      \
        zq_status zq_try_st_ = (expr);        \
        if (zq_try_st_ != ZQ_OK) return zq_try_st_; \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
