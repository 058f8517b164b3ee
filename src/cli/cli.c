/* What every subcommand shares: error lines, exit codes, the progress bar,
 * number parsing, JSON output, finding a tokenizer beside a model. */
#include "cli.h"

#include <ctype.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "options.h"
#include "zquant/tokenizer.h"

int cli_fail(const zq_error *err)
{
    fprintf(stderr, "zquant: %s\n", err->msg[0] ? err->msg : zq_status_name(err->code));
    return err->code != ZQ_OK ? (int)err->code : ZQ_ERR_INTERNAL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zquant %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'zquant %s --help')\n", cmd);
    va_end(ap);
    return ZQ_ERR_USAGE;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_init(cli_progress *p, const char *label, int quiet, int bytes)
{
    p->enabled = !quiet;
    p->tty = isatty(STDERR_FILENO);
    p->bytes = bytes;
    p->start = p->last = cli_now();
    p->label = label;
}

void cli_progress_update(void *ctx, uint64_t done, uint64_t total, const char *item)
{
    cli_progress *p = ctx;
    if (!p->enabled) return;
    double now = cli_now();
    if (now - p->last < (p->tty ? 0.1 : CLI_PLAIN_EVERY) && (done < total || !p->tty)) return;
    p->last = now;
    if (done > total) done = total;
    double frac = total ? (double)done / (double)total : 1.0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int k = 0; k < 30; k++) bar[k] = k < fill ? '=' : k == fill ? '>' : ' ';
    bar[30] = 0;
    double el = now - p->start, rate = el > 0 ? (double)done / el / 1e9 : 0;
    char amount[48];
    if (p->bytes) snprintf(amount, sizeof amount, "%5.2f GB/s", rate);
    else snprintf(amount, sizeof amount, "%llu/%llu", (unsigned long long)done, (unsigned long long)total);
    if (p->tty) fprintf(stderr, "\r%s [%s] %3d%% %s %-40.40s", p->label, bar, (int)(frac * 100), amount, item ? item : "");
    else fprintf(stderr, "%s: %d%% %s %s\n", p->label, (int)(frac * 100), amount, item ? item : "");
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->enabled && p->tty) fprintf(stderr, "\r%*s\r", 100, "");
}

int cli_parse_long(const char *s, long lo, long hi, long *out)
{
    /* strtol alone would take " 5" and "+5" */
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1])))) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_parse_float(const char *s, float *v)
{
    /* strtof alone would take " 5", "+5", "inf" and "nan" */
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '.' && isdigit((unsigned char)s[1])))) return 0;
    char *end;
    errno = 0;
    float f = strtof(s, &end);
    if (*end || !isfinite(f)) return 0;
    *v = f;
    return 1;
}

int cli_number(const char *cmd, const char *opt, const char *arg, long lo, long hi, long *out)
{
    if (cli_parse_long(arg, lo, hi, out)) return 0;
    return cli_usage(cmd, "%s must be a whole number from %ld to %ld, not '%s'", opt, lo, hi, arg);
}

void cli_json_print(FILE *out, void *root)
{
    char *text = cJSON_Print(root);
    if (text) fprintf(out, "%s\n", text);
    free(text);
    cJSON_Delete(root);
}

int cli_parse_file_json(int argc, char **argv, const char *cmd, const char *help, const char **file, int *json)
{
    static const cli_option opts[] = {
        {'j', 0, "json", NULL, 0, "print as JSON"}, {'h', 'h', "help", NULL, 0, "this help"}, CLI_OPTIONS_END};
    static const cli_option *const tables[] = {opts, NULL};
    cli_args a;
    char *value;
    int c, rc = -1;
    *json = 0;
    cli_args_init(&a, cmd, tables, argc, argv);
    while (rc < 0 && (c = cli_next(&a, &value, &rc)) > 0) {
        if (c == 'h') {
            fputs(help, stdout);
            rc = 0;
        } else {
            *json = 1;
        }
    }
    if (rc < 0 && a.noperands != 1) rc = cli_usage(cmd, "expected one FILE.zq");
    if (rc < 0) *file = a.operands[0];
    return rc;
}

/* A model (a .gguf, a .zq, a folder) where a tokenizer file is asked for. */
static int names_a_model(const char *path)
{
    size_t n = strlen(path);
    struct stat sb;
    return (n > 5 && !strcmp(path + n - 5, ".gguf")) || zq_is_zq_file(path) ||
           (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
}

zq_status cli_tokenizer(const char *tokenizer, const char *model, const char *other_model, zq_tokenizer **out,
                        zq_error *err)
{
    *out = NULL;
    if (tokenizer && !names_a_model(tokenizer)) return zq_tokenizer_load(tokenizer, out, err);
    if (tokenizer) {
        ZQ_TRY(zq_tokenizer_of_model(tokenizer, out, err));
        return *out ? ZQ_OK : zq_fail(err, ZQ_ERR_USAGE, "'%s': has no tokenizer", tokenizer);
    }
    ZQ_TRY(zq_tokenizer_of_model(model, out, err));
    if (!*out && other_model) ZQ_TRY(zq_tokenizer_of_model(other_model, out, err));
    return ZQ_OK;
}

zq_status cli_tokenize_text(const char *text, const char *tokenizer, const char *model, const char *other_model,
                            int32_t **ids, size_t *n, zq_error *err)
{
    zq_tokenizer *t = NULL;
    ZQ_TRY(cli_tokenizer(tokenizer, model, other_model, &t, err));
    if (!t)
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': no tokenizer (none carried in it, no tokenizer.bin or tokenizer.json "
                       "beside it): give --tokenizer", model);
    zq_status st = zq_tokenize_documents(t, text, ids, n, err);
    zq_tokenizer_free(t);
    return st;
}

void cli_size_ratio(uint64_t size, uint64_t fp16, char *buf, size_t n)
{
    if (!size || !fp16) snprintf(buf, n, "no FP16 size to compare");
    else if (size <= fp16) snprintf(buf, n, "%.2fx smaller than FP16", (double)fp16 / (double)size);
    else snprintf(buf, n, "%.2fx larger than FP16", (double)size / (double)fp16);
}

void cli_group_label(const zq_tensor *t, char *buf, size_t size)
{
    if (!zq_qspec_quantized(&t->spec)) snprintf(buf, size, "-");
    else if (t->grid.group_rows == 1 && t->grid.group_cols >= t->grid.cols) snprintf(buf, size, "row");
    else if (t->grid.group_rows == 1) snprintf(buf, size, "g%llu", (unsigned long long)t->grid.group_cols);
    else if (t->grid.row_groups == 1) snprintf(buf, size, "tensor");
    else snprintf(buf, size, "blocks%llu", (unsigned long long)t->grid.row_groups);
}
