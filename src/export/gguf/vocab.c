/* A tokenizer into GGUF's tokenizer.ggml.* keys, so llama.cpp splits text
 * as zquant does. A llama2.c tokenizer.bin is a SentencePiece vocabulary
 * ("llama": pieces with ▁ for spaces and merge scores); a tokenizer.json
 * is either GPT-2 byte-level BPE ("gpt2": the pieces and the merges as they
 * are) or SentencePiece-style BPE with byte fallback ("llama": each merged
 * piece scored minus the rank of its first merge, so llama.cpp's
 * highest-score-first merging takes BPE's lowest rank first). */
#include "export/export_impl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/files.h"
#include "base/le.h"
#include "export/gguf/read.h"
#include "tok/tokenizer_impl.h"

enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's space */

static int is_byte_piece(const char *s, int n)
{
    return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>';
}

/* A llama2.c piece as SentencePiece spells it: spaces as ▁; BOS and EOS,
 * stored with newlines around them for printing, as <s> and </s>. */
static char *spm_piece(const zq_tokenizer *t, int id)
{
    if (id == 1) return strdup("<s>");
    if (id == 2) return strdup("</s>");
    const char *s = t->piece[id];
    int n = t->piece_len[id], spaces = 0;
    for (int k = 0; k < n; k++) spaces += s[k] == ' ';
    char *out = malloc((size_t)n + 2 * (size_t)spaces + 1), *o = out;
    if (!out) return NULL;
    for (int k = 0; k < n; k++) {
        if (s[k] == ' ') {
            memcpy(o, SPM_SPACE, 3);
            o += 3;
        } else {
            *o++ = s[k];
        }
    }
    *o = 0;
    return out;
}

/* The Split regexes llama.cpp knows by name, as tokenizer.json spells them. */
static const struct {
    const char *pre, *regex;
} known_splits[] = {
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

/* llama.cpp's name for a byte-level tokenizer's pre-tokenizer: GPT-2's
 * regex (ByteLevel's own), or one Split regex it knows; NULL otherwise. */
static const char *pre_of(const cJSON *pre)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(type)) return NULL;
    if (!strcmp(type->valuestring, "ByteLevel"))
        return cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pre, "use_regex")) ? NULL : "gpt-2";
    if (strcmp(type->valuestring, "Sequence")) return NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), *it;
    const char *name = NULL;
    int splits = 0;
    cJSON_ArrayForEach(it, list) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type");
        if (!cJSON_IsString(t)) return NULL;
        if (!strcmp(t->valuestring, "ByteLevel")) {
            if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(it, "use_regex"))) splits++, name = "gpt-2";
            continue;
        }
        if (strcmp(t->valuestring, "Split")) return NULL;
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "pattern"), "Regex");
        splits++;
        name = NULL;
        for (size_t k = 0; cJSON_IsString(re) && k < sizeof known_splits / sizeof *known_splits; k++)
            if (!strcmp(re->valuestring, known_splits[k].regex)) name = known_splits[k].pre;
    }
    return splits == 1 ? name : NULL;
}

/* From a tokenizer.json: the special flag of each added token, and the
 * pre-tokenizer llama.cpp should apply (into pre). */
static void json_extras(const char *text, int32_t *type, int vocab, char *pre, size_t pre_size)
{
    cJSON *root = cJSON_Parse(text);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsNumber(id) || id->valueint < 0 || id->valueint >= vocab) continue;
        type[id->valueint] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")) ? TOK_CONTROL : TOK_USER;
    }
    const char *name = pre_of(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
    snprintf(pre, pre_size, "%s", name ? name : "");
    cJSON_Delete(root);
}

/* An integer id from config.json (a list: its first), or fallback. */
static int config_id(const char *config, const char *key, int fallback)
{
    cJSON *root = cJSON_Parse(config);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    int id = cJSON_IsNumber(v) ? v->valueint : fallback;
    cJSON_Delete(root);
    return id;
}

/* llama.cpp's usual pre-tokenizer for a byte-level BPE model of this type,
 * for a tokenizer.json whose own pre-tokenizer it has no name for. */
static const char *bpe_pre(const char *model_type)
{
    if (!strcmp(model_type, "gpt2")) return "gpt-2";
    if (!strcmp(model_type, "qwen2") || !strcmp(model_type, "qwen3")) return "qwen2";
    if (!strcmp(model_type, "llama") || !strcmp(model_type, "mistral")) return "llama-bpe";
    return "default";
}

static void put_merges(zq_gguf_keys *kv, const zq_tokenizer *t, const int32_t (*pairs)[2], size_t n)
{
    zq_gguf_kv_array(kv, "tokenizer.ggml.merges", GGUF_STRING, n);
    char *buf = NULL;
    size_t cap = 0;
    for (size_t r = 0; r < n; r++) {
        int a = pairs[r][0], b = pairs[r][1];
        size_t len = (size_t)t->piece_len[a] + 1 + (size_t)t->piece_len[b];
        if (len > cap) {
            char *p = realloc(buf, len);
            if (!p) {
                kv->oom = 1;
                break;
            }
            buf = p, cap = len;
        }
        memcpy(buf, t->piece[a], (size_t)t->piece_len[a]);
        buf[t->piece_len[a]] = ' ';
        memcpy(buf + t->piece_len[a] + 1, t->piece[b], (size_t)t->piece_len[b]);
        zq_gguf_put_str(kv, buf, len);
    }
    free(buf);
}

zq_status zq_gguf_vocab(zq_gguf_keys *kv, const char *path, const char *data, size_t len, const char *config,
                        const char *model_type, int rows, char *note, size_t note_size, zq_error *err)
{
    char pre[32] = "";
    zq_tokenizer *t;
    ZQ_TRY(zq_tokenizer_parse(path, data, len, &t, err));
    int n = t->vocab, json = t->hf != NULL, byte_level = zq_hf_byte_level(t);
    if (n > rows) {
        zq_tokenizer_free(t);
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': %d tokens, but the model's embedding has %d rows: not its tokenizer",
                       path, n, rows);
    }
    int32_t *type = malloc((size_t)rows * sizeof *type);
    float *score = calloc((size_t)rows, sizeof *score);
    size_t nmerges = json ? zq_hf_merges(t, NULL) : 0;
    int32_t (*pairs)[2] = malloc((nmerges ? nmerges : 1) * sizeof *pairs);
    zq_status st = type && score && pairs ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int id = 0; st == ZQ_OK && id < rows; id++) {
        type[id] = id >= n ? TOK_UNUSED : is_byte_piece(t->piece[id], t->piece_len[id]) ? TOK_BYTE : TOK_NORMAL;
        if (id < n && !json) score[id] = t->score[id];
    }
    if (st == ZQ_OK && json) {
        zq_hf_merges(t, pairs);
        json_extras(data, type, n, pre, sizeof pre);
        if (byte_level && !pre[0]) {
            snprintf(pre, sizeof pre, "%s", bpe_pre(model_type));
            snprintf(note, note_size, "llama.cpp has no name for %s's pre-tokenizer: '%s' is assumed, and text may "
                     "split differently", path, pre);
        }
        int unk = zq_hf_unk(t);
        if (unk >= 0) type[unk] = TOK_UNKNOWN;
        for (size_t r = nmerges; r-- > 0;) { /* the first merge that makes a piece wins */
            int m = zq_tok_lookup_pair(t, pairs[r][0], pairs[r][1]);
            if (m >= 0) score[m] = -(float)r;
        }
    } else if (st == ZQ_OK) {
        type[0] = TOK_UNKNOWN;
        type[1] = type[2] = TOK_CONTROL;
    }
    if (st == ZQ_OK) {
        zq_gguf_kv_str(kv, "tokenizer.ggml.model", byte_level ? "gpt2" : "llama");
        if (byte_level) zq_gguf_kv_str(kv, "tokenizer.ggml.pre", pre);
        zq_gguf_kv_array(kv, "tokenizer.ggml.tokens", GGUF_STRING, (uint64_t)rows);
        for (int id = 0; id < rows && !kv->oom; id++) {
            char pad[32];
            char *p = id >= n ? NULL : json ? t->piece[id] : spm_piece(t, id);
            if (id >= n) snprintf(pad, sizeof pad, "[PAD%d]", id);
            if (id < n && !p) kv->oom = 1;
            else zq_gguf_put_str(kv, p ? p : pad, p ? strlen(p) : strlen(pad));
            if (!json) free(p);
        }
        if (!byte_level) {
            zq_gguf_kv_array(kv, "tokenizer.ggml.scores", GGUF_F32, (uint64_t)rows);
            for (int id = 0; id < rows; id++) zq_gguf_put_f32(kv, score[id]);
        }
        zq_gguf_kv_array(kv, "tokenizer.ggml.token_type", GGUF_I32, (uint64_t)rows);
        for (int id = 0; id < rows; id++) zq_gguf_put_int(kv, (uint32_t)type[id], 4);
        if (byte_level) put_merges(kv, t, (const int32_t(*)[2])pairs, nmerges);
        int bos = json ? config_id(config, "bos_token_id", zq_tokenizer_bos(t)) : 1;
        int eos = json ? config_id(config, "eos_token_id", -1) : 2;
        int unk = json ? zq_hf_unk(t) : 0;
        if (bos >= 0 && bos < rows) zq_gguf_kv_u32(kv, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
        if (eos >= 0 && eos < rows) zq_gguf_kv_u32(kv, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
        if (unk >= 0) zq_gguf_kv_u32(kv, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
        /* zquant puts BOS before every document of SentencePiece models (eval --text) */
        zq_gguf_kv_bool(kv, "tokenizer.ggml.add_bos_token", !byte_level);
        zq_gguf_kv_bool(kv, "tokenizer.ggml.add_eos_token", 0);
    }
    free(type);
    free(score);
    free(pairs);
    zq_tokenizer_free(t);
    return st;
}

/* ---- and back: a GGUF's vocabulary as a tokenizer zquant loads ------------------------ */

typedef struct {
    const unsigned char *p; /* the next element of a string array, bounds checked when the file was opened */
} strings;

static const char *next_string(strings *s, size_t *len)
{
    *len = (size_t)zq_load_le64(s->p);
    const char *str = (const char *)s->p + 8;
    s->p += 8 + *len;
    return str;
}

static const zq_gguf_kv *array_of(const zq_gguf *g, const char *key, int elem, uint64_t count)
{
    const zq_gguf_kv *kv = zq_gguf_find(g, key);
    return kv && kv->type == GGUF_ARRAY && kv->elem_type == elem && (!count || kv->count == count) ? kv : NULL;
}

/* "llama" (SentencePiece): the llama2.c layout zquant's own encoder takes,
 * which needs the byte pieces at ids 3..258 as llama2.c has them. */
static zq_status spm_as_llama2c(const zq_gguf *g, const zq_gguf_kv *tokens, char **data, size_t *len, zq_error *err)
{
    const zq_gguf_kv *scores = array_of(g, "tokenizer.ggml.scores", GGUF_F32, tokens->count);
    if (!scores || tokens->count < 259)
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': its SentencePiece vocabulary has no scores, or fewer than 259 pieces",
                       g->path);
    size_t cap = 4 + (size_t)tokens->count * 8, at = 4;
    strings s = {tokens->val};
    for (uint64_t i = 0; i < tokens->count; i++) { /* ▁ becomes one byte: the pieces only shrink */
        size_t n;
        next_string(&s, &n);
        cap += n;
    }
    unsigned char *out = malloc(cap);
    if (!out) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    s.p = tokens->val;
    uint32_t longest = 0;
    for (uint64_t i = 0; i < tokens->count; i++) {
        size_t n;
        const char *p = next_string(&s, &n);
        unsigned char *piece = out + at + 8;
        size_t m = 0;
        char want[8];
        snprintf(want, sizeof want, "<0x%02X>", (unsigned)(i - 3));
        if (i >= 3 && i < 259 && (n != 6 || memcmp(p, want, 6))) { /* llama2.c spells the bytes so too */
            free(out);
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': piece %llu is not the byte %s (zquant reads SentencePiece "
                           "vocabularies laid out as Llama's): give --tokenizer", g->path, (unsigned long long)i, want);
        }
        for (size_t k = 0; k < n; k++) {
            if (k + 3 <= n && !memcmp(p + k, SPM_SPACE, 3)) piece[m++] = ' ', k += 2;
            else piece[m++] = (unsigned char)p[k];
        }
        zq_store_le32(out + at, (uint32_t)zq_load_le32(scores->val + 4 * i));
        zq_store_le32(out + at + 4, (uint32_t)m);
        at += 8 + m;
        longest = m > longest ? (uint32_t)m : longest;
    }
    zq_store_le32(out, longest);
    *data = (char *)out;
    *len = at;
    return ZQ_OK;
}

/* "gpt2" (byte-level BPE): the tokenizer.json it came from, near enough for
 * zquant's encoder: vocabulary, merges, the pre-tokenizer llama.cpp names,
 * control and user tokens as added tokens. */
static zq_status bpe_as_json(const zq_gguf *g, const zq_gguf_kv *tokens, char **data, size_t *len, zq_error *err)
{
    const zq_gguf_kv *merges = array_of(g, "tokenizer.ggml.merges", GGUF_STRING, 0);
    const zq_gguf_kv *types = array_of(g, "tokenizer.ggml.token_type", GGUF_I32, tokens->count);
    char *pre = zq_gguf_string(g, "tokenizer.ggml.pre");
    const char *regex = NULL;
    for (size_t k = 0; pre && k < sizeof known_splits / sizeof *known_splits; k++)
        if (!strcmp(pre, known_splits[k].pre)) regex = known_splits[k].regex;
    if (!merges || (pre && strcmp(pre, "gpt-2") && strcmp(pre, "default") && !regex)) {
        zq_status st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': byte-level vocabulary with %s: give --tokenizer", g->path,
                               merges ? "a pre-tokenizer zquant has no regex for" : "no merges");
        free(pre);
        return st;
    }
    free(pre);
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *list = cJSON_AddArrayToObject(model, "merges");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    strings s = {tokens->val};
    for (uint64_t i = 0; i < tokens->count; i++) {
        size_t n;
        const char *p = next_string(&s, &n);
        char *piece = strndup(p, n);
        int32_t type = types ? (int32_t)zq_load_le32(types->val + 4 * i) : TOK_NORMAL;
        if (piece && (type == TOK_CONTROL || type == TOK_USER)) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i);
            cJSON_AddStringToObject(a, "content", piece);
            cJSON_AddBoolToObject(a, "special", type == TOK_CONTROL);
            cJSON_AddItemToArray(added, a);
        }
        if (piece && !cJSON_GetObjectItemCaseSensitive(vocab, piece)) cJSON_AddNumberToObject(vocab, piece, (double)i);
        free(piece);
    }
    s.p = merges->val;
    for (uint64_t i = 0; i < merges->count; i++) {
        size_t n;
        const char *p = next_string(&s, &n);
        char *m = strndup(p, n);
        if (m) cJSON_AddItemToArray(list, cJSON_CreateString(m));
        free(m);
    }
    cJSON *pt = cJSON_AddObjectToObject(root, "pre_tokenizer");
    if (regex) {
        cJSON_AddStringToObject(pt, "type", "Sequence");
        cJSON *seq = cJSON_AddArrayToObject(pt, "pretokenizers"), *split = cJSON_CreateObject(), *bl = cJSON_CreateObject();
        cJSON_AddStringToObject(split, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", regex);
        cJSON_AddStringToObject(split, "behavior", "Isolated");
        cJSON_AddStringToObject(bl, "type", "ByteLevel");
        cJSON_AddBoolToObject(bl, "use_regex", 0);
        cJSON_AddItemToArray(seq, split);
        cJSON_AddItemToArray(seq, bl);
    } else {
        cJSON_AddStringToObject(pt, "type", "ByteLevel");
    }
    *data = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!*data) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    *len = strlen(*data);
    return ZQ_OK;
}

zq_status zq_gguf_tokenizer(const char *path, char **name, char **data, size_t *len, zq_error *err)
{
    *name = *data = NULL;
    *len = 0;
    zq_gguf *g;
    ZQ_TRY(zq_gguf_open(path, &g, err));
    char *model = zq_gguf_string(g, "tokenizer.ggml.model");
    const zq_gguf_kv *tokens = array_of(g, "tokenizer.ggml.tokens", GGUF_STRING, 0);
    int spm = model && !strcmp(model, "llama"), bpe = model && !strcmp(model, "gpt2");
    zq_status st = ZQ_OK;
    if (tokens && (spm || bpe)) {
        st = spm ? spm_as_llama2c(g, tokens, data, len, err) : bpe_as_json(g, tokens, data, len, err);
        *name = malloc(strlen(path) + 32);
        if (st == ZQ_OK && !*name) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK) sprintf(*name, "%s:%s", path, spm ? "tokenizer.bin" : "tokenizer.json");
    } else if (tokens) {
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tokenizer model '%s' is not one zquant reads (llama, gpt2): give "
                     "--tokenizer", path, model);
    }
    free(model);
    zq_gguf_close(g);
    if (st != ZQ_OK) {
        free(*name), free(*data);
        *name = *data = NULL;
    }
    return st;
}
