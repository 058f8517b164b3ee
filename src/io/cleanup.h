/* The temp files a signal must not leave behind, and the mapped inputs a
 * fault may come from (see io/cleanup.c). */
#ifndef ZQ_CLEANUP_H
#define ZQ_CLEANUP_H

#include <stddef.h>

/* Registers path; returns its slot, or -1 when the table is full (the file
 * is then only removed by the normal error paths). */
int zq_cleanup_add(const char *path);
/* The same for a temp folder of files (an output folder being written):
 * its files, then itself. */
int zq_cleanup_add_folder(const char *path);
void zq_cleanup_remove(int slot); /* accepts -1 */

/* Registers an input's mapping (before its pages are read); returns its
 * slot, -1 when the table is full (a fault there then crashes). */
int zq_cleanup_map(const void *base, size_t len, const char *path);
void zq_cleanup_unmap(int slot); /* accepts -1 */

#endif
