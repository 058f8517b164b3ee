/* A .zq file into the formats the deployed runtimes load: GGUF for
 * llama.cpp, a compressed-tensors folder for vLLM. The integer codes and
 * FP16 scales zquant chose are carried over as they are, never rounded
 * again; a tensor the target cannot hold exactly stops the export before
 * anything is written, naming the tensor and the quantize options that make
 * a file that fits. One tensor in memory at a time. */
#ifndef ZQUANT_EXPORT_H
#define ZQUANT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZQ_EXPORT_AUTO = 0, /* from the output's name: *.gguf is GGUF, anything else a folder */
    ZQ_EXPORT_GGUF,
    ZQ_EXPORT_CT /* compressed-tensors */
} zq_export_format;

/* "gguf" or "compressed-tensors" (also "ct"); ZQ_EXPORT_AUTO for anything else. */
zq_export_format zq_export_format_parse(const char *name);
const char *zq_export_format_name(zq_export_format f);

typedef struct {
    const char *input;  /* the .zq file */
    const char *output; /* GGUF: a file; compressed-tensors: a folder (created) */
    zq_export_format format;
    /* GGUF's vocabulary: a llama2.c tokenizer.bin or a tokenizer.json; NULL
     * with no_vocab writes a GGUF without one (llama.cpp's "no_vocab") */
    const char *tokenizer;
    int no_vocab;
    /* compressed-tensors: the original model folder, whose tokenizer and
     * generation files are copied; NULL: none */
    const char *model_dir;
    const char *name; /* general.name; NULL: the input's file name */
    uint64_t shard_bytes; /* compressed-tensors: safetensors shards of at most this; 0: 5 GB as Hugging Face */
    int force;
    void (*progress)(void *ctx, uint64_t done, uint64_t total, const char *tensor);
    void *progress_ctx;
} zq_export_opts;

typedef struct {
    zq_export_format format;
    size_t tensors, quantized;
    uint64_t bytes;   /* written, all files */
    size_t files;     /* written or copied */
    char summary[256]; /* what the target runs, e.g. "Q4_0 x 15, Q8_0 x 20, F16 x 1, F32 x 11" */
    char note[256];    /* a caveat the user must know ("" when none) */
} zq_export_report;

zq_status zq_export(const zq_export_opts *o, zq_export_report *report, zq_error *err);

/* ---- what an exported file holds, as stored ---------------------------------- */

typedef struct {
    char *name;
    char type[16];         /* ggml's ("Q4_0") or safetensors' ("I32") */
    int ndim;
    int64_t shape[4];      /* outermost first, as PyTorch prints it */
    uint64_t bytes;
} zq_stored_tensor;

typedef struct {
    zq_export_format format;
    char summary[256]; /* GGUF: version, architecture, file type; CT: format and config groups */
    zq_stored_tensor *t;
    size_t n;
} zq_stored_listing;

/* PATH: a GGUF file or a compressed-tensors folder. */
zq_status zq_list_stored(const char *path, zq_stored_listing *out, zq_error *err);
void zq_stored_listing_free(zq_stored_listing *l);

#ifdef __cplusplus
}
#endif
#endif
