/* zquant generate: continue a prompt, print ids and text. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "zquant/generate.h"
#include "zquant/tokenizer.h"

static const char help[] =
    "usage: zquant generate MODEL [-n N] [--greedy | --temperature T --seed S] [options]\n"
    "\n"
    "Continues a prompt with MODEL (a model folder, .safetensors, .h5, .gguf, a\n"
    "compressed-tensors folder or .zq; a .zq runs with the activation quantization\n"
    "it records) and prints the generated token ids on one line, then the text\n"
    "when a tokenizer is found.\n"
    "\n"
    "\n";

static const cli_option opts[] = {
    {'n', 'n', NULL, "N", 0, "tokens to generate (default 32)"},
    {'p', 0, "prompt-ids", "LIST", 0, "comma-separated prompt ids (default: BOS, id 1)"},
    {'g', 0, "greedy", NULL, 0, "argmax at every step (the default)"},
    {'T', 0, "temperature", "T", 0, "sample from softmax(logits / T) instead"},
    {'s', 0, "seed", "S", 0, "seed for sampling (default 1)"},
    {'k', 0, "tokenizer", "FILE", 0, "tokenizer for the text: llama2.c, or tokenizer.json\n"
                                     "(default: tokenizer.bin or tokenizer.json beside the\n"
                                     "model)"},
    {'D', 0, "dequantize", NULL, 0, "run a .zq file's weights expanded to FP32 (the\n"
                                     "reference path), not on the integer backend"},
    {'t', 't', "threads", "N", 0, "threads (default: all cores)"},
    {'j', 0, "json", NULL, 0, "{\"ids\": [...], \"text\": ...} on stdout"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};
static const cli_option *const tables[] = {opts, NULL};

static int parse_ids(char *s, int32_t **ids, int *n)
{
    *n = 0;
    *ids = malloc((strlen(s) / 2 + 2) * sizeof **ids);
    if (!*ids) return 0;
    for (char *tok = s;; tok++) { /* every id between commas: "1,,2" and "1," are not lists */
        char *comma = strchr(tok, ',');
        if (comma) *comma = 0;
        long v;
        if (!cli_parse_long(tok, 0, 0x7fffffffL, &v)) return 0;
        (*ids)[(*n)++] = (int32_t)v;
        if (!comma) return 1;
        tok = comma;
    }
}

int cmd_generate(int argc, char **argv)
{
    long n_new = 32, seed = 1, threads = 0;
    float temperature = 0;
    int json = 0, dequantize = 0, c, n_prompt = 0;
    int32_t *prompt = NULL;
    const char *tok_path = NULL;
    int rc = -1;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "generate", tables, argc, argv);
    while (rc < 0 && (c = cli_next(&args, &optarg, &rc)) > 0) {
        switch (c) {
        case 'n':
            if (cli_number("generate", "-n", optarg, 1, 1 << 20, &n_new)) rc = ZQ_ERR_USAGE;
            break;
        case 'p':
            free(prompt);
            if (!parse_ids(optarg, &prompt, &n_prompt)) rc = cli_usage("generate", "--prompt-ids takes ids like 1,403,407");
            break;
        case 'g': temperature = 0; break;
        case 'T':
            if (!cli_parse_float(optarg, &temperature)) rc = cli_usage("generate", "--temperature must be a number >= 0");
            break;
        case 's':
            if (cli_number("generate", "--seed", optarg, 0, 0x7fffffffL, &seed)) rc = ZQ_ERR_USAGE;
            break;
        case 'k': tok_path = optarg; break;
        case 't':
            if (cli_number("generate", "--threads", optarg, 1, 1024, &threads)) rc = ZQ_ERR_USAGE;
            break;
        case 'j': json = 1; break;
        case 'D': dequantize = 1; break;
        case 'h':
            cli_print_help(help, tables, NULL);
            rc = 0;
            break;
        }
    }
    if (rc < 0 && args.noperands != 1) rc = cli_usage("generate", "expected one MODEL");
    if (rc >= 0) {
        free(prompt);
        return rc;
    }
    const char *model = args.operands[0];
    if (threads) zq_engine_set_threads((int)threads);
    static int32_t bos = 1;
    if (!prompt) {
        prompt = malloc(sizeof *prompt);
        if (prompt) prompt[0] = bos, n_prompt = 1;
    }
    zq_error err = {0};
    zq_net *net = NULL;
    zq_tokenizer *tok = NULL;
    int total = n_prompt + (int)n_new;
    int32_t *out = malloc((size_t)total * sizeof *out);
    zq_status st = prompt && out ? zq_net_open(model, 0, &net, &err) : zq_fail(&err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK && !dequantize) st = zq_net_run_packed(net, zq_generate_act_mode(net), &err);
    if (st == ZQ_OK) st = zq_generate(net, prompt, n_prompt, (int)n_new, temperature, (uint64_t)seed, out, &err);
    if (st == ZQ_OK) {
        char *path = tok_path ? strdup(tok_path) : cli_find_tokenizer(model);
        zq_error ignore = {0};
        if (path && zq_tokenizer_load(path, &tok, &ignore) != ZQ_OK && tok_path)
            st = zq_tokenizer_load(path, &tok, &err); /* a named tokenizer must load */
        free(path);
    }
    if (st == ZQ_OK) {
        size_t cap = 256, len = 0;
        char *text = tok ? malloc(cap) : NULL;
        for (int i = n_prompt; text && i < total; i++) {
            size_t k;
            const char *p = zq_tokenizer_decode(tok, out[i - 1], out[i], &k);
            if (len + k + 1 > cap) {
                cap = 2 * (len + k + 1);
                char *g = realloc(text, cap);
                if (!g) { /* print the ids alone */
                    free(text);
                    text = NULL;
                    break;
                }
                text = g;
            }
            memcpy(text + len, p, k);
            len += k;
        }
        if (text) text[len] = 0;
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON *arr = cJSON_AddArrayToObject(j, "ids");
            for (int i = n_prompt; i < total; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(out[i]));
            char *valid = text ? zq_text_utf8(text, len) : NULL; /* JSON is UTF-8 */
            if (valid) cJSON_AddStringToObject(j, "text", valid);
            free(valid);
            cli_json_print(stdout, j);
        } else {
            for (int i = n_prompt; i < total; i++) printf(i > n_prompt ? " %d" : "%d", out[i]);
            printf("\n");
            if (text) printf("%s\n", text);
        }
        free(text);
    }
    zq_tokenizer_free(tok);
    zq_net_close(net);
    free(out);
    free(prompt);
    return st == ZQ_OK ? 0 : cli_fail(&err);
}
