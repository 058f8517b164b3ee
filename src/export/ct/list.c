/* A compressed-tensors folder's tensors as they are stored (not the
 * decoded ones zq_source_open gives), for `zquant inspect`. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/files.h"
#include "base/util.h"
#include "export/target.h"
#include "io/source_impl.h"

zq_status zq_ct_list(const char *dir, zq_stored_listing *l, zq_error *err)
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
