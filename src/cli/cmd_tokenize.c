/* zquant tokenize: text to a token file. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zquant/tokenizer.h"

static const char help[] =
    "usage: zquant tokenize TEXT --tokenizer FILE -o OUT.bin [--force]\n"
    "\n"
    "Tokenizes TEXT as zquant eval --text does (documents split by lines holding\n"
    "<|endoftext|>, each stripped, BOS first) with a llama2.c tokenizer or a\n"
    "Hugging Face tokenizer.json (BPE: byte-level or SentencePiece-style), and\n"
    "writes the ids as raw little-endian uint32: a token file for eval --tokens,\n"
    "lkd --data, or any other tool.\n"
    "\n"
    "  --tokenizer FILE   tokenizer.bin (llama2.c) or tokenizer.json\n"
    "  -o, --output FILE  where the ids go (required)\n"
    "  -f, --force        overwrite OUT if it exists\n"
    "  -h, --help         this help\n";

int cmd_tokenize(int argc, char **argv)
{
    static const struct option longopts[] = {{"tokenizer", required_argument, NULL, 'k'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *tok_path = NULL, *out = NULL;
    int force = 0, c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': tok_path = optarg; break;
        case 'o': out = optarg; break;
        case 'f': force = 1; break;
        case 'h': fputs(help, stdout); return 0;
        case ':': return cli_usage("tokenize", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage("tokenize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage("tokenize", "expected one TEXT file");
    if (!tok_path) return cli_usage("tokenize", "no --tokenizer given");
    if (!out) return cli_usage("tokenize", "no output given (-o OUT.bin)");
    zq_error err = {0};
    zq_tokenizer *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    zq_status st = zq_tokenizer_load(tok_path, &t, &err);
    if (st == ZQ_OK) st = zq_tokenize_documents(t, argv[optind], &ids, &n, &err);
    if (st == ZQ_OK) st = zq_tokens_write(out, ids, n, force, &err);
    free(ids);
    zq_tokenizer_free(t);
    return st == ZQ_OK ? 0 : cli_fail(&err);
}
