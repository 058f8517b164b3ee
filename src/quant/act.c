/* Activation quantization: the schemes (parsed here, and only here), how a
 * .zq file records them, and their emulation on the CPU. */
#include <math.h>
#include <string.h>

#include "zquant/quant.h"

static const struct {
    zq_act_mode mode;
    const char *name;
    zq_activation record;
} schemes[] = {
    {ZQ_AQ_NONE, "none", {16, "none", 0, 0}},
    {ZQ_AQ_TOKEN, "int8-token", {8, "token", 1, 0}},
    {ZQ_AQ_TOKEN_SYM, "int8-token-sym", {8, "token", 1, 1}},
    {ZQ_AQ_TENSOR, "int8-tensor", {8, "tensor", 0, 1}},
};
#define NSCHEMES (sizeof schemes / sizeof schemes[0])

zq_status zq_act_mode_parse(const char *text, zq_act_mode *out, zq_error *err)
{
    for (size_t k = 0; k < NSCHEMES; k++)
        if (!strcmp(text, schemes[k].name)) {
            *out = schemes[k].mode;
            return ZQ_OK;
        }
    return zq_fail(err, ZQ_ERR_USAGE, "'%s': activation scheme must be int8-token, int8-token-sym, int8-tensor or none",
                   text);
}

const char *zq_act_mode_name(zq_act_mode m)
{
    for (size_t k = 0; k < NSCHEMES; k++)
        if (schemes[k].mode == m) return schemes[k].name;
    return "calibrate";
}

void zq_act_mode_record(zq_act_mode m, zq_activation *rec)
{
    *rec = schemes[0].record;
    for (size_t k = 0; k < NSCHEMES; k++)
        if (schemes[k].mode == m) *rec = schemes[k].record;
}

zq_act_mode zq_act_mode_of(const zq_activation *rec)
{
    for (size_t k = 0; k < NSCHEMES; k++)
        if (zq_activation_equal(rec, &schemes[k].record)) return schemes[k].mode;
    return ZQ_AQ_NONE;
}

int zq_activation_equal(const zq_activation *a, const zq_activation *b)
{
    return a->bits == b->bits && !strcmp(a->granularity, b->granularity) && !a->dynamic == !b->dynamic &&
           !a->symmetric == !b->symmetric;
}

int zq_activation_known(const zq_activation *rec)
{
    for (size_t k = 0; k < NSCHEMES; k++)
        if (zq_activation_equal(rec, &schemes[k].record)) return 1;
    return 0;
}

int zq_act_mode_per_token(zq_act_mode m) { return m == ZQ_AQ_TOKEN || m == ZQ_AQ_TOKEN_SYM; }

void zq_fake_quant_tokens(float *x, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        float *v = x + (size_t)r * cols;
        float lo = v[0], hi = v[0];
        for (int c = 1; c < cols; c++) {
            lo = v[c] < lo ? v[c] : lo;
            hi = v[c] > hi ? v[c] : hi;
        }
        float scale = (hi - lo) / 255.0f;
        if (!(scale > 0)) continue; /* a constant row is exact already */
        float inv = 1.0f / scale, zp = nearbyintf(-lo * inv);
        for (int c = 0; c < cols; c++) {
            float q = nearbyintf(v[c] * inv) + zp;
            q = q < 0 ? 0 : q > 255 ? 255 : q;
            v[c] = (q - zp) * scale;
        }
    }
}

void zq_fake_quant_tokens_sym(float *x, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        float *v = x + (size_t)r * cols, m = 0;
        for (int c = 0; c < cols; c++) m = fabsf(v[c]) > m ? fabsf(v[c]) : m;
        zq_fake_quant_tensor(v, (size_t)cols, m); /* a row is a tensor of its own */
    }
}

void zq_fake_quant_tensor(float *x, size_t n, float absmax)
{
    float scale = absmax / 127.0f;
    if (!(scale > 0)) return;
    float inv = 1.0f / scale;
    for (size_t i = 0; i < n; i++) {
        float q = nearbyintf(x[i] * inv);
        q = q < -127 ? -127 : q > 127 ? 127 : q;
        x[i] = q * scale;
    }
}
