/* Architecture descriptions from config.json, and one block's forward. */
#include "zquant/engine.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "nn/nn.h"
#include "base/pool.h"

/* ---- config.json -------------------------------------------------------- */

static int num(const cJSON *o, const char *key, double *v)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j)) return 0;
    *v = j->valuedouble;
    return 1;
}

static int get_int(const cJSON *o, const char *key, int def)
{
    double v;
    return num(o, key, &v) && v >= 0 && v < 1e9 ? (int)v : def;
}

static double get_num(const cJSON *o, const char *key, double def)
{
    double v;
    return num(o, key, &v) ? v : def;
}

static int get_bool(const cJSON *o, const char *key, int def)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

static const char *get_str(const cJSON *o, const char *key, const char *def)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : def;
}

static int parse_act(const char *s, zq_activation_fn *fn)
{
    if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast")) *fn = ZQ_ACT_GELU_TANH;
    else if (!strcmp(s, "gelu")) *fn = ZQ_ACT_GELU_ERF;
    else if (!strcmp(s, "relu")) *fn = ZQ_ACT_RELU;
    else if (!strcmp(s, "silu") || !strcmp(s, "swish")) *fn = ZQ_ACT_SILU_GLU;
    else return 0;
    return 1;
}

#define BAD(...) zq_fail(err, ZQ_ERR_FORMAT, __VA_ARGS__)

/* Where each architecture's config.json keeps the sizes every forward pass
 * needs, and the defaults Hugging Face applies when a key is absent. */
typedef struct {
    const char *model_type;
    zq_arch_kind kind;
    const char *hidden, *heads, *layers, *inter, *max_pos, *eps, *act;
    int max_pos_default;
    double eps_default;
    const char *act_default;
} arch_keys;

static const arch_keys arch_table[] = {
    {"gpt2", ZQ_ARCH_GPT2, "n_embd", "n_head", "n_layer", "n_inner", "n_positions", "layer_norm_epsilon",
     "activation_function", 1024, 1e-5, "gelu_new"},
    {"opt", ZQ_ARCH_OPT, "hidden_size", "num_attention_heads", "num_hidden_layers", "ffn_dim",
     "max_position_embeddings", NULL, "activation_function", 2048, 1e-5, "relu"},
    {"gpt_neox", ZQ_ARCH_NEOX, "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
     "max_position_embeddings", "layer_norm_eps", "hidden_act", 2048, 1e-5, "gelu"},
    {"gptj", ZQ_ARCH_GPTJ, "n_embd", "n_head", "n_layer", "n_inner", "n_positions", "layer_norm_epsilon",
     "activation_function", 2048, 1e-5, "gelu_new"},
    {"llama", ZQ_ARCH_LLAMA, "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
     "max_position_embeddings", "rms_norm_eps", "hidden_act", 2048, 1e-6, "silu"},
    {"mistral", ZQ_ARCH_LLAMA, "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
     "max_position_embeddings", "rms_norm_eps", "hidden_act", 2048, 1e-6, "silu"},
    {"qwen2", ZQ_ARCH_LLAMA, "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
     "max_position_embeddings", "rms_norm_eps", "hidden_act", 2048, 1e-6, "silu"},
    {"bert", ZQ_ARCH_BERT, "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
     "max_position_embeddings", "layer_norm_eps", "hidden_act", 512, 1e-12, "gelu"},
};

static zq_status fill(const cJSON *c, const char *mt, const char *origin, zq_arch *a, zq_error *err)
{
    const arch_keys *k = NULL;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0] && !k; i++)
        if (!strcmp(arch_table[i].model_type, mt)) k = &arch_table[i];
    if (!k)
        return BAD("'%s': model_type '%s' has no forward pass in zquant (gpt2, opt, gpt_neox, gptj, llama, "
                   "mistral, qwen2, bert)", origin, mt);
    a->kind = k->kind;
    a->hidden = get_int(c, k->hidden, 0);
    a->n_heads = get_int(c, k->heads, 0);
    a->n_layers = get_int(c, k->layers, 0);
    a->inter = get_int(c, k->inter, a->kind == ZQ_ARCH_LLAMA ? 0 : 4 * a->hidden);
    a->max_pos = get_int(c, k->max_pos, k->max_pos_default);
    a->norm_eps = (float)(k->eps ? get_num(c, k->eps, k->eps_default) : k->eps_default);
    const char *act = get_str(c, k->act, k->act_default);
    a->pre_ln = a->causal = a->final_norm = 1;
    a->rope_theta = 10000;
    switch (a->kind) { /* what sets each apart */
    case ZQ_ARCH_GPT2: break;
    case ZQ_ARCH_OPT:
        a->pre_ln = get_bool(c, "do_layer_norm_before", 1);
        a->final_norm = a->pre_ln && !get_bool(c, "_remove_final_layer_norm", 0);
        a->pos_offset = 2;
        a->emb_dim = get_int(c, "word_embed_proj_dim", a->hidden);
        a->emb_proj = a->emb_dim != a->hidden;
        break;
    case ZQ_ARCH_NEOX:
        a->parallel = get_bool(c, "use_parallel_residual", 1);
        a->rope_theta = (float)get_num(c, "rotary_emb_base", 10000);
        break;
    case ZQ_ARCH_GPTJ:
        a->parallel = a->shared_norm = a->rope_interleaved = 1;
        break;
    case ZQ_ARCH_LLAMA: {
        a->n_kv_heads = get_int(c, "num_key_value_heads", a->n_heads);
        a->rms_norm = 1;
        a->rope_theta = (float)get_num(c, "rope_theta", 10000);
        a->head_dim = get_int(c, "head_dim", 0);
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
        if (rs && !cJSON_IsNull(rs)) return BAD("'%s': rope_scaling is not supported", origin);
        break;
    }
    case ZQ_ARCH_BERT:
        a->pre_ln = a->causal = a->final_norm = 0;
        a->token_types = a->mlm_head = 1;
        break;
    }
    if (!parse_act(act, &a->act)) return BAD("'%s': activation '%s' is not supported", origin, act);
    if (a->kind == ZQ_ARCH_LLAMA) {
        if (a->act != ZQ_ACT_SILU_GLU) return BAD("'%s': llama-style MLPs need silu", origin);
    } else if (a->act == ZQ_ACT_SILU_GLU) {
        return BAD("'%s': silu is only supported in llama-style gated MLPs", origin);
    }
    a->vocab = get_int(c, "vocab_size", 0);
    if (!a->n_kv_heads) a->n_kv_heads = a->n_heads;
    if (a->hidden <= 0 || a->n_heads <= 0 || a->n_layers <= 0 || a->vocab <= 0 || a->inter <= 0)
        return BAD("'%s': config lacks the model's sizes (hidden, heads, layers, vocab, intermediate)", origin);
    if (!a->head_dim) {
        if (a->hidden % a->n_heads) return BAD("'%s': hidden size %d is not a multiple of %d heads", origin, a->hidden, a->n_heads);
        a->head_dim = a->hidden / a->n_heads;
    }
    if (a->n_heads % a->n_kv_heads) return BAD("'%s': %d heads do not share %d key/value heads evenly", origin, a->n_heads, a->n_kv_heads);
    if (!a->emb_dim) a->emb_dim = a->hidden;
    if (a->kind == ZQ_ARCH_LLAMA) a->rotary_dims = a->head_dim;
    if (a->kind == ZQ_ARCH_NEOX) a->rotary_dims = (int)(a->head_dim * get_num(c, "rotary_pct", 0.25));
    if (a->kind == ZQ_ARCH_GPTJ) {
        const cJSON *rd = cJSON_GetObjectItemCaseSensitive(c, "rotary_dim");
        a->rotary_dims = cJSON_IsNumber(rd) ? rd->valueint : a->head_dim;
    }
    if (a->rotary_dims % 2 || a->rotary_dims > a->head_dim)
        return BAD("'%s': rotary dimensions %d do not fit heads of %d", origin, a->rotary_dims, a->head_dim);
    snprintf(a->model_type, sizeof a->model_type, "%s", mt);
    return ZQ_OK;
}

zq_status zq_arch_from_config(const char *config_json, const char *origin, zq_arch *a, zq_error *err)
{
    memset(a, 0, sizeof *a);
    if (!config_json) return BAD("'%s': no config.json: the forward pass needs the model's sizes", origin);
    cJSON *c = cJSON_Parse(config_json);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return BAD("'%s': config is not a JSON object", origin);
    }
    const char *mt = get_str(c, "model_type", NULL);
    zq_status st = mt ? fill(c, mt, origin, a, err) : BAD("'%s': config has no model_type", origin);
    cJSON_Delete(c);
    return st;
}

/* ---- threads ----------------------------------------------------------------- */

static int engine_threads;

void zq_engine_set_threads(int n)
{
    engine_threads = n;
    zq_blas_set_threads(zq_engine_threads());
}

int zq_engine_threads(void)
{
    if (engine_threads > 0) return engine_threads;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

/* ---- one block ------------------------------------------------------------ */

#include "nn/workspace.h"

static float *buf(zq_workspace *ws, size_t floats)
{
    float *p = malloc((floats ? floats : 1) * sizeof *p);
    if (!p) ws->failed = 1;
    else ws->owned[ws->nowned++] = p;
    return p;
}

zq_workspace *zq_workspace_create_ex(const zq_arch *a, int batch, int seq, int train)
{
    zq_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    size_t bt = (size_t)batch * seq, C = (size_t)a->hidden, qd = (size_t)a->n_heads * a->head_dim;
    size_t kvd = (size_t)a->n_kv_heads * a->head_dim, I = (size_t)a->inter;
    size_t widest = C > qd ? C : qd;
    widest = widest > I ? widest : I;
    ws->batch = batch;
    ws->seq = seq;
    ws->train = train;
    ws->threads = zq_engine_threads();
    ws->pool = zq_pool_create(ws->threads);
    ws->xn = buf(ws, bt * C), ws->xn2 = buf(ws, bt * C), ws->mid = buf(ws, bt * C), ws->mid2 = buf(ws, bt * C);
    ws->q = buf(ws, bt * qd), ws->k = buf(ws, bt * kvd), ws->v = buf(ws, bt * kvd), ws->att = buf(ws, bt * qd);
    ws->ao = buf(ws, bt * C), ws->mo = buf(ws, bt * C);
    ws->up = buf(ws, bt * I), ws->gate = buf(ws, bt * I), ws->act = buf(ws, bt * I), ws->aq = buf(ws, bt * widest);
    ws->scores = buf(ws, (size_t)ws->threads * seq * seq);
    size_t half = (size_t)(a->rotary_dims ? a->rotary_dims / 2 : 1);
    ws->cos_t = buf(ws, (size_t)seq * half), ws->sin_t = buf(ws, (size_t)seq * half);
    if (train) { /* what the backward pass reads, and its own scratch */
        ws->probs = buf(ws, bt * a->n_heads * seq);
        ws->dq = buf(ws, bt * qd), ws->dk = buf(ws, bt * kvd), ws->dv = buf(ws, bt * kvd), ws->datt = buf(ws, bt * qd);
        ws->dh1 = buf(ws, bt * C), ws->dh2 = buf(ws, bt * C), ws->dx1 = buf(ws, bt * C), ws->dtmp = buf(ws, bt * C);
        ws->dup = buf(ws, bt * I), ws->dgate = buf(ws, bt * I), ws->dact = buf(ws, bt * I);
        ws->dscores = buf(ws, (size_t)ws->threads * seq * seq);
    }
    if (ws->failed || !ws->pool) {
        zq_workspace_free(ws);
        return NULL;
    }
    if (a->rotary_dims) zq_rope_table(ws->cos_t, ws->sin_t, seq, a->rotary_dims, a->rope_theta);
    return ws;
}

zq_workspace *zq_workspace_create(const zq_arch *a, int batch, int seq) { return zq_workspace_create_ex(a, batch, seq, 0); }

void zq_workspace_set_cache(zq_workspace *ws, float *k, float *v, int pos0)
{
    ws->kcache = k;
    ws->vcache = v;
    ws->pos0 = pos0;
}

void zq_workspace_free(zq_workspace *ws)
{
    if (!ws) return;
    for (int k = 0; k < ws->nowned; k++) free(ws->owned[k]);
    zq_pool_free(ws->pool);
    free(ws);
}

/* out (rows, L->out) = x L.W^T + b, its input quantized as the mode says */
void zq_block_linear(const zq_linear *L, const zq_act_quant *aq, float *scratch, const float *x, float *out, int rows)
{
    const float *in = x;
    size_t n = (size_t)rows * L->in;
    if (L->quantized && aq && aq->mode != ZQ_AQ_NONE) {
        if (aq->mode == ZQ_AQ_CALIBRATE) {
            float m = aq->absmax[L->id];
            for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
            aq->absmax[L->id] = m;
        } else {
            memcpy(scratch, x, n * sizeof *x);
            if (aq->mode == ZQ_AQ_TOKEN) zq_fake_quant_tokens(scratch, rows, L->in);
            else zq_fake_quant_tensor(scratch, n, aq->absmax[L->id]);
            in = scratch;
        }
    }
    zq_gemm_nt(rows, L->out, L->in, in, L->in, L->w, L->in, 0.0f, out, L->out);
    if (L->b)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < L->out; c++) out[(size_t)r * L->out + c] += L->b[c];
}

static void norm(const zq_arch *a, float *out, const float *x, const float *w, const float *b, int rows)
{
    if (a->rms_norm) zq_rmsnorm(out, x, w, rows, a->hidden, a->norm_eps);
    else zq_layernorm(out, x, w, b, rows, a->hidden, a->norm_eps);
}

static void head_task(void *ctx, size_t task, int worker)
{
    heads_job *j = ctx;
    const zq_arch *a = j->a;
    zq_workspace *ws = j->ws;
    int b = (int)(task / (size_t)a->n_heads), h = (int)(task % (size_t)a->n_heads), hd = a->head_dim;
    size_t qo = (size_t)b * j->T * a->n_heads * hd, ko = (size_t)b * j->T * a->n_kv_heads * hd;
    float *scores = ws->train ? ws->probs + ((size_t)b * a->n_heads + h) * j->T * j->T
                              : ws->scores + (size_t)worker * ws->seq * ws->seq;
    if (ws->kcache) /* the keys so far and these */
        zq_attention_head(ws->att + qo, ws->q + qo, ws->kcache, ws->vcache, j->T, ws->pos0 + j->T, a->n_heads,
                          a->n_kv_heads, hd, h, a->causal, scores);
    else
        zq_attention_head(ws->att + qo, ws->q + qo, ws->k + ko, ws->v + ko, j->T, j->T, a->n_heads, a->n_kv_heads,
                          hd, h, a->causal, scores);
}

/* attention sublayer: ws->ao (BT, C) from its input h */
static void attention(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                      const float *h, int B, int T)
{
    int BT = B * T, hd = a->head_dim, nh = a->n_heads, nkv = a->n_kv_heads;
    zq_block_linear(&blk->q, aq, ws->aq, h, ws->q, BT);
    zq_block_linear(&blk->k, aq, ws->aq, h, ws->k, BT);
    zq_block_linear(&blk->v, aq, ws->aq, h, ws->v, BT);
    size_t half = (size_t)(a->rotary_dims / 2), past = (size_t)(ws->kcache ? ws->pos0 : 0);
    const float *cos_t = ws->cos_t + past * half, *sin_t = ws->sin_t + past * half; /* from position pos0 */
    for (int b = 0; a->rotary_dims && b < B; b++) {
        size_t qo = (size_t)b * T * nh * hd, ko = (size_t)b * T * nkv * hd;
        zq_rope_apply(ws->q + qo, nh * hd, T, nh, hd, a->rotary_dims, a->rope_interleaved, cos_t, sin_t);
        zq_rope_apply(ws->k + ko, nkv * hd, T, nkv, hd, a->rotary_dims, a->rope_interleaved, cos_t, sin_t);
    }
    if (ws->kcache) {
        memcpy(ws->kcache + past * nkv * hd, ws->k, (size_t)T * nkv * hd * sizeof(float));
        memcpy(ws->vcache + past * nkv * hd, ws->v, (size_t)T * nkv * hd * sizeof(float));
    }
    /* many small products: one BLAS thread each, heads side by side */
    heads_job job = {a, ws, T};
    zq_blas_set_threads(1);
    zq_pool_submit(ws->pool, (size_t)B * nh, head_task, &job);
    zq_pool_wait(ws->pool);
    zq_blas_set_threads(ws->threads);
    zq_block_linear(&blk->o, aq, ws->aq, ws->att, ws->ao, BT);
}

/* MLP sublayer: ws->mo (BT, C) from its input h; the pre-activations stay
 * in ws->up and ws->gate for the backward pass */
static void mlp(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws, const float *h,
                int BT)
{
    size_t n = (size_t)BT * a->inter;
    zq_block_linear(&blk->up, aq, ws->aq, h, ws->up, BT);
    if (a->act == ZQ_ACT_SILU_GLU) {
        zq_block_linear(&blk->gate, aq, ws->aq, h, ws->gate, BT);
        memcpy(ws->act, ws->gate, n * sizeof(float));
        zq_activate(a->act, ws->act, ws->up, n);
    } else {
        memcpy(ws->act, ws->up, n * sizeof(float));
        zq_activate(a->act, ws->act, NULL, n);
    }
    zq_block_linear(&blk->down, aq, ws->aq, ws->act, ws->mo, BT);
}

static void add(float *out, const float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = x[i] + y[i];
}

/* Every intermediate lands in its own buffer (the backward pass reads them):
 * pre-LN:   h1 = norm1(x) [xn]; ao = attn(h1); x1 = x + ao [mid];
 *           h2 = norm2(x1) [xn2]; mo = mlp(h2); out = x1 + mo
 * parallel: out = x + attn(norm1(x)) + mlp(norm2(x)), norm2 = norm1 in GPT-J
 * post-LN:  ao = attn(x); x1 = x + ao [mid]; x1n = norm1(x1) [xn];
 *           mo = mlp(x1n); x2 = x1n + mo [mid2]; out = norm2(x2) */
void zq_block_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                      const float *x, float *out, int B, int T)
{
    int BT = B * T;
    size_t n = (size_t)BT * a->hidden;
    if (!a->pre_ln) {
        attention(a, blk, aq, ws, x, B, T);
        add(ws->mid, x, ws->ao, n);
        norm(a, ws->xn, ws->mid, blk->norm1_w, blk->norm1_b, BT);
        mlp(a, blk, aq, ws, ws->xn, BT);
        add(ws->mid2, ws->xn, ws->mo, n);
        norm(a, out, ws->mid2, blk->norm2_w, blk->norm2_b, BT);
        return;
    }
    norm(a, ws->xn, x, blk->norm1_w, blk->norm1_b, BT);
    attention(a, blk, aq, ws, ws->xn, B, T);
    if (a->parallel) {
        const float *h2 = ws->xn;
        if (!a->shared_norm) {
            norm(a, ws->xn2, x, blk->norm2_w, blk->norm2_b, BT);
            h2 = ws->xn2;
        }
        mlp(a, blk, aq, ws, h2, BT);
        for (size_t i = 0; i < n; i++) out[i] = ws->ao[i] + ws->mo[i] + x[i];
        return;
    }
    add(ws->mid, x, ws->ao, n);
    norm(a, ws->xn2, ws->mid, blk->norm2_w, blk->norm2_b, BT);
    mlp(a, blk, aq, ws, ws->xn2, BT);
    add(out, ws->mid, ws->mo, n);
}
