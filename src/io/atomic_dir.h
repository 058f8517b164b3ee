/* Output folders appear whole or not at all, like output files (atomic.h):
 * the files are written into a temp folder beside the target, each fsynced,
 * and the folder is renamed into place, never over one that appeared
 * meanwhile unless with force (then swapped with it at once, and the old
 * one removed). A symlink is followed (the folder it points to is
 * replaced, the link stays). A signal removes the temp folder. A folder
 * that holds one of the run's inputs is never the output. */
#ifndef ZQ_ATOMIC_DIR_H
#define ZQ_ATOMIC_DIR_H

#include "zquant/error.h"

typedef struct {
    char *final;  /* the folder as the caller named it (for messages) */
    char *target; /* the folder replaced: final, its symlinks followed */
    char *tmp;    /* the temp folder the files go to */
    int force;
    int slot;     /* in the signal-cleanup table, plus 1; 0: none */
} zq_atomic_dir;

/* inputs: paths (files or folders, NULL-terminated) the output must not
 * contain or be. */
zq_status zq_atomic_dir_open(zq_atomic_dir *d, const char *path, int force, const char *const *inputs,
                             zq_error *err);
/* The path of name inside the temp folder (malloc'd): write it with
 * zq_atomic, which fsyncs it. */
char *zq_atomic_dir_file(const zq_atomic_dir *d, const char *name);
/* The same file as the user will see it, OUT/name (malloc'd): what a
 * message names, never the temp folder. */
char *zq_atomic_dir_shown(const zq_atomic_dir *d, const char *name);
zq_status zq_atomic_dir_commit(zq_atomic_dir *d, zq_error *err); /* releases d */
void zq_atomic_dir_abort(zq_atomic_dir *d);                      /* releases d; safe twice */

#endif
