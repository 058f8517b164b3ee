/* The option parser and --help printer of options.h. */
#include "options.h"

#include <string.h>

#include "cli.h"

void cli_args_init(cli_args *a, const char *cmd, const cli_option *const *tables, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->tables = tables;
    a->argc = argc;
    a->argv = argv;
    a->at = 1;
    /* operands are moved to the front of argv as they are met: the slots
     * before a->at have been read, and values point at strings, not slots */
    a->operands = argv + 1;
}

static const cli_option *find_long(const cli_args *a, const char *name, size_t len)
{
    for (const cli_option *const *t = a->tables; *t; t++)
        for (const cli_option *o = *t; o->id; o++)
            if (o->name && strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    return NULL;
}

static const cli_option *find_short(const cli_args *a, char c)
{
    for (const cli_option *const *t = a->tables; *t; t++)
        for (const cli_option *o = *t; o->id; o++)
            if (o->short_name == c) return o;
    return NULL;
}

/* Edit distance between a[0..n) and b, capped: the typo a suggestion fixes. */
static size_t distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b), row[64];
    if (n >= 63 || m >= 63) return 99;
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[m];
}

/* The nearest long name to a mistyped one, within a third of its length
 * (two edits at least); NULL when none is that near. */
static const char *nearest(const cli_args *a, const char *name, size_t len)
{
    const char *best = NULL;
    size_t best_d = len / 3 > 2 ? len / 3 : 2;
    for (const cli_option *const *t = a->tables; *t; t++)
        for (const cli_option *o = *t; o->id; o++) {
            if (!o->name) continue;
            size_t d = distance(name, len, o->name);
            if (d <= best_d && (!best || d < best_d)) best = o->name, best_d = d;
        }
    return best;
}

static int unknown(cli_args *a, const char *word, const char *name, size_t len, int *rc)
{
    char full[256] = "";
    size_t at = 0;
    for (const cli_option *const *t = a->tables; *t; t++) /* the names it abbreviates */
        for (const cli_option *o = *t; o->id; o++)
            if (o->name && len && !strncmp(o->name, name, len) && o->help && at < sizeof full)
                at += (size_t)snprintf(full + at, sizeof full - at, "%s'--%s'", at ? ", " : "", o->name);
    const char *s = nearest(a, name, len);
    if (at) *rc = cli_usage(a->cmd, "unknown option '%s': options are spelled out in full (%s)", word, full);
    else if (s) *rc = cli_usage(a->cmd, "unknown option '%s'; did you mean '--%s'?", word, s);
    else *rc = cli_usage(a->cmd, "unknown option '%s'", word);
    return -1;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    while (*s >= '0' && *s <= '9') s++;
    return !*s;
}

static int long_option(cli_args *a, char *word, char **value, int *rc)
{
    char *name = word + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_option *o = find_long(a, name, len);
    if (!o) return unknown(a, word, name, len, rc);
    *value = NULL;
    if (!o->value) {
        if (eq) {
            *rc = cli_usage(a->cmd, "option '--%s' takes no value", o->name);
            return -1;
        }
    } else if (eq) {
        *value = eq + 1;
    } else if (!o->optional) {
        if (a->at >= a->argc) {
            *rc = cli_usage(a->cmd, "option '--%s' needs a value", o->name);
            return -1;
        }
        *value = a->argv[a->at++];
    } else if (a->at < a->argc && all_digits(a->argv[a->at])) {
        *value = a->argv[a->at++]; /* --compress 3: an optional value that is a number is its value, not an operand */
    }
    return o->id;
}

static int short_option(cli_args *a, char **value, int *rc)
{
    char c = *a->shorts++;
    const cli_option *o = find_short(a, c);
    if (!o) {
        *rc = cli_usage(a->cmd, "unknown option '-%c'", c);
        return -1;
    }
    *value = NULL;
    if (o->value && !o->optional) {
        if (*a->shorts) { /* -t2 */
            *value = (char *)a->shorts;
        } else if (a->at < a->argc) {
            *value = a->argv[a->at++];
        } else {
            *rc = cli_usage(a->cmd, "option '-%c' needs a value", c);
            return -1;
        }
        a->shorts = NULL;
    }
    if (a->shorts && !*a->shorts) a->shorts = NULL;
    return o->id;
}

int cli_next(cli_args *a, char **value, int *rc)
{
    if (a->shorts) return short_option(a, value, rc);
    while (a->at < a->argc) {
        char *word = a->argv[a->at++];
        if (a->only_operands || word[0] != '-' || !word[1]) { /* "-" is an operand: standard input */
            a->operands[a->noperands++] = word;
        } else if (!strcmp(word, "--")) {
            a->only_operands = 1;
        } else if (word[1] == '-') {
            return long_option(a, word, value, rc);
        } else {
            a->shorts = word + 1;
            return short_option(a, value, rc);
        }
    }
    return 0;
}

static void print_options(FILE *out, const cli_option *const *tables, int col)
{
    for (const cli_option *const *t = tables; *t; t++)
        for (const cli_option *o = *t; o->id; o++) {
            if (!o->help) continue;
            char left[96];
            int n = o->short_name ? snprintf(left, sizeof left, "  -%c, ", o->short_name)
                                  : snprintf(left, sizeof left, "      ");
            if (!o->name) /* a short option alone: -n N */
                n = snprintf(left, sizeof left, "  -%c%s%s", o->short_name, o->value ? " " : "", o->value ? o->value : "");
            else n += snprintf(left + n, sizeof left - (size_t)n, "--%s%s%s%s", o->name,
                          !o->value ? "" : o->optional ? "[=" : " ", o->value ? o->value : "",
                          o->value && o->optional ? "]" : "");
            fputs(left, out);
            const char *line = o->help;
            int pad = n < col - 1 ? col - n : 2;
            for (int first = 1; line; first = 0) {
                const char *end = strchr(line, '\n');
                int len = end ? (int)(end - line) : (int)strlen(line);
                fprintf(out, "%*s%.*s\n", first ? pad : col, "", len, line);
                line = end ? end + 1 : NULL;
            }
        }
}

void cli_print_help(const char *head, const cli_option *const *tables, const char *tail)
{
    fputs(head, stdout);
    print_options(stdout, tables, 24);
    if (tail) fputs(tail, stdout);
}
