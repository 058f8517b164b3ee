/* What zquant knows about each architecture: which tensors are the Linear
 * weights of a transformer block, whether each belongs to attention or to the
 * MLP/FC part, and how it is laid out. */
#ifndef ZQUANT_MODEL_H
#define ZQUANT_MODEL_H

#include "zquant/error.h"
#include "zquant/source.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZQ_ROLE_OTHER = 0, /* embeddings, norms, biases, LM head: FP16 unless asked */
    ZQ_ROLE_ATTENTION,
    ZQ_ROLE_MLP,
    ZQ_ROLE_LINEAR /* a 2-D weight of a model zquant does not know */
} zq_role;

const char *zq_role_name(zq_role role);

typedef struct {
    zq_role role;
    int layer;      /* transformer block index, -1 when not in a block */
    int transposed; /* stored [in, out] (GPT-2 Conv1D) instead of [out, in] */
} zq_tensor_role;

typedef struct {
    char model_type[64]; /* from config.json, "" when unknown */
    int known;           /* zquant has a tensor table for it */
    int n_layers;        /* from config.json, 0 when absent */
} zq_model;

/* config may be NULL (no config.json): the model is then unknown. */
zq_status zq_model_detect(const char *config, const char *origin, zq_model *out, zq_error *err);
zq_tensor_role zq_model_classify(const zq_model *m, const zq_tensor_info *t);

/* The model types with a tensor table, NULL-terminated. */
extern const char *const zq_known_model_types[];

/* '*' matches any run of characters, '#' a run of digits (its value goes to
 * *number when not NULL); everything else matches itself. */
int zq_pattern_match(const char *pattern, const char *s, int *number);

#ifdef __cplusplus
}
#endif
#endif
