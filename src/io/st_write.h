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
} zq_st_entry;

/* The 8-byte length and the JSON header for tensors laid out in order, each
 * esize bytes an element (2: F16, 4: F32), padded with spaces to a multiple
 * of 8 as the reference writer does. malloc'd; *len is its size. */
unsigned char *zq_st_header(const zq_st_entry *e, size_t n, size_t esize, size_t *len);

#endif
