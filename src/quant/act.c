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
    return zq_fail(err, ZQ_ERR_USAGE, "'%s': activation scheme must be int8-token, int8-tensor or none", text);
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
    if (rec->bits != 8) return ZQ_AQ_NONE;
    return rec->dynamic ? ZQ_AQ_TOKEN : ZQ_AQ_TENSOR;
}

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
