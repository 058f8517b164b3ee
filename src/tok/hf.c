/* Hugging Face tokenizer.json, BPE models: byte-level BPE as GPT-2 uses it
 * (a regex pre-tokenizer, bytes mapped to printable characters), and
 * SentencePiece-style BPE as Llama uses it ("▁" for spaces, a "▁" prepended,
 * byte fallback to <0xXX> pieces). Regexes with Unicode classes go to PCRE2,
 * Unicode normalization (NFC, NFKC) to utf8proc. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <utf8proc.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "tok/tokenizer_impl.h"

/* GPT-2's pre-tokenizer, as Hugging Face's ByteLevel(use_regex) applies it */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char meta[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's space */

#define MAX_SPLITS 8

struct zq_hf {
    int byte_level;
    pcre2_code *splits[MAX_SPLITS]; /* applied in order, each to every piece the last made */
    int nsplits;
    int prepend, replace_space, metaspace_split;
    /* the normalizer's Unicode form: 0 none, else utf8proc's options for
     * NFC or NFKC; late: it comes after the normalizer's Replace (NFKC
     * turns some spaces into " ", which then stay spaces) */
    int unicode_form, unicode_late;
    int byte_fallback, ignore_merges, unk;
    int byte_id[256];
    char bl[256][3];
    unsigned char bl_len[256];
    int bl_rev[512]; /* code point -> byte, for decoding byte-level pieces */
    uint64_t *mkey;  /* merges: (left id, right id) + 1 -> rank, open addressing */
    int *mrank;
    size_t msize;
};

void zq_hf_free(zq_hf *hf)
{
    if (!hf) return;
    for (int k = 0; k < hf->nsplits; k++) pcre2_code_free(hf->splits[k]);
    free(hf->mkey);
    free(hf->mrank);
    free(hf);
}

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to
 * code points from 256 up, in byte order. */
static void byte_level_table(zq_hf *hf)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        int cp = printable ? b : 256 + n++;
        if (cp < 0x80) {
            hf->bl[b][0] = (char)cp;
            hf->bl_len[b] = 1;
        } else {
            hf->bl[b][0] = (char)(0xc0 | cp >> 6);
            hf->bl[b][1] = (char)(0x80 | (cp & 0x3f));
            hf->bl_len[b] = 2;
        }
        hf->bl_rev[cp] = b;
    }
}

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    return k ^ (k >> 33);
}

static int merge_rank(const zq_hf *hf, int a, int b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (size_t k = mix(key) & (hf->msize - 1);; k = (k + 1) & (hf->msize - 1)) {
        if (!hf->mkey[k]) return -1;
        if (hf->mkey[k] == key) return hf->mrank[k];
    }
}

static int merge_put(zq_hf *hf, int a, int b, int rank)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t k = mix(key) & (hf->msize - 1);
    while (hf->mkey[k] && hf->mkey[k] != key) k = (k + 1) & (hf->msize - 1);
    if (hf->mkey[k]) return 0; /* a repeated merge keeps its first rank */
    hf->mkey[k] = key;
    hf->mrank[k] = rank;
    return 1;
}

#define BAD(...) zq_fail(err, ZQ_ERR_FORMAT, __VA_ARGS__)

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static int is(const cJSON *o, const char *type)
{
    const char *s = str(o, "type");
    return s && strcmp(s, type) == 0;
}

/* Adds a splitting regex after those already there. */
static zq_status add_split(zq_hf *hf, const char *pattern, const char *path, zq_error *err)
{
    if (hf->nsplits == MAX_SPLITS) return BAD("'%s': more than %d splitting pre-tokenizers", path, MAX_SPLITS);
    if (hf->byte_level) return BAD("'%s': a Split after ByteLevel is not supported", path);
    if (hf->replace_space) return BAD("'%s': Split together with Metaspace is not supported", path);
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
    if (!re) return BAD("'%s': pre-tokenizer regex does not compile (at %zu)", path, (size_t)at);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* faster when available; fine without */
    hf->splits[hf->nsplits++] = re;
    return ZQ_OK;
}

/* One pre-tokenizer (possibly inside a Sequence). */
static zq_status pre_tokenizer(zq_hf *hf, const cJSON *p, const char *path, zq_error *err)
{
    if (!p || cJSON_IsNull(p)) return ZQ_OK;
    if (is(p, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) ZQ_TRY(pre_tokenizer(hf, it, path, err));
        return ZQ_OK;
    }
    if (is(p, "ByteLevel")) {
        const cJSON *use = cJSON_GetObjectItemCaseSensitive(p, "use_regex");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space")))
            return BAD("'%s': ByteLevel add_prefix_space is not supported", path);
        if (hf->byte_level) return BAD("'%s': two ByteLevel pre-tokenizers are not supported", path);
        if (!use || cJSON_IsTrue(use)) ZQ_TRY(add_split(hf, gpt2_pattern, path, err));
        hf->byte_level = 1; /* bytes map to characters after every split */
        return ZQ_OK;
    }
    if (is(p, "Split")) {
        const char *regex = str(cJSON_GetObjectItemCaseSensitive(p, "pattern"), "Regex");
        const char *behavior = str(p, "behavior");
        if (!regex || !behavior || strcmp(behavior, "Isolated") != 0 || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "invert")))
            return BAD("'%s': only Split with an Isolated regex pattern is supported", path);
        return add_split(hf, regex, path, err);
    }
    if (is(p, "Metaspace")) {
        const char *scheme = str(p, "prepend_scheme");
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space");
        if (hf->nsplits) return BAD("'%s': Metaspace together with Split is not supported", path);
        hf->prepend = scheme ? strcmp(scheme, "never") != 0 : !aps || cJSON_IsTrue(aps);
        hf->replace_space = 1;
        const cJSON *split = cJSON_GetObjectItemCaseSensitive(p, "split");
        hf->metaspace_split = !split || cJSON_IsTrue(split);
        return ZQ_OK;
    }
    return BAD("'%s': pre-tokenizer '%s' is not supported", path, str(p, "type") ? str(p, "type") : "?");
}

static zq_status normalizer(zq_hf *hf, const cJSON *n, const char *path, zq_error *err)
{
    if (!n || cJSON_IsNull(n)) return ZQ_OK;
    if (is(n, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(n, "normalizers")) ZQ_TRY(normalizer(hf, it, path, err));
        return ZQ_OK;
    }
    if (is(n, "Prepend") && str(n, "prepend") && !strcmp(str(n, "prepend"), meta)) {
        hf->prepend = 1;
        return ZQ_OK;
    }
    const char *from = str(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String"), *to = str(n, "content");
    if (is(n, "Replace") && from && to && !strcmp(from, " ") && !strcmp(to, meta)) {
        hf->replace_space = 1;
        return ZQ_OK;
    }
    if ((is(n, "NFC") || is(n, "NFKC")) && !hf->unicode_form) { /* as Hugging Face applies them */
        hf->unicode_form = UTF8PROC_STABLE | UTF8PROC_COMPOSE | (is(n, "NFKC") ? UTF8PROC_COMPAT : 0);
        hf->unicode_late = hf->replace_space;
        return ZQ_OK;
    }
    return BAD("'%s': normalizer '%s' is not supported", path, str(n, "type") ? str(n, "type") : "?");
}

/* Pieces indexed by id: model.vocab and added_tokens, holes left empty. */
static zq_status vocabulary(zq_tokenizer *t, const cJSON *vocab, const cJSON *added, const char *path, zq_error *err)
{
    int max = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) if (cJSON_IsNumber(it) && it->valueint > max) max = it->valueint;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsNumber(id) && id->valueint > max) max = id->valueint;
    }
    if (max < 0 || max > 10000000) return BAD("'%s': model.vocab is empty or not {token: id}", path);
    const char **byid = calloc((size_t)max + 1, sizeof *byid);
    if (!byid) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    cJSON_ArrayForEach(it, vocab) if (cJSON_IsNumber(it) && it->valueint >= 0) byid[it->valueint] = it->string;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsNumber(id) && id->valueint >= 0 && !byid[id->valueint]) byid[id->valueint] = str(it, "content");
    }
    zq_status st = ZQ_OK;
    for (int id = 0; st == ZQ_OK && id <= max; id++)
        if (!zq_tok_add_piece(t, byid[id] ? byid[id] : "", byid[id] ? strlen(byid[id]) : 0, 0))
            st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    free(byid);
    return st;
}

static zq_status merges(zq_tokenizer *t, zq_hf *hf, const cJSON *list, const char *path, zq_error *err)
{
    size_t n = (size_t)cJSON_GetArraySize(list);
    hf->msize = 16;
    while (hf->msize < 2 * n + 16) hf->msize <<= 1;
    hf->mkey = calloc(hf->msize, sizeof *hf->mkey);
    hf->mrank = calloc(hf->msize, sizeof *hf->mrank);
    if (!hf->mkey || !hf->mrank) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    int rank = 0, at = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        at++;
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it)) { /* "a b" */
            const char *sp = strchr(it->valuestring, ' ');
            if (!sp) return BAD("'%s': merge %d is not \"left right\"", path, at);
            a = it->valuestring, la = (size_t)(sp - a), b = sp + 1, lb = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) { /* ["a", "b"] */
            a = cJSON_GetArrayItem(it, 0)->valuestring, b = cJSON_GetArrayItem(it, 1)->valuestring;
            la = strlen(a), lb = strlen(b);
        } else {
            return BAD("'%s': merge %d is neither \"left right\" nor a pair", path, at);
        }
        int ia = zq_tok_lookup(t, a, la), ib = zq_tok_lookup(t, b, lb);
        if (ia < 0 || ib < 0) return BAD("'%s': merge %d names a piece that is not in the vocabulary", path, at);
        rank += merge_put(hf, ia, ib, rank); /* ranks stay 0..n-1 */
    }
    return ZQ_OK;
}

zq_status zq_hf_load(zq_tokenizer *t, const char *path, const char *json, zq_error *err)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(model)) {
        cJSON_Delete(root);
        return BAD("'%s': not a tokenizer.json (no \"model\")", path);
    }
    if (zq_json_bad_utf8(root->child)) {
        cJSON_Delete(root);
        return BAD("'%s': not valid UTF-8", path);
    }
    zq_hf *hf = calloc(1, sizeof *hf);
    zq_status st = hf ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    t->hf = hf;
    if (st == ZQ_OK && !is(model, "BPE")) st = BAD("'%s': model type '%s' is not supported (BPE only)", path, str(model, "type") ? str(model, "type") : "?");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (st == ZQ_OK) st = vocabulary(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), added, path, err);
    if (st == ZQ_OK && !zq_tok_index(t)) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = merges(t, hf, cJSON_GetObjectItemCaseSensitive(model, "merges"), path, err);
    if (st == ZQ_OK) st = normalizer(hf, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), path, err);
    if (st == ZQ_OK) st = pre_tokenizer(hf, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path, err);
    if (st == ZQ_OK) {
        byte_level_table(hf);
        hf->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
        hf->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
        const char *unk = str(model, "unk_token");
        hf->unk = unk ? zq_tok_lookup(t, unk, strlen(unk)) : -1;
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            hf->byte_id[b] = zq_tok_lookup(t, name, 6);
        }
        /* BOS: the first of the usual names that the file has */
        static const char *bos_names[] = {"<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>"};
        t->bos = -1;
        for (size_t k = 0; k < 4 && t->bos < 0; k++) t->bos = zq_tok_lookup(t, bos_names[k], strlen(bos_names[k]));
    }
    /* zq_tokenizer_load indexes again; keep one table */
    free(t->table);
    t->table = NULL;
    cJSON_Delete(root);
    return st;
}

int zq_hf_byte_level(const zq_tokenizer *t)
{
    return t->hf && t->hf->byte_level;
}

int zq_hf_unk(const zq_tokenizer *t)
{
    return t->hf ? t->hf->unk : -1;
}

size_t zq_hf_merges(const zq_tokenizer *t, int32_t (*pairs)[2])
{
    const zq_hf *hf = t->hf;
    size_t n = 0;
    for (size_t k = 0; hf && k < hf->msize; k++) {
        if (!hf->mkey[k]) continue;
        uint64_t key = hf->mkey[k] - 1;
        if (pairs) {
            pairs[hf->mrank[k]][0] = (int32_t)(key >> 32);
            pairs[hf->mrank[k]][1] = (int32_t)(uint32_t)key;
        }
        n++;
    }
    return n;
}

static int hf_pair(const zq_tokenizer *t, int a, int b, int *merged, float *score)
{
    int r = merge_rank(t->hf, a, b);
    if (r < 0) return 0;
    int m = zq_tok_lookup_pair(t, a, b);
    if (m < 0) return 0;
    *merged = m;
    *score = -(float)r; /* the lowest rank merges first */
    return 1;
}

/* BPE over one pre-tokenized word (already byte-level mapped or ▁-spaced). */
static zq_status encode_word(const zq_tokenizer *t, const char *w, size_t len, int32_t **ids, size_t *n, size_t *cap,
                             zq_error *err)
{
    const zq_hf *hf = t->hf;
    if (!len) return ZQ_OK;
    if (!zq_tok_reserve(ids, *n, cap, 4 * len)) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    int32_t *s = *ids + *n;
    int whole = hf->ignore_merges ? zq_tok_lookup(t, w, len) : -1;
    if (whole >= 0) {
        s[0] = whole;
        (*n)++;
        return ZQ_OK;
    }
    int count = 0;
    for (size_t i = 0; i < len;) {
        size_t k = 1;
        while (i + k < len && ((unsigned char)w[i + k] & 0xc0) == 0x80) k++;
        int id = zq_tok_lookup(t, w + i, k);
        if (id >= 0) s[count++] = id;
        else if (hf->byte_fallback)
            for (size_t b = 0; b < k; b++) {
                int bid = hf->byte_id[(unsigned char)w[i + b]];
                if (bid >= 0) s[count++] = bid;
                else if (hf->unk >= 0) s[count++] = hf->unk;
            }
        else if (hf->unk >= 0) s[count++] = hf->unk;
        i += k;
    }
    if (!zq_tok_merge(t, s, &count, hf_pair)) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    *n += (size_t)count;
    return ZQ_OK;
}

/* Maps a pre-tokenized word to byte-level characters, then encodes it. */
static zq_status encode_piece(const zq_tokenizer *t, const char *w, size_t len, char **buf, size_t *bcap, int32_t **ids,
                              size_t *n, size_t *cap, zq_error *err)
{
    const zq_hf *hf = t->hf;
    if (!hf->byte_level) return encode_word(t, w, len, ids, n, cap, err);
    if (2 * len > *bcap) {
        char *g = realloc(*buf, *bcap = 2 * len + 64);
        if (!g) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        *buf = g;
    }
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)w[i];
        memcpy(*buf + m, hf->bl[b], hf->bl_len[b]);
        m += hf->bl_len[b];
    }
    return encode_word(t, *buf, m, ids, n, cap, err);
}

/* Splits [s, s+len) with regex k, as Hugging Face's Split with behavior
 * Isolated does: every match is a piece, and so is every stretch between
 * two (empty matches make none); each piece goes through the next regex,
 * after the last to BPE. */
static zq_status split_and_encode(const zq_tokenizer *t, int k, const char *s, size_t len, char **buf, size_t *bcap,
                                  int32_t **ids, size_t *n, size_t *cap, zq_error *err)
{
    const zq_hf *hf = t->hf;
    if (k == hf->nsplits) return encode_piece(t, s, len, buf, bcap, ids, n, cap, err);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(hf->splits[k], NULL);
    if (!md) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    zq_status st = ZQ_OK;
    size_t gap = 0, at = 0; /* where the unsplit stretch starts, where the search goes on */
    while (st == ZQ_OK && at < len) {
        /* the text is checked for UTF-8 once, by the first search: checking
         * it again from each match to the end made long texts quadratic */
        uint32_t check = k == 0 && at == 0 ? 0 : PCRE2_NO_UTF_CHECK;
        int rc = pcre2_match(hf->splits[k], (PCRE2_SPTR)s, len, at, check, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) { /* a match limit, invalid UTF-8: never a silent end of the splitting */
            PCRE2_UCHAR why[256];
            pcre2_get_error_message(rc, why, sizeof why);
            st = zq_fail(err, rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21 ? ZQ_ERR_DATA : ZQ_ERR_INTERNAL,
                         "pre-tokenizer regex %d at byte %zu of the text: %s", k + 1, at, (const char *)why);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) { /* empty: search on from the next character */
            at = ov[0] + 1;
            while (at < len && ((unsigned char)s[at] & 0xc0) == 0x80) at++;
            continue;
        }
        if (ov[0] > gap) st = split_and_encode(t, k + 1, s + gap, ov[0] - gap, buf, bcap, ids, n, cap, err);
        if (st == ZQ_OK) st = split_and_encode(t, k + 1, s + ov[0], ov[1] - ov[0], buf, bcap, ids, n, cap, err);
        gap = at = ov[1];
    }
    if (st == ZQ_OK && gap < len) st = split_and_encode(t, k + 1, s + gap, len - gap, buf, bcap, ids, n, cap, err);
    pcre2_match_data_free(md);
    return st;
}

/* text in the normalizer's Unicode form, malloc'd (*len updated) */
static zq_status unicode_normalize(const zq_hf *hf, const char *text, size_t *len, char **out, zq_error *err)
{
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)*len, &dst,
                                      (utf8proc_option_t)hf->unicode_form);
    if (m < 0)
        return zq_fail(err, m == UTF8PROC_ERROR_NOMEM ? ZQ_ERR_NOMEM : ZQ_ERR_DATA, "Unicode normalization: %s",
                       utf8proc_errmsg(m));
    *out = (char *)dst;
    *len = (size_t)m;
    return ZQ_OK;
}

static zq_status encode_normalized(const zq_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
                                   size_t *cap, zq_error *err);

zq_status zq_hf_encode(const zq_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap,
                       zq_error *err)
{
    const zq_hf *hf = t->hf;
    if (!hf->unicode_form || hf->unicode_late) return encode_normalized(t, text, len, ids, n, cap, err);
    char *norm = NULL;
    ZQ_TRY(unicode_normalize(hf, text, &len, &norm, err));
    zq_status st = encode_normalized(t, norm, len, ids, n, cap, err);
    free(norm);
    return st;
}

static zq_status encode_normalized(const zq_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
                                   size_t *cap, zq_error *err)
{
    const zq_hf *hf = t->hf;
    /* SentencePiece-style normalization: "▁" first, spaces become "▁" */
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t nlen = len + (hf->replace_space ? 2 * spaces : 0) + (hf->prepend && len ? 3 : 0);
    char *norm = malloc(nlen + 1), *buf = NULL;
    size_t bcap = 0;
    if (!norm) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    size_t m = 0;
    if (hf->prepend && len) memcpy(norm, meta, 3), m = 3;
    for (size_t i = 0; i < len; i++) {
        if (hf->replace_space && text[i] == ' ') memcpy(norm + m, meta, 3), m += 3;
        else norm[m++] = text[i];
    }
    zq_status st = ZQ_OK;
    if (hf->unicode_form && hf->unicode_late) { /* after the normalizer's Replace, as its Sequence says */
        char *late = NULL;
        st = unicode_normalize(hf, norm, &m, &late, err);
        free(norm);
        norm = late;
        if (st != ZQ_OK) return st;
    }
    if (hf->nsplits) {
        st = split_and_encode(t, 0, norm, m, &buf, &bcap, ids, n, cap, err);
    } else if (hf->metaspace_split) { /* a word starts at each "▁" */
        size_t start = 0;
        for (size_t i = 3; st == ZQ_OK && i + 3 <= m; i++)
            if (!memcmp(norm + i, meta, 3)) {
                st = encode_piece(t, norm + start, i - start, &buf, &bcap, ids, n, cap, err);
                start = i;
            }
        if (st == ZQ_OK) st = encode_piece(t, norm + start, m - start, &buf, &bcap, ids, n, cap, err);
    } else {
        st = encode_piece(t, norm, m, &buf, &bcap, ids, n, cap, err);
    }
    free(norm);
    free(buf);
    return st;
}

const char *zq_hf_decode(const zq_tokenizer *t, int32_t prev, int32_t id, size_t *len)
{
    static _Thread_local char out[1024];
    const zq_hf *hf = t->hf;
    const char *p = t->piece[id];
    size_t pl = (size_t)t->piece_len[id], m = 0;
    unsigned byte;
    if (pl == 6 && sscanf(p, "<0x%02X>", &byte) == 1) {
        out[0] = (char)byte;
        *len = 1;
        return out;
    }
    for (size_t i = 0; i < pl && m + 4 < sizeof out;) {
        unsigned char c = (unsigned char)p[i];
        if (hf->byte_level) { /* characters back to the bytes they stand for */
            int cp = c, k = 1;
            if ((c & 0xe0) == 0xc0 && i + 1 < pl) cp = (c & 0x1f) << 6 | ((unsigned char)p[i + 1] & 0x3f), k = 2;
            out[m++] = cp < 512 ? (char)hf->bl_rev[cp] : '?';
            i += (size_t)k;
        } else if (pl - i >= 3 && !memcmp(p + i, meta, 3)) {
            if (!(m == 0 && i == 0 && prev == t->bos && hf->prepend)) out[m++] = ' ';
            i += 3;
        } else {
            out[m++] = (char)c;
            i++;
        }
    }
    *len = m;
    return out;
}
