/* The quantize job: an FP checkpoint in, a packed .zq file out, one tensor
 * (and within it one chunk of rows per thread) at a time. */
#ifndef ZQUANT_QUANTIZE_H
#define ZQUANT_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"
#include "zquant/export.h"
#include "zquant/arch.h"
#include "zquant/quant.h"
#include "zquant/source.h"
#include "zquant/zq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *glob;
    const char *spec; /* as zq_qspec_parse reads it */
} zq_rule;

typedef struct {
    const char *name; /* "w8a8", "w8a16", "w4/8a16", "w4/8a8", "w4a16" */
    zq_format_id attention, mlp; /* the formats of attention (and other Linear) and MLP weights */
    zq_act_mode act; /* what the runtime does with activations */
} zq_preset;

extern const zq_preset zq_presets[]; /* terminated by a NULL name */
const zq_preset *zq_preset_find(const char *name);
/* "w8a8, w8a16, ...": every preset's name, for messages. */
void zq_preset_names(char *buf, size_t size);

/* How codes are chosen: round to nearest, streamed tensor by tensor with no
 * data; or GPTQ, block by block on calibration data (through the same
 * block-wise driver as zquant lkd, with no distillation steps). */
typedef enum { ZQ_METHOD_RTN = 0, ZQ_METHOD_GPTQ } zq_method;

typedef struct {
    const char *input;
    const char *output;
    const char *preset;    /* default "w8a8" */
    zq_target_id target;   /* --for: only layouts the target's runtime executes, so `zquant export` to it never
                              refuses a tensor; ZQ_TARGET_NONE: every layout allowed */
    zq_qspec base;         /* granularity and symmetry for every quantized tensor */
    zq_act_mode act;       /* with act_given, the activation scheme to record; else the preset's */
    int act_given;
    const zq_rule *rules;  /* in order; the last match wins */
    size_t nrules;
    const char *const *include; /* quantize these too (2-D or not) */
    size_t ninclude;
    const char *const *exclude; /* keep these in FP16 */
    size_t nexclude;
    int allow_unmatched; /* a rule, include or exclude matching no tensor is not an error */
    int threads; /* <= 0: all cores */
    int force;
    int zstd_level; /* 0: no compression */
    zq_method method;
    /* GPTQ's calibration: sequences of seq_len tokens from a token file or
     * from tokens given, their Hessians on the quantized prefix's inputs */
    const char *calib;
    const int32_t *calib_ids;
    size_t n_calib_ids;
    int calib_generated;        /* or sequences sampled from the FP model itself (neither calib given) */
    int calib_samples, seq_len; /* default 128 and 256 */
    float damp;                 /* a fraction of the mean Hessian diagonal (default 0.01) */
    int act_order;
    /* GPTQ and LKD: bytes of the data's activations (every batch, at the
     * block being worked on) kept in memory; beyond it they go to a file
     * without a name, beside the output (default 256 MiB) */
    size_t data_memory;
    /* The method and its parameters as a JSON object, for the recipe (the
     * lkd driver's: "name" lkd or gptq, its options and its data); NULL:
     * round to nearest */
    const char *recipe_method;
    /* round to nearest: called between chunks, done and total counting
     * input bytes; GPTQ: once a block, counting blocks */
    void (*progress)(void *ctx, uint64_t done, uint64_t total, const char *tensor);
    void *progress_ctx;
} zq_quantize_opts;

void zq_quantize_opts_init(zq_quantize_opts *o);

typedef struct {
    size_t tensors, quantized;
    uint64_t input_bytes;  /* tensor data read */
    uint64_t fp16_bytes;   /* the same tensors stored as FP16 */
    uint64_t output_bytes; /* size of the .zq file */
    double worst_rel_rmse;
    char worst_tensor[256];
} zq_quantize_report;

zq_status zq_quantize(const zq_quantize_opts *o, zq_quantize_report *report, zq_error *err);
/* The same from an open source (o->input is then ignored). */
zq_status zq_quantize_source(const zq_quantize_opts *o, zq_source *src, zq_quantize_report *report, zq_error *err);
/* How o would store every tensor of src, in its order (*plan malloc'd,
 * zq_source_count entries; names are src's, sections absent), and the
 * activation scheme it records: the plan quantize --dry-run prints. */
zq_status zq_quantize_plan_source(const zq_quantize_opts *o, zq_source *src, zq_tensor **plan, zq_act_mode *act,
                                  zq_error *err);
/* How o would store one tensor, and the activation scheme it records. */
zq_status zq_quantize_plan(const zq_quantize_opts *o, const zq_model *model, const zq_tensor_info *info,
                           zq_qspec *spec, zq_act_mode *act, zq_error *err);

/* Whether path may be written, by the rule every writer of zquant applies
 * (checked before any work): not an input of this process, not a
 * directory or other special file; an existing file only with force (else
 * ZQ_ERR_EXISTS); a character device or FIFO is written into. */
zq_status zq_output_allowed(const char *path, int force, zq_error *err);

#ifdef __cplusplus
}
#endif
#endif
