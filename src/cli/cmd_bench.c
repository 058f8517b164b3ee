/* zquant bench: prefill and decode speed, as llama.cpp's llama-bench
 * measures them, on the integer backend (or the dequantized path). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "options.h"
#include "zquant/generate.h"

static const char help[] =
    "usage: zquant bench MODEL [--prefill N] [--decode N] [--reps N] [-t N] [--json]\n"
    "\n"
    "Tokens per second of MODEL (a .zq file runs on the integer backend; an FP\n"
    "model or an export in FP32): one forward pass over --prefill tokens, and\n"
    "--decode tokens one at a time against a KV cache, each from an empty\n"
    "cache, token ids drawn at random; the median of --reps repetitions after\n"
    "one warm-up, with their range (the cache and buffers made once, as a\n"
    "server keeps its context). Opening the model and packing its weights\n"
    "is timed apart (load). Weight bytes: what one token's forward reads.\n"
    "\n"
    "\n";

enum { OPT_PREFILL = 256, OPT_DECODE, OPT_REPS, OPT_DEQUANTIZE, OPT_JSON };

static const cli_option opts[] = {
    {OPT_PREFILL, 0, "prefill", "N", 0, "prompt tokens of the prefill pass (default 512; 0: none)"},
    {OPT_DECODE, 0, "decode", "N", 0, "tokens decoded one at a time (default 128; 0: none)"},
    {OPT_REPS, 0, "reps", "N", 0, "repetitions (default 3)"},
    {OPT_DEQUANTIZE, 0, "dequantize", NULL, 0, "a .zq file's weights expanded to FP32, activation\n"
                                               "quantization emulated (the reference path)"},
    {'t', 't', "threads", "N", 0, "threads (default: all cores)"},
    {OPT_JSON, 0, "json", NULL, 0, "machine-readable output on stdout"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};
static const cli_option *const tables[] = {opts, NULL};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median, min and max of tokens / seconds over n repetitions */
static void rates(long tokens, double *seconds, int n, double *med, double *lo, double *hi)
{
    double *r = malloc((size_t)n * sizeof *r);
    if (!r) {
        *med = *lo = *hi = 0;
        return;
    }
    for (int k = 0; k < n; k++) r[k] = seconds[k] > 0 ? (double)tokens / seconds[k] : 0;
    qsort(r, (size_t)n, sizeof *r, by_value);
    *med = n % 2 ? r[n / 2] : 0.5 * (r[n / 2 - 1] + r[n / 2]);
    *lo = r[0], *hi = r[n - 1];
    free(r);
}

int cmd_bench(int argc, char **argv)
{
    long prefill = 512, decode = 128, reps = 3, threads = 0;
    int json = 0, dequantize = 0, c, rc = 0;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "bench", tables, argc, argv);
    while ((c = cli_next(&args, &optarg, &rc)) > 0) {
        switch (c) {
        case OPT_PREFILL:
            if (cli_number("bench", "--prefill", optarg, 0, 1 << 20, &prefill)) return ZQ_ERR_USAGE;
            break;
        case OPT_DECODE:
            if (cli_number("bench", "--decode", optarg, 0, 1 << 20, &decode)) return ZQ_ERR_USAGE;
            break;
        case OPT_REPS:
            if (cli_number("bench", "--reps", optarg, 1, 1000, &reps)) return ZQ_ERR_USAGE;
            break;
        case OPT_DEQUANTIZE: dequantize = 1; break;
        case 't':
            if (cli_number("bench", "--threads", optarg, 1, 1024, &threads)) return ZQ_ERR_USAGE;
            break;
        case OPT_JSON: json = 1; break;
        case 'h': cli_print_help(help, tables, NULL); return 0;
        }
    }
    if (rc) return rc;
    if (args.noperands != 1) return cli_usage("bench", "expected one MODEL");
    if (!prefill && !decode) return cli_usage("bench", "--prefill 0 and --decode 0 leave nothing to measure");
    const char *model = args.operands[0];
    if (threads) zq_engine_set_threads((int)threads);
    zq_error err = {0};
    zq_net *net = NULL;
    uint64_t weight_bytes = 0;
    double t0 = now(), *pre = calloc((size_t)reps, sizeof *pre), *dec = calloc((size_t)reps, sizeof *dec);
    zq_status st = pre && dec ? zq_net_open(model, 0, &net, &err) : zq_fail(&err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK && !dequantize) st = zq_net_run_packed(net, zq_generate_act_mode(net), &err);
    if (st == ZQ_OK) st = zq_net_weight_bytes(net, &weight_bytes, &err); /* loads (and packs) every block */
    double load_s = now() - t0;
    if (st == ZQ_OK) st = zq_bench(net, (int)prefill, (int)decode, (int)reps, pre, dec, &err);
    if (st == ZQ_OK) {
        double pm, plo, phi, dm, dlo, dhi;
        rates(prefill, pre, (int)reps, &pm, &plo, &phi);
        rates(decode, dec, (int)reps, &dm, &dlo, &dhi);
        const char *backend = zq_net_runs_packed(net) ? zq_int8_kernels_name() : "fp32";
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model", model);
            cJSON_AddStringToObject(j, "backend", backend);
            cJSON_AddNumberToObject(j, "threads", zq_engine_threads());
            cJSON_AddNumberToObject(j, "prefill", (double)prefill);
            cJSON_AddNumberToObject(j, "decode", (double)decode);
            cJSON_AddNumberToObject(j, "reps", (double)reps);
            cJSON_AddNumberToObject(j, "load_s", load_s);
            cJSON_AddNumberToObject(j, "prefill_tps", pm);
            cJSON_AddNumberToObject(j, "prefill_tps_min", plo);
            cJSON_AddNumberToObject(j, "prefill_tps_max", phi);
            cJSON_AddNumberToObject(j, "decode_tps", dm);
            cJSON_AddNumberToObject(j, "decode_tps_min", dlo);
            cJSON_AddNumberToObject(j, "decode_tps_max", dhi);
            cJSON_AddNumberToObject(j, "weight_bytes", (double)weight_bytes);
            cli_json_print(stdout, j);
        } else {
            printf("%s: %s, %d threads, %.1f MB of weights read per token\n", model, backend, zq_engine_threads(),
                   (double)weight_bytes / 1e6);
            printf("  load     %.3f s\n", load_s);
            if (prefill)
                printf("  prefill  %ld tokens: %.1f tok/s (median of %ld; %.1f-%.1f)\n", prefill, pm, reps, plo, phi);
            if (decode)
                printf("  decode   %ld tokens: %.2f tok/s (median of %ld; %.2f-%.2f)\n", decode, dm, reps, dlo, dhi);
        }
    }
    free(pre);
    free(dec);
    zq_net_close(net);
    return st == ZQ_OK ? 0 : cli_fail(&err);
}
