/* zquant: the command-line face of libzquant. Each subcommand lives in its
 * own file; this one dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "zquant/quant.h"
#include "zquant/signals.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"quantize", cmd_quantize, "FP16 checkpoint in, packed INT8/INT4 .zq file out"},
    {"lkd", cmd_lkd, "layer-by-layer distillation, then quantize (what makes INT4 usable)"},
    {"inspect", cmd_inspect, "list the tensors of a .zq file (bits, errors) or of an export"},
    {"verify", cmd_verify, "check the structure and checksums of a .zq file"},
    {"export", cmd_export, "a .zq file as GGUF (llama.cpp) or compressed-tensors (vLLM)"},
    {"dequantize", cmd_dequantize, "write a .zq file back out as a plain safetensors checkpoint"},
    {"eval", cmd_eval, "perplexity, and KL / top-1 against the FP model"},
    {"generate", cmd_generate, "continue a prompt, greedy or sampled, and print the ids"},
    {"bench", cmd_bench, "prefill and decode tokens/s on the integer backend, as llama-bench"},
    {"tokenize", cmd_tokenize, "text to a token file (raw uint32): llama2.c or tokenizer.json"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: zquant <command> [options]\n       zquant help <command>\n       zquant --version\n\ncommands:\n");
    for (size_t k = 0; k < NCOMMANDS; k++) fprintf(out, "  %-11s %s\n", commands[k].name, commands[k].summary);
    fprintf(out, "\nSee zquant(1) for exit codes, zquant-format(5) for the .zq file.\n");
}

static const command *find(const char *name)
{
    for (size_t k = 0; k < NCOMMANDS; k++)
        if (strcmp(commands[k].name, name) == 0) return &commands[k];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("zquant %s\nkernels: %s\ninteger kernels: %s\n", ZQ_VERSION, zq_kernels_name(), zq_int8_kernels_name());
        return 0;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "zquant: '%s' is not a zquant command\n", argv[2]);
            return 2;
        }
        char *help_argv[] = {(char *)c->name, "--help", NULL};
        return c->run(2, help_argv);
    }
    const command *c = find(name);
    if (!c) {
        fprintf(stderr, "zquant: '%s' is not a zquant command (see 'zquant --help')\n", name);
        return 2;
    }
    zq_install_signal_cleanup();
    return c->run(argc - 1, argv + 1);
}
