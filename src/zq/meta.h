/* The tensor table of a .zq file as JSON: one encoder for the writer, one
 * checking decoder for the reader. */
#ifndef ZQ_META_H
#define ZQ_META_H

#include <cjson/cJSON.h>

#include "zquant/zq.h"

cJSON *zq_tensor_to_json(const zq_tensor *t);
/* Fills t from j (t->name is malloc'd) and checks every field against the
 * tensor's own shape and the file size. */
zq_status zq_tensor_from_json(const cJSON *j, zq_tensor *t, const char *path, uint64_t data_start,
                              uint64_t file_size, zq_error *err);
/* [out, in] matrix dimensions of a tensor as stored. */
void zq_tensor_matrix(const zq_tensor *t, uint64_t *rows, uint64_t *cols);
uint64_t zq_tensor_numel(const zq_tensor *t);
/* Raw (decompressed) bytes each section of t must hold; 0 when absent. */
uint64_t zq_section_expected_size(const zq_tensor *t, zq_section_kind k);

cJSON *zq_activation_to_json(const zq_activation *a);

#endif
