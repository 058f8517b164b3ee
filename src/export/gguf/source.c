/* A GGUF file read back as a checkpoint, so `zquant eval out.gguf` and
 * `zquant generate` run what llama.cpp runs: each tensor decoded to float
 * under its Hugging Face name and in Hugging Face's layout (the export's
 * inverse: the architecture table's names, llama's q/k rows back to
 * rotate-halves order, GPT-2's Conv1D matrices back to [in, out]), and a
 * config.json made from the GGUF keys. */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export_impl.h"
#include "export/target.h"
#include "export/gguf/rows.h"
#include "export/gguf/read.h"
#include "io/source_impl.h"

typedef struct {
    const zq_gguf_tensor *t;
    zq_gguf_rows order; /* where llama.cpp keeps each Hugging Face row */
    int conv1d; /* Hugging Face's layout is the transpose */
    float add;  /* added to every value of a vector: -1 for Gemma's norms (llama.cpp's are 1 + w) */
    uint64_t row_base; /* an expert of a stacked tensor: its first row */
    float *whole; /* decoded whole (vectors, Conv1D), until released */
} gs_tensor;

typedef struct {
    zq_gguf *g;
    gs_tensor *t;
    pthread_mutex_t lock;
} gs_impl;

/* Whether name is pattern with %d standing for a block number (into *layer). */
static int name_match(const char *pattern, const char *name, int *layer)
{
    const char *d = strstr(pattern, "%d");
    *layer = -1;
    if (!d) return !strcmp(pattern, name);
    size_t pre = (size_t)(d - pattern);
    if (strncmp(pattern, name, pre)) return 0;
    const char *p = name + pre, *end = p;
    long v = 0;
    while (*end >= '0' && *end <= '9' && v <= 100000) v = v * 10 + (*end++ - '0');
    /* digits only, as llama.cpp writes them: not " 0", "00" or "+1" */
    if (end == p || v > 100000 || (*p == '0' && end - p > 1)) return 0;
    *layer = (int)v;
    return !strcmp(end, d + 2);
}

static zq_status decode_whole(gs_impl *im, size_t i, zq_error *err)
{
    gs_tensor *x = &im->t[i];
    pthread_mutex_lock(&im->lock);
    if (!x->whole) {
        uint64_t rows = x->t->ndim > 1 ? x->t->ne[1] : 1, n = x->t->ne[0];
        x->whole = malloc(rows * n * sizeof *x->whole);
        for (uint64_t r = 0; x->whole && r < rows; r++)
            zq_ggml_decode_row(x->t->type, x->t->data + r * zq_ggml_row_bytes(x->t->type, n), n, x->whole + r * n);
    }
    pthread_mutex_unlock(&im->lock);
    return x->whole ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
}

static zq_status read_gguf(zq_source *src, size_t i, uint64_t row0, uint64_t nrows, uint64_t col0, uint64_t ncols,
                           float *out, zq_error *err)
{
    gs_impl *im = src->impl;
    gs_tensor *x = &im->t[i];
    uint64_t n0 = x->t->ne[0];
    if (x->t->ndim == 1 || x->conv1d) {
        ZQ_TRY(decode_whole(im, i, err));
        for (uint64_t r = 0; r < nrows; r++)
            for (uint64_t c = 0; c < ncols; c++) {
                uint64_t hr = row0 + r, hc = col0 + c;
                out[r * ncols + c] = x->t->ndim == 1 ? x->whole[zq_gguf_rows_target(&x->order, hc)] + x->add
                                                     : x->whole[hc * n0 + hr]; /* HF [in, out] */
            }
        return ZQ_OK;
    }
    float *row = malloc(n0 * sizeof *row);
    if (!row) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (uint64_t r = 0; r < nrows; r++) {
        uint64_t gr = x->row_base + zq_gguf_rows_target(&x->order, row0 + r);
        zq_ggml_decode_row(x->t->type, x->t->data + gr * zq_ggml_row_bytes(x->t->type, n0), n0, row);
        memcpy(out + r * ncols, row + col0, ncols * sizeof *row);
    }
    free(row);
    return ZQ_OK;
}

static void release_gguf(zq_source *src, size_t i, uint64_t row0, uint64_t nrows)
{
    gs_impl *im = src->impl;
    (void)row0, (void)nrows;
    pthread_mutex_lock(&im->lock);
    free(im->t[i].whole);
    im->t[i].whole = NULL;
    pthread_mutex_unlock(&im->lock);
}

static void close_gguf(zq_source *src)
{
    gs_impl *im = src->impl;
    if (!im) return;
    for (size_t i = 0; im->t && i < src->count; i++) free(im->t[i].whole);
    free(im->t);
    zq_gguf_close(im->g);
    pthread_mutex_destroy(&im->lock);
    free(im);
    src->impl = NULL;
}

static const zq_source_ops gguf_ops = {read_gguf, release_gguf, close_gguf, NULL, NULL, NULL, NULL, NULL};

/* The window as llama.cpp runs it: attention.sliding_window over the
 * layers of attention.sliding_window_pattern (every n-th full) where
 * llama.cpp applies it (absent: its default, the config class's), none
 * where it does not. */
static void window_config(const zq_gguf *g, const zq_arch_desc *d, const char *arch, cJSON *c)
{
    char key[128];
    uint64_t w, period;
    if (!d->window.key) return;
    snprintf(key, sizeof key, "%s.attention.sliding_window", arch);
    int runs = zq_gguf_runs_windows(arch), has = runs && zq_gguf_uint(g, key, &w);
    if (!runs) cJSON_AddNullToObject(c, d->window.key);
    if (!has) return;
    cJSON_AddNumberToObject(c, d->window.key, (double)w);
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
    if (!d->window.layer_types || !zq_gguf_uint(g, key, &period)) return;
    cJSON *types = cJSON_AddArrayToObject(c, "layer_types");
    uint64_t layers = 0;
    snprintf(key, sizeof key, "%s.block_count", arch);
    zq_gguf_uint(g, key, &layers);
    for (uint64_t l = 0; l < layers && l < 100000; l++) /* llama.cpp: layer l slides when l % period < period - 1 */
        cJSON_AddItemToArray(types, cJSON_CreateString(!period || l % period < period - 1 ? "sliding_attention"
                                                                                         : "full_attention"));
}

/* How much of a head rotates, from rope.dimension_count, as the row's key
 * says it: a fraction of the head (Phi-3, GPT-NeoX) or dimensions. */
static void rotary_config(const zq_gguf *g, const zq_arch_desc *d, const char *arch, cJSON *c)
{
    char key[128];
    uint64_t dims, hd, hidden, heads;
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    if (!d->rope_key || !zq_gguf_uint(g, key, &dims)) return;
    if (d->rope == ZQ_ROPE_DIM) {
        cJSON_AddNumberToObject(c, d->rope_key, (double)dims);
        return;
    }
    snprintf(key, sizeof key, "%s.attention.key_length", arch);
    if (!zq_gguf_uint(g, key, &hd)) {
        snprintf(key, sizeof key, "%s.embedding_length", arch);
        int ok = zq_gguf_uint(g, key, &hidden);
        snprintf(key, sizeof key, "%s.attention.head_count", arch);
        if (!ok || !zq_gguf_uint(g, key, &heads) || !heads) return;
        hd = hidden / heads;
    }
    if (hd) cJSON_AddNumberToObject(c, d->rope_key, (double)dims / (double)hd);
}

/* config.json as the architecture row names its keys, from the GGUF keys;
 * a value that is not a finite number is refused, never replaced by the
 * config's default. */
static zq_status make_config(const zq_gguf *g, const zq_arch_desc *d, const char *arch, uint64_t vocab, int tied,
                             char **out, zq_error *err)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "model_type", d->model_types[0]);
    struct {
        const char *hf, *gguf;
    } keys[] = {{d->hidden_key, "embedding_length"},      {d->heads_key, "attention.head_count"},
                {d->layers_key, "block_count"},           {d->inter_key, "feed_forward_length"},
                {d->max_pos_key, "context_length"},       {d->kv_heads_key, "attention.head_count_kv"},
                {d->eps_key, (d->flags & ZQ_ARCH_RMS_NORM) ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon"},
                {d->rope_theta_key, "rope.freq_base"},    {d->head_dim_key, "attention.key_length"},
                {d->scores.attn_cap_key, "attn_logit_softcapping"},
                {d->scores.final_cap_key, "final_logit_softcapping"}, {d->rope_base.local_key, "rope.freq_base_swa"},
                {d->moe.experts_key, "expert_count"},     {d->moe.topk_key, "expert_used_count"},
                {d->moe.inter_key, "expert_feed_forward_length"}};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        char key[128];
        snprintf(key, sizeof key, "%s.%s", arch, keys[k].gguf);
        uint64_t u;
        double f;
        if (!keys[k].hf) continue;
        if (zq_gguf_uint(g, key, &u)) cJSON_AddNumberToObject(c, keys[k].hf, (double)u);
        else if (zq_gguf_float(g, key, &f) && !isfinite((float)f)) {
            cJSON_Delete(c);
            return zq_fail(err, ZQ_ERR_FORMAT, "'%s': key '%s' is %g, not a finite number", g->path, key, f);
        } else if (zq_gguf_float(g, key, &f))
            cJSON_AddNumberToObject(c, keys[k].hf, (double)(float)f);
    }
    cJSON_AddNumberToObject(c, "vocab_size", (double)vocab);
    if (d->moe.norm_topk_key) /* llama.cpp's mixtures renormalize their experts' weights */
        cJSON_AddBoolToObject(c, d->moe.norm_topk_key, 1);
    rotary_config(g, d, arch, c);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", tied);
    window_config(g, d, arch, c);
    char key[128], *scaling_type;
    double factor;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    scaling_type = zq_gguf_string(g, key);
    snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
    if (d->rope_scaling_key && scaling_type && !strcmp(scaling_type, "linear") && zq_gguf_float(g, key, &factor)) {
        cJSON *s = cJSON_AddObjectToObject(c, d->rope_scaling_key);
        cJSON_AddStringToObject(s, "rope_type", "linear");
        cJSON_AddNumberToObject(s, "factor", (double)(float)factor);
    }
    free(scaling_type);
    char *scaling = zq_gguf_string(g, ZQ_GGUF_ROPE_SCALING_KEY);
    cJSON *s = scaling ? cJSON_Parse(scaling) : NULL;
    free(scaling);
    if (s && d->rope_scaling_key) cJSON_AddItemToObject(c, d->rope_scaling_key, s);
    else cJSON_Delete(s);
    char *extra = zq_gguf_string(g, ZQ_GGUF_CONFIG_KEY); /* zquant's: the config's own members win */
    cJSON *x = extra ? cJSON_Parse(extra) : NULL, *e;
    free(extra);
    cJSON_ArrayForEach(e, x) {
        if (cJSON_GetObjectItemCaseSensitive(c, e->string))
            cJSON_ReplaceItemInObjectCaseSensitive(c, e->string, cJSON_Duplicate(e, 1));
        else
            cJSON_AddItemToObject(c, e->string, cJSON_Duplicate(e, 1));
    }
    cJSON_Delete(x);
    *out = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return *out ? ZQ_OK : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
}

zq_status zq_gguf_source_open(zq_source *src, const char *path, zq_error *err)
{
    gs_impl *im = calloc(1, sizeof *im);
    if (!im) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&im->lock, NULL);
    src->impl = im;
    src->ops = &gguf_ops;
    ZQ_TRY(zq_gguf_open(path, &im->g, err));
    zq_gguf *g = im->g;
    char *arch = zq_gguf_string(g, "general.architecture");
    /* the row of zquant's model type when it is one of this architecture,
     * else the first of it (llama.cpp's llama reads as llama) */
    char *extra = zq_gguf_string(g, ZQ_GGUF_CONFIG_KEY);
    cJSON *config = extra ? cJSON_Parse(extra) : NULL;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(config, "model_type");
    const zq_arch_desc *d = NULL, *typed = cJSON_IsString(mt) ? zq_arch_find(mt->valuestring) : NULL;
    free(extra);
    cJSON_Delete(config);
    char experts_key[128];
    uint64_t experts = 0;
    snprintf(experts_key, sizeof experts_key, "%s.expert_count", arch ? arch : "");
    zq_gguf_uint(g, experts_key, &experts);
    for (const zq_arch_desc *r = zq_arch_table; arch && r->model_types[0] && !d; r++) /* with experts: a mixture's */
        if (r->gguf_arch && !strcmp(r->gguf_arch, arch) && (!experts || r->moe.experts_key)) d = r;
    if (d && typed && typed->gguf_arch && !strcmp(typed->gguf_arch, arch)) d = typed;
    zq_status st = d ? ZQ_OK : zq_fail(err, ZQ_ERR_FORMAT, "'%s': GGUF architecture '%s' is not one zquant reads", path,
                                       arch ? arch : "(none)");
    size_t slots = 1; /* one per tensor, one per expert of a stacked one */
    for (size_t k = 0; k < g->nt; k++) slots += g->t[k].ndim == 3 && g->t[k].ne[2] < 65536 ? g->t[k].ne[2] : 1;
    im->t = calloc(slots, sizeof *im->t);
    if (st == ZQ_OK && !im->t) st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    char key[128], blocks_key[128];
    uint64_t heads = 0, kv_heads = 0, vocab = 0, blocks = 0;
    snprintf(blocks_key, sizeof blocks_key, "%s.block_count", arch ? arch : "");
    if (st == ZQ_OK && !zq_gguf_uint(g, blocks_key, &blocks))
        st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': no key '%s'", path, blocks_key);
    snprintf(key, sizeof key, "%s.attention.head_count", arch ? arch : "");
    zq_gguf_uint(g, key, &heads);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch ? arch : "");
    if (!zq_gguf_uint(g, key, &kv_heads)) kv_heads = heads;
    for (size_t k = 0; st == ZQ_OK && k < g->nt; k++) {
        const zq_gguf_tensor *t = &g->t[k];
        const zq_arch_tensor *row = NULL;
        int layer = -1;
        for (const zq_arch_tensor *e = d->tensors; e->name && !row; e++)
            if (e->gguf && name_match(e->gguf, t->name, &layer)) row = e;
        /* llama.cpp's forms of rope scaling: the config zquant wrote beside
         * them says it (make_config); its parameters cannot be recovered
         * from the factors alone */
        static const struct {
            const char *prefix, *key, *what;
        } rope_tensors[] = {{"rope_freqs.weight", ZQ_GGUF_ROPE_SCALING_KEY, "Llama 3 rope scaling"},
                            {"rope_factors_", ZQ_GGUF_CONFIG_KEY, "longrope"}};
        int rope_tensor = -1;
        for (int r = 0; r < 2; r++)
            if (!strncmp(t->name, rope_tensors[r].prefix, strlen(rope_tensors[r].prefix))) rope_tensor = r;
        if (rope_tensor >= 0 && zq_gguf_find(g, rope_tensors[rope_tensor].key)) continue;
        if (rope_tensor >= 0) {
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': %s (%s) without zquant's %s: its parameters cannot be recovered "
                         "from the factors; read the original checkpoint", path, t->name, rope_tensors[rope_tensor].what,
                         rope_tensors[rope_tensor].key);
            break;
        }
        int stacked = row && (row->flags & ZQ_T_EXPERT); /* [experts][rows][cols] */
        if (!row || t->ndim > (stacked ? 3 : 2) || (stacked && (t->ndim != 3 || t->ne[2] >= 65536))) {
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is not one zquant knows in a %s model", path, t->name, arch);
            break;
        }
        if (layer >= 0 && (uint64_t)layer >= blocks) {
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' is of block %d, but %s is %llu", path, t->name, layer, blocks_key,
                         (unsigned long long)blocks);
            break;
        }
        for (uint64_t e = 0; st == ZQ_OK && e < (stacked ? t->ne[2] : 1); e++) { /* each expert a tensor */
            char name[256], plain[200];
            snprintf(plain, sizeof plain, row->name, layer, (int)e);
            snprintf(name, sizeof name, "%s%s", row->part == ZQ_PART_HEAD || !d->prefix ? "" : d->prefix, plain);
            gs_tensor *x = &im->t[src->count];
            x->t = t;
            x->conv1d = t->ndim == 2 && (row->flags & ZQ_T_CONV1D);
            x->add = (d->flags & ZQ_ARCH_NORM_PLUS_ONE) && zq_part_kind(row->part) == ZQ_KIND_NORM ? -1.0f : 0.0f;
            uint64_t rows = t->ndim >= 2 ? t->ne[1] : t->ne[0];
            x->row_base = e * rows;
            st = zq_gguf_rows_init(&x->order, row, rows, (int)heads, (int)kv_heads, path, t->name, err);
            if (st != ZQ_OK) break;
            int64_t shape[2] = {(int64_t)(x->conv1d || t->ndim == 1 ? t->ne[0] : t->ne[1]),
                                (int64_t)(x->conv1d ? t->ne[1] : t->ne[0])};
            if (row->part == ZQ_PART_EMBED && !(row->flags & ZQ_T_BIAS)) vocab = t->ne[1];
            size_t index;
            st = zq_source_add(src, name, ZQ_DT_F32, t->ndim == 1 ? 1 : 2, shape, &index, err);
        }
    }
    int tied = !zq_gguf_tensor_named(g, "output.weight");
    if (st == ZQ_OK) st = make_config(g, d, arch, vocab, tied, &src->config, err);
    free(arch);
    return st;
}
