/* A Hugging Face folder: the input is split at lines "#--#" into
 * config.json, model.safetensors.index.json and two shards (no index part:
 * one model.safetensors), then quantized whole, which also runs the
 * architecture table over the tensor names. */
#include "fuzz.h"
#include "zquant/quantize.h"

static const char sep[] = "\n#--#\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *part[4] = {0};
    size_t len[4] = {0};
    size_t at = 0;
    for (int k = 0; k < 4; k++) {
        part[k] = data + at;
        const uint8_t *end = k < 3 ? memmem(data + at, size - at, sep, sizeof sep - 1) : NULL;
        len[k] = end ? (size_t)(end - (data + at)) : size - at;
        at += len[k] + (end ? sizeof sep - 1 : 0);
        if (!end) break;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/folder", fuzz_dir());
    mkdir(dir, 0700);
    static const char *names[] = {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                  "model-00002-of-00002.safetensors", "model.safetensors"};
    for (int k = 0; k < 5; k++) {
        char p[600];
        snprintf(p, sizeof p, "folder/%s", names[k]);
        unlink(fuzz_file(p, "", 0));
    }
    int sharded = len[1] > 0;
    for (int k = 0; k < 4; k++) {
        if (k == 1 && !sharded) continue;
        char p[600];
        snprintf(p, sizeof p, "folder/%s", k == 2 && !sharded ? names[4] : names[k]);
        fuzz_file(p, part[k], len[k]);
    }
    zq_quantize_opts o;
    zq_quantize_opts_init(&o);
    o.input = dir;
    o.output = "/dev/null";
    o.threads = 1;
    o.preset = (size & 1) ? "w4/8a8" : "w8a8";
    zq_quantize_report rep;
    zq_error err = {0};
    zq_quantize(&o, &rep, &err);
    zq_forget_inputs();
    return 0;
}
