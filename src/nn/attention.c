/* The attention sublayer, forward and backward: q, k, v projections, q and
 * k RMS-normed per head where the model does (Qwen3), rotary positions,
 * softmax(q k^T / sqrt(d)) v per head (grouped-query: several query heads
 * share a key/value head; causal, over a sliding window where the block
 * has one), the output projection. Heads run
 * side by side on the engine's threads; a training forward keeps each
 * head's probabilities for the backward. */
#include <math.h>
#include <string.h>

#include "base/blas.h"
#include "base/engine.h"
#include "nn/nn.h"
#include "nn/workspace.h"
#include "simd/kernels.h"

/* ---- rotary positions ------------------------------------------------------- */

/* Llama 3's frequency scaling as Hugging Face's _compute_llama3_parameters
 * computes it: float32 tensors against Python numbers (those in double,
 * then rounded to float32). */
float zq_rope_llama3(const zq_arch *a, float inv_freq)
{
    double old = a->rope_original_max_pos, lo = a->rope_low_freq, hi = a->rope_high_freq;
    float f = a->rope_factor, low_wavelen = (float)(old / lo), high_wavelen = (float)(old / hi);
    float wavelen = (float)(2 * M_PI) / inv_freq;
    float scaled = wavelen > low_wavelen ? inv_freq / f : inv_freq;
    if (wavelen < high_wavelen || wavelen > low_wavelen) return scaled;
    float smooth = ((float)old / wavelen - (float)lo) / (float)(hi - lo);
    return (1.0f - smooth) * scaled / f + smooth * scaled;
}

void zq_rope_table(float *cos_t, float *sin_t, int T, const zq_arch *a, zq_rope_set set)
{
    int rot = a->rotary_dims, half = rot / 2, local = set == ZQ_ROPE_SET_LOCAL;
    float amp = a->rope_longrope ? a->rope_attn_factor : 1.0f;
    for (int i = 0; i < half; i++) {
        /* as Hugging Face computes it: float32 inv_freq, float32 angle; the
         * local base (Gemma 3's sliding layers) is never scaled */
        double base = pow((double)(local ? a->rope_local_theta : a->rope_theta), (double)(2 * i) / rot);
        float inv_freq = (float)(1.0 / base);
        if (!local && a->rope_factor > 0) inv_freq = zq_rope_llama3(a, inv_freq);
        if (!local && a->rope_linear > 0) inv_freq = inv_freq / a->rope_linear;
        const float *ext = set == ZQ_ROPE_SET_LONG ? a->rope_long : a->rope_short;
        if (a->rope_longrope) inv_freq = (float)(1.0 / (ext[i] * base));
        for (int t = 0; t < T; t++) {
            float ang = (float)t * inv_freq;
            cos_t[(size_t)t * half + i] = cosf(ang) * amp;
            sin_t[(size_t)t * half + i] = sinf(ang) * amp;
        }
    }
}

/* Rotates the first rot dims of each of `heads` heads of hd dims in x
 * (T, ld), by +angle (sign 1) or, for gradients, its transpose (sign -1):
 * pairs (2i, 2i+1) when interleaved, else halves (i, i + rot/2). */
static void rope(float *x, int ld, int T, int heads, int hd, int rot, int interleaved, const float *cos_t,
                 const float *sin_t, float sign)
{
    int half = rot / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * hd;
            const float *c = cos_t + (size_t)t * half, *s = sin_t + (size_t)t * half;
            for (int i = 0; i < half; i++) {
                int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
                float x1 = v[a], x2 = v[b], sn = sign * s[i];
                v[a] = x1 * c[i] - x2 * sn;
                v[b] = x2 * c[i] + x1 * sn;
            }
        }
}

/* q and k of every sequence, from position `past` on, by the block's table */
static void rope_qk(const zq_arch *a, const zq_block *blk, zq_workspace *ws, float *q, float *k, int B, int T,
                    size_t past, float sign)
{
    int hd = a->head_dim, nh = a->n_heads, nkv = a->n_kv_heads;
    size_t half = (size_t)(a->rotary_dims / 2);
    /* longrope: the long factors once the forward's positions pass the
     * pretraining length, as Hugging Face's longrope_frequency_update */
    int lng = a->rope_longrope && past + (size_t)T > (size_t)a->rope_original_max_pos;
    const float *cos_t = (blk->local_rope ? ws->cos_l : lng ? ws->cos_long : ws->cos_t) + past * half;
    const float *sin_t = (blk->local_rope ? ws->sin_l : lng ? ws->sin_long : ws->sin_t) + past * half;
    for (int b = 0; a->rotary_dims && b < B; b++) {
        size_t qo = (size_t)b * T * nh * hd, ko = (size_t)b * T * nkv * hd;
        rope(q + qo, nh * hd, T, nh, hd, a->rotary_dims, a->rope_interleaved, cos_t, sin_t, sign);
        rope(k + ko, nkv * hd, T, nkv, hd, a->rotary_dims, a->rope_interleaved, cos_t, sin_t, sign);
    }
}

/* ---- one head -------------------------------------------------------------------- */

void zq_softmax_ref(float *x, size_t n, float scale)
{
    float m = -INFINITY, lanes[8] = {0};
    for (size_t j = 0; j < n; j++) {
        x[j] *= scale;
        m = x[j] > m ? x[j] : m;
    }
    for (size_t j = 0; j < n; j++) lanes[j % 8] += x[j] = zq_exp(x[j] - m);
    float inv = 1.0f / zq_lanes_sum8(lanes);
    for (size_t j = 0; j < n; j++) x[j] *= inv;
}

/* Which keys a query sees and how its scores are shaped: causal, the query
 * at position p sees keys j <= p, and with a window only p - window < j;
 * scores are q.k * scale, soft-capped to cap * tanh(s / cap) when cap > 0. */
typedef struct {
    int causal, window;
    float scale, cap;
} score_rule;

/* Queries of one head taken at a time: a causal head's chunk multiplies
 * only the keys its queries see, about half the square's work at long
 * contexts, and the chunk's scores stay in L2. */
enum { QUERY_CHUNK = 64 };

/* Head h of one sequence: Tq queries (the last Tq of Tk positions) against
 * Tk keys; out (Tq, nh*hd), columns of head h = softmax(rule(q_h k_g^T))
 * v_g with g = h / (nh / nkv) the key/value head it shares. scores: Tq*Tk,
 * left holding the probabilities, 0 outside the mask; every row whole
 * when `whole` (the backward's, which then needs no mask), else only
 * the keys its chunk multiplied. slope (NULL: not wanted), shaped as
 * scores: d capped / d score, 0 outside the mask. */
static void attention_head(float *out, const float *q, const float *k, const float *v, int Tq, int Tk, int nh, int nkv,
                           int hd, int h, const score_rule *rule, float *scores, float *slope, int whole)
{
    int qld = nh * hd, kld = nkv * hd, g = h / (nh / nkv), past = Tk - Tq;
    const float *qh = q + (size_t)h * hd, *kh = k + (size_t)g * hd, *vh = v + (size_t)g * hd;
    const zq_kernels *kern = zq_kernels_active();
    for (int t0 = 0; t0 < Tq; t0 += QUERY_CHUNK) {
        int rows = Tq - t0 < QUERY_CHUNK ? Tq - t0 : QUERY_CHUNK;
        /* the keys [k0, k1) some query of the chunk sees: query t sits at position past + t */
        int k1 = rule->causal ? past + t0 + rows : Tk;
        int k0 = rule->causal && rule->window && past + t0 + 1 > rule->window ? past + t0 + 1 - rule->window : 0;
        float *chunk = scores + (size_t)t0 * Tk;
        zq_gemm_nt(rows, k1 - k0, hd, qh + (size_t)t0 * qld, qld, kh + (size_t)k0 * kld, kld, 0.0f, chunk + k0, Tk, 0);
        for (int t = t0; t < t0 + rows; t++) {
            float *row = scores + (size_t)t * Tk, *sl = slope ? slope + (size_t)t * Tk : NULL;
            int end = rule->causal ? past + t + 1 : Tk;
            int start = rule->causal && rule->window && end > rule->window ? end - rule->window : 0;
            for (int j = start; rule->cap > 0 && j < end; j++) { /* capped scores are scaled here */
                float c = tanhf(row[j] * rule->scale / rule->cap);
                row[j] = c * rule->cap;
                if (sl) sl[j] = 1.0f - c * c;
            }
            kern->softmax(row + start, (size_t)(end - start), rule->cap > 0 ? 1.0f : rule->scale);
            for (int j = whole ? 0 : k0; j < start; j++) row[j] = 0;
            for (int j = end; j < (whole ? Tk : k1); j++) row[j] = 0;
            if (sl) {
                memset(sl, 0, (size_t)start * sizeof *sl);
                memset(sl + end, 0, (size_t)(Tk - end) * sizeof *sl);
            }
        }
        float *o = out + (size_t)t0 * qld + (size_t)h * hd;
        zq_gemm_nn(rows, hd, k1 - k0, chunk + k0, Tk, vh + (size_t)k0 * kld, kld, 0.0f, o, qld, 0);
    }
}

/* The heads of a batch, handed to the pool. */
typedef struct {
    const zq_arch *a;
    zq_workspace *ws;
    int T;
    score_rule rule;
} heads_job;

static heads_job heads_of(const zq_arch *a, const zq_block *blk, zq_workspace *ws, int T)
{
    heads_job j = {a, ws, T, {a->causal, blk->window, a->attn_scale, a->attn_softcap}};
    return j;
}

/* One (sequence, head). */
static void head_forward(void *ctx, size_t task, int worker)
{
    heads_job *j = ctx;
    const zq_arch *a = j->a;
    zq_workspace *ws = j->ws;
    int b = (int)(task / (size_t)a->n_heads), h = (int)(task % (size_t)a->n_heads), hd = a->head_dim;
    size_t qo = (size_t)b * j->T * a->n_heads * hd, ko = (size_t)b * j->T * a->n_kv_heads * hd;
    size_t head = ((size_t)b * a->n_heads + h) * j->T * j->T; /* this head's square, training */
    float *scores = ws->train ? ws->probs + head : ws->scores + (size_t)worker * ws->seq * ws->seq;
    float *slope = ws->train && ws->cap_slope ? ws->cap_slope + head : NULL;
    if (ws->kcache) /* the keys so far and these */
        attention_head(ws->att + qo, ws->q + qo, ws->kcache, ws->vcache, j->T, ws->pos0 + j->T, a->n_heads,
                       a->n_kv_heads, hd, h, &j->rule, scores, slope, ws->train);
    else
        attention_head(ws->att + qo, ws->q + qo, ws->k + ko, ws->v + ko, j->T, j->T, a->n_heads, a->n_kv_heads, hd, h,
                       &j->rule, scores, slope, ws->train);
}

/* One (sequence, key/value head): every query head that shares it, so the
 * accumulation into dk and dv never races. */
static void head_backward(void *ctx, size_t task, int worker)
{
    heads_job *j = ctx;
    const zq_arch *a = j->a;
    zq_workspace *ws = j->ws;
    int T = j->T, hd = a->head_dim, nh = a->n_heads, nkv = a->n_kv_heads, group = nh / nkv;
    int b = (int)(task / (size_t)nkv), kvh = (int)(task % (size_t)nkv);
    int qld = nh * hd, kld = nkv * hd;
    size_t qo = (size_t)b * T * qld, ko = (size_t)b * T * kld;
    float *dS = ws->dscores + (size_t)worker * ws->seq * ws->seq;
    const float scale = j->rule.scale;
    const float *k = ws->k + ko + (size_t)kvh * hd, *v = ws->v + ko + (size_t)kvh * hd;
    float *dk = ws->dk + ko + (size_t)kvh * hd, *dv = ws->dv + ko + (size_t)kvh * hd;
    for (int r = 0; r < T; r++) {
        memset(dk + (size_t)r * kld, 0, (size_t)hd * sizeof(float));
        memset(dv + (size_t)r * kld, 0, (size_t)hd * sizeof(float));
    }
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const float *P = ws->probs + ((size_t)b * nh + h) * T * T;
        const float *slope = ws->cap_slope ? ws->cap_slope + ((size_t)b * nh + h) * T * T : NULL;
        const float *dO = ws->datt + qo + (size_t)h * hd, *q = ws->q + qo + (size_t)h * hd;
        float *dq = ws->dq + qo + (size_t)h * hd;
        zq_gemm_tn(T, hd, T, P, T, dO, qld, 1.0f, dv, kld, 0, NULL, 0); /* dV += P^T dO */
        zq_gemm_nt(T, T, hd, dO, qld, v, kld, 0.0f, dS, T, 0); /* dP = dO V^T */
        for (int t = 0; t < T; t++) { /* dS = P (dP - rowsum(dP P)) * scale [* the cap's slope] */
            float *row = dS + (size_t)t * T;
            const float *p = P + (size_t)t * T;
            float dot = 0;
            for (int s = 0; s < T; s++) dot += row[s] * p[s];
            for (int s = 0; s < T; s++) row[s] = p[s] * (row[s] - dot) * scale;
            for (int s = 0; slope && s < T; s++) row[s] *= slope[(size_t)t * T + s];
        }
        zq_gemm_nn(T, hd, T, dS, T, k, kld, 0.0f, dq, qld, 0); /* dQ = dS K */
        zq_gemm_tn(T, hd, T, dS, T, q, qld, 1.0f, dk, kld, 0, NULL, 0); /* dK += dS^T Q */
    }
}

/* ---- the sublayer ----------------------------------------------------------------- */

void zq_attention_forward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                          const float *h, int B, int T)
{
    int BT = B * T, hd = a->head_dim, nkv = a->n_kv_heads;
    int keep_pre = a->qk_norm && ws->train; /* the backward reads q and k before their norms */
    size_t past = (size_t)(ws->kcache ? ws->pos0 : 0);
    /* decoding (batch 1): these keys and values go straight to their place in the cache */
    float *kout = ws->kcache ? ws->kcache + past * nkv * hd : ws->k;
    float *vout = ws->kcache ? ws->vcache + past * nkv * hd : ws->v;
    float *q = keep_pre ? ws->qpre : ws->q, *k = keep_pre ? ws->kpre : kout;
    zq_linear_forward(&blk->q, aq, ws->aq, h, q, BT, T);
    zq_linear_forward(&blk->k, aq, ws->aq, h, k, BT, T);
    zq_linear_forward(&blk->v, aq, ws->aq, h, vout, BT, T);
    if (a->qk_norm) { /* in place when nothing keeps the inputs */
        zq_head_norm_forward(a, ws->q, q, blk->q_norm_w, BT * a->n_heads, keep_pre ? &ws->qnorm : NULL);
        zq_head_norm_forward(a, kout, k, blk->k_norm_w, BT * nkv, keep_pre ? &ws->knorm : NULL);
    }
    rope_qk(a, blk, ws, ws->q, kout, B, T, past, 1.0f);
    heads_job job = heads_of(a, blk, ws, T);
    zq_engine_run((size_t)B * a->n_heads, ws->threads, head_forward, &job);
    zq_linear_forward(&blk->o, aq, ws->aq, ws->att, ws->ao, BT, T);
}

void zq_attention_backward(const zq_arch *a, const zq_block *blk, const zq_act_quant *aq, zq_workspace *ws,
                           const zq_block_grads *g, const float *h, const float *dao, float *dh, float dh_beta, int B,
                           int T)
{
    int BT = B * T;
    zq_linear_backward(&blk->o, &g->o, aq, ws, ws->att, dao, ws->datt, 0.0f, BT, T);
    heads_job job = heads_of(a, blk, ws, T);
    zq_engine_run((size_t)B * a->n_kv_heads, ws->threads, head_backward, &job);
    rope_qk(a, blk, ws, ws->dq, ws->dk, B, T, 0, -1.0f); /* a rotation: its transpose turns back */
    if (a->qk_norm) { /* through the head norms, with datt (read by the heads, done) as the scratch */
        size_t nq = (size_t)BT * a->n_heads * a->head_dim, nk = (size_t)BT * a->n_kv_heads * a->head_dim;
        memcpy(ws->datt, ws->dq, nq * sizeof(float));
        memset(ws->dq, 0, nq * sizeof(float));
        zq_head_norm_backward(a, &ws->qnorm, ws->qpre, blk->q_norm_w, ws->datt, ws->dq, g->q_norm_w, BT * a->n_heads,
                              T * a->n_heads, ws);
        memcpy(ws->datt, ws->dk, nk * sizeof(float));
        memset(ws->dk, 0, nk * sizeof(float));
        zq_head_norm_backward(a, &ws->knorm, ws->kpre, blk->k_norm_w, ws->datt, ws->dk, g->k_norm_w,
                              BT * a->n_kv_heads, T * a->n_kv_heads, ws);
    }
    zq_linear_backward(&blk->q, &g->q, aq, ws, h, ws->dq, dh, dh_beta, BT, T);
    zq_linear_backward(&blk->k, &g->k, aq, ws, h, ws->dk, dh, 1.0f, BT, T);
    zq_linear_backward(&blk->v, &g->v, aq, ws, h, ws->dv, dh, 1.0f, BT, T);
}
