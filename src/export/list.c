/* zq_list_stored: the tensors of a GGUF file or a compressed-tensors folder
 * as they are stored, for `zquant inspect`. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "export/target.h"

void zq_stored_listing_free(zq_stored_listing *l)
{
    for (size_t k = 0; l->t && k < l->n; k++) free(l->t[k].name);
    free(l->t);
    memset(l, 0, sizeof *l);
}

zq_status zq_list_stored(const char *path, zq_stored_listing *out, zq_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot open", path);
    /* a folder is the folder target's; a file the file target's (a GGUF need not end in .gguf) */
    out->target = ZQ_TARGET_NONE;
    for (int k = 1; k < ZQ_TARGET_COUNT && !out->target; k++)
        if (!zq_target_get((zq_target_id)k)->extension == !!S_ISDIR(sb.st_mode)) out->target = (zq_target_id)k;
    zq_status st = zq_target_get(out->target)->list(path, out, err);
    if (st != ZQ_OK) zq_stored_listing_free(out);
    return st;
}
