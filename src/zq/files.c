/* The files of a model besides its weights (zq_model_files): carried in a
 * .zq, or beside a checkpoint in its folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/files.h"
#include "base/util.h"
#include "zquant/zq.h"

#define MODEL_FILE_LIMIT ((size_t)1 << 30)

static zq_status carried(const char *path, const char *const *names, char **shown, char **data, size_t *len,
                         zq_error *err)
{
    zq_file *f;
    ZQ_TRY(zq_file_open(path, 0, &f, err));
    zq_status st = ZQ_OK;
    for (; st == ZQ_OK && *names && !*data; names++) {
        const void *p;
        size_t n;
        st = zq_file_attached(f, *names, &p, &n, err);
        if (st != ZQ_OK || !p) continue;
        *data = malloc(n + 1);
        *shown = malloc(strlen(path) + strlen(*names) + 2);
        if (!*data || !*shown) {
            st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(*data, p, n);
        (*data)[n] = 0;
        *len = n;
        sprintf(*shown, "%s:%s", path, *names); /* the file inside the .zq, for messages */
    }
    zq_file_close(f);
    return st;
}

static zq_status in_folder(const char *dir, const char *const *names, char **shown, char **data, size_t *len,
                           zq_error *err)
{
    for (; *names; names++) {
        char *path = zq_path_join(dir, *names);
        struct stat sb;
        if (!path) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            zq_status st = zq_read_input_file(path, MODEL_FILE_LIMIT, data, len, err);
            if (st == ZQ_OK) *shown = path;
            else free(path);
            return st;
        }
        free(path);
    }
    return ZQ_OK;
}

zq_status zq_model_file(const char *model, const char *const *names, char **shown, char **data, size_t *len,
                        zq_error *err)
{
    *shown = *data = NULL;
    *len = 0;
    struct stat sb;
    int dir = stat(model, &sb) == 0 && S_ISDIR(sb.st_mode);
    zq_status st = !dir && zq_is_zq_file(model) ? carried(model, names, shown, data, len, err) : ZQ_OK;
    if (st == ZQ_OK && !*data) {
        free(*shown);
        *shown = NULL;
        char *folder = dir ? strdup(model) : zq_path_dirname(model);
        st = folder ? in_folder(folder, names, shown, data, len, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        free(folder);
    }
    if (st != ZQ_OK || !*data) {
        free(*shown), free(*data);
        *shown = *data = NULL;
    }
    return st;
}
