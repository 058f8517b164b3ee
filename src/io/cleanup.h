/* The temp files a signal must not leave behind (see io/cleanup.c). */
#ifndef ZQ_CLEANUP_H
#define ZQ_CLEANUP_H

/* Registers path; returns its slot, or -1 when the table is full (the file
 * is then only removed by the normal error paths). */
int zq_cleanup_add(const char *path);
void zq_cleanup_remove(int slot); /* accepts -1 */

#endif
