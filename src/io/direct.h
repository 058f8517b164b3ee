/* Sequential output written with O_DIRECT from a ring of block-aligned
 * stages: one fills while a thread of its own writes the others to the
 * disk, in order. The
 * bytes never pass through the page cache, whose copy costs half of a
 * buffered write's CPU time (time the quantizer's workers need) and
 * whose pages a model written would take from its inputs. A file system
 * that refuses a direct write gets that write and the rest buffered; the
 * bytes in the file are the same either way. */
#ifndef ZQ_DIRECT_H
#define ZQ_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"

typedef struct zq_direct zq_direct;

/* fd's writes from now on, the first one at offset; NULL when O_DIRECT or
 * the stages or the thread cannot be had: write buffered then. */
zq_direct *zq_direct_start(int fd, uint64_t offset);
/* Appends len bytes of p (zeros when p is NULL); name is for messages. */
zq_status zq_direct_write(zq_direct *d, const void *p, size_t len, const char *name, zq_error *err);
/* Where the next byte goes. */
uint64_t zq_direct_end(const zq_direct *d);
/* Overwrites [offset, offset + len) with p if those bytes are still in the
 * filling stage, and says whether they were. */
int zq_direct_patch(zq_direct *d, const void *p, size_t len, uint64_t offset);
/* Writes what is staged and waits for the disk; the file is cut to its
 * length and fd left buffered, positioned at the end. Frees d. */
zq_status zq_direct_finish(zq_direct *d, const char *name, zq_error *err);
/* Waits for the thread and frees d, writing nothing more. */
void zq_direct_abandon(zq_direct *d);

#endif
