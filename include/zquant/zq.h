/* The packed .zq model file, written by zquant and read by GPU runtimes.
 * Full specification: zquant-format(5). In short (all integers little-endian):
 *
 *   offset  size  field
 *   0       8     magic "ZQUANT\0\0"
 *   8       4     format version (1)
 *   12      4     CRC-32C of the metadata bytes
 *   16      8     metadata length in bytes (M)
 *   24      8     data start (a multiple of 64)
 *   32      M     metadata: UTF-8 JSON (model config, recipe, activation
 *                 scheme, table of tensors with their sections)
 *   ...           zero padding up to data start
 *   data start    sections, each starting on a 64-byte boundary, at the
 *                 absolute file offsets the metadata gives
 *
 * A quantized tensor has sections "q" (packed codes, [out, in] row-major,
 * ceil(in * bits / 8) bytes per row), "scale" (fp16, [row_groups,
 * col_groups]) and, when asymmetric, "min" (fp16, same shape). A tensor kept
 * in FP16 has one section "data" (fp16, its original shape). Each section has
 * a CRC-32C over its stored bytes and may be zstd-compressed. */
#ifndef ZQUANT_ZQ_H
#define ZQUANT_ZQ_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"
#include "zquant/arch.h"
#include "zquant/quant.h"
#include "zquant/source.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZQ_MAGIC "ZQUANT\0\0"
#define ZQ_FORMAT_VERSION 1u
#define ZQ_HEADER_SIZE 32u
#define ZQ_ALIGN 64u

typedef enum { ZQ_SEC_DATA = 0, ZQ_SEC_Q, ZQ_SEC_SCALE, ZQ_SEC_MIN, ZQ_SEC_COUNT } zq_section_kind;

const char *zq_section_name(zq_section_kind k);

typedef struct {
    int present;
    uint64_t offset;     /* absolute, in the file */
    uint64_t length;     /* stored bytes */
    uint64_t size;       /* bytes once decompressed (== length when stored raw) */
    uint32_t crc32c;     /* of the stored bytes */
    int compressed;      /* zstd frame */
} zq_section;

typedef struct {
    char *name;
    zq_role role;
    int layer;
    int ndim;
    int64_t shape[ZQ_MAX_DIMS]; /* as in the input checkpoint */
    int transposed;             /* input was [in, out]; packed data is [out, in] */
    zq_dtype source_dtype;
    zq_qspec spec;              /* bits 16: stored as FP16 */
    zq_grid grid;               /* of the [out, in] matrix (quantized tensors) */
    double rel_rmse;            /* sqrt(sum err^2 / sum w^2) */
    double sqnr_db;             /* 10 log10(sum w^2 / sum err^2); INFINITY when exact */
    zq_section sec[ZQ_SEC_COUNT];
} zq_tensor;

/* Elements of t (its shape's product), and the bytes its sections hold
 * once decompressed (codes, scales and mins; or FP16 data). */
uint64_t zq_tensor_numel(const zq_tensor *t);
uint64_t zq_tensor_bytes(const zq_tensor *t);

/* A file of the model folder carried inside the .zq (a tokenizer, the
 * generation config), stored raw at offset, 64-byte aligned. */
typedef struct {
    char *name;
    uint64_t offset, length;
    uint32_t crc32c;
} zq_attached;

/* The files of a model folder a runtime needs besides the weights and
 * config.json (which the metadata holds as "config"): what quantize
 * carries into a .zq and what a compressed-tensors export writes beside
 * its weights. NULL-terminated. */
extern const char *const zq_model_files[];

/* The first of names (NULL-terminated) a model has: for a .zq file, among
 * the files it carries, then in its folder; for a folder, in it; for
 * another file, in its folder. Its bytes (NUL-terminated) and where they
 * came from ("m.zq:tokenizer.json", else the path), malloc'd; both NULL
 * when it has none of them. */
zq_status zq_model_file(const char *model, const char *const *names, char **shown, char **data, size_t *len,
                        zq_error *err);

/* ---- writing ---------------------------------------------------------- */

typedef struct zq_writer zq_writer;

/* Creates a temp file beside PATH; nothing appears at PATH before commit.
 * zstd_level 0 stores sections raw. */
zq_status zq_writer_open(const char *path, int force, int zstd_level, zq_writer **out, zq_error *err);
/* The metadata that is not the tensor table, as JSON text (copied). */
zq_status zq_writer_set_info(zq_writer *w, const char *model_type, const char *config_json,
                             const char *recipe_json, const zq_activation *act, zq_error *err);
/* Declares every tensor, in file order, before any data is written: the
 * metadata's room is reserved from this table. The name is copied. */
zq_status zq_writer_add_tensor(zq_writer *w, const zq_tensor *t, zq_error *err);
/* Carries a file (copied) in the .zq, also before any data is written. */
zq_status zq_writer_attach(zq_writer *w, const char *name, const void *data, size_t len, zq_error *err);
zq_status zq_writer_begin_section(zq_writer *w, size_t tensor, zq_section_kind kind, zq_error *err);
zq_status zq_writer_write(zq_writer *w, const void *data, size_t len, zq_error *err);
zq_status zq_writer_end_section(zq_writer *w, zq_error *err);
/* zq_writer_write for bytes whose CRC-32C another thread already computed. */
zq_status zq_writer_write_crc(zq_writer *w, const void *data, size_t len, uint32_t crc32c, zq_error *err);
void zq_writer_set_error_stats(zq_writer *w, size_t tensor, double rel_rmse, double sqnr_db);
/* Writes the metadata, fsyncs and renames into place. Frees w either way;
 * size (may be NULL) gets the file's length in bytes. */
zq_status zq_writer_commit(zq_writer *w, uint64_t *size, zq_error *err);
/* Removes the temp file; accepts NULL. */
void zq_writer_abort(zq_writer *w);

/* ---- reading ---------------------------------------------------------- */

typedef struct zq_file zq_file;

/* Maps the file, checks the header, the metadata and every section's bounds
 * and CRC: all of them now (ZQ_VERIFY_ALL), or each section's CRC when
 * zq_file_section first returns it (ZQ_VERIFY_ON_USE: a single pass such
 * as export's reads the file once, not twice; one thread at a time), or
 * no CRC (0, for tools that report damage themselves). */
enum { ZQ_VERIFY_ALL = 1, ZQ_VERIFY_ON_USE = 2 };
zq_status zq_file_open(const char *path, int verify, zq_file **out, zq_error *err);
void zq_file_close(zq_file *f); /* accepts NULL */
/* Whether path is a regular file that starts with ZQ_MAGIC. */
int zq_is_zq_file(const char *path);

const char *zq_file_path(const zq_file *f);
size_t zq_file_count(const zq_file *f);
const zq_tensor *zq_file_tensor(const zq_file *f, size_t i);
/* Index of the tensor called name, or -1. */
long zq_file_find(const zq_file *f, const char *name);
const char *zq_file_model_type(const zq_file *f);
/* The model config as JSON text ("{}" when the input had none). */
const char *zq_file_config(const zq_file *f);
/* The whole metadata block as JSON text. */
const char *zq_file_metadata(const zq_file *f);
const zq_activation *zq_file_activation(const zq_file *f);
uint64_t zq_file_size(const zq_file *f);
/* The files the .zq carries (none in one written before zquant carried
 * them): count, names, and the bytes of one by name, checked against its
 * CRC-32C; *data is NULL (ZQ_OK) when the file carries no such file. */
size_t zq_file_attached_count(const zq_file *f);
const zq_attached *zq_file_attached_entry(const zq_file *f, size_t k);
zq_status zq_file_attached(zq_file *f, const char *name, const void **data, size_t *len, zq_error *err);

/* Bytes of a section, decompressed if needed (kept until close). */
zq_status zq_file_section(zq_file *f, size_t i, zq_section_kind kind, const void **data, size_t *len,
                          zq_error *err);
/* The pages of tensor i's section k below byte upto leave this process's
 * memory (a stored section; a decompressed one stays until release): a
 * reader streaming a large tensor keeps only what it is working on. */
void zq_file_drop(zq_file *f, size_t i, zq_section_kind k, uint64_t upto);
/* Frees tensor i's decompressed sections (a streaming reader's memory
 * stays at one tensor); the pointers zq_file_section gave for it die. */
void zq_file_release(zq_file *f, size_t i);
/* Checks one section's CRC. */
zq_status zq_file_verify_section(zq_file *f, size_t i, zq_section_kind kind, zq_error *err);
/* The tensor as float, in its original shape and layout (numel floats). */
zq_status zq_file_read_float(zq_file *f, size_t i, float *out, zq_error *err);
/* The same, but a quantized tensor comes as the [out, in] matrix it is
 * packed as (what a runtime multiplies with); an FP16 one as stored. */
zq_status zq_file_read_matrix(zq_file *f, size_t i, float *out, zq_error *err);

#ifdef __cplusplus
}
#endif
#endif
