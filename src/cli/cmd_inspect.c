/* zquant inspect: the tensors of a .zq file, their formats and errors. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "zquant/export.h"
#include "zquant/zq.h"

static const char help[] =
    "usage: zquant inspect FILE.zq|FILE.gguf|CT_DIR|MODEL_DIR [--json]\n"
    "\n"
    "Lists every tensor of a .zq file (name, shape, kind, bits, group, stored\n"
    "bytes, relative RMSE of its quantization), its recipe and the files it\n"
    "carries, and the totals against FP16; of a GGUF file or a\n"
    "compressed-tensors folder (zquant export's outputs), each tensor as\n"
    "stored: name, type, shape, bytes; of an FP checkpoint (a model folder, a\n"
    ".safetensors or .h5 file), each tensor and how zquant quantize's defaults\n"
    "would store it (quantize --dry-run shows it for other options).\n"
    "\n"
    "      --json      machine-readable output on stdout\n"
    "  -h, --help      this help\n";

static uint64_t stored_bytes(const zq_tensor *t)
{
    uint64_t n = 0;
    for (int k = 0; k < ZQ_SEC_COUNT; k++) n += t->sec[k].present ? t->sec[k].length : 0;
    return n;
}

static const char *kind(const zq_tensor *t) { return zq_format_get(t->spec.format)->name; }

static void print_json(const zq_file *f, uint64_t fp16)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", zq_file_path(f));
    cJSON_AddStringToObject(root, "model_type", zq_file_model_type(f));
    const zq_activation *a = zq_file_activation(f);
    cJSON *act = cJSON_AddObjectToObject(root, "activation");
    cJSON_AddNumberToObject(act, "bits", a->bits);
    cJSON_AddStringToObject(act, "granularity", a->granularity);
    cJSON_AddBoolToObject(act, "dynamic", a->dynamic);
    cJSON_AddBoolToObject(act, "symmetric", a->symmetric);
    cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < zq_file_count(f); i++) {
        const zq_tensor *t = zq_file_tensor(f, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddStringToObject(o, "dtype", kind(t));
        cJSON_AddNumberToObject(o, "bits", zq_format_get(t->spec.format)->code_bits);
        int q = zq_qspec_quantized(&t->spec);
        cJSON_AddNumberToObject(o, "group_size", q ? (double)t->grid.group_cols : 0);
        cJSON_AddNumberToObject(o, "group_rows", q ? (double)t->grid.group_rows : 0);
        cJSON_AddBoolToObject(o, "symmetric", q ? t->spec.symmetric : 1);
        cJSON_AddStringToObject(o, "role", zq_role_name(t->role));
        if (t->layer >= 0) cJSON_AddNumberToObject(o, "layer", t->layer);
        cJSON_AddStringToObject(o, "layout", t->transposed ? "in_out" : "out_in");
        cJSON_AddNumberToObject(o, "bytes", (double)stored_bytes(t));
        cJSON_AddNumberToObject(o, "rel_rmse", q ? t->rel_rmse : 0);
        if (q && isfinite(t->sqnr_db)) cJSON_AddNumberToObject(o, "sqnr_db", t->sqnr_db);
        else cJSON_AddNullToObject(o, "sqnr_db");
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *files = cJSON_AddArrayToObject(root, "files");
    for (size_t k = 0; k < zq_file_attached_count(f); k++) {
        const zq_attached *a = zq_file_attached_entry(f, k);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", a->name);
        cJSON_AddNumberToObject(o, "bytes", (double)a->length);
        cJSON_AddItemToArray(files, o);
    }
    cJSON *meta = cJSON_Parse(zq_file_metadata(f));
    cJSON *recipe = cJSON_DetachItemFromObjectCaseSensitive(meta, "recipe");
    cJSON_AddItemToObject(root, "recipe", recipe ? recipe : cJSON_CreateObject());
    cJSON_Delete(meta);
    cJSON_AddNumberToObject(root, "total_bytes", (double)zq_file_size(f));
    cJSON_AddNumberToObject(root, "fp16_bytes", (double)fp16);
    cli_json_print(stdout, root);
}

/* "how it was made" in one line: the recipe's method and its data. */
static void print_recipe(const zq_file *f)
{
    cJSON *meta = cJSON_Parse(zq_file_metadata(f));
    const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(meta, "recipe");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(recipe, "method");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(method, "name");
    const cJSON *preset = cJSON_GetObjectItemCaseSensitive(recipe, "preset");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(method, "data");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(method, "steps");
    printf("recipe: %s, method %s", cJSON_IsString(preset) ? preset->valuestring : "?",
           cJSON_IsString(name) ? name->valuestring : "not recorded");
    if (cJSON_IsString(name) && !strcmp(name->valuestring, "lkd") && cJSON_IsNumber(steps))
        printf(" (%d steps a block)", steps->valueint);
    if (cJSON_IsString(data) && *data->valuestring) printf(", data %s", data->valuestring);
    printf("\n");
    cJSON_Delete(meta);
    if (!zq_file_attached_count(f)) {
        printf("carries no model files (written before zquant carried them): export and generate need --from\n");
        return;
    }
    printf("carries:");
    for (size_t k = 0; k < zq_file_attached_count(f); k++)
        printf("%s %s (%llu bytes)", k ? "," : "", zq_file_attached_entry(f, k)->name,
               (unsigned long long)zq_file_attached_entry(f, k)->length);
    printf("\n");
}

static const char *activation_label(zq_act_mode m)
{
    return m == ZQ_AQ_TOKEN       ? "int8 token-wise dynamic"
           : m == ZQ_AQ_TOKEN_SYM ? "int8 token-wise dynamic, symmetric"
           : m == ZQ_AQ_TENSOR    ? "int8 per-tensor static"
                                  : "fp16 (not quantized)";
}

static void print_table(const zq_file *f, uint64_t fp16)
{
    const zq_activation *a = zq_file_activation(f);
    printf("%s: model_type %s, activations %s\n", zq_file_path(f), *zq_file_model_type(f) ? zq_file_model_type(f) : "unknown",
           activation_label(zq_act_mode_of(a)));
    print_recipe(f);
    printf("%-48s %-16s %-5s %-8s %-5s %12s %10s\n", "tensor", "shape", "kind", "group", "sym", "bytes", "rel_rmse");
    for (size_t i = 0; i < zq_file_count(f); i++) {
        const zq_tensor *t = zq_file_tensor(f, i);
        char shape[64] = "", group[32];
        size_t at = 0;
        for (int d = 0; d < t->ndim && at < sizeof shape; d++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, d ? "x%lld" : "%lld", (long long)t->shape[d]);
        if (t->ndim == 0) snprintf(shape, sizeof shape, "scalar");
        cli_group_label(t, group, sizeof group);
        int q = zq_qspec_quantized(&t->spec);
        char rel[32] = "-";
        if (q) snprintf(rel, sizeof rel, "%.6f", t->rel_rmse);
        printf("%-48s %-16s %-5s %-8s %-5s %12llu %10s\n", t->name, shape, kind(t), group,
               q ? (t->spec.symmetric ? "yes" : "no") : "-", (unsigned long long)stored_bytes(t), rel);
    }
    char ratio[64];
    cli_size_ratio(zq_file_size(f), fp16, ratio, sizeof ratio);
    printf("total %llu bytes, FP16 %llu bytes, %s\n", (unsigned long long)zq_file_size(f), (unsigned long long)fp16,
           ratio);
}

/* A GGUF file or compressed-tensors folder, tensor by tensor as stored. */
static int inspect_export(const char *path, int json)
{
    zq_stored_listing l;
    zq_error err = {0};
    if (zq_list_stored(path, &l, &err) != ZQ_OK) return cli_fail(&err);
    uint64_t total = 0;
    cJSON *root = json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (json) {
        cJSON_AddStringToObject(root, "file", path);
        cJSON_AddStringToObject(root, "format", zq_target_name(l.target));
        cJSON_AddStringToObject(root, "summary", l.summary);
        arr = cJSON_AddArrayToObject(root, "tensors");
    } else {
        printf("%s: %s\n%-56s %-6s %-16s %12s\n", path, l.summary, "tensor", "type", "shape", "bytes");
    }
    for (size_t k = 0; k < l.n; k++) {
        const zq_stored_tensor *t = &l.t[k];
        total += t->bytes;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", t->name);
            cJSON_AddStringToObject(o, "type", t->type);
            cJSON *shape = cJSON_AddArrayToObject(o, "shape");
            for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
            cJSON_AddNumberToObject(o, "bytes", (double)t->bytes);
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        char shape[64] = "";
        size_t at = 0;
        for (int d = 0; d < t->ndim && at < sizeof shape; d++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, d ? "x%lld" : "%lld", (long long)t->shape[d]);
        printf("%-56s %-6s %-16s %12llu\n", t->name, t->type, shape, (unsigned long long)t->bytes);
    }
    if (json) {
        cJSON_AddNumberToObject(root, "tensor_bytes", (double)total);
        cli_json_print(stdout, root);
    } else {
        printf("%zu tensors, %llu bytes of tensor data\n", l.n, (unsigned long long)total);
    }
    zq_stored_listing_free(&l);
    return 0;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path;
    int json, rc = cli_parse_file_json(argc, argv, "inspect", help, &path, &json);
    if (rc >= 0) return rc;
    size_t len = strlen(path);
    struct stat sb;
    if (len > 5 && !strcmp(path + len - 5, ".gguf")) return inspect_export(path, json);
    zq_quantize_opts defaults;
    zq_quantize_opts_init(&defaults);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        zq_stored_listing l;
        zq_error err = {0};
        if (zq_list_stored(path, &l, &err) != ZQ_OK) return cli_print_plan(&defaults, path, json); /* an FP checkpoint */
        zq_stored_listing_free(&l);
        return inspect_export(path, json);
    }
    if (stat(path, &sb) == 0 && !zq_is_zq_file(path)) return cli_print_plan(&defaults, path, json);
    zq_file *f = NULL;
    zq_error err = {0};
    if (zq_file_open(path, 0, &f, &err) != ZQ_OK) return cli_fail(&err);
    uint64_t fp16 = 0;
    for (size_t i = 0; i < zq_file_count(f); i++) fp16 += zq_tensor_numel(zq_file_tensor(f, i)) * 2;
    if (json) print_json(f, fp16);
    else print_table(f, fp16);
    zq_file_close(f);
    return 0;
}
