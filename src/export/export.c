/* zq_export: opens the .zq file and hands it to its target's writer. */
#include "export/export_impl.h"
#include "export/target.h"
#include "model/check.h"

#include <string.h>

const zq_arch_tensor *zq_export_row(const zq_arch_desc *d, const char *name, int *layer, int *expert)
{
    for (const zq_arch_tensor *t = d ? d->tensors : NULL; t && t->name; t++)
        if (zq_arch_tensor_match_at(t, name, layer, expert)) return t;
    return NULL;
}

zq_status zq_export_find_file(const zq_export_opts *o, const char *const *names, char **shown, char **data,
                              size_t *len, zq_error *err)
{
    zq_status st = o->model_dir ? zq_model_file(o->model_dir, names, shown, data, len, err) : ZQ_OK;
    if (st == ZQ_OK && (!o->model_dir || !*data)) st = zq_model_file(o->input, names, shown, data, len, err);
    return st;
}

zq_status zq_export(const zq_export_opts *o, zq_export_report *r, zq_error *err)
{
    memset(r, 0, sizeof *r);
    r->target = o->target ? o->target : zq_target_of_output(o->output);
    zq_file *f;
    ZQ_TRY(zq_file_open(o->input, ZQ_VERIFY_ON_USE, &f, err));
    /* what a runtime loads must agree with itself: its config and its
     * tensors, all of them there (else llama.cpp or vLLM refuses it, or
     * runs a truncated model) */
    zq_arch a;
    zq_error ignore = {0};
    zq_status st = zq_file_count(f) ? ZQ_OK : zq_fail(err, ZQ_ERR_FORMAT, "'%s': holds no tensors", o->input);
    if (st == ZQ_OK && zq_arch_find(zq_file_model_type(f)) &&
        zq_arch_from_config(zq_file_config(f), o->input, &a, &ignore) == ZQ_OK)
        st = zq_check_zq(&a, f, 1, err);
    if (st == ZQ_OK) st = zq_target_get(r->target)->write(o, f, r, err);
    zq_file_close(f);
    return st;
}
