/* Writing safetensors: the header, for writers that stream the data. */
#ifndef ZQ_ST_WRITE_H
#define ZQ_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/source.h"

typedef struct {
    const char *name;
    int ndim;
    const int64_t *shape;
    const char *dtype; /* "F16", "F32", "I8", "I32", "I64" */
    size_t esize;      /* its bytes per element */
} zq_st_entry;

#define ZQ_ST_F16 "F16", 2
#define ZQ_ST_F32 "F32", 4

/* The 8-byte length and the JSON header for tensors laid out in order,
 * padded with spaces to a multiple of 8 as the reference writer does.
 * malloc'd; *len is its size. */
unsigned char *zq_st_header(const zq_st_entry *e, size_t n, size_t *len);

#endif
