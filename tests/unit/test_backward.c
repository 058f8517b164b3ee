/* The block backward pass against central finite differences of the
 * forward, for every architecture's fixture (block 0, two sequences). */
#include <stdlib.h>

#include "nn/workspace.h"
#include "test.h"
#include "zquant/net.h"
#include "zquant/block.h"
#include "zquant/lkd.h"

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

/* ReLU's kink: the signs of the MLP's pre-activations after a forward
 * (other activations are smooth). */
static void relu_signs(const zq_arch *a, const zq_workspace *ws, unsigned char *mask)
{
    size_t n = (size_t)B * T * a->inter;
    for (size_t i = 0; a->act == ZQ_RELU && i < n; i++) mask[i] = ws->up[i] > 0;
}

/* The fourth-order central difference
 * (-L(w + 2h) + 8 L(w + h) - 8 L(w - h) + L(w - 2h)) / 12h, 0 when a ReLU
 * input changes sign between the points (the loss is not smooth there). */
static int central(const zq_arch *a, const zq_block *blk, zq_workspace *ws, float *x, const float *R, float *out,
                   float *param, size_t i, float h, double *d)
{
    static const int at[4] = {2, 1, -1, -2};
    static const double weight[4] = {-1, 8, -8, 1};
    size_t n = (size_t)B * T * a->inter;
    unsigned char *first = calloc(n, 1), *mask = calloc(n, 1);
    float keep = param[i];
    int smooth = 1;
    *d = 0;
    for (int k = 0; k < 4; k++) {
        param[i] = keep + (float)at[k] * h;
        *d += weight[k] * loss_of(a, blk, ws, x, R, out);
        relu_signs(a, ws, k ? mask : first);
        if (k) smooth &= memcmp(first, mask, n) == 0;
    }
    param[i] = keep;
    free(first), free(mask);
    *d /= 12.0 * h;
    return smooth;
}

/* The float32 noise of the loss around w along this parameter, as Moré
 * and Wild estimate it (ECnoise): the 6th difference of L at points s
 * apart is s^6 L^(6) plus noise, whose variance it multiplies by
 * (2m)! / (m!)^2 = 924; three such differences averaged. */
static double noise(const zq_arch *a, const zq_block *blk, zq_workspace *ws, float *x, const float *R, float *out,
                    float *param, size_t i, float s)
{
    float keep = param[i];
    double L[9], var = 0;
    for (int k = 0; k < 9; k++) {
        param[i] = keep + (float)(k - 4) * s;
        L[k] = loss_of(a, blk, ws, x, R, out);
    }
    param[i] = keep;
    static const double binom6[7] = {1, -6, 15, -20, 15, -6, 1};
    for (int j = 0; j < 3; j++) {
        double d = 0;
        for (int k = 0; k <= 6; k++) d += binom6[k] * L[j + k];
        var += d * d / 924.0 / 3.0;
    }
    return sqrt(var);
}

/* The finite difference at step h/2 and a bound on its error, both from
 * the forward alone. Truncation: D(h) = L' + c h^4 + O(h^6), so D(h/2)'s
 * is (D(h) - D(h/2)) / 15. Rounding: each loss is off by the noise eps,
 * so D(h/2) by 18 eps / 6h. Steps are large (a tenth of the weight) so
 * that rounding is small next to the gradient; the bound is 4 times the
 * sum (eps is estimated from three samples). */
static int difference(const zq_arch *a, const zq_block *blk, zq_workspace *ws, float *x, const float *R, float *out,
                      float *param, size_t i, double *fd, double *bound)
{
    float keep = param[i], h = 0.1f * (fabsf(keep) > 0.1f ? fabsf(keep) : 0.1f);
    double d1, d2;
    for (int tries = 0; tries < 10; tries++, h /= 2) /* a kink within the steps: smaller ones */
        if (central(a, blk, ws, x, R, out, param, i, h, &d1) && central(a, blk, ws, x, R, out, param, i, h / 2, &d2)) {
            double eps = noise(a, blk, ws, x, R, out, param, i, h / 2);
            *fd = d2;
            *bound = 4 * (3 * eps / h + fabs(d1 - d2) / 15);
            return 1;
        }
    return 0;
}

static int check_param(const char *arch, const char *what, const zq_arch *a, const zq_block *blk, zq_workspace *ws,
                       float *x, const float *R, float *out, float *param, const float *grad, size_t n, unsigned *seed)
{
    /* the analytic gradient's own float32 error: 1e-4 of the tensor's
     * largest (see rel_err below) */
    double own = 0;
    for (size_t i = 0; i < n; i++) own = fabs(grad[i]) > own ? fabs(grad[i]) : own;
    own *= 1e-4;
    int bad = 0;
    for (int trial = 0; trial < 6; trial++) {
        frand(seed);
        size_t i = (size_t)((unsigned)(*seed >> 4) % n);
        double fd, bound;
        if (!difference(a, blk, ws, x, R, out, param, i, &fd, &bound)) {
            fprintf(stderr, "  %s %s[%zu]: skipped, a ReLU kink within every step tried\n", arch, what, i);
            frand(seed);
            continue;
        }
        double an = grad[i];
        bound += own;
        if (fabs(fd - an) > bound) {
            fprintf(stderr, "  %s %s[%zu]: analytic %g, finite difference %g, bound %g\n", arch, what, i, an, fd,
                    bound);
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
    size_t hd = (size_t)a->head_dim;
    if (blk.q_norm_w) g.q_norm_w = calloc(hd, 4), g.k_norm_w = calloc(hd, 4), g.k.w = calloc((size_t)blk.k.out * C, 4);
    if (blk.post_norm1_w) g.post_norm1_w = calloc(C, 4), g.post_norm2_w = calloc(C, 4);
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
    if (blk.q_norm_w) { /* and k, which reaches the loss only through its norm */
        bad += check_param(name, "q_norm.w", a, &blk, ws, x, R, out, (float *)blk.q_norm_w, g.q_norm_w, hd, &seed);
        bad += check_param(name, "k_norm.w", a, &blk, ws, x, R, out, (float *)blk.k_norm_w, g.k_norm_w, hd, &seed);
        bad += check_param(name, "k.w", a, &blk, ws, x, R, out, (float *)blk.k.w, g.k.w, (size_t)blk.k.out * C, &seed);
    }
    if (blk.post_norm1_w) {
        bad += check_param(name, "post_norm1.w", a, &blk, ws, x, R, out, (float *)blk.post_norm1_w, g.post_norm1_w, C,
                           &seed);
        bad += check_param(name, "post_norm2.w", a, &blk, ws, x, R, out, (float *)blk.post_norm2_w, g.post_norm2_w, C,
                           &seed);
    }
    float *bufs[] = {x, R, out, dx, g.norm1_w, g.norm1_b, g.norm2_w, g.norm2_b, g.q.w, g.o.w, g.up.w, g.down.w,
                     g.gate.w, g.down.b, g.v.w, g.q_norm_w, g.k_norm_w, g.k.w, g.post_norm1_w, g.post_norm2_w};
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
GRAD_TEST(llama3)
GRAD_TEST(qwen3)
GRAD_TEST(mistral)
GRAD_TEST(gemma2)
GRAD_TEST(gemma3_text)
GRAD_TEST(phi3)
GRAD_TEST(bert)

/* ---- against PyTorch autograd (scripts/gen_grad_fixtures.py) ---------------- */

#include "zquant/arch.h"
#include "zquant/quant.h"
#include "zquant/source.h"

static float *grad_ref(zq_source *s, const char *name, uint64_t n)
{
    for (size_t i = 0; i < zq_source_count(s); i++) {
        const zq_tensor_info *t = zq_source_tensor(s, i);
        if (strcmp(t->name, name) || t->numel != n) continue;
        float *p = malloc(n * 4);
        zq_error err = {0};
        if (zq_source_read(s, i, 0, t->rows, 0, t->cols, p, &err) == ZQ_OK) return p;
        free(p);
    }
    return NULL;
}

/* The largest difference relative to the tensor's scale: its largest
 * reference value, or scale when larger. Two float32 computations of one
 * gradient in other orders each err by at most n u (sum |terms|) per sum
 * of n terms (u = 2^-24); the longest here, over the B*T rows of products
 * of the hidden width, has 640 terms (3.8e-5), and three such sums are
 * chained from the loss to a weight: 1e-4 of the scale. A key bias's
 * gradient is 0 in exact arithmetic (it shifts every score of a row alike),
 * so its reference values are rounding noise: its scale is that of its
 * terms, the largest sum over rows of |dk|. */
static double rel_err(const float *a, const float *b, size_t n, double scale)
{
    double big = scale, diff = 0;
    for (size_t i = 0; i < n; i++) {
        big = fabs(b[i]) > big ? fabs(b[i]) : big;
        diff = fabs(a[i] - b[i]) > diff ? fabs(a[i] - b[i]) : diff;
    }
    return big > 0 ? diff / big : diff;
}

static int check_torch(const char *arch, int quant)
{
    char path[160];
    zq_error err = {0};
    zq_net *net = NULL;
    zq_source *ref = NULL;
    snprintf(path, sizeof path, "tests/fixtures/engine/%s", arch);
    if (zq_net_open(path, 0, &net, &err) != ZQ_OK) return 1;
    snprintf(path, sizeof path, "tests/fixtures/engine/%s/%s", arch, quant ? "grads-quant.safetensors" : "grads.safetensors");
    if (zq_source_open(path, &ref, &err) != ZQ_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        zq_net_close(net);
        return 1;
    }
    const zq_arch *a = zq_net_arch(net);
    size_t n = (size_t)B * T * a->hidden;
    float *x = grad_ref(ref, "x", n), *R = grad_ref(ref, "R", n), *want_dx = grad_ref(ref, "grad.x", n);
    float *out = malloc(n * 4), *dx = calloc(n, 4);
    zq_block fp, student;
    zq_block_grads g;
    zq_net_block(net, 0, &fp, &err);
    const zq_net_tensor *units;
    int nu = zq_net_block_tensors(net, 0, &units);
    float *fq[32] = {0}, *grads[32] = {0};
    zq_model model;
    zq_model_detect("{}", "", &model, &err);
    snprintf(model.model_type, sizeof model.model_type, "%s", a->model_type);
    model.known = 1;
    for (int k = 0; k < nu; k++) {
        size_t m = (size_t)units[k].rows * units[k].cols;
        fq[k] = malloc(m * 4), grads[k] = calloc(m, 4);
        zq_tensor_info info = {(char *)units[k].name, ZQ_DT_F32, 2, {units[k].rows, units[k].cols}, m, 0, 0};
        int mlp = zq_model_classify(&model, &info).role == ZQ_ROLE_MLP;
        /* the fixture's recipe: attention INT8 per row, MLP INT4 in groups of 16 */
        zq_qspec spec = {quant ? (mlp ? ZQ_FORMAT_INT4 : ZQ_FORMAT_INT8) : ZQ_FORMAT_F16, 1, mlp ? ZQ_GRAN_GROUP : ZQ_GRAN_ROW, 16, 0};
        if (quant && !units[k].vector)
            zq_fake_quant_matrix(&spec, units[k].w, (uint64_t)units[k].rows, (uint64_t)units[k].cols, fq[k], &err);
        else memcpy(fq[k], units[k].w, m * 4);
    }
    zq_linear *experts = calloc(3 * (size_t)fp.n_experts + 1, sizeof *experts);
    zq_linear_grad *expert_grads = calloc(3 * (size_t)fp.n_experts + 1, sizeof *expert_grads);
    zq_block_rewire(&fp, units, nu, fq, grads, &student, &g, experts, expert_grads);
    for (int k = 0; k < 3 * fp.n_experts; k++) experts[k].quantized = quant;
    zq_linear *lins[] = {&student.q, &student.k, &student.v, &student.o, &student.up, &student.gate, &student.down};
    for (int k = 0; k < 7; k++) lins[k]->quantized = quant;
    zq_act_quant aq = {quant ? ZQ_AQ_TOKEN : ZQ_AQ_NONE, NULL, 0, NULL, NULL};
    zq_workspace *ws = zq_workspace_create_ex(a, B, T, 1);
    int bad = !x || !R || !want_dx;
    if (!bad) {
        zq_block_forward(a, &student, &aq, ws, x, out, B, T);
        zq_block_backward(a, &student, &aq, ws, x, R, dx, &g, B, T);
    }
    /* the key bias's terms: the key gradient's rows */
    size_t kd = (size_t)a->n_kv_heads * a->head_dim;
    double kterms = 0;
    for (size_t c = 0; c < kd; c++) {
        double s = 0;
        for (size_t r = 0; r < (size_t)B * T; r++) s += fabs(ws->dk[r * kd + c]);
        kterms = s > kterms ? s : kterms;
    }
    /* quantized: fake quantization's rounding flips where the two sides
     * differ by rounding, each flip a step of the grid */
    double tol = quant ? 2e-3 : 1e-4, e = bad ? INFINITY : rel_err(dx, want_dx, n, 0);
    if (!(e <= tol)) fprintf(stderr, "  %s%s: d/dx relative error %g\n", arch, quant ? " (quantized)" : "", e), bad++;
    for (int k = 0; k < nu; k++) {
        size_t m = (size_t)units[k].rows * units[k].cols;
        char name[300];
        snprintf(name, sizeof name, "grad.%s", units[k].name);
        float *want = grad_ref(ref, name, m), *mine = malloc(m * 4);
        zq_net_tensor_layout(&units[k], a->n_heads, grads[k], mine, 1);
        double mine_abs = 0; /* no gradient in PyTorch (the router, routing held fixed): none here either */
        for (size_t i = 0; i < m; i++) mine_abs = fabs(mine[i]) > mine_abs ? fabs(mine[i]) : mine_abs;
        e = want ? rel_err(mine, want, m, units[k].w == fp.k.b ? kterms : 0) : mine_abs == 0 ? 0 : INFINITY;
        if (!(e <= tol)) fprintf(stderr, "  %s%s: d/d%s relative error %g\n", arch, quant ? " (quantized)" : "", units[k].name, e), bad++;
        free(want), free(mine), free(fq[k]), free(grads[k]);
    }
    zq_workspace_free(ws);
    free(x), free(R), free(want_dx), free(out), free(dx), free(experts), free(expert_grads);
    zq_source_close(ref);
    zq_net_close(net);
    return bad;
}

#define TORCH_TEST(name) \
    TEST(backward_matches_pytorch_##name) { CHECK(check_torch(#name, 0) == 0); CHECK(check_torch(#name, 1) == 0); }

TORCH_TEST(gpt2)
TORCH_TEST(opt)
TORCH_TEST(gpt_neox)
TORCH_TEST(gptj)
TORCH_TEST(llama)
TORCH_TEST(qwen2)
TORCH_TEST(llama3)
TORCH_TEST(qwen3)
TORCH_TEST(mistral)
TORCH_TEST(gemma2)
TORCH_TEST(gemma3_text)
TORCH_TEST(phi3)
TORCH_TEST(phi3_longrope)
TORCH_TEST(mixtral)
TORCH_TEST(qwen3_moe)
TORCH_TEST(qwen3_moe_dense)
TORCH_TEST(bert)
