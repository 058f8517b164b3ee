/* The plan of a quantize run, before any work: every tensor of the
 * checkpoint, how it would be stored, the bytes (quantize --dry-run, and
 * inspect on an FP checkpoint with the default recipe). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void shape_text(const zq_tensor *t, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (int d = 0; d < t->ndim && at < size; d++)
        at += (size_t)snprintf(buf + at, size - at, d ? "x%lld" : "%lld", (long long)t->shape[d]);
    if (t->ndim == 0) snprintf(buf, size, "scalar");
}

int cli_print_plan(const zq_quantize_opts *o, const char *input, int json)
{
    zq_source *src = NULL;
    zq_tensor *plan = NULL;
    zq_act_mode act;
    zq_error err = {0};
    zq_status st = zq_source_open(input, &src, &err);
    if (st == ZQ_OK) st = zq_quantize_plan_source(o, src, &plan, &act, &err);
    if (st != ZQ_OK) {
        zq_source_close(src);
        return cli_fail(&err);
    }
    uint64_t total = 0, fp16 = 0;
    size_t n = zq_source_count(src), quantized = 0;
    cJSON *root = json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (json) {
        cJSON_AddStringToObject(root, "input", input);
        cJSON_AddStringToObject(root, "preset", o->preset ? o->preset : "w8a8");
        cJSON_AddStringToObject(root, "activation", zq_act_mode_name(act));
        arr = cJSON_AddArrayToObject(root, "tensors");
    } else {
        printf("%s: preset %s, activations %s (nothing is written)\n", input, o->preset ? o->preset : "w8a8",
               zq_act_mode_name(act));
        printf("%-48s %-16s %-5s %-5s %-8s %-5s %12s\n", "tensor", "shape", "from", "kind", "group", "sym", "bytes");
    }
    for (size_t i = 0; i < n; i++) {
        const zq_tensor *t = &plan[i];
        int q = zq_qspec_quantized(&t->spec);
        uint64_t bytes = zq_tensor_bytes(t);
        char shape[64], group[32];
        shape_text(t, shape, sizeof shape);
        cli_group_label(t, group, sizeof group);
        total += bytes;
        fp16 += zq_tensor_numel(t) * 2;
        quantized += q;
        const char *kind = zq_format_get(t->spec.format)->name, *from = zq_dtype_name(t->source_dtype);
        if (json) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", t->name);
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
            cJSON_AddStringToObject(e, "source_dtype", from);
            cJSON_AddStringToObject(e, "dtype", kind);
            cJSON_AddStringToObject(e, "group", group);
            cJSON_AddBoolToObject(e, "symmetric", q ? t->spec.symmetric : 1);
            cJSON_AddStringToObject(e, "role", zq_role_name(t->role));
            cJSON_AddNumberToObject(e, "bytes", (double)bytes);
            cJSON_AddItemToArray(arr, e);
        } else {
            printf("%-48s %-16s %-5s %-5s %-8s %-5s %12llu\n", t->name, shape, from, kind, group,
                   q ? (t->spec.symmetric ? "yes" : "no") : "-", (unsigned long long)bytes);
        }
    }
    char ratio[64];
    cli_size_ratio(total, fp16, ratio, sizeof ratio);
    if (json) {
        cJSON_AddNumberToObject(root, "quantized", (double)quantized);
        cJSON_AddNumberToObject(root, "tensor_bytes", (double)total);
        cJSON_AddNumberToObject(root, "fp16_bytes", (double)fp16);
        cli_json_print(stdout, root);
    } else {
        printf("%zu tensors, %zu quantized: %llu bytes of tensor data, FP16 %llu bytes, %s\n", n, quantized,
               (unsigned long long)total, (unsigned long long)fp16, ratio);
    }
    free(plan);
    zq_source_close(src);
    return 0;
}
