/* The vocabulary table and BPE merge loop both tokenizer formats share, and
 * the llama2.c format itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "base/utf8.h"
#include "base/files.h"
#include "export/export_impl.h"
#include "zquant/zq.h"
#include "tok/tokenizer_impl.h"

#define LLAMA2C_BOS 1
#define TEXT_LIMIT ((size_t)1 << 34)

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

int zq_tok_lookup(const zq_tokenizer *t, const char *s, size_t n)
{
    for (size_t k = hash(s, n) & (t->table_size - 1);; k = (k + 1) & (t->table_size - 1)) {
        int id = t->table[k];
        if (id < 0) return -1;
        if ((size_t)t->piece_len[id] == n && memcmp(t->piece[id], s, n) == 0) return id;
    }
}

int zq_tok_add_piece(zq_tokenizer *t, const char *s, size_t n, float score)
{
    if (t->vocab % 1024 == 0) {
        size_t cap = (size_t)t->vocab + 1024;
        char **p = realloc(t->piece, cap * sizeof *p);
        if (p) t->piece = p;
        int *l = realloc(t->piece_len, cap * sizeof *l);
        if (l) t->piece_len = l;
        float *sc = realloc(t->score, cap * sizeof *sc);
        if (sc) t->score = sc;
        if (!p || !l || !sc) return 0;
    }
    char *piece = malloc(n + 1);
    if (!piece) return 0;
    memcpy(piece, s, n);
    piece[n] = 0;
    t->piece[t->vocab] = piece;
    t->piece_len[t->vocab] = (int)n;
    t->score[t->vocab++] = score;
    if (n > t->longest) t->longest = n;
    return 1;
}

int zq_tok_index(zq_tokenizer *t)
{
    t->table_size = 1;
    while (t->table_size < (size_t)t->vocab * 2) t->table_size <<= 1;
    t->table = malloc(t->table_size * sizeof *t->table);
    if (!t->table) return 0;
    memset(t->table, 0xff, t->table_size * sizeof *t->table);
    for (int id = 0; id < t->vocab; id++) {
        if (zq_tok_lookup(t, t->piece[id], (size_t)t->piece_len[id]) >= 0) continue; /* first id wins */
        size_t k = hash(t->piece[id], (size_t)t->piece_len[id]) & (t->table_size - 1);
        while (t->table[k] >= 0) k = (k + 1) & (t->table_size - 1);
        t->table[k] = id;
    }
    return 1;
}

void zq_tok_free_pieces(zq_tokenizer *t)
{
    for (int i = 0; t->piece && i < t->vocab; i++) free(t->piece[i]);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->table);
}

void zq_tokenizer_free(zq_tokenizer *t)
{
    if (!t) return;
    zq_tok_free_pieces(t);
    zq_hf_free(t->hf);
    free(t);
}

int zq_tokenizer_vocab(const zq_tokenizer *t) { return t->vocab; }
int zq_tokenizer_bos(const zq_tokenizer *t) { return t->bos; }

int zq_tok_reserve(int32_t **ids, size_t n, size_t *cap, size_t more)
{
    if (n + more <= *cap) return 1;
    size_t nc = *cap ? *cap : 4096;
    while (nc < n + more) nc *= 2;
    int32_t *g = realloc(*ids, nc * sizeof *g);
    if (!g) return 0;
    *ids = g;
    *cap = nc;
    return 1;
}

/* ---- BPE merging with a heap: the best pair first, leftmost on ties ---- */

typedef struct {
    float score;
    int left;              /* symbol index (the left symbol's original position) */
    int merged;            /* the id it becomes */
    int left_id, right_id; /* ids when queued: stale entries are skipped */
} cand;

static int better(const cand *a, const cand *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
    cand *h;
    size_t n, cap;
} heap;

static int heap_push(heap *q, cand c)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        cand *h = realloc(q->h, cap * sizeof *h);
        if (!h) return 0;
        q->h = h;
        q->cap = cap;
    }
    size_t i = q->n++;
    while (i && better(&c, &q->h[(i - 1) / 2])) {
        q->h[i] = q->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->h[i] = c;
    return 1;
}

static cand heap_pop(heap *q)
{
    cand top = q->h[0], last = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && better(&q->h[c + 1], &q->h[c])) c++;
        if (!better(&q->h[c], &last)) break;
        q->h[i] = q->h[c];
        i = c;
    }
    if (q->n) q->h[i] = last;
    return top;
}

static int queue_pair(const zq_tokenizer *t, heap *q, const int32_t *ids, const int *next, int left, zq_pair_fn pair)
{
    if (left < 0 || next[left] < 0) return 1;
    int a = ids[left], b = ids[next[left]], merged;
    float score;
    if (!pair(t, a, b, &merged, &score)) return 1;
    return heap_push(q, (cand){score, left, merged, a, b});
}

int zq_tok_merge(const zq_tokenizer *t, int32_t *ids, int *count, zq_pair_fn pair)
{
    int n = *count;
    if (n < 2) return 1;
    int *next = malloc((size_t)n * sizeof *next), *prev = malloc((size_t)n * sizeof *prev);
    heap q = {0};
    int ok = next && prev;
    for (int i = 0; ok && i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
    }
    for (int i = 0; ok && i + 1 < n; i++) ok = queue_pair(t, &q, ids, next, i, pair);
    while (ok && q.n) {
        cand c = heap_pop(&q);
        int right = next[c.left];
        if (ids[c.left] != c.left_id || right < 0 || ids[right] != c.right_id) continue;
        ids[c.left] = c.merged; /* the right symbol leaves the list */
        ids[right] = -1;
        next[c.left] = next[right];
        if (next[right] >= 0) prev[next[right]] = c.left;
        ok = queue_pair(t, &q, ids, next, prev[c.left], pair) && queue_pair(t, &q, ids, next, c.left, pair);
    }
    int k = 0; /* compact the survivors, in order */
    for (int i = 0; ok && i >= 0 && k < n; i = next[i]) ids[k++] = ids[i];
    if (ok) *count = k;
    free(next);
    free(prev);
    free(q.h);
    return ok;
}

/* ---- llama2.c ------------------------------------------------------------- */

int zq_tok_lookup_pair(const zq_tokenizer *t, int a, int b)
{
    size_t la = (size_t)t->piece_len[a], lb = (size_t)t->piece_len[b];
    char buf[512], *s = la + lb <= sizeof buf ? buf : malloc(la + lb);
    if (!s) return -1;
    memcpy(s, t->piece[a], la);
    memcpy(s + la, t->piece[b], lb);
    int m = zq_tok_lookup(t, s, la + lb);
    if (s != buf) free(s);
    return m;
}

static int llama2c_pair(const zq_tokenizer *t, int a, int b, int *merged, float *score)
{
    int m = zq_tok_lookup_pair(t, a, b);
    if (m < 0) return 0;
    *merged = m;
    *score = t->score[m];
    return 1;
}

static zq_status load_llama2c(zq_tokenizer *t, const char *path, const char *buf, size_t len, zq_error *err)
{
    if (len < 4) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': not a llama2.c tokenizer (too short)", path);
    for (size_t at = 4; at < len;) {
        if (len - at < 8) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': truncated at byte %zu", path, at);
        float score = zq_load_lef32(buf + at);
        int32_t n = (int32_t)zq_load_le32(buf + at + 4);
        at += 8;
        if (n < 0 || (size_t)n > len - at) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': piece %d runs past the end", path, t->vocab);
        if (!zq_tok_add_piece(t, buf + at, (size_t)n, score)) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        at += (size_t)n;
    }
    if (t->vocab < 259) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': %d pieces; a llama2.c tokenizer has 259 or more", path, t->vocab);
    t->bos = LLAMA2C_BOS;
    return ZQ_OK;
}

/* buf is NUL-terminated (a tokenizer.json is parsed as a string). */
static zq_status parse(const char *name, const char *buf, size_t len, zq_tokenizer **out, zq_error *err)
{
    *out = NULL;
    zq_tokenizer *t = calloc(1, sizeof *t);
    zq_status st = t ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    size_t pl = strlen(name);
    if (st == ZQ_OK) {
        if (pl >= 5 && strcmp(name + pl - 5, ".json") == 0) st = zq_hf_load(t, name, buf, err);
        else st = load_llama2c(t, name, buf, len, err);
    }
    if (st == ZQ_OK && !zq_tok_index(t)) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st != ZQ_OK) {
        zq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ZQ_OK;
}

zq_status zq_tokenizer_parse(const char *name, const void *data, size_t len, zq_tokenizer **out, zq_error *err)
{
    *out = NULL;
    char *buf = malloc(len + 1);
    if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    memcpy(buf, data, len);
    buf[len] = 0;
    zq_status st = parse(name, buf, len, out, err);
    free(buf);
    return st;
}

zq_status zq_tokenizer_load(const char *path, zq_tokenizer **out, zq_error *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    ZQ_TRY(zq_read_input_file(path, (size_t)256 << 20, &buf, &len, err));
    zq_status st = parse(path, buf, len, out, err);
    free(buf);
    return st;
}

const char *const zq_tokenizer_files[] = {"tokenizer.bin", "tokenizer.json", NULL};

zq_status zq_tokenizer_of_model(const char *model, zq_tokenizer **out, zq_error *err)
{
    *out = NULL;
    char *name, *data;
    size_t len;
    size_t n = strlen(model);
    int gguf = n > 5 && !strcmp(model + n - 5, ".gguf");
    /* a GGUF file holds its vocabulary; the files beside it are a fallback */
    ZQ_TRY(gguf ? zq_gguf_tokenizer(model, &name, &data, &len, err) : ZQ_OK);
    if (!gguf || !data) ZQ_TRY(zq_model_file(model, zq_tokenizer_files, &name, &data, &len, err));
    zq_status st = data ? parse(name, data, len, out, err) : ZQ_OK;
    free(name), free(data);
    return st;
}

static zq_status encode_llama2c(const zq_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
                                size_t *cap, zq_error *err)
{
    /* a leading space, then whole code points, bytes falling back to 3..258 */
    if (!len) return ZQ_OK;
    if (len > 0x3fffffff) return zq_fail(err, ZQ_ERR_DATA, "a document of %zu bytes is too long", len);
    if (!zq_tok_reserve(ids, *n, cap, len + 1)) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    int32_t *s = *ids + *n;
    int count = 0, space = zq_tok_lookup(t, " ", 1);
    s[count++] = space >= 0 ? space : ' ' + 3;
    for (size_t i = 0; i < len;) {
        size_t k = 1; /* a lead byte and its continuation bytes, at most 4 */
        while (i + k < len && k < 4 && ((unsigned char)text[i + k] & 0xc0) == 0x80) k++;
        int id = zq_tok_lookup(t, text + i, k);
        if (id >= 0) s[count++] = id;
        else
            for (size_t b = 0; b < k; b++) s[count++] = (unsigned char)text[i + b] + 3;
        i += k;
    }
    if (!zq_tok_merge(t, s, &count, llama2c_pair)) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    *n += (size_t)count;
    return ZQ_OK;
}

zq_status zq_tokenizer_encode(const zq_tokenizer *t, const char *text, size_t len, int bos, int32_t **ids, size_t *n,
                              size_t *cap, zq_error *err)
{
    if (!zq_tok_reserve(ids, *n, cap, 1)) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (bos && t->bos >= 0) (*ids)[(*n)++] = t->bos;
    if (t->hf) return zq_hf_encode(t, text, len, ids, n, cap, err);
    return encode_llama2c(t, text, len, ids, n, cap, err);
}

const char *zq_tokenizer_decode(const zq_tokenizer *t, int32_t prev, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->vocab) {
        *len = 0;
        return "";
    }
    if (t->hf) return zq_hf_decode(t, prev, id, len);
    const char *p = t->piece[id];
    *len = (size_t)t->piece_len[id];
    if (prev == t->bos && p[0] == ' ') p++, (*len)--;
    unsigned byte;
    if (*len == 6 && sscanf(p, "<0x%02X>", &byte) == 1) {
        static _Thread_local char one[2];
        one[0] = (char)byte;
        *len = 1;
        return one;
    }
    return p;
}

char *zq_text_utf8(const char *text, size_t len)
{
    char *out = malloc(3 * len + 1), *o = out;
    for (size_t i = 0; out && i < len;) {
        size_t k = zq_utf8_char((const unsigned char *)text + i, len - i);
        if (k) {
            memcpy(o, text + i, k);
            o += k, i += k;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3, i++;
        }
    }
    if (out) *o = 0;
    return out;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

zq_status zq_tokenize_documents(const zq_tokenizer *t, const char *path, int32_t **ids, size_t *n, zq_error *err)
{
    char *text;
    size_t len, cap = 0;
    *ids = NULL;
    *n = 0;
    ZQ_TRY(zq_read_input_file(path, TEXT_LIMIT, &text, &len, err));
    static const char sep[] = "<|endoftext|>";
    zq_status st = ZQ_OK;
    size_t doc = 0;
    while (st == ZQ_OK && doc <= len) {
        size_t end = len; /* the next line that holds only the separator */
        for (size_t line = doc; line < len;) {
            size_t eol = line;
            while (eol < len && text[eol] != '\n') eol++;
            size_t a = line, b = eol;
            while (a < b && is_space(text[a])) a++;
            while (b > a && is_space(text[b - 1])) b--;
            if (b - a == sizeof sep - 1 && memcmp(text + a, sep, sizeof sep - 1) == 0) {
                end = line;
                break;
            }
            line = eol + 1;
        }
        size_t a = doc, b = end;
        while (a < b && is_space(text[a])) a++;
        while (b > a && is_space(text[b - 1])) b--;
        if (b > a) st = zq_tokenizer_encode(t, text + a, b - a, 1, ids, n, &cap, err);
        if (end == len) break;
        while (end < len && text[end] != '\n') end++;
        doc = end + 1;
    }
    free(text);
    if (st == ZQ_OK && *n == 0) st = zq_fail(err, ZQ_ERR_DATA, "'%s': no text to tokenize", path);
    if (st != ZQ_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}
