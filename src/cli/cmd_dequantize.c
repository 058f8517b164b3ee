/* zquant dequantize: a .zq file back to a plain safetensors checkpoint. */
#include <string.h>

#include "cli.h"
#include "options.h"
#include "zquant/dequantize.h"

static const char help[] =
    "usage: zquant dequantize FILE.zq -o OUT.safetensors [--dtype f32|f16] [--force]\n"
    "\n"
    "Writes a plain safetensors checkpoint with the tensor names, shapes and\n"
    "layout of the original input, each weight replaced by its dequantized\n"
    "value, so any other tool can measure what quantization did.\n"
    "\n";

static const cli_option opts[] = {
    {'o', 'o', "output", "FILE", 0, "the safetensors file to write (required)"},
    {'d', 0, "dtype", "T", 0, "f32 (default) or f16"},
    {'f', 'f', "force", NULL, 0, "overwrite OUT if it exists"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};
static const cli_option *const tables[] = {opts, NULL};

int cmd_dequantize(int argc, char **argv)
{
    const char *out = NULL;
    int f16 = 0, force = 0, c, rc = 0;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "dequantize", tables, argc, argv);
    while ((c = cli_next(&args, &optarg, &rc)) > 0) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'd':
            if (strcmp(optarg, "f16") == 0) f16 = 1;
            else if (strcmp(optarg, "f32") == 0) f16 = 0;
            else return cli_usage("dequantize", "--dtype must be f32 or f16, not '%s'", optarg);
            break;
        case 'f': force = 1; break;
        case 'h':
            cli_print_help(help, tables, NULL);
            return 0;
        }
    }
    if (rc) return rc;
    if (args.noperands != 1) return cli_usage("dequantize", "expected one FILE.zq");
    if (!out) return cli_usage("dequantize", "no output given (-o OUT.safetensors)");
    zq_error err = {0};
    if (zq_dequantize_file(args.operands[0], out, f16, force, &err) != ZQ_OK) return cli_fail(&err);
    return 0;
}
