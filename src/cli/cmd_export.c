/* zquant export: a .zq file to GGUF (llama.cpp) or compressed-tensors (vLLM). */
#include <ctype.h>
#include <errno.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "zquant/export.h"

static const char help[] =
    "usage: zquant export MODEL.zq -o OUT.gguf [options]\n"
    "       zquant export MODEL.zq -o OUT_DIR --format compressed-tensors [options]\n"
    "\n"
    "Writes the quantized model for the runtimes people deploy: a GGUF file for\n"
    "llama.cpp, or a Hugging Face folder with a compressed-tensors\n"
    "quantization_config for vLLM. The codes and scales in MODEL.zq are\n"
    "carried over exactly; a tensor the target cannot hold stops the export\n"
    "before anything is written (quantize --for llama.cpp|vllm avoids that).\n"
    "\n"
    "\n";

enum { OPT_FORMAT = 256, OPT_FROM, OPT_TOKENIZER, OPT_NO_VOCAB, OPT_NAME, OPT_JSON, OPT_SHARD };

static const cli_option opts[] = {
    {'o', 'o', "output", "PATH", 0, "the .gguf file or the folder to write (required)"},
    {OPT_FORMAT, 0, "format", "F", 0, "gguf (or llama.cpp) or compressed-tensors (or vllm,\n"
                                      "ct), the names quantize --for takes (default: gguf\n"
                                      "when PATH ends in .gguf, else compressed-tensors)"},
    {OPT_FROM, 0, "from", "DIR", 0, "the original model folder, for a .zq that does not\n"
                                    "carry its tokenizer and generation files: the\n"
                                    "tokenizer becomes the GGUF vocabulary, the files are\n"
                                    "copied into a compressed-tensors folder (default:\n"
                                    "those MODEL.zq carries, else those beside it)"},
    {OPT_TOKENIZER, 0, "tokenizer", "F", 0, "GGUF: the tokenizer.bin or tokenizer.json to use"},
    {OPT_NO_VOCAB, 0, "no-vocab", NULL, 0, "GGUF: write no vocabulary (llama.cpp's no_vocab)"},
    {OPT_NAME, 0, "name", "NAME", 0, "GGUF general.name (default: MODEL.zq's file name)"},
    {OPT_SHARD, 0, "max-shard-size", "SIZE", 0, "compressed-tensors: safetensors shards of at most\n"
                                                "SIZE bytes, or with a suffix KB, MB, GB (powers of\n"
                                                "1000; default 5GB, as Hugging Face)"},
    {'f', 'f', "force", NULL, 0, "replace PATH if it exists"},
    {OPT_JSON, 0, "json", NULL, 0, "print the report as JSON on stdout"},
    {'q', 'q', "quiet", NULL, 0, "no progress bar, no summary"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};
static const cli_option *const tables[] = {opts, NULL};

/* "5GB", "500MB", "64KB" or bytes (powers of 1000, as Hugging Face
 * counts shards); 0 when it is none of these. */
static uint64_t parse_size(const char *s)
{
    static const struct { const char *suffix; uint64_t unit; } units[] = {
        {"GB", 1000000000u}, {"MB", 1000000u}, {"KB", 1000u}, {"B", 1u}, {"", 1u}};
    char *end;
    if (!isdigit((unsigned char)*s)) return 0; /* strtoull would take " -1" as 2^64 - 1 */
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return 0;
    for (size_t k = 0; k < sizeof units / sizeof *units; k++)
        if (!strcmp(end, units[k].suffix)) return v <= UINT64_MAX / units[k].unit ? v * units[k].unit : 0;
    return 0;
}

static void report(const zq_export_opts *o, const zq_export_report *r, double seconds, int json)
{
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", o->output);
        cJSON_AddStringToObject(j, "format", zq_target_name(r->target));
        cJSON_AddNumberToObject(j, "tensors", (double)r->tensors);
        cJSON_AddNumberToObject(j, "quantized", (double)r->quantized);
        cJSON_AddNumberToObject(j, "bytes", (double)r->bytes);
        cJSON_AddNumberToObject(j, "files", (double)r->files);
        cJSON_AddStringToObject(j, "types", r->summary);
        cJSON_AddStringToObject(j, "note", r->note);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        cli_json_print(stdout, j);
        return;
    }
    printf("%s: %s, %zu tensors (%zu quantized), %.2f MB in %.2f s\n", o->output, zq_target_name(r->target),
           r->tensors, r->quantized, (double)r->bytes / 1e6, seconds);
    printf("  %s\n", r->summary);
    if (r->note[0]) printf("  note: %s\n", r->note);
}

int cmd_export(int argc, char **argv)
{
    zq_export_opts o = {0};
    const char *from = NULL;
    int json = 0, quiet = 0, c, rc = 0;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "export", tables, argc, argv);
    while ((c = cli_next(&args, &optarg, &rc)) > 0) {
        switch (c) {
        case 'o': o.output = optarg; break;
        case OPT_FORMAT:
            if (!zq_target_named(optarg, &o.target)) {
                char names[160];
                zq_target_names(names, sizeof names);
                return cli_usage("export", "--format takes %s, not '%s'", names, optarg);
            }
            break;
        case OPT_FROM: from = optarg; break;
        case OPT_TOKENIZER: o.tokenizer = optarg; break;
        case OPT_NO_VOCAB: o.no_vocab = 1; break;
        case OPT_NAME: o.name = optarg; break;
        case OPT_SHARD:
            if (!(o.shard_bytes = parse_size(optarg)))
                return cli_usage("export", "--max-shard-size takes a size like 500MB or 5GB, not '%s'", optarg);
            break;
        case 'f': o.force = 1; break;
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case 'h':
            cli_print_help(help, tables, NULL);
            return 0;
        }
    }
    if (rc) return rc;
    if (args.noperands != 1) return cli_usage("export", "expected one MODEL.zq");
    if (!o.output) return cli_usage("export", "no output given (-o OUT.gguf or -o OUT_DIR)");
    if (o.tokenizer && o.no_vocab) return cli_usage("export", "--tokenizer and --no-vocab contradict each other");
    o.input = args.operands[0];
    o.model_dir = from;
    cli_progress bar;
    cli_progress_init(&bar, "export", quiet || json, 1);
    o.progress = cli_progress_update;
    o.progress_ctx = &bar;
    zq_export_report r;
    zq_error err = {0};
    double t0 = cli_now();
    zq_status st = zq_export(&o, &r, &err);
    cli_progress_end(&bar);
    if (st == ZQ_OK && !quiet) report(&o, &r, cli_now() - t0, json);
    return st == ZQ_OK ? 0 : cli_fail(&err);
}

int cli_gguf_chain_end(const char *zq, const char *gguf, const char *tokenizer, int force, int quiet)
{
    zq_export_opts o = {0};
    o.input = zq;
    o.output = gguf;
    o.target = ZQ_TARGET_GGUF;
    o.tokenizer = tokenizer;
    o.force = force;
    zq_export_report r;
    zq_error err = {0};
    double t0 = cli_now();
    if (zq_export(&o, &r, &err) != ZQ_OK) return cli_fail(&err);
    if (!quiet) report(&o, &r, cli_now() - t0, 0);
    return 0;
}
