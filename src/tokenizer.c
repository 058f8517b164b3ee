#include "zquant/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source_impl.h"

#define BOS 1
#define TEXT_LIMIT ((size_t)1 << 34)

struct zq_tokenizer {
    int vocab;
    char **piece;
    int *piece_len;
    float *score;
    int *table; /* open addressing: piece -> id, -1 empty */
    size_t table_size;
    size_t longest; /* bytes of the longest piece */
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int lookup(const zq_tokenizer *t, const char *s, size_t n)
{
    for (size_t k = hash(s, n) & (t->table_size - 1);; k = (k + 1) & (t->table_size - 1)) {
        int id = t->table[k];
        if (id < 0) return -1;
        if ((size_t)t->piece_len[id] == n && memcmp(t->piece[id], s, n) == 0) return id;
    }
}

void zq_tokenizer_free(zq_tokenizer *t)
{
    if (!t) return;
    for (int i = 0; t->piece && i < t->vocab; i++) free(t->piece[i]);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->table);
    free(t);
}

int zq_tokenizer_vocab(const zq_tokenizer *t) { return t->vocab; }

zq_status zq_tokenizer_load(const char *path, zq_tokenizer **out, zq_error *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    ZQ_TRY(zq_read_small_file(path, (size_t)64 << 20, &buf, &len, err));
    zq_tokenizer *t = calloc(1, sizeof *t);
    size_t cap = 1024;
    zq_status st = t ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    size_t at = 4;
    if (st == ZQ_OK && len < 4) st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': not a llama2.c tokenizer (too short)", path);
    while (st == ZQ_OK && at < len) {
        float score;
        int32_t n;
        if (len - at < 8) { st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': truncated at byte %zu", path, at); break; }
        memcpy(&score, buf + at, 4);
        memcpy(&n, buf + at + 4, 4);
        at += 8;
        if (n < 0 || (size_t)n > len - at) { st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': piece %d runs past the end", path, t->vocab); break; }
        if (t->vocab % 1024 == 0) {
            char **p = realloc(t->piece, (t->vocab + cap) * sizeof *p);
            int *l = realloc(t->piece_len, (t->vocab + cap) * sizeof *l);
            float *s = realloc(t->score, (t->vocab + cap) * sizeof *s);
            if (p) t->piece = p;
            if (l) t->piece_len = l;
            if (s) t->score = s;
            if (!p || !l || !s) { st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory"); break; }
        }
        char *piece = malloc((size_t)n + 1);
        if (!piece) { st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory"); break; }
        memcpy(piece, buf + at, (size_t)n);
        piece[n] = 0;
        at += (size_t)n;
        t->piece[t->vocab] = piece;
        t->piece_len[t->vocab] = n;
        if ((size_t)n > t->longest) t->longest = (size_t)n;
        t->score[t->vocab++] = score;
    }
    free(buf);
    if (st == ZQ_OK && t->vocab < 259) st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': %d pieces; a llama2.c tokenizer has 259 or more", path, t ? t->vocab : 0);
    if (st == ZQ_OK) {
        t->table_size = 1;
        while (t->table_size < (size_t)t->vocab * 2) t->table_size <<= 1;
        t->table = malloc(t->table_size * sizeof *t->table);
        if (!t->table) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        else {
            memset(t->table, 0xff, t->table_size * sizeof *t->table);
            for (int id = 0; id < t->vocab; id++) {
                if (lookup(t, t->piece[id], (size_t)t->piece_len[id]) >= 0) continue; /* first id wins */
                size_t k = hash(t->piece[id], (size_t)t->piece_len[id]) & (t->table_size - 1);
                while (t->table[k] >= 0) k = (k + 1) & (t->table_size - 1);
                t->table[k] = id;
            }
        }
    }
    if (st != ZQ_OK) {
        zq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ZQ_OK;
}

/* ---- BPE merging with a heap: the best pair first, leftmost on ties ---- */

typedef struct {
    float score;
    int left;   /* symbol index (original position of the left symbol) */
    int merged; /* id it becomes */
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

typedef struct {
    int32_t *id;
    int *next, *prev;
    char *buf; /* room for two pieces */
} symbols;

static int queue_pair(const zq_tokenizer *t, heap *q, symbols *s, int left)
{
    if (left < 0) return 1;
    int right = s->next[left];
    if (right < 0) return 1;
    int a = s->id[left], b = s->id[right];
    size_t la = (size_t)t->piece_len[a], lb = (size_t)t->piece_len[b];
    memcpy(s->buf, t->piece[a], la);
    memcpy(s->buf + la, t->piece[b], lb);
    int m = lookup(t, s->buf, la + lb);
    if (m < 0) return 1;
    return heap_push(q, (cand){t->score[m], left, m, a, b});
}

zq_status zq_tokenizer_encode(const zq_tokenizer *t, const char *text, size_t len, int bos, int32_t **ids, size_t *n,
                              size_t *cap, zq_error *err)
{
    size_t max_syms = len + 2;
    symbols s = {malloc(max_syms * sizeof(int32_t)), malloc(max_syms * sizeof(int)), malloc(max_syms * sizeof(int)), NULL};
    s.buf = malloc(2 * t->longest + 8);
    heap q = {0};
    zq_status st = s.id && s.next && s.prev && s.buf ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    int count = 0;
    if (st == ZQ_OK && len) {
        int space = lookup(t, " ", 1);
        s.id[count++] = space >= 0 ? space : ' ' + 3;
    }
    for (size_t i = 0; st == ZQ_OK && i < len;) {
        /* one UTF-8 code point: a lead byte and its continuation bytes (at most 4) */
        size_t k = 1;
        while (i + k < len && k < 4 && ((unsigned char)text[i + k] & 0xc0) == 0x80) k++;
        int id = lookup(t, text + i, k);
        if (id >= 0) s.id[count++] = id;
        else
            for (size_t b = 0; b < k; b++) s.id[count++] = (unsigned char)text[i + b] + 3;
        i += k;
    }
    for (int i = 0; i < count; i++) {
        s.next[i] = i + 1 < count ? i + 1 : -1;
        s.prev[i] = i - 1;
    }
    for (int i = 0; st == ZQ_OK && i + 1 < count; i++)
        if (!queue_pair(t, &q, &s, i)) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    while (st == ZQ_OK && q.n) {
        cand c = heap_pop(&q);
        int right = s.next[c.left];
        if (s.id[c.left] != c.left_id || right < 0 || s.id[right] != c.right_id || s.id[c.left] < 0) continue;
        s.id[c.left] = c.merged; /* the right symbol leaves the list */
        s.id[right] = -1;
        s.next[c.left] = s.next[right];
        if (s.next[right] >= 0) s.prev[s.next[right]] = c.left;
        if (!queue_pair(t, &q, &s, s.prev[c.left]) || !queue_pair(t, &q, &s, c.left))
            st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    size_t need = *n + (size_t)count + 1;
    if (st == ZQ_OK && need > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < need) nc *= 2;
        int32_t *g = realloc(*ids, nc * sizeof *g);
        if (!g) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        else *ids = g, *cap = nc;
    }
    if (st == ZQ_OK) {
        if (bos) (*ids)[(*n)++] = BOS;
        for (int i = count ? 0 : -1; i >= 0; i = s.next[i]) (*ids)[(*n)++] = s.id[i];
    }
    free(s.id);
    free(s.next);
    free(s.prev);
    free(s.buf);
    free(q.h);
    return st;
}

const char *zq_tokenizer_decode(const zq_tokenizer *t, int32_t prev, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->vocab) {
        *len = 0;
        return "";
    }
    const char *p = t->piece[id];
    *len = (size_t)t->piece_len[id];
    if (prev == BOS && p[0] == ' ') p++, (*len)--;
    unsigned byte;
    if (*len == 6 && sscanf(p, "<0x%02X>", &byte) == 1) {
        static _Thread_local char one[2];
        one[0] = (char)byte;
        *len = 1;
        return one;
    }
    return p;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

zq_status zq_tokenize_documents(const zq_tokenizer *t, const char *path, int32_t **ids, size_t *n, zq_error *err)
{
    char *text;
    size_t len, cap = 0;
    *ids = NULL;
    *n = 0;
    ZQ_TRY(zq_read_small_file(path, TEXT_LIMIT, &text, &len, err));
    static const char sep[] = "<|endoftext|>";
    zq_status st = ZQ_OK;
    size_t doc = 0, line = 0;
    while (st == ZQ_OK && doc <= len) {
        /* find the next line that holds only the separator */
        size_t end = len;
        for (line = doc; line < len;) {
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

/* ---- token files ------------------------------------------------------------ */

static zq_status npy_tokens(const char *path, const unsigned char *d, size_t len, int32_t **ids, size_t *n,
                            zq_error *err)
{
    if (len < 10) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': truncated .npy header", path);
    size_t hl = d[6] == 1 ? (size_t)(d[8] | d[9] << 8) : len >= 12 ? (size_t)(d[8] | d[9] << 8 | d[10] << 16 | (size_t)d[11] << 24) : 0;
    size_t start = (d[6] == 1 ? 10 : 12) + hl;
    if (start > len) return zq_fail(err, ZQ_ERR_FORMAT, "'%s': .npy header runs past the end", path);
    char hdr[1024];
    size_t hn = hl < sizeof hdr - 1 ? hl : sizeof hdr - 1;
    memcpy(hdr, d + (d[6] == 1 ? 10 : 12), hn);
    hdr[hn] = 0;
    char *descr = strstr(hdr, "'descr'");
    char kind = 0;
    int size = 0;
    if (descr) {
        char *q = strchr(descr + 7, '\'');
        if (q && (q[1] == '<' || q[1] == '|') && (q[2] == 'i' || q[2] == 'u')) kind = q[2], size = q[3] - '0';
    }
    if (!kind || (size != 1 && size != 2 && size != 4 && size != 8))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': .npy dtype must be a little-endian integer", path);
    if (strstr(hdr, "'fortran_order': True"))
        return zq_fail(err, ZQ_ERR_FORMAT, "'%s': Fortran-ordered .npy is not supported", path);
    size_t count = (len - start) / (size_t)size;
    *ids = malloc((count ? count : 1) * sizeof **ids);
    if (!*ids) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const unsigned char *p = d + start + i * (size_t)size;
        uint64_t u = 0;
        for (int b = size - 1; b >= 0; b--) u = u << 8 | p[b];
        int64_t v = (int64_t)u;
        if (kind == 'i' && size < 8 && (u >> (8 * size - 1)) & 1) v = (int64_t)(u | ~((1ull << (8 * size)) - 1)); /* sign-extend */
        if (v < 0 || v > INT32_MAX) {
            free(*ids);
            *ids = NULL;
            return zq_fail(err, ZQ_ERR_DATA, "'%s': token %zu is %lld, not a token id", path, i, (long long)v);
        }
        (*ids)[i] = (int32_t)v;
    }
    *n = count;
    return ZQ_OK;
}

zq_status zq_tokens_read(const char *path, int32_t **ids, size_t *n, zq_error *err)
{
    char *d;
    size_t len;
    *ids = NULL;
    *n = 0;
    ZQ_TRY(zq_read_small_file(path, TEXT_LIMIT, &d, &len, err));
    zq_status st = ZQ_OK;
    if (len >= 6 && memcmp(d, "\x93NUMPY", 6) == 0) {
        st = npy_tokens(path, (const unsigned char *)d, len, ids, n, err);
    } else if (len % 4) {
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': %zu bytes is not a whole number of uint32 ids", path, len);
    } else {
        *n = len / 4;
        *ids = malloc((*n ? *n : 1) * sizeof **ids);
        if (!*ids) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; st == ZQ_OK && i < *n; i++) {
            const unsigned char *p = (const unsigned char *)d + 4 * i;
            uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            if (v > INT32_MAX) st = zq_fail(err, ZQ_ERR_DATA, "'%s': token %zu is %u, not a token id", path, i, v);
            else (*ids)[i] = (int32_t)v;
        }
    }
    free(d);
    if (st == ZQ_OK && *n == 0) st = zq_fail(err, ZQ_ERR_DATA, "'%s': no tokens", path);
    if (st != ZQ_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}
