/* Learnable clipping's gradient through the scale, worked by hand: one
 * group of four INT4 weights, w = [0.8, -0.35, 0.1, 1.0], round to
 * nearest's scale max|w| / 8 = 0.125, so w / s = [6.4, -2.8, 0.8, 8.0]
 * and the codes [6, -3, 1, 7 (8 clamped)]. LSQ's d w'/d s is q - w/s
 * inside the grid and q where clamped: [-0.4, -0.2, 0.2, 7]; with the
 * loss's gradient g = [1, 2, -1, 0.5] on w', dL/ds = -0.4 - 0.4 - 0.2 +
 * 3.5 = 2.5, and the multiplier's gradient is that times the base scale,
 * 0.3125. After training, the scale written is fp16(alpha * base). */
#include <stdlib.h>

#include "lkd/lkd_impl.h"
#include "test.h"
#include "zquant/fp16.h"

TEST(learned_clipping_gradient_by_hand)
{
    param p;
    memset(&p, 0, sizeof p);
    p.u.name = "w";
    p.u.rows = 1;
    p.u.cols = 4;
    p.spec = (zq_qspec){ZQ_FORMAT_INT4, 1, ZQ_GRAN_GROUP, 4, 0};
    zq_error err = {0};
    CHECK(zq_lkd_clip_init(&p, &err) == ZQ_OK);
    CHECK_EQ_U(p.ngroups, 1);
    const float w[4] = {0.8f, -0.35f, 0.1f, 1.0f}, g[4] = {1.0f, 2.0f, -1.0f, 0.5f};
    uint16_t eff = 0, eff_min = 0;
    p.eff = &eff, p.eff_min = &eff_min; /* the base grid, as zq_lkd_fake_quantize sets it */
    CHECK(zq_matrix_group_params(&p.spec, w, 1, 4, p.eff, p.eff_min, &err) == ZQ_OK);
    CHECK(zq_lkd_clip_scales(&p, &err) == ZQ_OK);
    CHECK(zq_f16_to_f32(p.eff[0]) == 0.125f);
    zq_lkd_clip_grad(&p, w, g);
    CHECK(fabsf(p.alpha_grad[0] - 0.3125f) < 1e-6f);
    p.alpha[0] = 0.9f; /* a trained multiplier: the scale the file gets */
    CHECK(zq_matrix_group_params(&p.spec, w, 1, 4, p.eff, p.eff_min, &err) == ZQ_OK);
    CHECK(zq_lkd_clip_scales(&p, &err) == ZQ_OK);
    CHECK(zq_lkd_clip_finish(&p, &err) == ZQ_OK);
    CHECK(p.scale && p.scale[0] == zq_f32_to_f16(0.9f * 0.125f));
    CHECK(p.alpha == NULL);
    free(p.scale), free(p.min);
}
