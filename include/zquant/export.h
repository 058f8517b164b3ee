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

/* The runtimes a model is exported to, one row each of the target table
 * (src/export/target.h). */
typedef enum {
    ZQ_TARGET_NONE = 0, /* quantize: no target's layout rule; export: from the output's name */
    ZQ_TARGET_GGUF,     /* llama.cpp */
    ZQ_TARGET_CT,       /* compressed-tensors, for vLLM */
    ZQ_TARGET_COUNT
} zq_target_id;

/* A target by any of its names: "gguf" or "llama.cpp"; "compressed-tensors",
 * "vllm" or "ct". 0 when none is. */
int zq_target_named(const char *name, zq_target_id *id);
/* "gguf", "compressed-tensors" ("any" for ZQ_TARGET_NONE) */
const char *zq_target_name(zq_target_id id);
/* who loads it: "llama.cpp", "vllm" ("any" for ZQ_TARGET_NONE) */
const char *zq_target_runtime(zq_target_id id);
/* The group size quantize --for uses when none is given (llama.cpp: its
 * blocks of 32); 0: quantize's own default. */
uint32_t zq_target_group_size(zq_target_id id);
/* Every target and its other names, for messages and help. */
void zq_target_names(char *buf, size_t size);
/* The target an output's name says: the one whose file extension it ends
 * with, else the folder target. */
zq_target_id zq_target_of_output(const char *output);

typedef struct {
    const char *input;  /* the .zq file */
    const char *output; /* GGUF: a file; compressed-tensors: a folder (created) */
    zq_target_id target; /* ZQ_TARGET_NONE: zq_target_of_output */
    /* GGUF's vocabulary: a llama2.c tokenizer.bin or a tokenizer.json; NULL:
     * the one found as model files are (below); no_vocab writes a GGUF
     * without one (llama.cpp's "no_vocab") */
    const char *tokenizer;
    int no_vocab;
    /* The original model folder. The tokenizer and the files of
     * zq_model_files (compressed-tensors copies them beside its weights)
     * are taken from it, else from those the .zq carries, else from the
     * .zq's own folder; NULL: the last two only */
    const char *model_dir;
    const char *name; /* general.name; NULL: the input's file name */
    uint64_t shard_bytes; /* compressed-tensors: safetensors shards of at most this; 0: 5 GB as Hugging Face */
    int force;
    void (*progress)(void *ctx, uint64_t done, uint64_t total, const char *tensor);
    void *progress_ctx;
} zq_export_opts;

typedef struct {
    zq_target_id target;
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
    zq_target_id target;
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
