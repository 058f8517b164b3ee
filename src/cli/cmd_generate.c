/* zquant generate: continue a prompt, print ids and text. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "zquant/generate.h"
#include "zquant/tokenizer.h"

static const char help[] =
    "usage: zquant generate MODEL [--prompt TEXT | --prompt-file FILE | --prompt-ids LIST] [-n N]\n"
    "                       [--greedy | --temperature T --seed S] [options]\n"
    "\n"
    "Continues a prompt with MODEL (a model folder, .safetensors, .h5, .gguf, a\n"
    "compressed-tensors folder or .zq; a .zq runs with the activation quantization\n"
    "it records). A text prompt is tokenized with the model's tokenizer, BOS\n"
    "first, and the text is streamed to stdout as the tokens come; with\n"
    "--prompt-ids (or no prompt: BOS alone) the generated ids are printed on one\n"
    "line, then the text when a tokenizer is found. Generation stops at the\n"
    "config's EOS unless --ignore-eos.\n"
    "\n"
    "\n";

static const cli_option opts[] = {
    {'n', 'n', NULL, "N", 0, "tokens to generate (default 32)"},
    {'P', 0, "prompt", "TEXT", 0, "the prompt as text"},
    {'F', 0, "prompt-file", "FILE", 0, "the prompt as the text of FILE"},
    {'p', 0, "prompt-ids", "LIST", 0, "comma-separated prompt ids (default: BOS, the config's\n"
                                      "bos_token_id, else id 1)"},
    {'E', 0, "ignore-eos", NULL, 0, "generate all N tokens, past an EOS"},
    {'g', 0, "greedy", NULL, 0, "argmax at every step (the default)"},
    {'T', 0, "temperature", "T", 0, "sample from softmax(logits / T) instead"},
    {'s', 0, "seed", "S", 0, "seed for sampling (default 1)"},
    {'K', 0, "top-k", "K", 0, "sample from the K most likely tokens only (default: all)"},
    {'U', 0, "top-p", "P", 0, "sample from the fewest most likely tokens whose\n"
                               "probabilities reach P, 0 < P <= 1 (default 1: all)"},
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

/* A prompt file's text, whole. */
static zq_status read_text(const char *path, char **text, size_t *len, zq_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return zq_fail(err, ZQ_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    size_t cap = 4096, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *g = realloc(buf, cap *= 2);
            if (!g) free(buf);
            buf = g;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory reading '%s'", path);
    if (bad) {
        free(buf);
        return zq_fail(err, ZQ_ERR_IO, "cannot read '%s'", path);
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--; /* a file's last newline is not prompt */
    *text = buf, *len = n;
    return ZQ_OK;
}

typedef struct {
    const zq_tokenizer *tok;
    const zq_arch *arch;
} stream_ctx;

/* Each new token's text, printed as it comes (an EOS has none). */
static void stream_token(void *ctx, int32_t prev, int32_t id)
{
    const stream_ctx *sc = ctx;
    if (zq_is_eos(sc->arch, id)) return;
    size_t k;
    const char *p = zq_tokenizer_decode(sc->tok, prev, id, &k);
    fwrite(p, 1, k, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv)
{
    long n_new = 32, seed = 1, threads = 0, top_k = 0;
    float temperature = 0, top_p = 1;
    int json = 0, dequantize = 0, ignore_eos = 0, prompts = 0, c, n_prompt = 0;
    int32_t *prompt = NULL;
    const char *tok_path = NULL, *text_arg = NULL, *text_file = NULL;
    int rc = -1;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "generate", tables, argc, argv);
    while (rc < 0 && (c = cli_next(&args, &optarg, &rc)) > 0) {
        switch (c) {
        case 'n':
            if (cli_number("generate", "-n", optarg, 1, 1 << 20, &n_new)) rc = ZQ_ERR_USAGE;
            break;
        case 'P': text_arg = optarg, prompts++; break;
        case 'F': text_file = optarg, prompts++; break;
        case 'E': ignore_eos = 1; break;
        case 'p':
            prompts++;
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
        case 'K':
            if (cli_number("generate", "--top-k", optarg, 1, 1 << 30, &top_k)) rc = ZQ_ERR_USAGE;
            break;
        case 'U':
            if (!cli_parse_float(optarg, &top_p) || !(top_p > 0 && top_p <= 1))
                rc = cli_usage("generate", "--top-p takes a number above 0 and at most 1");
            break;
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
    if (rc < 0 && prompts > 1) rc = cli_usage("generate", "give one of --prompt, --prompt-file and --prompt-ids");
    if (rc < 0 && (top_k || top_p < 1) && temperature <= 0)
        rc = cli_usage("generate", "--top-k and --top-p shape sampling: give --temperature T above 0 too");
    if (rc >= 0) {
        free(prompt);
        return rc;
    }
    const char *model = args.operands[0];
    if (threads) zq_engine_set_threads((int)threads);
    zq_error err = {0};
    zq_net *net = NULL;
    zq_tokenizer *tok = NULL;
    int32_t *out = NULL;
    char *text = NULL;
    size_t text_len = 0;
    zq_status st = ZQ_OK;
    if (text_file) st = read_text(text_file, &text, &text_len, &err);
    if (text_arg && !(text = strdup(text_arg))) st = zq_fail(&err, ZQ_ERR_NOMEM, "out of memory");
    if (text_arg) text_len = strlen(text_arg);
    if (st == ZQ_OK) st = zq_net_open(model, 0, &net, &err);
    if (st == ZQ_OK && !dequantize) st = zq_net_run_packed(net, zq_generate_act_mode(net), &err);
    if (st == ZQ_OK) {
        zq_error ignore = {0};
        /* a named tokenizer, or one a text prompt needs, must load; else ids alone will do */
        if (cli_tokenizer(tok_path, model, NULL, &tok, tok_path || text ? &err : &ignore) != ZQ_OK && (tok_path || text))
            st = err.code;
        if (st == ZQ_OK && text && !tok)
            st = zq_fail(&err, ZQ_ERR_USAGE, "'%s': no tokenizer for a text prompt (none carried in it, no "
                         "tokenizer.bin or tokenizer.json beside it): give --tokenizer", model);
    }
    if (st == ZQ_OK && !prompt) { /* BOS, then the text's ids */
        const zq_arch *a = zq_net_arch(net);
        int32_t bos = a->bos_id >= 0 ? a->bos_id : tok && zq_tokenizer_bos(tok) >= 0 ? zq_tokenizer_bos(tok) : 1;
        size_t n = 1, cap = 16;
        prompt = malloc(cap * sizeof *prompt);
        if (!prompt) st = zq_fail(&err, ZQ_ERR_NOMEM, "out of memory");
        else prompt[0] = bos;
        if (st == ZQ_OK && text) st = zq_tokenizer_encode(tok, text, text_len, 0, &prompt, &n, &cap, &err);
        if (st == ZQ_OK && n > 0x7fffffff) st = zq_fail(&err, ZQ_ERR_USAGE, "the prompt is too long");
        n_prompt = (int)n;
    }
    int total = n_prompt + (int)n_new, n_out = 0;
    if (st == ZQ_OK && !(out = malloc((size_t)total * sizeof *out))) st = zq_fail(&err, ZQ_ERR_NOMEM, "out of memory");
    stream_ctx sc = {tok, net ? zq_net_arch(net) : NULL};
    int streaming = st == ZQ_OK && text && !json;
    if (streaming) {
        fwrite(text, 1, text_len, stdout);
        fflush(stdout);
    }
    zq_generate_opts o = {temperature, (uint64_t)seed, !ignore_eos, streaming ? stream_token : NULL, &sc, (int)top_k, top_p};
    if (st == ZQ_OK) st = zq_generate_with(net, prompt, n_prompt, (int)n_new, &o, out, &n_out, &err);
    if (st == ZQ_OK && streaming) printf("\n");
    if (st == ZQ_OK && !streaming) {
        size_t cap = 256, len = 0;
        char *gen = tok ? malloc(cap) : NULL;
        for (int i = n_prompt; gen && i < n_out; i++) {
            size_t k;
            if (sc.arch && zq_is_eos(sc.arch, out[i])) continue;
            const char *p = zq_tokenizer_decode(tok, out[i - 1], out[i], &k);
            if (len + k + 1 > cap) {
                cap = 2 * (len + k + 1);
                char *g = realloc(gen, cap);
                if (!g) { /* print the ids alone */
                    free(gen);
                    gen = NULL;
                    break;
                }
                gen = g;
            }
            memcpy(gen + len, p, k);
            len += k;
        }
        if (gen) gen[len] = 0;
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON *arr = cJSON_AddArrayToObject(j, "ids");
            for (int i = n_prompt; i < n_out; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(out[i]));
            char *valid = gen ? zq_text_utf8(gen, len) : NULL; /* JSON is UTF-8 */
            if (valid) cJSON_AddStringToObject(j, "text", valid);
            free(valid);
            cli_json_print(stdout, j);
        } else {
            for (int i = n_prompt; i < n_out; i++) printf(i > n_prompt ? " %d" : "%d", out[i]);
            printf("\n");
            if (gen) printf("%s\n", gen);
        }
        free(gen);
    }
    zq_tokenizer_free(tok);
    zq_net_close(net);
    free(out);
    free(prompt);
    free(text);
    return st == ZQ_OK ? 0 : cli_fail(&err);
}
