/* The export targets' table (see target.h). */
#include "export/target.h"

#include <stdio.h>
#include <string.h>

static const zq_target targets[ZQ_TARGET_COUNT] = {
    [ZQ_TARGET_GGUF] =
        {
            .name = "gguf",
            .runtime = "llama.cpp",
            .extension = ".gguf",
            .hint = "quantize with --for llama.cpp",
            .group_size = 32, /* ggml's block */
            .fit = zq_gguf_fit,
            .write = zq_export_gguf,
            .open = zq_gguf_source_open,
            .list = zq_gguf_list,
        },
    [ZQ_TARGET_CT] =
        {
            .name = "compressed-tensors",
            .runtime = "vllm",
            .alias = "ct",
            .hint = "quantize with --for vllm",
            .fit = zq_ct_fit,
            .write = zq_export_ct,
            .claims = zq_ct_config,
            .open = zq_ct_source_wrap,
            .list = zq_ct_list,
        },
};

const zq_target *zq_target_get(zq_target_id id) { return &targets[id]; }

int zq_target_named(const char *name, zq_target_id *id)
{
    for (int k = 1; k < ZQ_TARGET_COUNT; k++) {
        const zq_target *t = &targets[k];
        if (!strcmp(name, t->name) || !strcmp(name, t->runtime) || (t->alias && !strcmp(name, t->alias))) {
            *id = (zq_target_id)k;
            return 1;
        }
    }
    return 0;
}

const char *zq_target_name(zq_target_id id) { return id ? targets[id].name : "any"; }

uint32_t zq_target_group_size(zq_target_id id) { return targets[id].group_size; }

const char *zq_target_runtime(zq_target_id id) { return id ? targets[id].runtime : "any"; }

void zq_target_names(char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (int k = 1; k < ZQ_TARGET_COUNT && at < size; k++) {
        const zq_target *t = &targets[k];
        at += (size_t)snprintf(buf + at, size - at, "%s%s (or %s%s%s)", k > 1 ? ", " : "", t->name, t->runtime,
                               t->alias ? ", " : "", t->alias ? t->alias : "");
    }
}

zq_target_id zq_target_of_output(const char *output)
{
    size_t n = strlen(output);
    zq_target_id folder = ZQ_TARGET_NONE;
    for (int k = 1; k < ZQ_TARGET_COUNT; k++) {
        const char *ext = targets[k].extension;
        if (!ext) {
            if (!folder) folder = (zq_target_id)k;
        } else if (n > strlen(ext) && !strcmp(output + n - strlen(ext), ext)) {
            return (zq_target_id)k;
        }
    }
    return folder;
}
