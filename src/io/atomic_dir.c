/* Output folders, renamed into place whole (see atomic_dir.h). */
#include "io/atomic_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/files.h"
#include "base/util.h"
#include "io/cleanup.h"

/* Removes what is at path: a folder with everything in it (symlinks are
 * removed, never followed), or a file. Only ever a folder zquant made or
 * one the user asked to replace (--force). */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = zq_path_join(path, e->d_name);
        if (p) remove_tree(p);
        free(p);
    }
    if (d) closedir(d);
    rmdir(path);
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Whether the real path of inside is root or lies under it. */
static int contains(const char *root, const char *inside)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(root, a) || !realpath(inside, b)) return 0;
    size_t n = strlen(a);
    return !strncmp(a, b, n) && (b[n] == 0 || b[n] == '/' || n == 1);
}

zq_status zq_atomic_dir_open(zq_atomic_dir *d, const char *path, int force, const char *const *inputs, zq_error *err)
{
    memset(d, 0, sizeof *d);
    d->force = force;
    d->final = strdup(path);
    for (size_t n = d->final ? strlen(d->final) : 0; n > 1 && d->final[n - 1] == '/'; n--) d->final[n - 1] = 0;
    /* a symlink is followed, as for files: the folder it points to is the
     * one replaced, and the link stays */
    d->target = d->final ? zq_follow_links(d->final) : NULL;
    if (!d->final || !d->target) {
        zq_status s = d->final && errno == ELOOP ? zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot follow its symlinks", path)
                                                 : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        zq_atomic_dir_abort(d);
        return s;
    }
    struct stat st;
    if (stat(d->target, &st) == 0) {
        for (size_t k = 0; inputs && inputs[k]; k++)
            if (contains(d->target, inputs[k])) {
                zq_atomic_dir_abort(d);
                return zq_fail(err, ZQ_ERR_USAGE, "'%s': holds the input '%s': replacing it would destroy it; choose "
                               "another output", path, inputs[k]);
            }
        zq_status s = !S_ISDIR(st.st_mode) ? zq_fail(err, ZQ_ERR_IO, "'%s': exists and is not a folder", path)
                      : !force ? zq_fail(err, ZQ_ERR_EXISTS, "'%s': already exists (use --force to replace it)", path)
                               : ZQ_OK;
        if (s != ZQ_OK) {
            zq_atomic_dir_abort(d);
            return s;
        }
    }
    char *parent = zq_path_dirname(d->target);
    const char *base = strrchr(d->target, '/') ? strrchr(d->target, '/') + 1 : d->target;
    size_t n = (parent ? strlen(parent) : 0) + strlen(base) + 32;
    d->tmp = malloc(n);
    if (!parent || !d->tmp) {
        free(parent);
        zq_atomic_dir_abort(d);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    snprintf(d->tmp, n, "%s/.%s.zq-XXXXXX", parent, base);
    free(parent);
    if (!mkdtemp(d->tmp)) {
        zq_status s = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create a folder beside it", path);
        free(d->tmp);
        d->tmp = NULL;
        zq_atomic_dir_abort(d);
        return s;
    }
    d->slot = zq_cleanup_add_folder(d->tmp) + 1; /* a signal takes it away */
    chmod(d->tmp, 0755); /* mkdtemp's 0700 would hide the model from other users */
    return ZQ_OK;
}

char *zq_atomic_dir_file(const zq_atomic_dir *d, const char *name)
{
    return zq_path_join(d->tmp, name);
}

char *zq_atomic_dir_shown(const zq_atomic_dir *d, const char *name)
{
    return zq_path_join(d->final, name);
}

/* Renames the temp folder into place, replacing only what the caller may
 * replace: without force, the rename itself refuses a target that has
 * appeared meanwhile (RENAME_NOREPLACE: no check-then-rename window); with
 * force, the old folder and the new are swapped at once (RENAME_EXCHANGE)
 * and the old one, now at the temp path, is removed. *old_at_tmp: the
 * swap happened. Filesystems without these fall back to a plain rename
 * after the same checks. */
static zq_status put_in_place(zq_atomic_dir *d, int *old_at_tmp, zq_error *err)
{
    *old_at_tmp = 0;
    if (d->force && renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->target, RENAME_EXCHANGE) == 0) {
        *old_at_tmp = 1;
        return ZQ_OK;
    }
    if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->target, RENAME_NOREPLACE) == 0) return ZQ_OK;
    if (errno == EEXIST)
        return zq_fail(err, ZQ_ERR_EXISTS, "'%s': appeared while writing (use --force to replace it)", d->final);
    if (errno != EINVAL && errno != ENOSYS)
        return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot rename into place", d->final);
    struct stat st;
    if (stat(d->target, &st) == 0 && !d->force)
        return zq_fail(err, ZQ_ERR_EXISTS, "'%s': appeared while writing (use --force to replace it)", d->final);
    if (stat(d->target, &st) == 0) remove_tree(d->target);
    if (rename(d->tmp, d->target) != 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot rename into place", d->final);
    return ZQ_OK;
}

zq_status zq_atomic_dir_commit(zq_atomic_dir *d, zq_error *err)
{
    int old_at_tmp = 0;
    zq_status st = ZQ_OK;
    if (fsync_path(d->tmp) != 0) st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot sync", d->final);
    if (st == ZQ_OK) st = put_in_place(d, &old_at_tmp, err);
    if (st == ZQ_OK) {
        char *parent = zq_path_dirname(d->target);
        if (parent) fsync_path(parent);
        free(parent);
        if (!old_at_tmp) { /* the temp path is the output now: nothing to remove */
            zq_cleanup_remove(d->slot - 1);
            d->slot = 0;
            free(d->tmp);
            d->tmp = NULL;
        }
    }
    zq_atomic_dir_abort(d); /* the temp folder (or the old one, swapped there) */
    return st;
}

void zq_atomic_dir_abort(zq_atomic_dir *d)
{
    if (d->tmp) remove_tree(d->tmp);
    zq_cleanup_remove(d->slot - 1);
    free(d->tmp);
    free(d->final);
    free(d->target);
    d->tmp = d->final = d->target = NULL;
    d->slot = 0;
}
