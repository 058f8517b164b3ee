/* zquant quantize: an FP checkpoint in, a .zq file out; round to nearest
 * (calibration-free), or GPTQ on calibration text (zq_quantize's
 * ZQ_METHOD_GPTQ). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qopts.h"

static const char help_head[] =
    "usage: zquant quantize INPUT -o OUT.zq|OUT.gguf [options]\n"
    "\n"
    "INPUT is a Hugging Face model folder (config.json + model.safetensors or\n"
    "sharded safetensors), a .safetensors file, or an .h5/.hdf5 file.\n"
    "-o OUT.gguf writes OUT.gguf.zq (--for llama.cpp unless --for says otherwise)\n"
    "and exports it for llama.cpp with the tokenizer beside INPUT.\n"
    "\n";
enum { OPT_METHOD = OPT_FIRST_FREE, OPT_CALIB, OPT_CALIB_TEXT, OPT_TOKENIZER, OPT_SAMPLES, OPT_SEQ };

static const cli_option method_opts[] = {
    {OPT_METHOD, 0, "method", "M", 0, "rtn (default): round to nearest, no data needed;\n"
                                      "gptq: GPTQ per Linear, block after block, with each\n"
                                      "Linear's input Hessian taken on calibration text run\n"
                                      "through the already-quantized blocks (activations\n"
                                      "quantized as the recipe says); needs --calib or\n"
                                      "--calib-text; INT4/INT8 with --group-size or --per-row"},
    {OPT_CALIB, 0, "calib", "FILE", 0, "gptq: calibration tokens (raw uint32 or .npy)"},
    {OPT_CALIB_TEXT, 0, "calib-text", "FILE", 0, "gptq: calibration text (documents split by lines\n"
                                                 "holding <|endoftext|>), tokenized with --tokenizer;\n"
                                                 "--text FILE says the same, as eval spells it"},
    {OPT_CALIB_TEXT, 0, "text", "FILE", 0, NULL},
    {OPT_TOKENIZER, 0, "tokenizer", "FILE", 0, "default: tokenizer.bin or tokenizer.json beside INPUT"},
    {OPT_SAMPLES, 0, "calib-samples", "N", 0, "gptq: sequences taken from the start of the\n"
                                              "calibration tokens (default 128)"},
    {OPT_SEQ, 0, "seq-len", "T", 0, "gptq: tokens per sequence (default 256)"},
    CLI_OPTIONS_END};

static const cli_option *const tables[] = {method_opts, cli_gptq_opts, cli_qopts, cli_common_opts, NULL};

static const char help_tail[] =
    "\n"
    "Embeddings, norms, biases and the LM head stay FP16 unless a rule or\n"
    "--include says otherwise. See zquant-quantize(1).\n";

typedef struct { /* what the CLI needs before the library's options: the text to tokenize */
    const char *calib_text, *tokenizer;
} method_args;

static int method_option(zq_quantize_opts *o, method_args *m, int c, const char *arg)
{
    long v;
    int rc;
    switch (c) {
    case OPT_METHOD:
        if (!strcmp(arg, "rtn") || !strcmp(arg, "gptq")) o->method = strcmp(arg, "gptq") ? ZQ_METHOD_RTN : ZQ_METHOD_GPTQ;
        else return cli_usage("quantize", "--method must be rtn or gptq");
        return 0;
    case OPT_CALIB: o->calib = arg; return 0;
    case OPT_CALIB_TEXT: m->calib_text = arg; return 0;
    case OPT_TOKENIZER: m->tokenizer = arg; return 0;
    case OPT_SAMPLES:
        if (!(rc = cli_number("quantize", "--calib-samples", arg, 1, 1 << 20, &v))) o->calib_samples = (int)v;
        return rc;
    case OPT_SEQ:
        if (!(rc = cli_number("quantize", "--seq-len", arg, 2, 1 << 20, &v))) o->seq_len = (int)v;
        return rc;
    }
    return cli_gptq_option(&o->damp, &o->act_order, c, arg, "quantize");
}

int cmd_quantize(int argc, char **argv)
{
    cli_qargs q;
    cli_qargs_init(&q);
    method_args m = {NULL, NULL};
    int json = 0, quiet = 0, rc = 0, c;
    char *arg;
    cli_args args;
    cli_args_init(&args, "quantize", tables, argc, argv);
    while (rc == 0 && (c = cli_next(&args, &arg, &rc)) > 0) {
        int taken = cli_qargs_option(&q, c, arg, "quantize");
        if (taken < 0) taken = method_option(&q.o, &m, c, arg);
        if (taken >= 0) {
            rc = taken;
            continue;
        }
        switch (c) {
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case 'h':
            cli_print_help(help_head, tables, help_tail);
            rc = -1;
            break;
        }
    }
    const char *input = args.noperands == 1 ? args.operands[0] : NULL;
    if (rc == 0 && !input) rc = cli_usage("quantize", args.noperands ? "exactly one INPUT expected" : "no INPUT given");
    if (rc == 0 && !q.o.output) rc = cli_usage("quantize", "no output given (-o OUT.zq)");
    int gptq = q.o.method == ZQ_METHOD_GPTQ;
    if (rc == 0 && gptq && !!q.o.calib + !!m.calib_text != 1)
        rc = cli_usage("quantize", "--method gptq needs calibration data: --calib FILE or --calib-text FILE");
    if (rc == 0 && !gptq && (q.o.calib || m.calib_text || q.o.act_order))
        rc = cli_usage("quantize", "--calib, --calib-text and --act-order are for --method gptq");
    cli_chain chain = {0};
    if (rc == 0) rc = cli_chain_begin(&q, "quantize", input, &chain);
    if (rc == 0) {
        cli_qargs_finish(&q);
        q.o.input = input;
        cli_progress prog; /* bytes for round to nearest, blocks for GPTQ */
        cli_progress_init(&prog, gptq ? "gptq" : "quantize", quiet || (gptq && json), !gptq);
        q.o.progress = cli_progress_update;
        q.o.progress_ctx = &prog;
        zq_quantize_report rep;
        zq_error err = {0};
        int32_t *ids = NULL;
        double t0 = cli_now();
        zq_status st = ZQ_OK;
        if (m.calib_text) st = cli_tokenize_text(m.calib_text, m.tokenizer, input, NULL, &ids, &q.o.n_calib_ids, &err);
        q.o.calib_ids = ids;
        if (st == ZQ_OK) st = zq_quantize(&q.o, &rep, &err);
        free(ids);
        cli_progress_end(&prog);
        if (st != ZQ_OK) rc = cli_fail(&err);
        else if (!quiet || json) cli_quantize_report(&q.o, &rep, cli_now() - t0, json);
        if (st == ZQ_OK) rc = cli_chain_end(&chain, q.o.force, quiet || json);
    }
    cli_chain_free(&chain);
    cli_qargs_free(&q);
    return rc < 0 ? 0 : rc;
}
