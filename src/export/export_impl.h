/* Shared by the GGUF and compressed-tensors writers. */
#ifndef ZQ_EXPORT_IMPL_H
#define ZQ_EXPORT_IMPL_H

#include "export/gguf/kv.h"
#include "zquant/arch.h"
#include "zquant/export.h"
#include "zquant/zq.h"

/* The architecture row entry for tensor name (its block in *layer, an
 * expert's number in *expert, which may be NULL), NULL when the row has none. */
const zq_arch_tensor *zq_export_row(const zq_arch_desc *d, const char *name, int *layer, int *expert);

/* A file of the model the export needs besides the .zq's tensors: the
 * first of names zq_model_file finds in o->model_dir (the user's --from),
 * else for o->input (carried in it, else beside it). *data (NUL-terminated) and *shown (where it
 * came from, for messages) malloc'd; both NULL when there is none. */
zq_status zq_export_find_file(const zq_export_opts *o, const char *const *names, char **shown, char **data,
                              size_t *len, zq_error *err);

/* The vocabulary of the GGUF file at path as a tokenizer file zquant
 * parses: a llama2.c tokenizer.bin for "llama" (SentencePiece), a
 * tokenizer.json for "gpt2" (byte-level BPE); *name ("m.gguf:tokenizer.bin")
 * and *data malloc'd, both NULL when the file has no vocabulary. */
zq_status zq_gguf_tokenizer(const char *path, char **name, char **data, size_t *len, zq_error *err);

/* tokenizer.ggml.* keys from a tokenizer.bin or tokenizer.json (name says
 * which, and names it in messages; data NUL-terminated); rows: the
 * embedding's rows (the vocabulary is padded to them). note gets what the
 * user must know (a pre-tokenizer llama.cpp has no name for), else stays. */
zq_status zq_gguf_vocab(zq_gguf_keys *kv, const char *name, const char *data, size_t len, const char *config, const char *model_type, int rows,
                        char *note, size_t note_size, zq_error *err);

/* compressed-tensors' packing: n signed values (n <= 32/bits), each stored
 * as value + 2^(bits-1) in bits k*bits .. k*bits+bits-1 of one word; the
 * rest of the word zero. */
uint32_t zq_ct_pack(const int *values, int n, int bits);

#endif
