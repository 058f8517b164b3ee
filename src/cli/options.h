/* A command's options, declared once: each row gives the parser its name,
 * its short letter and whether it takes a value, and gives --help its
 * line. A command lists its own table and the groups it shares with others
 * (quantize and lkd share the quantization options); the parser walks
 * argv against them, git parse-options style: a long option is its whole
 * name (an abbreviation is refused), an unknown one gets the nearest name
 * as a suggestion, and options may come before or after the operands. */
#ifndef ZQ_CLI_OPTIONS_H
#define ZQ_CLI_OPTIONS_H

#include <stdio.h>

typedef struct {
    int id;             /* what cli_next returns: the short letter, or an OPT_* above 255; 0 ends a table */
    char short_name;    /* 0: none */
    const char *name;   /* the long name, without "--"; NULL: a short option alone */
    const char *value;  /* "FILE", "N": the option takes a value; NULL: a flag */
    int optional;       /* the value may be left out (--compress or --compress=9) */
    const char *help;   /* lines for --help, '\n' between them; NULL: a synonym --help does not list */
} cli_option;

#define CLI_OPTIONS_END {0, 0, NULL, NULL, 0, NULL}

typedef struct {
    const char *cmd;
    const cli_option *const *tables; /* NULL-terminated */
    int argc;
    char **argv;
    int at;            /* next argv element */
    const char *shorts; /* rest of a short-option cluster ("-qf") */
    int only_operands; /* after "--" */
    char **operands;   /* the non-option arguments, in order (argv's own slots, reordered) */
    int noperands;
} cli_args;

/* Parses argv[1..argc) of cmd (argv[0] is the command's name). */
void cli_args_init(cli_args *a, const char *cmd, const cli_option *const *tables, int argc, char **argv);
/* The next option's id, *value its value (NULL for a flag or an optional
 * value left out); 0 when no option is left (a->operands then holds every
 * operand); -1 after a usage error, printed (*rc gets its exit code). */
int cli_next(cli_args *a, char **value, int *rc);

/* A command's --help on stdout: head (usage and prose), the tables' option
 * lines (their help starting in column 24), then tail (NULL: none). */
void cli_print_help(const char *head, const cli_option *const *tables, const char *tail);

#endif
