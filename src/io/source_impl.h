/* What each input format provides to source.c. */
#ifndef ZQ_SOURCE_IMPL_H
#define ZQ_SOURCE_IMPL_H

#include "zquant/quant.h"
#include "zquant/source.h"

typedef struct {
    zq_status (*read)(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0,
                      uint64_t ncols, float *out, zq_error *err);
    void (*release)(zq_source *src, size_t i, uint64_t row0, uint64_t nrows);
    void (*close)(zq_source *src);
    /* tensor i's bytes, contiguous in memory, or NULL where the format has
     * no such thing (HDF5) */
    const void *(*raw)(zq_source *src, size_t i);
    void (*prefetch)(zq_source *src, size_t i, uint64_t row0, uint64_t nrows); /* may be NULL */
    zq_status (*codes)(zq_source *src, size_t i, zq_stored_codes *out, zq_error *err); /* may be NULL */
    void (*drop)(zq_source *src, size_t i);                                             /* may be NULL */
    /* zq_source_read_stored; NULL where raw is */
    zq_status (*read_stored)(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, void *dst, zq_error *err);
} zq_source_ops;

struct zq_source {
    const zq_source_ops *ops;
    char *path;
    char *config;
    zq_tensor_info *tensors;
    size_t count, cap;
    void *impl;
    /* a quantized checkpoint's activation scheme (compressed-tensors): its
     * record, and per tensor whether its Linear quantizes its input; NULL:
     * none */
    zq_activation act;
    unsigned char *act_quantized;
};

/* Appends a tensor entry (name copied); returns its index through *index. */
zq_status zq_source_add(zq_source *src, const char *name, zq_dtype dtype, int ndim,
                        const int64_t *shape, size_t *index, zq_error *err);

zq_status zq_safetensors_open(zq_source *src, const char *file, zq_error *err);
zq_status zq_safetensors_open_sharded(zq_source *src, const char *folder, const char *index_path,
                                      zq_error *err);
/* An HDF5 file read by a helper process (hdf5_isolated.c) that runs
 * libhdf5's own reader (zq_hdf5_open_here, hdf5.c) on it. */
zq_status zq_hdf5_open(zq_source *src, const char *file, zq_error *err);
zq_status zq_hdf5_open_here(zq_source *src, const char *file, zq_error *err);

/* The export targets' files (GGUF, compressed-tensors folders) are read
 * by their rows of export/target.h: decoded to float under Hugging Face
 * names and layouts. */

/* A driver's own results as a source: zq_source_memory makes an empty one,
 * zq_source_memory_add adds a tensor whose values (F32, [rows, cols] as
 * the shape says) it then owns. zq_source_overlay is base (still the
 * caller's) with the tensors patch (now the overlay's) has by name, as
 * zq_source_open_patched's patches; chosen scales ride along as NAME#scale
 * and NAME#min tensors. */
zq_status zq_source_memory(const char *path, zq_source **out, zq_error *err);
zq_status zq_source_memory_add(zq_source *src, const char *name, int ndim, const int64_t *shape, float *data,
                               zq_error *err);
zq_status zq_source_overlay(zq_source *base, zq_source *patch, zq_source **out, zq_error *err);


#endif
