/* zq_list_stored: the tensors of a GGUF file or a compressed-tensors folder
 * as they are stored, for `zquant inspect`. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/files.h"
#include "base/util.h"
#include "base/utf8.h"
#include "io/gguf_read.h"
#include "io/source_impl.h"
#include "zquant/export.h"

void zq_stored_listing_free(zq_stored_listing *l)
{
    for (size_t k = 0; l->t && k < l->n; k++) free(l->t[k].name);
    free(l->t);
    memset(l, 0, sizeof *l);
}

static zq_status list_gguf(const char *path, zq_stored_listing *l, zq_error *err)
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

static zq_status list_ct(const char *dir, zq_stored_listing *l, zq_error *err)
{
    zq_source src = {0};
    if (!(src.path = strdup(dir))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    char *index = zq_path_join(dir, "model.safetensors.index.json"), *single = zq_path_join(dir, "model.safetensors");
    char *config_path = zq_path_join(dir, "config.json");
    zq_status st = index && single && config_path ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    char *config = NULL;
    if (st == ZQ_OK && access(config_path, F_OK) != 0)
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': a folder without config.json is not a compressed-tensors export", dir);
    if (st == ZQ_OK) st = zq_read_input_file(config_path, 16u << 20, &config, NULL, err);
    if (st == ZQ_OK && !zq_ct_config(config))
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': config.json has no compressed-tensors quantization_config", dir);
    if (st == ZQ_OK) /* the stored tensors, not the decoded ones zq_source_open gives */
        st = access(index, F_OK) == 0 ? zq_safetensors_open_sharded(&src, dir, index, err)
                                       : zq_safetensors_open(&src, single, err);
    if (st == ZQ_OK && !(l->t = calloc(src.count + 1, sizeof *l->t))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; st == ZQ_OK && k < src.count; k++, l->n++) {
        const zq_tensor_info *t = &src.tensors[k];
        zq_stored_tensor *x = &l->t[k];
        if (!(x->name = strdup(t->name))) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        snprintf(x->type, sizeof x->type, "%s", zq_dtype_name(t->dtype));
        x->ndim = t->ndim < 4 ? t->ndim : 4;
        memcpy(x->shape, t->shape, (size_t)x->ndim * sizeof *x->shape);
        x->bytes = t->numel * zq_dtype_size(t->dtype);
    }
    if (st == ZQ_OK) {
        cJSON *c = cJSON_Parse(config);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantization_config");
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(q, "format");
        snprintf(l->summary, sizeof l->summary, "compressed-tensors, format %s, %d config groups",
                 cJSON_IsString(fmt) ? fmt->valuestring : "?",
                 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(q, "config_groups")));
        cJSON_Delete(c);
    }
    free(config);
    free(index);
    free(single);
    free(config_path);
    if (src.ops) src.ops->close(&src);
    for (size_t k = 0; k < src.count; k++) free(src.tensors[k].name);
    free(src.tensors);
    free(src.path);
    return st;
}

zq_status zq_list_stored(const char *path, zq_stored_listing *out, zq_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot open", path);
    out->format = S_ISDIR(sb.st_mode) ? ZQ_EXPORT_CT : ZQ_EXPORT_GGUF;
    zq_status st = out->format == ZQ_EXPORT_CT ? list_ct(path, out, err) : list_gguf(path, out, err);
    if (st != ZQ_OK) zq_stored_listing_free(out);
    return st;
}
