#include "nn/nn.h"

#include <math.h>

#include "base/blas.h"

void zq_layernorm(float *out, const float *x, const float *w, const float *b, int rows, int C, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += xr[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (xr[c] - mean) * (xr[c] - mean);
        float rstd = (float)(1.0 / sqrt(var / C + eps));
        float m = (float)mean;
        for (int c = 0; c < C; c++) o[c] = (xr[c] - m) * rstd * w[c] + (b ? b[c] : 0.0f);
    }
}

void zq_rmsnorm(float *out, const float *x, const float *w, int rows, int C, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * C;
        float *o = out + (size_t)r * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float rstd = (float)(1.0 / sqrt(ss / C + eps));
        for (int c = 0; c < C; c++) o[c] = xr[c] * rstd * w[c];
    }
}

void zq_activate(zq_mlp_fn fn, float *x, const float *up, size_t n)
{
    switch (fn) {
    case ZQ_GELU_TANH: /* GPT-2's "gelu_new" */
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
        break;
    case ZQ_GELU_ERF:
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
        break;
    case ZQ_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case ZQ_SILU_GLU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * up[i];
        break;
    }
}

void zq_rope_table(float *cos_t, float *sin_t, int T, int rot, float theta)
{
    int half = rot / 2;
    for (int i = 0; i < half; i++) {
        /* as Hugging Face computes it: float32 inv_freq, float32 angle */
        float inv_freq = (float)(1.0 / pow((double)theta, (double)(2 * i) / rot));
        for (int t = 0; t < T; t++) {
            float ang = (float)t * inv_freq;
            cos_t[(size_t)t * half + i] = cosf(ang);
            sin_t[(size_t)t * half + i] = sinf(ang);
        }
    }
}

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

void zq_rope_apply(float *x, int ld, int T, int heads, int hd, int rot, int interleaved, const float *cos_t,
                   const float *sin_t)
{
    rope(x, ld, T, heads, hd, rot, interleaved, cos_t, sin_t, 1.0f);
}

void zq_rope_apply_inverse(float *x, int ld, int T, int heads, int hd, int rot, int interleaved, const float *cos_t,
                           const float *sin_t)
{
    rope(x, ld, T, heads, hd, rot, interleaved, cos_t, sin_t, -1.0f);
}

void zq_attention_head(float *out, const float *q, const float *k, const float *v, int Tq, int Tk, int nh, int nkv,
                       int hd, int h, int causal, float *scores)
{
    const float scale = 1.0f / sqrtf((float)hd);
    int qld = nh * hd, kld = nkv * hd, g = h / (nh / nkv), past = Tk - Tq;
    const float *qh = q + (size_t)h * hd, *kh = k + (size_t)g * hd, *vh = v + (size_t)g * hd;
    zq_gemm_nt(Tq, Tk, hd, qh, qld, kh, kld, 0.0f, scores, Tk);
    for (int t = 0; t < Tq; t++) {
        float *row = scores + (size_t)t * Tk;
        int n = causal ? past + t + 1 : Tk; /* query t sits at position past + t */
        float mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            row[j] *= scale;
            mx = row[j] > mx ? row[j] : mx;
        }
        float sum = 0;
        for (int j = 0; j < n; j++) sum += row[j] = expf(row[j] - mx);
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++) row[j] *= inv;
        for (int j = n; j < Tk; j++) row[j] = 0;
    }
    zq_gemm_nn(Tq, hd, Tk, scores, Tk, vh, kld, 0.0f, out + (size_t)h * hd, qld);
}
