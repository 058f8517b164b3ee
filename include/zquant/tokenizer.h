/* Text to token ids: the llama2.c tokenizer format (the bundled model's),
 * and token files (raw little-endian uint32, or .npy of any integer dtype). */
#ifndef ZQUANT_TOKENIZER_H
#define ZQUANT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zq_tokenizer zq_tokenizer;

/* PATH ending in .json: a Hugging Face tokenizer.json with a BPE model
 * (byte-level as GPT-2, or SentencePiece-style with byte fallback as Llama).
 * Otherwise a llama2.c tokenizer file: int32 max_token_length, then per id a
 * float32 score, an int32 length and the piece's bytes; ids 1 and 2 are BOS
 * and EOS, 3..258 the bytes 0x00..0xFF. */
zq_status zq_tokenizer_load(const char *path, zq_tokenizer **out, zq_error *err);
/* The same from bytes in memory, name (ending in .json or not) saying
 * which kind and naming it in messages. */
zq_status zq_tokenizer_parse(const char *name, const void *data, size_t len, zq_tokenizer **out, zq_error *err);
void zq_tokenizer_free(zq_tokenizer *t);

/* The names a model's tokenizer goes by, in the order they are looked
 * for: tokenizer.bin, tokenizer.json. NULL-terminated. */
extern const char *const zq_tokenizer_files[];
/* A model's tokenizer: the first of zq_tokenizer_files zq_model_file
 * finds for it, parsed; *out NULL when there is none. */
zq_status zq_tokenizer_of_model(const char *model, zq_tokenizer **out, zq_error *err);
int zq_tokenizer_vocab(const zq_tokenizer *t);
/* The id put before each document: 1 for llama2.c; for tokenizer.json the
 * first of <s>, <|begin_of_text|>, <bos>, <|endoftext|> it has; -1 if none. */
int zq_tokenizer_bos(const zq_tokenizer *t);

/* Appends the ids of text (len bytes) to *ids (grown with realloc; *n and
 * *cap track it), BOS first when bos. As llama2.c encodes: a leading space,
 * each UTF-8 code point looked up whole (bytes fall back to 3..258), then
 * repeatedly merge the adjacent pair whose merged piece scores highest
 * (the leftmost on ties). */
zq_status zq_tokenizer_encode(const zq_tokenizer *t, const char *text, size_t len, int bos, int32_t **ids, size_t *n,
                              size_t *cap, zq_error *err);
/* The bytes id stands for after prev (BOS's following space dropped, byte
 * tokens as their byte); *len receives the length. */
const char *zq_tokenizer_decode(const zq_tokenizer *t, int32_t prev, int32_t id, size_t *len);

/* Decoded text made valid UTF-8 (a model can end on part of a character):
 * each byte that does not start a valid character becomes U+FFFD.
 * malloc'd, NUL-terminated. */
char *zq_text_utf8(const char *text, size_t len);

/* A text file of documents separated by lines holding <|endoftext|>: each
 * stripped, encoded with BOS first, concatenated. */
zq_status zq_tokenize_documents(const zq_tokenizer *t, const char *path, int32_t **ids, size_t *n, zq_error *err);

/* Raw little-endian uint32 ids, or a .npy array of any integer dtype. */
zq_status zq_tokens_read(const char *path, int32_t **ids, size_t *n, zq_error *err);
/* Writes ids as raw little-endian uint32, atomically; an existing path is
 * kept unless force. */
zq_status zq_tokens_write(const char *path, const int32_t *ids, size_t n, int force, zq_error *err);

#ifdef __cplusplus
}
#endif
#endif
