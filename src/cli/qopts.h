/* The quantization options quantize and lkd share. */
#ifndef ZQ_CLI_QOPTS_H
#define ZQ_CLI_QOPTS_H

#include "options.h"
#include "zquant/quantize.h"

enum { OPT_GROUP_SIZE = 256, OPT_GROUPS, OPT_PER_ROW, OPT_PER_TENSOR, OPT_ASYM, OPT_SYM, OPT_RULE, OPT_INCLUDE,
       OPT_EXCLUDE, OPT_ACT, OPT_COMPRESS, OPT_FOR, OPT_JSON, OPT_DAMP, OPT_ACT_ORDER, OPT_TOKENS, OPT_TEXT,
       OPT_TOKENIZER, OPT_GENERATED, OPT_RANDOM, OPT_SAMPLES, OPT_SEQ_LEN, OPT_ALLOW_UNMATCHED, OPT_DATA_MEMORY,
       OPT_FIRST_FREE };

extern const cli_option cli_qopts[];       /* the quantization options */
extern const cli_option cli_common_opts[]; /* --json, -q, -h, which close every long-running command's list */
extern const cli_option cli_gptq_opts[];   /* GPTQ's --damp and --act-order (quantize --method gptq, lkd --init gptq) */
/* Takes a cli_gptq_opts option: -1 when c is none of them; 0: taken; else
 * the usage error's exit code. */
int cli_gptq_option(float *damp, int *act_order, int c, const char *arg, const char *cmd);

/* The data GPTQ calibrates on and LKD distils on, one name per concept
 * (eval's --tokens, --text and --tokenizer are the same): --tokens FILE,
 * --text FILE, --generated, --random-tokens, --samples N, --seq-len T;
 * the older --calib, --data, --calib-text and --calib-samples are synonyms. */
typedef enum { CLI_DATA_NONE, CLI_DATA_TOKENS, CLI_DATA_TEXT, CLI_DATA_GENERATED, CLI_DATA_RANDOM } cli_data_kind;
typedef struct {
    cli_data_kind kind;
    const char *file; /* TOKENS, TEXT */
    const char *tokenizer;
    int sources;           /* how many of --tokens, --text, --generated, --random-tokens were given */
    long samples, seq_len; /* 0: not given */
    long memory_mb;        /* --data-memory, when memory_given */
    int memory_given;
} cli_data;
extern const cli_option cli_data_opts[];
/* -1: not one of these options; 0: taken; else the usage error's exit code */
int cli_data_option(cli_data *d, int c, const char *arg, const char *cmd);
/* After parsing: 0, or the usage error's exit code (two sources named). */
int cli_data_check(const cli_data *d, const char *cmd);
/* --data-memory's bytes into o (when given) */
void cli_data_memory(const cli_data *d, zq_quantize_opts *o);

typedef struct {
    zq_quantize_opts o;
    zq_rule *rules;
    const char **include, **exclude;
    size_t nrules, ninclude, nexclude;
    int gran_given; /* a granularity option was given: --for keeps it */
} cli_qargs;

void cli_qargs_init(cli_qargs *q);
/* -1: not one of these options; 0: taken; else the usage error's exit code */
int cli_qargs_option(cli_qargs *q, int c, char *arg, const char *cmd);
/* Points q->o at the collected lists and applies --for's default group
 * size (call after parsing). */
void cli_qargs_finish(cli_qargs *q);
void cli_qargs_free(cli_qargs *q);

/* quantize/lkd -o OUT.gguf: the .zq goes to OUT.gguf.zq (kept: every zquant
 * tool reads it, and lkd's work files stay resumable beside it), made --for
 * llama.cpp unless --for says otherwise, then exported with the tokenizer
 * beside the input. */
typedef struct {
    const char *gguf; /* NULL: the output is not a .gguf */
    char *zq, *tokenizer;
} cli_chain;

/* Call after parsing, before cli_qargs_finish: 0, or the usage error's
 * exit code (an existing OUT.gguf, no tokenizer). */
int cli_chain_begin(cli_qargs *q, const char *cmd, const char *input, cli_chain *c);
/* After the .zq is written: the export's exit code (0 when no chain). */
int cli_chain_end(const cli_chain *c, int force, int quiet);
void cli_chain_free(cli_chain *c);

void cli_quantize_report(const zq_quantize_opts *o, const zq_quantize_report *r, double seconds, int json);

#endif
