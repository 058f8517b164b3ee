/* zquant quantize: an FP checkpoint in, a .zq file out. */
#include <getopt.h>
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
static const char help_tail[] =
    "      --json            print the report as JSON on stdout\n"
    "  -q, --quiet           no progress bar, no summary\n"
    "  -h, --help            this help\n"
    "\n"
    "Embeddings, norms, biases and the LM head stay FP16 unless a rule or\n"
    "--include says otherwise. See zquant-quantize(1).\n";

enum { OPT_JSON = OPT_FIRST_FREE };

int cmd_quantize(int argc, char **argv)
{
    struct option longopts[32];
    size_t n = 0;
    while (cli_qopts[n].name) longopts[n] = cli_qopts[n], n++;
    longopts[n++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    longopts[n++] = (struct option){"quiet", no_argument, NULL, 'q'};
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    cli_qargs q;
    cli_qargs_init(&q);
    int json = 0, quiet = 0, rc = 0, c;
    optind = 0;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, ":o:p:t:fqh", longopts, NULL)) != -1) {
        int taken = cli_qargs_option(&q, c, optarg, "quantize");
        if (taken >= 0) {
            rc = taken;
            continue;
        }
        switch (c) {
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': printf("%s%s%s", help_head, cli_qopts_help, help_tail); rc = -1; break;
        case ':': rc = cli_usage("quantize", "option '%s' needs a value", argv[optind - 1]); break;
        default: rc = cli_usage("quantize", "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (rc == 0 && optind != argc - 1)
        rc = cli_usage("quantize", optind >= argc ? "no INPUT given" : "exactly one INPUT expected");
    if (rc == 0 && !q.o.output) rc = cli_usage("quantize", "no output given (-o OUT.zq)");
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
        zq_status st = zq_quantize(&q.o, &rep, &err);
        cli_progress_end(&prog);
        if (st != ZQ_OK) rc = cli_fail(&err);
        else if (!quiet || json) cli_quantize_report(&q.o, &rep, cli_now() - t0, json);
        if (st == ZQ_OK) rc = cli_chain_end(&chain, q.o.force, quiet || json);
    }
    cli_chain_free(&chain);
    cli_qargs_free(&q);
    return rc < 0 ? 0 : rc;
}
