/* A GGUF file's tensors as they are stored, for `zquant inspect`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "export/gguf/read.h"
#include "export/target.h"

zq_status zq_gguf_list(const char *path, zq_stored_listing *l, zq_error *err)
{
    zq_gguf *g;
    ZQ_TRY(zq_gguf_open(path, &g, err));
    zq_status st = (l->t = calloc(g->nt + 1, sizeof *l->t)) ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; st == ZQ_OK && k < g->nt; k++, l->n++) {
        const zq_gguf_tensor *t = &g->t[k];
        zq_stored_tensor *x = &l->t[k];
        if (!zq_utf8_valid(t->name, strlen(t->name))) {
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor %zu: its name is not valid UTF-8", path, k);
            break;
        }
        x->name = strdup(t->name);
        snprintf(x->type, sizeof x->type, "%s", zq_ggml_type_name(t->type));
        x->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) x->shape[d] = (int64_t)t->ne[t->ndim - 1 - d];
        x->bytes = t->bytes;
        if (!x->name) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    char *arch = zq_gguf_string(g, "general.architecture");
    uint64_t ftype = 0;
    int has_ftype = zq_gguf_uint(g, "general.file_type", &ftype);
    char ft[32] = "";
    if (has_ftype) snprintf(ft, sizeof ft, ", file_type %llu", (unsigned long long)ftype);
    snprintf(l->summary, sizeof l->summary, "GGUF v%u, architecture %s, %zu keys%s", g->version,
             arch && zq_utf8_valid(arch, strlen(arch)) ? arch : "?", g->nkv, ft);
    free(arch);
    zq_gguf_close(g);
    return st;
}
