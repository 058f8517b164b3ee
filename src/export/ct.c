/* compressed-tensors export: written in the next step. */
#include "export/export_impl.h"

zq_status zq_export_ct(const zq_export_opts *o, zq_file *f, zq_export_report *r, zq_error *err)
{
    (void)f, (void)r;
    return zq_fail(err, ZQ_ERR_USAGE, "'%s': compressed-tensors export is not available in this build yet", o->input);
}
