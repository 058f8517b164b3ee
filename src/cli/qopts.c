/* The quantization options quantize and lkd share, parsed into zq_quantize_opts. */
#include "qopts.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

const cli_option cli_qopts[] = {
    {'o', 'o', "output", "FILE", 0, "the .zq file to write (required)"},
    {'p', 'p', "preset", "NAME", 0, "w8a8 (default), w8a16, w4/8a16, w4/8a8, w4a16;\n"
                                    "w4/8: INT4 in MLP/FC weights, INT8 in attention"},
    {OPT_FOR, 0, "for", "TARGET", 0, "llama.cpp (gguf) or vllm (compressed-tensors): only\n"
                                     "layouts that runtime executes, so `zquant export`\n"
                                     "takes every tensor (llama.cpp: groups of 32, inputs\n"
                                     "not a multiple of 32 kept FP16; vllm: INT8 per row\n"
                                     "with INT8 activations, else groups of 128 or per row)"},
    {OPT_GROUP_SIZE, 0, "group-size", "N", 0, "N weights per group along the input dimension\n"
                                              "(default 128; 1 to 1048576)"},
    {OPT_GROUPS, 0, "groups", "G", 0, "the paper's split instead: G blocks of whole output rows"},
    {OPT_PER_ROW, 0, "per-row", NULL, 0, "one scale per output row"},
    {OPT_PER_TENSOR, 0, "per-tensor", NULL, 0, "one scale per matrix"},
    {OPT_ASYM, 0, "asym", NULL, 0, "asymmetric (scale and min) instead of symmetric"},
    {OPT_SYM, 0, "sym", NULL, 0, "symmetric (the default)"},
    {OPT_RULE, 0, "rule", "GLOB=SPEC", 0, "per-tensor override, last match wins; SPEC is\n"
                                          "fp16 | int8 | int4, then :gN :row :tensor :blocksN,\n"
                                          "then :sym or :asym (e.g. 'lm_head.weight=int8:row')"},
    {OPT_INCLUDE, 0, "include", "GLOB", 0, "also quantize tensors matching GLOB"},
    {OPT_EXCLUDE, 0, "exclude", "GLOB", 0, "keep tensors matching GLOB in FP16"},
    {OPT_ALLOW_UNMATCHED, 0, "allow-unmatched", NULL, 0, "a --rule, --include or --exclude that matches no\n"
                                                         "tensor is not an error"},
    {OPT_ACT, 0, "act", "SCHEME", 0, "activation scheme to record: int8-token (dynamic,\n"
                                     "asymmetric), int8-token-sym (dynamic, symmetric),\n"
                                     "int8-tensor (static), none"},
    {'t', 't', "threads", "N", 0, "worker threads (default: all cores)"},
    {OPT_COMPRESS, 0, "compress", "L", 1, "zstd-compress every section (level L, default 3)"},
    {'f', 'f', "force", NULL, 0, "overwrite OUT if it exists"},
    CLI_OPTIONS_END};

const cli_option cli_gptq_opts[] = {
    {OPT_DAMP, 0, "damp", "X", 0, "gptq: dampening, a fraction of the Hessian's mean\n"
                                  "diagonal (default 0.01)"},
    {OPT_ACT_ORDER, 0, "act-order", NULL, 0, "gptq: columns in decreasing Hessian diagonal order;\n"
                                             "groups stay contiguous, so their scales are round to\n"
                                             "nearest's, fixed before GPTQ starts"},
    CLI_OPTIONS_END};

int cli_gptq_option(float *damp, int *act_order, int c, const char *arg, const char *cmd)
{
    float f;
    switch (c) {
    case OPT_DAMP:
        if (!cli_parse_float(arg, &f) || !(f > 0) || f > 1) return cli_usage(cmd, "--damp must be a number in (0, 1]");
        *damp = f;
        return 0;
    case OPT_ACT_ORDER: *act_order = 1; return 0;
    }
    return -1;
}

const cli_option cli_data_opts[] = {
    {OPT_TOKENS, 0, "tokens", "FILE", 0, "data: token ids (raw little-endian uint32, or .npy)"},
    {OPT_TOKENS, 0, "calib", "FILE", 0, NULL},
    {OPT_TOKENS, 0, "data", "FILE", 0, NULL},
    {OPT_TEXT, 0, "text", "FILE", 0, "data: text (documents split by lines holding\n"
                                     "<|endoftext|>), tokenized with the model's tokenizer"},
    {OPT_TEXT, 0, "calib-text", "FILE", 0, NULL},
    {OPT_TOKENIZER, 0, "tokenizer", "FILE", 0, "for --text (default: the one the model carries or\n"
                                               "has beside it)"},
    {OPT_GENERATED, 0, "generated", NULL, 0, "data: sequences sampled from the FP model itself\n"
                                             "(temperature 1, from BOS; data-free; lkd's default)"},
    {OPT_RANDOM, 0, "random-tokens", NULL, 0, "data: uniformly random ids (data-free)"},
    {OPT_SAMPLES, 0, "samples", "N", 0, "sequences of data (gptq: 128; lkd: 64, that is\n"
                                        "--batch 4 x 16 distinct batches)"},
    {OPT_SAMPLES, 0, "calib-samples", "N", 0, NULL},
    {OPT_SEQ_LEN, 0, "seq-len", "T", 0, "tokens per sequence (gptq: 256; lkd: 128)"},
    {OPT_DATA_MEMORY, 0, "data-memory", "MB", 0, "the data's activations kept in memory (default 256);\n"
                                                 "beyond it they go to a file without a name beside\n"
                                                 "the output, read back a batch at a time"},
    CLI_OPTIONS_END};

int cli_data_option(cli_data *d, int c, const char *arg, const char *cmd)
{
    switch (c) {
    case OPT_TOKENS: d->kind = CLI_DATA_TOKENS, d->file = arg, d->sources++; return 0;
    case OPT_TEXT: d->kind = CLI_DATA_TEXT, d->file = arg, d->sources++; return 0;
    case OPT_GENERATED: d->kind = CLI_DATA_GENERATED, d->sources++; return 0;
    case OPT_RANDOM: d->kind = CLI_DATA_RANDOM, d->sources++; return 0;
    case OPT_TOKENIZER: d->tokenizer = arg; return 0;
    case OPT_SAMPLES: return cli_number(cmd, "--samples", arg, 1, 1 << 20, &d->samples);
    case OPT_SEQ_LEN: return cli_number(cmd, "--seq-len", arg, 2, 1 << 20, &d->seq_len);
    case OPT_DATA_MEMORY: d->memory_given = 1; return cli_number(cmd, "--data-memory", arg, 0, 1L << 30, &d->memory_mb);
    }
    return -1;
}

void cli_data_memory(const cli_data *d, zq_quantize_opts *o)
{
    if (d->memory_given) o->data_memory = (size_t)d->memory_mb << 20;
}

int cli_data_check(const cli_data *d, const char *cmd)
{
    if (d->sources > 1)
        return cli_usage(cmd, "give one of --tokens, --text, --generated and --random-tokens (the data comes from one "
                         "place)");
    if (d->tokenizer && d->kind != CLI_DATA_TEXT) return cli_usage(cmd, "--tokenizer is for --text");
    return 0;
}

const cli_option cli_common_opts[] = {
    {OPT_JSON, 0, "json", NULL, 0, "print the report as JSON on stdout"},
    {'q', 'q', "quiet", NULL, 0, "no progress bar, no summary"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};

void cli_qargs_init(cli_qargs *q)
{
    memset(q, 0, sizeof *q);
    zq_quantize_opts_init(&q->o);
}

static int push(const char ***arr, size_t *n, const char *v)
{
    const char **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a) return 0;
    a[(*n)++] = v;
    *arr = a;
    return 1;
}

static int push_rule(cli_qargs *q, char *arg)
{
    char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) return 0;
    zq_rule *r = realloc(q->rules, (q->nrules + 1) * sizeof *r);
    if (!r) return 0;
    *eq = 0;
    r[q->nrules++] = (zq_rule){arg, eq + 1};
    q->rules = r;
    return 1;
}

int cli_qargs_option(cli_qargs *q, int c, char *arg, const char *cmd)
{
    zq_quantize_opts *o = &q->o;
    long v;
    switch (c) {
    case 'o': o->output = arg; return 0;
    case 'p':
        if (!zq_preset_find(arg)) {
            char names[128];
            zq_preset_names(names, sizeof names);
            return cli_usage(cmd, "unknown preset '%s' (%s)", arg, names);
        }
        o->preset = arg;
        return 0;
    case OPT_FOR:
        if (!zq_target_named(arg, &o->target)) {
            char names[160];
            zq_target_names(names, sizeof names);
            return cli_usage(cmd, "--for takes %s, not '%s'", names, arg);
        }
        return 0;
    case OPT_GROUP_SIZE:
        if (cli_number(cmd, "--group-size", arg, 1, ZQ_MAX_GROUP_SIZE, &v)) return ZQ_ERR_USAGE;
        o->base.gran = ZQ_GRAN_GROUP;
        o->base.group_size = (uint32_t)v;
        q->gran_given = 1;
        return 0;
    case OPT_GROUPS:
        if (cli_number(cmd, "--groups", arg, 1, ZQ_MAX_GROUP_SIZE, &v)) return ZQ_ERR_USAGE;
        o->base.gran = ZQ_GRAN_BLOCKS;
        o->base.blocks = (uint32_t)v;
        q->gran_given = 1;
        return 0;
    case OPT_PER_ROW: o->base.gran = ZQ_GRAN_ROW, q->gran_given = 1; return 0;
    case OPT_PER_TENSOR: o->base.gran = ZQ_GRAN_TENSOR, q->gran_given = 1; return 0;
    case OPT_ASYM: o->base.symmetric = 0; return 0;
    case OPT_SYM: o->base.symmetric = 1; return 0;
    case OPT_RULE: return push_rule(q, arg) ? 0 : cli_usage(cmd, "--rule takes GLOB=SPEC, not '%s'", arg);
    case OPT_INCLUDE: return push(&q->include, &q->ninclude, arg) ? 0 : ZQ_ERR_NOMEM;
    case OPT_EXCLUDE: return push(&q->exclude, &q->nexclude, arg) ? 0 : ZQ_ERR_NOMEM;
    case OPT_ALLOW_UNMATCHED: o->allow_unmatched = 1; return 0;
    case OPT_ACT: {
        zq_error err = {0};
        if (zq_act_mode_parse(arg, &o->act, &err) != ZQ_OK) return cli_fail(&err);
        o->act_given = 1;
        return 0;
    }
    case 't':
        if (cli_number(cmd, "--threads", arg, 1, 1024, &v)) return ZQ_ERR_USAGE;
        o->threads = (int)v;
        return 0;
    case OPT_COMPRESS:
        o->zstd_level = 3;
        if (arg && cli_number(cmd, "--compress", arg, 1, 19, &v)) return ZQ_ERR_USAGE;
        if (arg) o->zstd_level = (int)v;
        return 0;
    case 'f': o->force = 1; return 0;
    }
    return -1;
}

void cli_qargs_finish(cli_qargs *q)
{
    q->o.rules = q->rules;
    q->o.nrules = q->nrules;
    q->o.include = q->include;
    q->o.ninclude = q->ninclude;
    q->o.exclude = q->exclude;
    q->o.nexclude = q->nexclude;
    if (zq_target_group_size(q->o.target) && !q->gran_given) q->o.base.group_size = zq_target_group_size(q->o.target);
}

void cli_qargs_free(cli_qargs *q)
{
    free(q->rules);
    free(q->include);
    free(q->exclude);
}

void cli_quantize_report(const zq_quantize_opts *o, const zq_quantize_report *r, double seconds, int json)
{
    double ratio = r->output_bytes ? (double)r->fp16_bytes / (double)r->output_bytes : 0;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", o->output);
        cJSON_AddNumberToObject(j, "tensors", (double)r->tensors);
        cJSON_AddNumberToObject(j, "quantized", (double)r->quantized);
        cJSON_AddNumberToObject(j, "input_bytes", (double)r->input_bytes);
        cJSON_AddNumberToObject(j, "fp16_bytes", (double)r->fp16_bytes);
        cJSON_AddNumberToObject(j, "total_bytes", (double)r->output_bytes);
        cJSON_AddNumberToObject(j, "compression_ratio", ratio);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        cJSON_AddNumberToObject(j, "worst_rel_rmse", r->worst_rel_rmse);
        cJSON_AddStringToObject(j, "worst_tensor", r->worst_tensor);
        cli_json_print(stdout, j);
        return;
    }
    char how[64];
    cli_size_ratio(r->output_bytes, r->fp16_bytes, how, sizeof how);
    printf("%s: %zu tensors, %zu quantized, %.2f MB (%s) in %.2f s\n", o->output, r->tensors, r->quantized,
           (double)r->output_bytes / 1e6, how, seconds);
    if (r->quantized) printf("worst relative RMSE %.4f in '%s'\n", r->worst_rel_rmse, r->worst_tensor);
}


static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

int cli_chain_begin(cli_qargs *q, const char *cmd, const char *input, cli_chain *c)
{
    const char *out = q->o.output;
    size_t n = strlen(out);
    memset(c, 0, sizeof *c);
    static const char *const checkpoints[] = {".safetensors", ".h5", ".hdf5", ".bin", ".pt", ".pth"};
    zq_error err = {0};
    for (size_t k = 0; k < sizeof checkpoints / sizeof *checkpoints; k++)
        if (ends_with(out, checkpoints[k])) {
            zq_fail(&err, ZQ_ERR_USAGE, "'%s': %s writes a .zq file (or a .gguf for llama.cpp), not %s; for a "
                    "safetensors folder vLLM loads, write a .zq and run zquant export --format compressed-tensors", out,
                    cmd, checkpoints[k]);
            return cli_fail(&err);
        }
    if (!ends_with(out, ".gguf")) return 0;
    if (q->o.target && q->o.target != ZQ_TARGET_GGUF)
        return cli_usage(cmd, "-o %s writes llama.cpp's GGUF, but --for %s asks for that runtime's layouts: give -o "
                         "OUT.zq (then zquant export), or --for llama.cpp", out, zq_target_runtime(q->o.target));
    if (zq_output_allowed(out, q->o.force, &err) != ZQ_OK) return cli_fail(&err); /* now, not after the work */
    char *name, *data;
    size_t len;
    zq_status found = zq_model_file(input, zq_tokenizer_files, &name, &data, &len, &err);
    free(data);
    if (found != ZQ_OK) return cli_fail(&err);
    c->tokenizer = name;
    if (!c->tokenizer)
        return cli_usage(cmd, "-o %s: no tokenizer.bin or tokenizer.json beside '%s' for the GGUF vocabulary; write a "
                         ".zq and run zquant export --tokenizer", out, input);
    if (!(c->zq = malloc(n + 4))) return ZQ_ERR_NOMEM;
    sprintf(c->zq, "%s.zq", out);
    c->gguf = out;
    q->o.output = c->zq;
    if (!q->o.target) q->o.target = ZQ_TARGET_GGUF;
    return 0;
}

int cli_chain_end(const cli_chain *c, int force, int quiet)
{
    return c->gguf ? cli_gguf_chain_end(c->zq, c->gguf, c->tokenizer, force, quiet) : 0;
}

void cli_chain_free(cli_chain *c)
{
    free(c->zq);
    free(c->tokenizer);
    memset(c, 0, sizeof *c);
}
