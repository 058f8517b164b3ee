/* The .zq codec shared by the writer and the reader: the fixed header, and
 * the tensor table as JSON (one encoder, one checking decoder). */
#ifndef ZQ_META_H
#define ZQ_META_H

#include <cjson/cJSON.h>

#include "zquant/zq.h"

/* The 32-byte header after the magic: see zq.h. */
typedef struct {
    uint32_t version;
    uint32_t metadata_crc32c;
    uint64_t metadata_len;
    uint64_t data_start;
} zq_header;

void zq_header_encode(const zq_header *h, unsigned char out[ZQ_HEADER_SIZE]);
/* Returns 0 when the magic is not ZQ_MAGIC (the fields are read anyway). */
int zq_header_decode(const unsigned char in[ZQ_HEADER_SIZE], zq_header *h);

cJSON *zq_tensor_to_json(const zq_tensor *t);
/* Fills t from j (t->name is malloc'd) and checks every field against the
 * tensor's own shape and the file size. */
zq_status zq_tensor_from_json(const cJSON *j, zq_tensor *t, const char *path, uint64_t data_start,
                              uint64_t file_size, zq_error *err);
/* [out, in] matrix dimensions of a tensor as stored. */
void zq_tensor_matrix(const zq_tensor *t, uint64_t *rows, uint64_t *cols);
/* Raw (decompressed) bytes each section of t must hold; 0 when absent. */
uint64_t zq_section_expected_size(const zq_tensor *t, zq_section_kind k);

cJSON *zq_activation_to_json(const zq_activation *a);
cJSON *zq_attached_to_json(const zq_attached *a);
/* Fills a from j (a->name malloc'd), its bytes within the data area. */
zq_status zq_attached_from_json(const cJSON *j, zq_attached *a, const char *path, uint64_t data_start,
                                uint64_t file_size, zq_error *err);

#endif
