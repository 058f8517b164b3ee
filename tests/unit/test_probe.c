/* .zq files that contradict themselves, as no zquant writes them but a
 * reader meets them (another writer, an older zquant): an activation scheme
 * the format does not define, a config whose block count the tensors
 * exceed, no tensors at all. Made by rewriting a real .zq's tensors with
 * another config or scheme through the library's writer. */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "zquant/export.h"
#include "zquant/quantize.h"
#include "zquant/zq.h"

#define LLAMA "tests/fixtures/engine/llama"

/* out: the tensors of in (the first keep of them), with config and act. */
static int rewrite(const char *in, const char *out, const char *config, const zq_activation *act, size_t keep)
{
    zq_file *f = NULL;
    zq_writer *w = NULL;
    zq_error err = {0};
    if (zq_file_open(in, 1, &f, &err) || zq_writer_open(out, 1, 0, &w, &err) ||
        zq_writer_set_info(w, zq_file_model_type(f), config, "{}", act, &err))
        goto fail;
    size_t n = zq_file_count(f) < keep ? zq_file_count(f) : keep;
    for (size_t i = 0; i < n; i++)
        if (zq_writer_add_tensor(w, zq_file_tensor(f, i), &err)) goto fail;
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < ZQ_SEC_COUNT; s++) {
            const void *data;
            size_t len;
            if (!zq_file_tensor(f, i)->sec[s].present) continue;
            if (zq_file_section(f, i, (zq_section_kind)s, &data, &len, &err) ||
                zq_writer_begin_section(w, i, (zq_section_kind)s, &err) || zq_writer_write(w, data, len, &err) ||
                zq_writer_end_section(w, &err))
                goto fail;
        }
    zq_file_close(f);
    return zq_writer_commit(w, NULL, &err) == ZQ_OK;
fail:
    fprintf(stderr, "  rewrite: %s\n", err.msg);
    zq_writer_abort(w);
    zq_file_close(f);
    return 0;
}

/* The llama fixture quantized, and its config with "num_hidden_layers"
 * changed to layers (malloc'd). */
static char *quantized_llama(const char *path, int layers)
{
    zq_quantize_opts o;
    zq_quantize_opts_init(&o);
    o.input = LLAMA;
    o.output = path;
    o.force = 1;
    zq_quantize_report rep;
    zq_error err = {0};
    if (zq_quantize(&o, &rep, &err) != ZQ_OK) return NULL;
    zq_file *f = NULL;
    if (zq_file_open(path, 1, &f, &err) != ZQ_OK) return NULL;
    const char *c = zq_file_config(f), *at = strstr(c, "\"num_hidden_layers\"");
    char *out = malloc(strlen(c) + 32);
    if (out && at) {
        const char *end = strpbrk(strchr(at, ':') + 1, ",}");
        sprintf(out, "%.*s\"num_hidden_layers\": %d%s", (int)(at - c), c, layers, end);
    }
    zq_file_close(f);
    return at ? out : (free(out), NULL);
}

static zq_status export_gguf(const char *in, const char *out, zq_error *err)
{
    zq_export_opts o = {0};
    o.input = in;
    o.output = out;
    o.target = ZQ_TARGET_GGUF;
    o.no_vocab = 1;
    o.force = 1;
    zq_export_report r;
    return zq_export(&o, &r, err);
}

TEST(zq_with_undefined_activation_scheme_refused)
{
    char dir[] = "/tmp/zq-probe-XXXXXX", a[64], b[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(a, sizeof a, "%s/a.zq", dir);
    snprintf(b, sizeof b, "%s/b.zq", dir);
    char *config = quantized_llama(a, 2);
    zq_activation act = {4, "channel", 1, 0};
    CHECK(config && rewrite(a, b, config, &act, 1000));
    zq_file *f = NULL;
    zq_error err = {0};
    CHECK(zq_file_open(b, 1, &f, &err) == ZQ_ERR_FORMAT && strstr(err.msg, "is not a scheme zquant-format(5) defines"));
    zq_file_close(f);
    free(config);
    unlink(a), unlink(b), rmdir(dir);
}

TEST(zq_whose_tensors_exceed_its_config_not_exported)
{
    char dir[] = "/tmp/zq-probe-XXXXXX", a[64], b[64], c[64], g[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(a, sizeof a, "%s/a.zq", dir);
    snprintf(b, sizeof b, "%s/b.zq", dir);
    snprintf(c, sizeof c, "%s/c.zq", dir);
    snprintf(g, sizeof g, "%s/b.gguf", dir);
    char *config = quantized_llama(a, 1); /* the tensors hold blocks 0 and 1 */
    zq_activation act;
    zq_act_mode_record(ZQ_AQ_TOKEN, &act);
    CHECK(config && rewrite(a, b, config, &act, 1000));
    zq_error err = {0};
    CHECK(export_gguf(b, g, &err) == ZQ_ERR_FORMAT && strstr(err.msg, "is of block 1, but the config has 1 blocks"));
    CHECK(access(g, F_OK) != 0);
    zq_error err2 = {0}; /* and none at all */
    CHECK(rewrite(a, c, config, &act, 0));
    CHECK(export_gguf(c, g, &err2) == ZQ_ERR_FORMAT && strstr(err2.msg, "holds no tensors"));
    CHECK(access(g, F_OK) != 0);
    free(config);
    unlink(a), unlink(b), unlink(c), rmdir(dir);
}
