/* zquant tokenize: text to a token file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "zquant/tokenizer.h"

static const char help[] =
    "usage: zquant tokenize TEXT --tokenizer FILE -o OUT.bin [--force]\n"
    "\n"
    "Tokenizes TEXT as zquant eval --text does (documents split by lines holding\n"
    "<|endoftext|>, each stripped, BOS first) with a llama2.c tokenizer or a\n"
    "Hugging Face tokenizer.json (BPE: byte-level or SentencePiece-style), and\n"
    "writes the ids as raw little-endian uint32: a token file for eval --tokens,\n"
    "lkd --data, or any other tool.\n"
    "\n";

static const cli_option opts[] = {
    {'k', 0, "tokenizer", "FILE", 0, "tokenizer.bin (llama2.c) or tokenizer.json, or a\n"
                                     "model whose tokenizer to use: a .gguf (its\n"
                                     "vocabulary), a .zq or a model folder"},
    {'o', 'o', "output", "FILE", 0, "where the ids go (required; - for stdout)"},
    {'f', 'f', "force", NULL, 0, "overwrite OUT if it exists"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};
static const cli_option *const tables[] = {opts, NULL};

/* -o -: the ids, raw little-endian uint32 as a token file holds them, down a pipe */
static zq_status write_stdout(const int32_t *ids, size_t n, zq_error *err)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4] = {(unsigned char)ids[i], (unsigned char)(ids[i] >> 8), (unsigned char)(ids[i] >> 16),
                              (unsigned char)(ids[i] >> 24)};
        if (fwrite(b, 1, 4, stdout) != 4) return zq_fail_errno(err, ZQ_ERR_IO, "stdout: cannot write");
    }
    return fflush(stdout) == 0 ? ZQ_OK : zq_fail_errno(err, ZQ_ERR_IO, "stdout: cannot write");
}

int cmd_tokenize(int argc, char **argv)
{
    const char *tok_path = NULL, *out = NULL;
    int force = 0, c, rc = 0;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "tokenize", tables, argc, argv);
    while ((c = cli_next(&args, &optarg, &rc)) > 0) {
        switch (c) {
        case 'k': tok_path = optarg; break;
        case 'o': out = optarg; break;
        case 'f': force = 1; break;
        case 'h':
            cli_print_help(help, tables, NULL);
            return 0;
        }
    }
    if (rc) return rc;
    if (args.noperands != 1) return cli_usage("tokenize", "expected one TEXT file");
    if (!tok_path) return cli_usage("tokenize", "no --tokenizer given");
    if (!out) return cli_usage("tokenize", "no output given (-o OUT.bin)");
    if (!strcmp(out, "-") && isatty(STDOUT_FILENO))
        return cli_usage("tokenize", "-o - writes binary ids and stdout is a terminal: redirect it, or give -o FILE");
    zq_error err = {0};
    zq_tokenizer *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    zq_status st = cli_tokenizer(tok_path, NULL, NULL, &t, &err);
    if (st == ZQ_OK) st = zq_tokenize_documents(t, args.operands[0], &ids, &n, &err);
    if (st == ZQ_OK && strcmp(out, "-") == 0) st = write_stdout(ids, n, &err);
    else if (st == ZQ_OK) st = zq_tokens_write(out, ids, n, force, &err);
    free(ids);
    zq_tokenizer_free(t);
    return st == ZQ_OK ? 0 : cli_fail(&err);
}
