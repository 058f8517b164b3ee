/* zq_export: opens the .zq file and hands it to the target's writer. */
#include "export/export_impl.h"
#include "model/check.h"

#include <string.h>

zq_export_format zq_export_format_parse(const char *name)
{
    if (!strcmp(name, "gguf")) return ZQ_EXPORT_GGUF;
    if (!strcmp(name, "compressed-tensors") || !strcmp(name, "ct")) return ZQ_EXPORT_CT;
    return ZQ_EXPORT_AUTO;
}

const char *zq_export_format_name(zq_export_format f)
{
    return f == ZQ_EXPORT_GGUF ? "gguf" : f == ZQ_EXPORT_CT ? "compressed-tensors" : "auto";
}

const zq_arch_tensor *zq_export_row(const zq_arch_desc *d, const char *name, int *layer)
{
    for (const zq_arch_tensor *t = d ? d->tensors : NULL; t && t->name; t++)
        if (zq_arch_tensor_match(t, name, layer)) return t;
    return NULL;
}

zq_status zq_export(const zq_export_opts *o, zq_export_report *r, zq_error *err)
{
    memset(r, 0, sizeof *r);
    zq_export_format fmt = o->format;
    if (fmt == ZQ_EXPORT_AUTO) {
        size_t n = strlen(o->output);
        fmt = n > 5 && !strcmp(o->output + n - 5, ".gguf") ? ZQ_EXPORT_GGUF : ZQ_EXPORT_CT;
    }
    r->format = fmt;
    zq_file *f;
    ZQ_TRY(zq_file_open(o->input, 1, &f, err));
    /* what a runtime loads must agree with itself: its config and its
     * tensors, all of them there (else llama.cpp or vLLM refuses it, or
     * runs a truncated model) */
    zq_arch a;
    zq_error ignore = {0};
    zq_status st = zq_file_count(f) ? ZQ_OK : zq_fail(err, ZQ_ERR_FORMAT, "'%s': holds no tensors", o->input);
    if (st == ZQ_OK && zq_arch_find(zq_file_model_type(f)) &&
        zq_arch_from_config(zq_file_config(f), o->input, &a, &ignore) == ZQ_OK)
        st = zq_check_zq(&a, f, 1, err);
    if (st == ZQ_OK) st = fmt == ZQ_EXPORT_GGUF ? zq_export_gguf(o, f, r, err) : zq_export_ct(o, f, r, err);
    zq_file_close(f);
    return st;
}
