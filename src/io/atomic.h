/* Output files appear whole or not at all: data goes to a temp file beside
 * the target, is fsynced, then renamed over it. A symlink is followed (its
 * target is replaced, the link stays); a character device or FIFO is
 * written into, never replaced; an input of this process is never an
 * output. */
#ifndef ZQ_ATOMIC_H
#define ZQ_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"

typedef struct {
    int fd;          /* what writes go to: the temp file, the device, or the spool */
    int sink;        /* a FIFO (or unseekable device) the spool is copied into at commit; -1 */
    int stream;      /* the target is a device or FIFO: no temp file, no rename */
    int force;
    char *tmp;       /* the temp file's path (regular targets) */
    char *final;     /* the output as the caller named it (for messages) */
    char *target;    /* the file that is replaced: final, its symlinks followed */
    int slot;        /* in the signal-cleanup table, -1 if none */
    size_t unkicked; /* bytes written since writeback was last started */
    struct zq_direct *direct; /* a regular file's writes, while they go direct (io/direct.h) */
} zq_atomic;

/* Whether path may be written (what zq_atomic_open checks first): not an
 * input, not a directory, not an existing file unless force; *stream: it
 * is a device or FIFO, written into. */
zq_status zq_output_check(const char *path, int force, int *stream, zq_error *err);
zq_status zq_atomic_open(zq_atomic *a, const char *path, int force, zq_error *err);
/* The same, but messages name the file as shown (a file of an output
 * folder being written: OUT/name, not the temp folder). */
zq_status zq_atomic_open_as(zq_atomic *a, const char *path, const char *shown, int force, zq_error *err);
zq_status zq_atomic_write(zq_atomic *a, const void *data, size_t len, zq_error *err);
/* Moves where zq_atomic_write writes to offset; the bytes skipped are
 * zeros or what zq_atomic_pwrite puts there. */
zq_status zq_atomic_seek(zq_atomic *a, uint64_t offset, zq_error *err);
zq_status zq_atomic_pwrite(zq_atomic *a, const void *data, size_t len, uint64_t offset, zq_error *err);
zq_status zq_atomic_commit(zq_atomic *a, zq_error *err); /* releases a */
void zq_atomic_abort(zq_atomic *a);                      /* releases a; safe twice */

#endif
