/* zquant quantize: an FP checkpoint in, a .zq file out; round to nearest
 * (calibration-free), or GPTQ on calibration text through the LKD driver,
 * which already walks the model a block at a time on the quantized
 * prefix's activations. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qopts.h"
#include "zquant/lkd.h"

static const char help_head[] =
    "usage: zquant quantize INPUT -o OUT.zq|OUT.gguf [options]\n"
    "\n"
    "INPUT is a Hugging Face model folder (config.json + model.safetensors or\n"
    "sharded safetensors), a .safetensors file, or an .h5/.hdf5 file.\n"
    "-o OUT.gguf writes OUT.gguf.zq (--for llama.cpp unless --for says otherwise)\n"
    "and exports it for llama.cpp with the tokenizer beside INPUT.\n"
    "\n";
static const char help_method[] =
    "  --method M            rtn (default): round to nearest, no data needed;\n"
    "                        gptq: GPTQ per Linear, block after block, with each\n"
    "                        Linear's input Hessian taken on calibration text run\n"
    "                        through the already-quantized blocks (activations\n"
    "                        quantized as the recipe says); needs --calib or\n"
    "                        --calib-text; INT4/INT8 with --group-size or --per-row\n"
    "  --calib FILE          gptq: calibration tokens (raw uint32 or .npy)\n"
    "  --calib-text FILE     gptq: calibration text (documents split by lines\n"
    "                        holding <|endoftext|>), tokenized with --tokenizer;\n"
    "                        --text FILE says the same, as eval spells it\n"
    "  --tokenizer FILE      default: tokenizer.bin or tokenizer.json beside INPUT\n"
    "  --calib-samples N     gptq: sequences taken from the start of the\n"
    "                        calibration tokens (default 128)\n"
    "  --seq-len T           gptq: tokens per sequence (default 256)\n"
    "  --damp X              gptq: dampening, a fraction of the Hessian's mean\n"
    "                        diagonal (default 0.01)\n"
    "  --act-order           gptq: columns in decreasing Hessian diagonal order;\n"
    "                        groups stay contiguous, so their scales are round to\n"
    "                        nearest's, fixed before GPTQ starts\n"
    "\n";
static const char help_tail[] =
    "      --json            print the report as JSON on stdout\n"
    "  -q, --quiet           no progress bar, no summary\n"
    "  -h, --help            this help\n"
    "\n"
    "Embeddings, norms, biases and the LM head stay FP16 unless a rule or\n"
    "--include says otherwise. See zquant-quantize(1).\n";

enum { OPT_JSON = OPT_FIRST_FREE, OPT_METHOD, OPT_CALIB, OPT_CALIB_TEXT, OPT_TOKENIZER, OPT_SAMPLES, OPT_SEQ,
       OPT_DAMP, OPT_ACT_ORDER };

typedef struct {
    int gptq;
    const char *calib, *calib_text, *tokenizer;
    long samples, seq_len;
    float damp;
    int act_order;
} method_args;

static void gptq_progress(void *ctx, const zq_lkd_progress *p)
{
    cli_progress *bar = ctx;
    cli_progress_update(bar, (uint64_t)p->layer + 1, (uint64_t)p->n_layers, "block");
}

/* GPTQ through the LKD driver: no distillation steps, GPTQ as each
 * block's start, inputs from the quantized prefix, one sequence a batch. */
static zq_status run_gptq(const zq_quantize_opts *q, const method_args *m, int quiet, zq_quantize_report *rep,
                          zq_error *err)
{
    int32_t *ids = NULL;
    size_t n = 0;
    zq_status st = ZQ_OK;
    if (m->calib_text) st = cli_tokenize_text(m->calib_text, m->tokenizer, q->input, NULL, &ids, &n, err);
    zq_lkd_opts o;
    zq_lkd_opts_init(&o);
    o.q = *q;
    o.q.progress = NULL;
    o.steps = 0;
    o.init = ZQ_INIT_GPTQ;
    o.input_quantized = 1;
    o.batch = 1;
    o.seq_len = (int)m->seq_len;
    o.data_batches = (int)m->samples;
    o.data = m->calib;
    o.data_ids = ids;
    o.n_data_ids = n;
    o.damp = m->damp;
    o.act_order = m->act_order;
    cli_progress bar;
    cli_progress_init(&bar, "gptq", quiet, 0);
    o.progress = gptq_progress;
    o.progress_ctx = &bar;
    zq_lkd_report lr = {0};
    if (st == ZQ_OK) st = zq_lkd(&o, &lr, err);
    cli_progress_end(&bar);
    if (st == ZQ_OK) *rep = lr.quant;
    zq_lkd_report_free(&lr); /* a failed run has its report too */
    free(ids);
    return st;
}

static int method_option(method_args *m, int c, const char *arg)
{
    float f;
    char *end;
    switch (c) {
    case OPT_METHOD:
        if (!strcmp(arg, "rtn") || !strcmp(arg, "gptq")) m->gptq = !strcmp(arg, "gptq");
        else return cli_usage("quantize", "--method must be rtn or gptq");
        return 0;
    case OPT_CALIB: m->calib = arg; return 0;
    case OPT_CALIB_TEXT: m->calib_text = arg; return 0;
    case OPT_TOKENIZER: m->tokenizer = arg; return 0;
    case OPT_SAMPLES: return cli_number("quantize", "--calib-samples", arg, 1, 1 << 20, &m->samples);
    case OPT_SEQ: return cli_number("quantize", "--seq-len", arg, 2, 1 << 20, &m->seq_len);
    case OPT_DAMP:
        f = strtof(arg, &end);
        if (!*arg || *end || !(f > 0) || f > 1) return cli_usage("quantize", "--damp must be a number in (0, 1]");
        m->damp = f;
        return 0;
    case OPT_ACT_ORDER: m->act_order = 1; return 0;
    }
    return -1;
}

int cmd_quantize(int argc, char **argv)
{
    struct option longopts[48];
    size_t n = 0;
    while (cli_qopts[n].name) longopts[n] = cli_qopts[n], n++;
    static const struct option own[] = {
        {"method", required_argument, NULL, OPT_METHOD}, {"calib", required_argument, NULL, OPT_CALIB},
        {"calib-text", required_argument, NULL, OPT_CALIB_TEXT}, {"text", required_argument, NULL, OPT_CALIB_TEXT},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"calib-samples", required_argument, NULL, OPT_SAMPLES}, {"seq-len", required_argument, NULL, OPT_SEQ},
        {"damp", required_argument, NULL, OPT_DAMP}, {"act-order", no_argument, NULL, OPT_ACT_ORDER},
        {NULL, 0, NULL, 0}};
    for (size_t k = 0; own[k].name; k++) longopts[n++] = own[k];
    longopts[n++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    longopts[n++] = (struct option){"quiet", no_argument, NULL, 'q'};
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    cli_qargs q;
    cli_qargs_init(&q);
    method_args m = {0, NULL, NULL, NULL, 128, 256, 0.01f, 0};
    int json = 0, quiet = 0, rc = 0, c;
    optind = 0;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":o:p:t:fqh", longopts, NULL)) != -1) {
        int taken = cli_qargs_option(&q, c, optarg, "quantize");
        if (taken < 0) taken = method_option(&m, c, optarg);
        if (taken >= 0) {
            rc = taken;
            continue;
        }
        switch (c) {
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': printf("%s%s%s%s", help_head, help_method, cli_qopts_help, help_tail); rc = -1; break;
        case ':': rc = cli_usage("quantize", "option '%s' needs a value", argv[optind - 1]); break;
        default: rc = cli_usage("quantize", "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (rc == 0 && optind != argc - 1)
        rc = cli_usage("quantize", optind >= argc ? "no INPUT given" : "exactly one INPUT expected");
    if (rc == 0 && !q.o.output) rc = cli_usage("quantize", "no output given (-o OUT.zq)");
    if (rc == 0 && m.gptq && !!m.calib + !!m.calib_text != 1)
        rc = cli_usage("quantize", "--method gptq needs calibration data: --calib FILE or --calib-text FILE");
    if (rc == 0 && !m.gptq && (m.calib || m.calib_text || m.act_order))
        rc = cli_usage("quantize", "--calib, --calib-text and --act-order are for --method gptq");
    cli_chain chain = {0};
    if (rc == 0) rc = cli_chain_begin(&q, "quantize", argv[optind], &chain);
    if (rc == 0) {
        cli_qargs_finish(&q);
        q.o.input = argv[optind];
        cli_progress prog;
        cli_progress_init(&prog, "quantize", quiet, 1);
        q.o.progress = cli_progress_update;
        q.o.progress_ctx = &prog;
        zq_quantize_report rep;
        zq_error err = {0};
        double t0 = cli_now();
        zq_status st = m.gptq ? run_gptq(&q.o, &m, quiet || json, &rep, &err) : zq_quantize(&q.o, &rep, &err);
        cli_progress_end(&prog);
        if (st != ZQ_OK) rc = cli_fail(&err);
        else if (!quiet || json) cli_quantize_report(&q.o, &rep, cli_now() - t0, json);
        if (st == ZQ_OK) rc = cli_chain_end(&chain, q.o.force, quiet || json);
    }
    cli_chain_free(&chain);
    cli_qargs_free(&q);
    return rc < 0 ? 0 : rc;
}
