/* zquant dequantize: a .zq file back to a plain safetensors checkpoint. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "zquant/dequantize.h"

static const char help[] =
    "usage: zquant dequantize FILE.zq -o OUT.safetensors [--dtype f32|f16] [--force]\n"
    "\n"
    "Writes a plain safetensors checkpoint with the tensor names, shapes and\n"
    "layout of the original input, each weight replaced by its dequantized\n"
    "value, so any other tool can measure what quantization did.\n"
    "\n"
    "  -o, --output FILE   the safetensors file to write (required)\n"
    "      --dtype T       f32 (default) or f16\n"
    "  -f, --force         overwrite OUT if it exists\n"
    "  -h, --help          this help\n";

int cmd_dequantize(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"dtype", required_argument, NULL, 'd'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int f16 = 0, force = 0, c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'd':
            if (strcmp(optarg, "f16") == 0) f16 = 1;
            else if (strcmp(optarg, "f32") == 0) f16 = 0;
            else return cli_usage("dequantize", "--dtype must be f32 or f16, not '%s'", optarg);
            break;
        case 'f': force = 1; break;
        case 'h': fputs(help, stdout); return 0;
        case ':': return cli_usage("dequantize", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage("dequantize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage("dequantize", "expected one FILE.zq");
    if (!out) return cli_usage("dequantize", "no output given (-o OUT.safetensors)");
    zq_error err = {0};
    if (zq_dequantize_file(argv[optind], out, f16, force, &err) != ZQ_OK) return cli_fail(&err);
    return 0;
}
