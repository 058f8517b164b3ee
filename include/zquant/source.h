/* Reading FP checkpoints: a safetensors file, a Hugging Face model folder
 * (single file or shards listed by model.safetensors.index.json), or an HDF5
 * file. Tensors are read a block at a time, converted to float, so no caller
 * ever needs the whole model (or a whole tensor) in memory. */
#ifndef ZQUANT_SOURCE_H
#define ZQUANT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"
#include "zquant/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZQ_MAX_DIMS 8

/* The integer types hold packed codes, scales' zero points and shapes of
 * quantized checkpoints (compressed-tensors); read as float they are their
 * values. */
typedef enum { ZQ_DT_F16, ZQ_DT_BF16, ZQ_DT_F32, ZQ_DT_F64, ZQ_DT_I8, ZQ_DT_I32, ZQ_DT_I64 } zq_dtype;

const char *zq_dtype_name(zq_dtype dt); /* "F16", ... as safetensors spells them */
size_t zq_dtype_size(zq_dtype dt);

typedef struct {
    char *name;
    zq_dtype dtype;
    int ndim;
    int64_t shape[ZQ_MAX_DIMS];
    uint64_t numel;
    /* The tensor seen as a matrix: rows = shape[0] (1 for a scalar or 1-D
     * tensor), cols = numel / rows. */
    uint64_t rows, cols;
} zq_tensor_info;

typedef struct zq_source zq_source;

/* Every file zquant reads as an input (checkpoints, configs, .zq files,
 * tokenizers, token and text files) is remembered for the life of the
 * process: no output may replace one (the same device and inode, whatever
 * the path). A long-running program can forget them between jobs. */
void zq_forget_inputs(void);

/* PATH is a .safetensors file, a folder, a .h5/.hdf5 file, or a .gguf file
 * (llama.cpp's; its tensors decoded to float under Hugging Face names). A
 * compressed-tensors folder (vLLM's) reads as its decoded weights. */
zq_status zq_source_open(const char *path, zq_source **out, zq_error *err);
/* Any model zquant runs: what zq_source_open takes, and a .zq file (a
 * checkpoint reader refuses one: it is already quantized), its tensors
 * decoded to the layout of the checkpoint it came from, its activation
 * scheme that of zq_source_activation. */
zq_status zq_source_open_model(const char *path, zq_source **out, zq_error *err);
void zq_source_close(zq_source *src); /* accepts NULL */
/* PATH with some tensors replaced: each patch (a safetensors file) supplies
 * tensors by name, with the same shape; the rest come from PATH. */
zq_status zq_source_open_patched(const char *path, const char *const *patches, size_t npatches, zq_source **out,
                                 zq_error *err);

/* Scales chosen for a tensor rather than taken from its values (GPTQ's,
 * written by lkd beside the tuned weights in a patch): the F16 tables
 * TENSOR#scale and TENSOR#min, [row_groups, col_groups] of the grid
 * quantize uses, malloc'd, *n entries each. *scale NULL (and *n 0) when
 * there are none; *min NULL when only scales are given. */
zq_status zq_source_group_params(zq_source *src, const char *tensor, uint16_t **scale, uint16_t **min, size_t *n,
                                 zq_error *err);

const char *zq_source_path(const zq_source *src);
size_t zq_source_count(const zq_source *src);
const zq_tensor_info *zq_source_tensor(const zq_source *src, size_t i);
/* config.json text (or the HDF5 "config" attribute), NULL when there is none. */
const char *zq_source_config(const zq_source *src);

/* Reads rows [row0, row0+nrows) x cols [col0, col0+ncols) of tensor i, seen as
 * a matrix, into out (nrows x ncols floats, row-major). Safe to call from
 * several threads at once. */
zq_status zq_source_read(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0,
                         uint64_t ncols, float *out, zq_error *err);

/* Reads columns [col0, col0+ncols) of tensor i, seen as a matrix, down all
 * its rows, transposed: out is ncols x rows floats (row c of out is column
 * col0 + c). GPT-2 stores Linear weights [in, out]; this gives [out, in]. */
zq_status zq_source_read_columns(zq_source *src, size_t i, uint64_t col0, uint64_t ncols, float *out,
                                 zq_error *err);

/* Rows [row0, row0+nrows) of tensor i as the file stores them (its dtype's
 * bytes, little-endian, rows of cols values), read into dst, not mapped: a
 * single pass over a checkpoint keeps its pages in the page cache, out of
 * this process and its page tables. Where zq_source_mapped says the bytes
 * are a file's; safe from several threads at once. */
zq_status zq_source_read_stored(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, void *dst, zq_error *err);
/* Converts n values of dtype dt at p (any alignment) to float. */
void zq_convert_to_f32(zq_dtype dt, const void *p, float *out, size_t n);

/* Reads whole rows [row0, row0+nrows) of tensor i as FP16 (a plain copy
 * when the tensor is stored as F16). */
zq_status zq_source_read_f16(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint16_t *out,
                             zq_error *err);

/* The caller is done with tensor i (or with some of its rows): their pages
 * can leave this process, so memory stays bounded by what is in flight. */
void zq_source_release(zq_source *src, size_t i);
void zq_source_release_rows(zq_source *src, size_t i, uint64_t row0, uint64_t nrows);
/* A checksum (CRC-32C) of what the checkpoint holds, to tell it from
 * another one at the same path: its config and every tensor's name, dtype,
 * shape and values (read as float, some rows at a time). */
zq_status zq_source_fingerprint(zq_source *src, uint32_t *crc, zq_error *err);

/* A matrix as its file stores it (a .zq file's): the spec, the grid over
 * the [out, in] matrix, the packed rows (grid.rows rows of grid.row_bytes)
 * and the FP16 scales and mins ([row_groups, col_groups]; min NULL when
 * symmetric), valid while src is open. A 2-D tensor kept as FP16 (not a
 * transposed Conv1D one) comes as format ZQ_FORMAT_F16, its values the
 * rows, no scales. q is NULL when src keeps neither for tensor i (an FP
 * checkpoint). */
typedef struct {
    zq_qspec spec;
    zq_grid grid;
    const uint8_t *q;
    const uint16_t *scale, *min;
} zq_stored_codes;
zq_status zq_source_codes(zq_source *src, size_t i, zq_stored_codes *out, zq_error *err);
/* Tensor i's mapped bytes leave this process's memory; they come back from
 * the page cache if read again, and zq_source_codes' pointers stay valid
 * (a reader that copied the codes keeps one copy resident, not two). */
void zq_source_drop(zq_source *src, size_t i);

/* Whether tensor i's bytes are mapped memory, where a read of one row costs
 * what its share of a larger read does (HDF5's are not: each read is a
 * request to the reader's process). */
int zq_source_mapped(zq_source *src, size_t i);

/* Rows the caller will read soon: the reader may map them ahead, in bulk. */
void zq_source_prefetch_rows(zq_source *src, size_t i, uint64_t row0, uint64_t nrows);

#ifdef __cplusplus
}
#endif
#endif
