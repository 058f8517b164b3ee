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
enum { OPT_METHOD = OPT_FIRST_FREE, OPT_DRY_RUN };

static const cli_option method_opts[] = {
    {OPT_METHOD, 0, "method", "M", 0, "rtn (default): round to nearest, no data needed;\n"
                                      "gptq: GPTQ per Linear, block after block, with each\n"
                                      "Linear's input Hessian taken on data run through the\n"
                                      "already-quantized blocks (activations quantized as\n"
                                      "the recipe says); needs --tokens, --text or\n"
                                      "--generated; INT4/INT8 with --group-size or --per-row"},
    {OPT_DRY_RUN, 0, "dry-run", NULL, 0, "print the plan (each tensor, its format and group,\n"
                                         "the bytes) and write nothing; -o may be left out"},
    CLI_OPTIONS_END};

static const cli_option *const tables[] = {method_opts, cli_data_opts, cli_gptq_opts, cli_qopts, cli_common_opts, NULL};

static const char help_tail[] =
    "\n"
    "Embeddings, norms, biases and the LM head stay FP16 unless a rule or\n"
    "--include says otherwise. See zquant-quantize(1).\n";

/* The data options, checked against the method before any work. */
static int take_data(zq_quantize_opts *o, const cli_data *d)
{
    int rc = cli_data_check(d, "quantize");
    int gptq = o->method == ZQ_METHOD_GPTQ;
    if (rc) return rc;
    if (!gptq && (d->sources || d->samples || d->seq_len || d->memory_given || o->act_order))
        return cli_usage("quantize", "--tokens, --text, --generated, --samples, --seq-len, --data-memory and "
                         "--act-order are for --method gptq (round to nearest needs no data)");
    if (gptq && d->kind == CLI_DATA_RANDOM)
        return cli_usage("quantize", "--method gptq takes --tokens, --text or --generated, not random ids");
    if (gptq && !d->sources) return cli_usage("quantize", "--method gptq needs calibration data: --tokens FILE, --text FILE or --generated");
    if (d->kind == CLI_DATA_TOKENS) o->calib = d->file;
    o->calib_generated = d->kind == CLI_DATA_GENERATED;
    if (d->samples) o->calib_samples = (int)d->samples;
    if (d->seq_len) o->seq_len = (int)d->seq_len;
    cli_data_memory(d, o);
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    cli_qargs q;
    cli_qargs_init(&q);
    cli_data d = {0};
    int json = 0, quiet = 0, rc = 0, c, dry_run = 0;
    char *arg;
    cli_args args;
    cli_args_init(&args, "quantize", tables, argc, argv);
    while (rc == 0 && (c = cli_next(&args, &arg, &rc)) > 0) {
        int taken = cli_qargs_option(&q, c, arg, "quantize");
        if (taken < 0) taken = cli_data_option(&d, c, arg, "quantize");
        if (taken < 0) taken = cli_gptq_option(&q.o.damp, &q.o.act_order, c, arg, "quantize");
        if (taken < 0 && c == OPT_METHOD) {
            if (!strcmp(arg, "rtn") || !strcmp(arg, "gptq")) q.o.method = strcmp(arg, "gptq") ? ZQ_METHOD_RTN : ZQ_METHOD_GPTQ;
            else taken = cli_usage("quantize", "--method must be rtn or gptq");
        }
        if (taken >= 0) {
            rc = taken;
            continue;
        }
        switch (c) {
        case OPT_DRY_RUN: dry_run = 1; break;
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
    if (rc == 0 && dry_run && q.o.method == ZQ_METHOD_GPTQ)
        rc = cli_usage("quantize", "--dry-run shows how tensors are stored; GPTQ's plan is the same as round to nearest's, "
                       "leave out --method gptq and its data");
    if (rc == 0 && dry_run) {
        cli_qargs_finish(&q);
        rc = cli_print_plan(&q.o, input, json);
        cli_qargs_free(&q);
        return rc;
    }
    if (rc == 0 && !q.o.output) rc = cli_usage("quantize", "no output given (-o OUT.zq)");
    int gptq = q.o.method == ZQ_METHOD_GPTQ;
    if (rc == 0) rc = take_data(&q.o, &d);
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
        if (d.kind == CLI_DATA_TEXT) st = cli_tokenize_text(d.file, d.tokenizer, input, NULL, &ids, &q.o.n_calib_ids, &err);
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
