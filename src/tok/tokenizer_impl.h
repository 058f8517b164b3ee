/* Shared by the llama2.c and Hugging Face tokenizers: the vocabulary table
 * and the BPE merge loop. */
#ifndef ZQ_TOKENIZER_IMPL_H
#define ZQ_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "zquant/tokenizer.h"

typedef struct zq_hf zq_hf;

struct zq_tokenizer {
    int vocab;
    char **piece;
    int *piece_len;
    float *score;   /* llama2.c: merge priority of each piece */
    int *table;     /* open addressing: piece -> id, -1 empty */
    size_t table_size;
    size_t longest; /* bytes of the longest piece */
    int bos;
    zq_hf *hf;      /* tokenizer.json specifics, NULL for llama2.c */
};

/* Appends a piece (copied) with its score; ids are given in order. */
int zq_tok_add_piece(zq_tokenizer *t, const char *s, size_t n, float score);
/* Builds the lookup table once every piece is in. */
int zq_tok_index(zq_tokenizer *t);
int zq_tok_lookup(const zq_tokenizer *t, const char *s, size_t n);
/* The id of piece a followed by piece b, or -1. */
int zq_tok_lookup_pair(const zq_tokenizer *t, int a, int b);
void zq_tok_free_pieces(zq_tokenizer *t);

/* Whether a and b merge: into *merged, with priority *score (higher first). */
typedef int (*zq_pair_fn)(const zq_tokenizer *t, int a, int b, int *merged, float *score);
/* Merges ids[0..*count) in place, best pair first, leftmost on ties, until
 * none merges; returns 0 when out of memory. */
int zq_tok_merge(const zq_tokenizer *t, int32_t *ids, int *count, zq_pair_fn pair);

zq_status zq_hf_load(zq_tokenizer *t, const char *path, const char *json, zq_error *err);
void zq_hf_free(zq_hf *hf);
/* Appends text's ids (no BOS) to ids/n/cap. */
zq_status zq_hf_encode(const zq_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap,
                       zq_error *err);
const char *zq_hf_decode(const zq_tokenizer *t, int32_t prev, int32_t id, size_t *len);

/* For writers of other formats (GGUF): whether the pieces are GPT-2
 * byte-level, the unknown piece (-1: none), and the merges. zq_hf_merges
 * returns how many there are and, when pairs is not NULL, fills pairs[rank]
 * with the left and right ids of each (ranks are 0..n-1: a repeated merge
 * keeps its first rank and later ones are not counted). */
int zq_hf_byte_level(const zq_tokenizer *t);
int zq_hf_unk(const zq_tokenizer *t);
size_t zq_hf_merges(const zq_tokenizer *t, int32_t (*pairs)[2]);

/* Makes room for `more` ids. */
int zq_tok_reserve(int32_t **ids, size_t n, size_t *cap, size_t more);

#endif
