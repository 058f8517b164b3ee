/* Output files appear whole or not at all: data goes to a temp file in the
 * same directory, is fsynced, then renamed over the target. */
#ifndef ZQ_ATOMIC_H
#define ZQ_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"

typedef struct {
    int fd;
    int force;
    char *tmp;
    char *final;
    int slot; /* in the signal-cleanup table, -1 if none */
    size_t unkicked; /* bytes written since writeback was last started */
} zq_atomic;

zq_status zq_atomic_open(zq_atomic *a, const char *path, int force, zq_error *err);
zq_status zq_atomic_write(zq_atomic *a, const void *data, size_t len, zq_error *err);
zq_status zq_atomic_pwrite(zq_atomic *a, const void *data, size_t len, uint64_t offset, zq_error *err);
zq_status zq_atomic_commit(zq_atomic *a, zq_error *err); /* releases a */
void zq_atomic_abort(zq_atomic *a);                      /* releases a; safe twice */

#endif
