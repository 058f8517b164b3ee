/* The block backward pass against central finite differences of the
 * forward, for every architecture's fixture (block 0, two sequences). */
#include <stdlib.h>

#include "test.h"
#include "zquant/net.h"
#include "zquant/train.h"

#define B 2
#define T 5

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f) * 2.0f;
}

/* loss = sum(out * R): dout = R */
static double loss_of(const zq_arch *a, const zq_block *blk, zq_workspace *ws, const float *x, const float *R, float *out)
{
    zq_block_forward(a, blk, NULL, ws, x, out, B, T);
    double s = 0;
    for (size_t i = 0; i < (size_t)B * T * a->hidden; i++) s += (double)out[i] * R[i];
    return s;
}

static int check_param(const char *arch, const char *what, const zq_arch *a, const zq_block *blk, zq_workspace *ws,
                       float *x, const float *R, float *out, float *param, const float *grad, size_t n, unsigned *seed)
{
    int bad = 0;
    for (int trial = 0; trial < 6; trial++) {
        size_t i = (size_t)(frand(seed) * 0.5f + 0.5f) * (n - 1) % n;
        i = (size_t)((unsigned)(*seed >> 4) % n);
        float keep = param[i], h = 1e-2f * (fabsf(keep) > 0.1f ? fabsf(keep) : 0.1f);
        param[i] = keep + h;
        double lp = loss_of(a, blk, ws, x, R, out);
        param[i] = keep - h;
        double lm = loss_of(a, blk, ws, x, R, out);
        param[i] = keep;
        double fd = (lp - lm) / (2.0 * h), an = grad[i];
        double tol = 2e-2 * (fabs(fd) > fabs(an) ? fabs(fd) : fabs(an)) + 2e-3;
        if (fabs(fd - an) > tol) {
            fprintf(stderr, "  %s %s[%zu]: analytic %g, finite difference %g\n", arch, what, i, an, fd);
            bad++;
        }
        frand(seed);
    }
    return bad;
}

static int check_arch(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "tests/fixtures/engine/%s", name);
    zq_net *net = NULL;
    zq_error err = {0};
    if (zq_net_open(path, 0, &net, &err) != ZQ_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return 1;
    }
    const zq_arch *a = zq_net_arch(net);
    zq_block blk;
    zq_net_block(net, 0, &blk, &err);
    size_t n = (size_t)B * T * a->hidden;
    float *x = malloc(n * 4), *R = malloc(n * 4), *out = malloc(n * 4), *dx = calloc(n, 4);
    unsigned seed = 7;
    for (size_t i = 0; i < n; i++) x[i] = frand(&seed), R[i] = frand(&seed);
    zq_workspace *ws = zq_workspace_create_ex(a, B, T, 1);
    size_t C = (size_t)a->hidden, I = (size_t)a->inter, qd = (size_t)a->n_heads * a->head_dim;
    zq_block_grads g = {0};
    g.norm1_w = calloc(C, 4), g.norm1_b = calloc(C, 4), g.norm2_w = calloc(C, 4), g.norm2_b = calloc(C, 4);
    g.q.w = calloc(qd * C, 4), g.o.w = calloc(C * qd, 4), g.up.w = calloc(I * C, 4), g.down.w = calloc(C * I, 4);
    g.gate.w = calloc(I * C, 4), g.down.b = calloc(C, 4), g.v.w = calloc((size_t)blk.v.out * C, 4);
    loss_of(a, &blk, ws, x, R, out);
    zq_block_backward(a, &blk, NULL, ws, x, R, dx, &g, B, T);
    int bad = check_param(name, "x", a, &blk, ws, x, R, out, x, dx, n, &seed);
    bad += check_param(name, "q.w", a, &blk, ws, x, R, out, (float *)blk.q.w, g.q.w, qd * C, &seed);
    bad += check_param(name, "v.w", a, &blk, ws, x, R, out, (float *)blk.v.w, g.v.w, (size_t)blk.v.out * C, &seed);
    bad += check_param(name, "o.w", a, &blk, ws, x, R, out, (float *)blk.o.w, g.o.w, C * qd, &seed);
    bad += check_param(name, "up.w", a, &blk, ws, x, R, out, (float *)blk.up.w, g.up.w, I * C, &seed);
    bad += check_param(name, "down.w", a, &blk, ws, x, R, out, (float *)blk.down.w, g.down.w, C * I, &seed);
    if (blk.down.b) bad += check_param(name, "down.b", a, &blk, ws, x, R, out, (float *)blk.down.b, g.down.b, C, &seed);
    if (blk.gate.w) bad += check_param(name, "gate.w", a, &blk, ws, x, R, out, (float *)blk.gate.w, g.gate.w, I * C, &seed);
    bad += check_param(name, "norm1.w", a, &blk, ws, x, R, out, (float *)blk.norm1_w, g.norm1_w, C, &seed);
    if (blk.norm2_w) bad += check_param(name, "norm2.w", a, &blk, ws, x, R, out, (float *)blk.norm2_w, g.norm2_w, C, &seed);
    if (blk.norm1_b) bad += check_param(name, "norm1.b", a, &blk, ws, x, R, out, (float *)blk.norm1_b, g.norm1_b, C, &seed);
    float *bufs[] = {x, R, out, dx, g.norm1_w, g.norm1_b, g.norm2_w, g.norm2_b, g.q.w, g.o.w, g.up.w, g.down.w,
                     g.gate.w, g.down.b, g.v.w};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    zq_workspace_free(ws);
    zq_net_close(net);
    return bad;
}

#define GRAD_TEST(name) \
    TEST(backward_matches_finite_differences_##name) { CHECK(check_arch(#name) == 0); }

GRAD_TEST(gpt2)
GRAD_TEST(opt)
GRAD_TEST(gpt_neox)
GRAD_TEST(gptj)
GRAD_TEST(llama)
GRAD_TEST(qwen2)
GRAD_TEST(bert)
