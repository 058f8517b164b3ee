/* zquant eval: perplexity, and KL / top-1 against the FP reference. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "zquant/eval.h"
#include "zquant/generate.h"
#include "zquant/tokenizer.h"

static const char help[] =
    "usage: zquant eval MODEL (--tokens FILE | --text FILE | --sample N,LEN) [options]\n"
    "\n"
    "Perplexity of MODEL (a model folder, .safetensors, .h5 or .zq, or an export:\n"
    "a .gguf file or a compressed-tensors folder, decoded as the runtime decodes\n"
    "it, weights only) and, with --reference, how far it is from its FP original.\n"
    "\n"
    "\n";

enum { OPT_TOKENS = 256, OPT_TEXT, OPT_TOKENIZER, OPT_SAMPLE, OPT_SEED, OPT_CTX, OPT_BATCH, OPT_ACT, OPT_CALIB,
       OPT_REF, OPT_PER_LAYER, OPT_MAX, OPT_JSON, OPT_LOGPROBS, OPT_DEQUANTIZE };

static const cli_option opts[] = {
    {OPT_TOKENS, 0, "tokens", "FILE", 0, "token ids: raw little-endian uint32, or .npy of integers"},
    {OPT_TEXT, 0, "text", "FILE", 0, "real text: documents split by lines holding\n"
                                     "<|endoftext|>, each stripped and tokenized with BOS first"},
    {OPT_TOKENIZER, 0, "tokenizer", "FILE", 0, "llama2.c tokenizer, a Hugging Face tokenizer.json\n"
                                               "(BPE), or a model that has one (default: the\n"
                                               "model's: carried in a .zq, a GGUF's, or\n"
                                               "tokenizer.bin or tokenizer.json\n"
                                               "beside the model or beside --reference)"},
    {OPT_SAMPLE, 0, "sample", "N,LEN", 0, "N sequences of LEN tokens sampled from the model\n"
                                          "itself (from the reference when given), temperature 1"},
    {OPT_SEED, 0, "seed", "S", 0, "seed for --sample (default 1)"},
    {OPT_CTX, 0, "seq-len", "N", 0, "window length (default: the model's context, at most\n"
                                    "512); --ctx N says the same"},
    {OPT_CTX, 0, "ctx", "N", 0, NULL},
    {OPT_BATCH, 0, "batch", "B", 0, "windows per forward pass (default 4)"},
    {OPT_ACT, 0, "act", "MODE", 0, "activation quantization: int8-token (dynamic, per\n"
                                   "token; int8-token-sym: symmetric, as vLLM's W8A8),\n"
                                   "int8-tensor (static per tensor, calibrated), none;\n"
                                   "default: what the .zq file records, none for others"},
    {OPT_CALIB, 0, "calib", "FILE", 0, "calibration tokens for int8-tensor (default: the\n"
                                       "evaluated tokens, which flatters the baseline)"},
    {OPT_DEQUANTIZE, 0, "dequantize", NULL, 0, "run a .zq file's weights expanded to FP32, its\n"
                                                "activation quantization emulated (the reference\n"
                                                "path), not on the integer backend"},
    {OPT_REF, 0, "reference", "FP", 0, "also run the FP model: ppl of both, KL(P_fp ||\n"
                                       "P_model), top-1 agreement"},
    {OPT_PER_LAYER, 0, "per-layer", NULL, 0, "with --reference: each block's relative output error"},
    {OPT_LOGPROBS, 0, "logprobs", "FILE", 0, "write each predicted position's log-probabilities:\n"
                                             "float32 little-endian [positions, vocab] (for\n"
                                             "comparing with another runtime); with -f an\n"
                                             "existing FILE is replaced"},
    {'f', 'f', "force", NULL, 0, "replace the --logprobs file if it exists"},
    {OPT_MAX, 0, "max-tokens", "N", 0, "evaluate only the first N tokens"},
    {'t', 't', "threads", "N", 0, "threads (default: all cores)"},
    {OPT_JSON, 0, "json", NULL, 0, "machine-readable output on stdout"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};
static const cli_option *const tables[] = {opts, NULL};

typedef struct {
    const char *model, *tokens, *text, *tokenizer, *act, *calib, *ref, *logprobs;
    long sample_n, sample_len, seed, ctx, batch, max_tokens, threads;
    int per_layer, json, force, dequantize;
} eval_args;

static int parse_args(int argc, char **argv, eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->seed = 1;
    a->batch = 4;
    int c, rc = 0;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "eval", tables, argc, argv);
    while ((c = cli_next(&args, &optarg, &rc)) > 0) {
        switch (c) {
        case OPT_TOKENS: a->tokens = optarg; break;
        case OPT_TEXT: a->text = optarg; break;
        case OPT_TOKENIZER: a->tokenizer = optarg; break;
        case OPT_SAMPLE: {
            char *comma = strchr(optarg, ',');
            if (!comma) return cli_usage("eval", "--sample takes N,LEN, not '%s'", optarg);
            *comma = 0;
            if (!cli_parse_long(optarg, 1, 1000000, &a->sample_n) || !cli_parse_long(comma + 1, 2, 1000000, &a->sample_len))
                return cli_usage("eval", "--sample takes N,LEN with N >= 1 and LEN >= 2");
            break;
        }
        case OPT_SEED:
            if (cli_number("eval", "--seed", optarg, 0, 0x7fffffffL, &a->seed)) return ZQ_ERR_USAGE;
            break;
        case OPT_CTX:
            if (cli_number("eval", "--ctx", optarg, 2, 1 << 20, &a->ctx)) return ZQ_ERR_USAGE;
            break;
        case OPT_BATCH:
            if (cli_number("eval", "--batch", optarg, 1, 4096, &a->batch)) return ZQ_ERR_USAGE;
            break;
        case OPT_ACT: a->act = optarg; break;
        case OPT_CALIB: a->calib = optarg; break;
        case OPT_REF: a->ref = optarg; break;
        case OPT_PER_LAYER: a->per_layer = 1; break;
        case OPT_DEQUANTIZE: a->dequantize = 1; break;
        case OPT_MAX:
            if (cli_number("eval", "--max-tokens", optarg, 2, 0x7fffffffL, &a->max_tokens)) return ZQ_ERR_USAGE;
            break;
        case 't':
            if (cli_number("eval", "--threads", optarg, 1, 1024, &a->threads)) return ZQ_ERR_USAGE;
            break;
        case OPT_JSON: a->json = 1; break;
        case OPT_LOGPROBS: a->logprobs = optarg; break;
        case 'f': a->force = 1; break;
        case 'h':
            cli_print_help(help, tables, NULL);
            return 0;
        }
    }
    if (rc) return rc;
    if (args.noperands != 1) return cli_usage("eval", "expected one MODEL");
    a->model = args.operands[0];
    if (!!a->tokens + !!a->text + !!a->sample_n != 1)
        return cli_usage("eval", "give exactly one of --tokens, --text and --sample");
    if (a->per_layer && !a->ref) return cli_usage("eval", "--per-layer needs --reference");
    return -1;
}

static zq_status load_tokens(const eval_args *a, const char *model, zq_net *net, zq_net *ref, int32_t **ids, size_t *n,
                             zq_error *err)
{
    if (a->tokens) return zq_tokens_read(a->tokens, ids, n, err);
    if (a->text) return cli_tokenize_text(a->text, a->tokenizer, model, a->ref, ids, n, err);
    /* sampled sequences, each starting from the config's BOS (else id 1, as llama2.c models use) */
    zq_net *from = ref ? ref : net;
    size_t len = (size_t)a->sample_len, total = (size_t)a->sample_n * len;
    *ids = malloc(total * sizeof **ids);
    if (!*ids) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    *n = total;
    const zq_arch *arch = zq_net_arch(from);
    int32_t bos = arch->bos_id >= 0 ? arch->bos_id : arch->vocab > 1 ? 1 : 0;
    for (long s = 0; s < a->sample_n; s++)
        ZQ_TRY(zq_generate(from, &bos, 1, (int)len - 1, 1.0f, (uint64_t)a->seed * 1000003u + (uint64_t)s,
                           *ids + (size_t)s * len, err));
    return ZQ_OK;
}

static void print_result(const eval_args *a, const char *model, zq_act_mode act, int ctx, int packed,
                         const zq_eval_result *r)
{
    double ppl = exp(r->nll), ref_ppl = exp(r->ref_nll);
    if (a->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", model);
        cJSON_AddNumberToObject(j, "tokens", (double)r->tokens);
        cJSON_AddNumberToObject(j, "ctx", ctx);
        cJSON_AddStringToObject(j, "act", zq_act_mode_name(act));
        cJSON_AddStringToObject(j, "backend", packed ? zq_int8_kernels_name() : "fp32");
        cJSON_AddNumberToObject(j, "nll", r->nll);
        cJSON_AddNumberToObject(j, "ppl", ppl);
        if (a->ref) {
            cJSON_AddStringToObject(j, "reference", a->ref);
            cJSON_AddNumberToObject(j, "ref_nll", r->ref_nll);
            cJSON_AddNumberToObject(j, "ref_ppl", ref_ppl);
            cJSON_AddNumberToObject(j, "kl", r->kl);
            cJSON_AddNumberToObject(j, "top1", r->top1);
        }
        if (r->layer_rel_err) {
            cJSON *l = cJSON_AddArrayToObject(j, "layer_rel_err");
            for (int k = 0; k < r->n_layers; k++) cJSON_AddItemToArray(l, cJSON_CreateNumber(r->layer_rel_err[k]));
        }
        cli_json_print(stdout, j);
        return;
    }
    printf("%s: %llu tokens, ctx %d, activations %s, %s\n", model, (unsigned long long)r->tokens, ctx,
           zq_act_mode_name(act), packed ? "packed weights" : "FP32 weights");
    printf("  ppl %.4f (nll %.4f nats/token)\n", ppl, r->nll);
    if (a->ref) {
        printf("  reference %s: ppl %.4f (nll %.4f)\n", a->ref, ref_ppl, r->ref_nll);
        printf("  KL(P_ref || P_model) %.6f nats/token, top-1 agreement %.2f%%\n", r->kl, 100 * r->top1);
    }
    for (int k = 0; r->layer_rel_err && k < r->n_layers; k++)
        printf("  block %d: relative output error %.6f\n", k, r->layer_rel_err[k]);
}

int cmd_eval(int argc, char **argv)
{
    eval_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    const char *model = a.model;
    if (a.threads) zq_engine_set_threads((int)a.threads);
    zq_error err = {0};
    zq_net *net = NULL, *ref = NULL;
    int32_t *ids = NULL, *calib = NULL;
    size_t n = 0, ncalib = 0;
    zq_eval_result res = {0};
    zq_act_mode act = ZQ_AQ_NONE;
    zq_status st = zq_net_open(model, 0, &net, &err);
    if (st == ZQ_OK && a.ref) st = zq_net_open(a.ref, 0, &ref, &err);
    if (st == ZQ_OK) {
        const zq_activation *rec = zq_net_activation(net);
        if (a.act) st = zq_act_mode_parse(a.act, &act, &err);
        else if (rec) act = zq_act_mode_of(rec);
        if (!rec && act != ZQ_AQ_NONE) zq_net_mark_all_quantized(net); /* an FP model: every Linear */
        if (st == ZQ_OK && !a.dequantize) st = zq_net_run_packed(net, act, &err);
    }
    if (st == ZQ_OK) st = load_tokens(&a, model, net, ref, &ids, &n, &err);
    if (st == ZQ_OK && a.calib) st = zq_tokens_read(a.calib, &calib, &ncalib, &err);
    if (st == ZQ_OK) {
        if (a.max_tokens && (size_t)a.max_tokens < n) n = (size_t)a.max_tokens;
        const zq_arch *arch = zq_net_arch(net);
        int ctx = a.ctx ? (int)a.ctx : arch->max_pos < 512 ? arch->max_pos : 512;
        if (a.sample_n && !a.ctx) ctx = (int)a.sample_len;
        cli_progress prog;
        cli_progress_init(&prog, "eval", a.json, 0);
        zq_eval_opts o = {ctx, (int)a.batch, act, calib, ncalib, a.per_layer, a.logprobs, a.force,
                          cli_progress_update, &prog};
        st = zq_eval(net, ref, ids, n, &o, &res, &err);
        cli_progress_end(&prog);
        if (st == ZQ_OK) print_result(&a, model, act, ctx, zq_net_runs_packed(net), &res);
    }
    zq_eval_result_free(&res);
    free(ids);
    free(calib);
    zq_net_close(net);
    zq_net_close(ref);
    return st == ZQ_OK ? 0 : cli_fail(&err);
}
