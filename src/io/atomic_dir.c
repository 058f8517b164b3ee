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

#include "base/util.h"

/* Removes a folder zquant made and the plain files in it. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = zq_path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    if (d) closedir(d);
    rmdir(dir);
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
    struct stat st;
    if (stat(path, &st) == 0) {
        for (size_t k = 0; inputs && inputs[k]; k++)
            if (contains(path, inputs[k]))
                return zq_fail(err, ZQ_ERR_USAGE, "'%s': holds the input '%s': replacing it would destroy it; choose "
                               "another output", path, inputs[k]);
        if (!S_ISDIR(st.st_mode))
            return zq_fail(err, ZQ_ERR_IO, "'%s': exists and is not a folder", path);
        if (!force) return zq_fail(err, ZQ_ERR_EXISTS, "'%s': already exists (use --force to replace it)", path);
    }
    d->final = strdup(path);
    for (size_t n = d->final ? strlen(d->final) : 0; n > 1 && d->final[n - 1] == '/'; n--) d->final[n - 1] = 0;
    char *parent = d->final ? zq_path_dirname(d->final) : NULL;
    const char *base = !d->final ? "" : strrchr(d->final, '/') ? strrchr(d->final, '/') + 1 : d->final;
    size_t n = (parent ? strlen(parent) : 0) + strlen(base) + 32;
    d->tmp = malloc(n);
    if (!d->final || !parent || !d->tmp) {
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
    chmod(d->tmp, 0755); /* mkdtemp's 0700 would hide the model from other users */
    return ZQ_OK;
}

char *zq_atomic_dir_file(const zq_atomic_dir *d, const char *name)
{
    return zq_path_join(d->tmp, name);
}

zq_status zq_atomic_dir_commit(zq_atomic_dir *d, zq_error *err)
{
    zq_status st = ZQ_OK;
    char *old = NULL;
    if (fsync_path(d->tmp) != 0) st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot sync", d->final);
    struct stat s;
    if (st == ZQ_OK && stat(d->final, &s) == 0) { /* --force: move the old folder aside */
        size_t n = strlen(d->tmp) + 8;
        old = malloc(n);
        if (!old) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        else snprintf(old, n, "%s.old", d->tmp);
        if (st == ZQ_OK && rename(d->final, old) != 0)
            st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot move the old folder aside", d->final);
    }
    if (st == ZQ_OK && rename(d->tmp, d->final) != 0) {
        st = zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot rename into place", d->final);
        if (old) rename(old, d->final); /* put the old one back */
    }
    if (st == ZQ_OK) {
        char *parent = zq_path_dirname(d->final);
        if (parent) fsync_path(parent);
        free(parent);
        free(d->tmp);
        d->tmp = NULL;
        if (old) remove_tree(old);
    }
    free(old);
    zq_atomic_dir_abort(d);
    return st;
}

void zq_atomic_dir_abort(zq_atomic_dir *d)
{
    if (d->tmp) remove_tree(d->tmp);
    free(d->tmp);
    free(d->final);
    d->tmp = d->final = NULL;
}
