/* Shared by the subcommands: error reporting, exit codes, progress. */
#ifndef ZQ_CLI_H
#define ZQ_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "zquant/error.h"
#include "zquant/tokenizer.h"
#include "zquant/quantize.h"
#include "zquant/zq.h"

/* Exit codes are the zq_status values; zquant(1) lists them. */

/* Prints "zquant: MSG" on stderr and returns the exit code for it. */
int cli_fail(const zq_error *err);
/* Usage error for CMD: message, then a hint to --help; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_quantize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_dequantize(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_lkd(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Progress on stderr: a bar redrawn on a terminal; elsewhere (a pipe, a
 * log file) a plain line every CLI_PLAIN_EVERY seconds. */
#define CLI_PLAIN_EVERY 10.0
typedef struct {
    int enabled, tty;
    int bytes; /* counts are bytes: show a rate; else show done/total */
    double start, last;
    const char *label;
} cli_progress;

void cli_progress_init(cli_progress *p, const char *label, int quiet, int bytes);
void cli_progress_update(void *ctx, uint64_t done, uint64_t total, const char *item);
void cli_progress_end(cli_progress *p);
double cli_now(void);

/* MPI (see mpi.c): this process's rank among size; size 1 without MPI. */
typedef struct {
    int rank, size, active;
} cli_mpi;
void cli_mpi_start(cli_mpi *m);
/* Every rank's exit code in, the highest failing rank out (-1: none). */
int cli_mpi_failed_rank(const cli_mpi *m, int rc);
/* The first rank whose value differs from rank 0's, -1 when none does
 * (every rank calls it, and every rank gets the answer). */
int cli_mpi_first_differing(const cli_mpi *m, uint32_t value);
void cli_mpi_end(cli_mpi *m);
/* zq_lkd_opts' reductions across ranks (ctx: the cli_mpi); one process: none. */
void cli_mpi_sum_f32(void *ctx, float *buf, size_t n);
void cli_mpi_sum_f64(void *ctx, double *buf, size_t n);
void cli_mpi_max_f32(void *ctx, float *buf, size_t n);

/* Exports zq to gguf with the given tokenizer, as quantize/lkd -o OUT.gguf
 * finish (see qopts.h); returns the exit code. */
int cli_gguf_chain_end(const char *zq, const char *gguf, const char *tokenizer, int force, int quiet);

/* Parses a whole decimal number in [lo, hi]; returns 0 on anything else. */
/* For commands of the form `zquant CMD FILE [--json]`: returns -1 to go on
 * (with *file and *json set), else the exit code (0 after --help). */
int cli_parse_file_json(int argc, char **argv, const char *cmd, const char *help, const char **file, int *json);

/* TOKENIZER (a --tokenizer: a tokenizer file, or a model whose tokenizer
 * to use: a .gguf, a .zq, a folder), else MODEL's (zq_tokenizer_of_model),
 * else OTHER_MODEL's (may be NULL); *out NULL when there is none. */
zq_status cli_tokenizer(const char *tokenizer, const char *model, const char *other_model, zq_tokenizer **out,
                        zq_error *err);
/* The ids of a text file as eval --text reads it, with cli_tokenizer's. */
zq_status cli_tokenize_text(const char *text, const char *tokenizer, const char *model, const char *other_model,
                            int32_t **ids, size_t *n, zq_error *err);

/* "2.08x smaller than FP16", or "1.72x larger than FP16" (a file of
 * small tensors, say, whose scales cost more than they save). */
void cli_size_ratio(uint64_t size, uint64_t fp16, char *buf, size_t n);

/* A tensor's grouping as inspect shows it: "-", "row", "g128", "tensor", "blocks64". */
void cli_group_label(const zq_tensor *t, char *buf, size_t size);

/* The tensors of the checkpoint INPUT as o would store them, on stdout
 * (quantize --dry-run, inspect MODEL_DIR); the exit code. */
int cli_print_plan(const zq_quantize_opts *o, const char *input, int json);

int cli_parse_long(const char *s, long lo, long hi, long *out);
/* A plain decimal number >= 0 ("0.01", "1e-4"; no sign, no spaces, finite);
 * returns 0 on anything else. */
int cli_parse_float(const char *s, float *v);
/* An option's whole-number value in [lo, hi] into *out: 0, or the usage
 * error's exit code after "OPT must be a whole number from LO to HI". */
int cli_number(const char *cmd, const char *opt, const char *arg, long lo, long hi, long *out);
void cli_json_print(FILE *out, void *cjson_root); /* prints and frees */

#endif
