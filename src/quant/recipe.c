/* What a .zq says about how it was made, and what it carries of the model
 * folder so that it stands alone: the recipe (preset, specs, method and its
 * data, the source files) and the runtime's companion files
 * (zq_model_files). */
#include "quant/recipe.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/files.h"
#include "base/util.h"
#include "export/target.h"
#include "zquant/crc32c.h"

/* Files up to this size are hashed whole; a larger one (a weights file)
 * by its first HEAD bytes, its safetensors header and the start of its
 * data: hashing it whole would read the checkpoint a second time. */
#define HASH_WHOLE (64u << 20)
#define HEAD (1u << 20)

static void add_file(cJSON *list, const char *dir, const char *name)
{
    char *path = dir ? zq_path_join(dir, name) : strdup(name);
    struct stat sb;
    uint32_t crc;
    uint64_t covered;
    zq_error ignore = {0};
    if (path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        int whole = (uint64_t)sb.st_size <= HASH_WHOLE;
        if (zq_file_crc32c(path, whole ? 0 : HEAD, &crc, &covered, &ignore) == ZQ_OK) {
            const char *slash = strrchr(name, '/');
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "name", slash ? slash + 1 : name);
            cJSON_AddNumberToObject(f, "bytes", (double)sb.st_size);
            cJSON_AddNumberToObject(f, whole ? "crc32c" : "head_crc32c", crc);
            cJSON_AddItemToArray(list, f);
        }
    }
    free(path);
}

/* A folder's weights: the shards its index names, else model.safetensors. */
static void add_folder(cJSON *list, const char *dir)
{
    add_file(list, dir, "config.json");
    char *index_path = zq_path_join(dir, "model.safetensors.index.json"), *text = NULL;
    zq_error ignore = {0};
    if (index_path && zq_read_small_file(index_path, 64u << 20, &text, NULL, &ignore) == ZQ_OK) {
        add_file(list, dir, "model.safetensors.index.json");
        cJSON *index = cJSON_Parse(text), *shard;
        cJSON *seen = cJSON_CreateObject();
        cJSON_ArrayForEach(shard, cJSON_GetObjectItemCaseSensitive(index, "weight_map")) {
            if (!cJSON_IsString(shard) || cJSON_GetObjectItemCaseSensitive(seen, shard->valuestring)) continue;
            cJSON_AddTrueToObject(seen, shard->valuestring);
            add_file(list, dir, shard->valuestring);
        }
        cJSON_Delete(seen);
        cJSON_Delete(index);
    } else {
        add_file(list, dir, "model.safetensors");
    }
    free(text);
    free(index_path);
}

static cJSON *source_json(const char *input)
{
    cJSON *list = cJSON_CreateArray();
    struct stat sb;
    if (stat(input, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        add_folder(list, input);
    } else {
        add_file(list, NULL, input);
        char *dir = zq_path_dirname(input);
        if (dir) add_file(list, dir, "config.json");
        free(dir);
    }
    return list;
}

char *zq_recipe_json(const zq_quantize_opts *o, const zq_preset *preset, zq_act_mode act, const char *input)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "preset", preset->name);
    if (o->target) cJSON_AddStringToObject(r, "for", zq_target_runtime(o->target));
    cJSON *w = cJSON_AddObjectToObject(r, "weights");
    zq_qspec s = o->base;
    char buf[64];
    s.format = preset->attention;
    zq_qspec_format(&s, buf, sizeof buf);
    cJSON_AddStringToObject(w, "attention", buf);
    cJSON_AddStringToObject(w, "linear", buf);
    s.format = preset->mlp;
    zq_qspec_format(&s, buf, sizeof buf);
    cJSON_AddStringToObject(w, "mlp", buf);
    cJSON_AddStringToObject(w, "other", "fp16");
    cJSON_AddStringToObject(r, "activation", zq_act_mode_name(act));
    cJSON *rules = cJSON_AddArrayToObject(r, "rules");
    for (size_t k = 0; k < o->nrules; k++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "glob", o->rules[k].glob);
        cJSON_AddStringToObject(x, "spec", o->rules[k].spec);
        cJSON_AddItemToArray(rules, x);
    }
    cJSON *inc = cJSON_AddArrayToObject(r, "include");
    for (size_t k = 0; k < o->ninclude; k++) cJSON_AddItemToArray(inc, cJSON_CreateString(o->include[k]));
    cJSON *exc = cJSON_AddArrayToObject(r, "exclude");
    for (size_t k = 0; k < o->nexclude; k++) cJSON_AddItemToArray(exc, cJSON_CreateString(o->exclude[k]));
    cJSON *method = o->recipe_method ? cJSON_Parse(o->recipe_method) : NULL;
    if (!method) {
        method = cJSON_CreateObject();
        cJSON_AddStringToObject(method, "name", "rtn");
    }
    cJSON_AddItemToObject(r, "method", method);
    if (input) cJSON_AddItemToObject(r, "source", source_json(input));
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return text;
}

zq_status zq_attach_model_files(zq_writer *w, const char *input, zq_error *err)
{
    struct stat sb;
    char *dir = stat(input, &sb) == 0 && S_ISDIR(sb.st_mode) ? strdup(input) : zq_path_dirname(input);
    if (!dir) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    for (const char *const *name = zq_model_files; st == ZQ_OK && *name; name++) {
        char *path = zq_path_join(dir, *name), *data = NULL;
        size_t len = 0;
        if (!path) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            st = zq_read_input_file(path, (size_t)256 << 20, &data, &len, err);
            if (st == ZQ_OK) st = zq_writer_attach(w, *name, data, len, err);
        }
        free(data);
        free(path);
    }
    free(dir);
    return st;
}
