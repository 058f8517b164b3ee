/* The export targets as one table: what each runtime's files are called,
 * the layout rule `quantize --for` applies so that the export holds every
 * tensor exactly, and the writer, reader and lister of its files. Adding a
 * target is adding a row here and its folder beside gguf/ and ct/. */
#ifndef ZQ_EXPORT_TARGET_H
#define ZQ_EXPORT_TARGET_H

#include "zquant/export.h"
#include "zquant/quant.h"
#include "zquant/zq.h"

typedef struct {
    const char *name;      /* "gguf", "compressed-tensors": what --for and --format say */
    const char *runtime;   /* "llama.cpp", "vllm": who loads it (also taken by both options; recipes record it) */
    const char *alias;     /* another spelling ("ct"), or NULL */
    const char *extension; /* a file's name ends with it (".gguf"); NULL: the output is a folder */
    const char *hint;      /* what makes a .zq every tensor of which the target holds */
    uint32_t group_size;   /* --for's group size when none is given; 0: quantize's own */
    /* quantize --for: makes spec (quantized, of a matrix with `in` inputs a
     * row, whose input the runtime quantizes as act says) one the target
     * stores exactly, or says why the options ask for one it cannot. */
    zq_status (*fit)(const char *tensor, uint64_t in, zq_act_mode act, zq_qspec *spec, zq_error *err);
    /* export: f's tensors into o->output, refusing before anything is
     * written a tensor the target cannot hold exactly */
    zq_status (*write)(const zq_export_opts *o, zq_file *f, zq_export_report *r, zq_error *err);
    /* reading: a file target opens path into src; a folder target is
     * claimed by its config (src already holds the folder's safetensors)
     * and turns src into the model the stored codes decode to */
    int (*claims)(const char *config);
    zq_status (*open)(zq_source *src, const char *path, zq_error *err);
    /* inspect: the tensors as they are stored */
    zq_status (*list)(const char *path, zq_stored_listing *l, zq_error *err);
} zq_target;

const zq_target *zq_target_get(zq_target_id id);

/* The rows' functions, each in its target's folder. */
zq_status zq_gguf_fit(const char *tensor, uint64_t in, zq_act_mode act, zq_qspec *spec, zq_error *err);
zq_status zq_export_gguf(const zq_export_opts *o, zq_file *f, zq_export_report *r, zq_error *err);
zq_status zq_gguf_source_open(zq_source *src, const char *file, zq_error *err);
zq_status zq_gguf_list(const char *path, zq_stored_listing *l, zq_error *err);

zq_status zq_ct_fit(const char *tensor, uint64_t in, zq_act_mode act, zq_qspec *spec, zq_error *err);
zq_status zq_export_ct(const zq_export_opts *o, zq_file *f, zq_export_report *r, zq_error *err);
int zq_ct_config(const char *config);
zq_status zq_ct_source_wrap(zq_source *src, const char *dir, zq_error *err);
zq_status zq_ct_list(const char *dir, zq_stored_listing *l, zq_error *err);

#endif
