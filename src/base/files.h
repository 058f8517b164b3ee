/* Opening the files zquant reads: regular files only (a FIFO would block the
 * open, a device would never end), small ones read whole, and every input
 * remembered so that no output of this process replaces one. */
#ifndef ZQ_FILES_H
#define ZQ_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "zquant/error.h"

/* Opens path for reading if it is a regular file (without blocking on a
 * FIFO first); *st gets its status. */
zq_status zq_open_regular(const char *path, int *fd, struct stat *st, zq_error *err);

/* Records that path (with status st) is an input of this process. */
void zq_note_input(const char *path, const struct stat *st);
/* The path the input that st describes was read as, or NULL. */
const char *zq_input_same_as(const struct stat *st);

/* Reads a whole regular file of at most limit bytes into a NUL-terminated
 * buffer; *len (may be NULL) gets its length. zq_read_input_file also
 * records it as an input (a config, a tokenizer, a token or text file);
 * zq_read_small_file does not (zquant's own work files). */
zq_status zq_read_small_file(const char *path, size_t limit, char **out, size_t *len, zq_error *err);
zq_status zq_read_input_file(const char *path, size_t limit, char **out, size_t *len, zq_error *err);

/* path with every symlink on its last component followed: the file (or
 * folder) a rename must replace for the link to keep pointing at the
 * output. malloc'd; NULL with errno set on failure (ELOOP). */
char *zq_follow_links(const char *path);

/* $TMPDIR, else /tmp */
const char *zq_tmpdir(void);
/* A new file in dir that has no name (O_TMPFILE, else made and unlinked
 * at once), read and written: nothing is left behind however the process
 * ends. A NULL dir: zq_tmpdir(). *used gets the directory, for messages. */
zq_status zq_unnamed_file(const char *dir, int *fd, const char **used, zq_error *err);

/* The CRC-32C of a regular file's first limit bytes (0: the whole file),
 * read in pieces; *bytes how many it covers. */
zq_status zq_file_crc32c(const char *path, uint64_t limit, uint32_t *crc, uint64_t *bytes, zq_error *err);

#endif
