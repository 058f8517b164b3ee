/* zquant lkd: layer-by-layer distillation, then quantization. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "qopts.h"
#include "zquant/crc32c.h"
#include "zquant/lkd.h"
#include "zquant/signals.h"

static const char help_head[] =
    "usage: zquant lkd INPUT -o OUT.zq|OUT.gguf [--layers LIST] [options]\n"
    "       zquant lkd INPUT --work DIR [--layers LIST] [options]     (distil only)\n"
    "       zquant lkd INPUT --work DIR -o OUT.zq [options]            (assemble)\n"
    "\n"
    "Layer-by-layer knowledge distillation (ZeroQuant's LKD), then quantization:\n"
    "each listed transformer block is tuned alone so that its quantized self\n"
    "(weights fake-quantized per the recipe with a straight-through estimator,\n"
    "activations quantized as the runtime will) reproduces its FP self's output\n"
    "(mean squared error, AdamW). Blocks not listed are rounded to nearest.\n"
    "\n"
    "and every quantize option; the options:\n";

enum { OPT_LAYERS = OPT_FIRST_FREE, OPT_STEPS, OPT_LR, OPT_WD, OPT_BATCH, OPT_DATA_BATCHES, OPT_SEED, OPT_INPUT,
       OPT_RESUME, OPT_TRAIN_NORMS, OPT_WORK, OPT_INIT, OPT_LEARN_CLIP, OPT_NO_LEARN_CLIP, OPT_CLIP_LR,
       OPT_SCHEDULE };

static const cli_option lkd_opts[] = {
    {OPT_LAYERS, 0, "layers", "LIST", 0, "blocks to distil: 0-5,8 or all (default all)"},
    {OPT_STEPS, 0, "steps", "N", 0, "Adam steps per block (default 100)"},
    {OPT_LR, 0, "lr", "X", 0, "learning rate (default 3e-4)"},
    {OPT_SCHEDULE, 0, "lr-schedule", "S", 0, "cosine (default: decays to 0 over the steps along a\n"
                                             "half cosine) or constant"},
    {OPT_WD, 0, "weight-decay", "X", 0, "decoupled weight decay on weights (default 0.01)"},
    {OPT_BATCH, 0, "batch", "B", 0, "sequences per step (default 4)"},
    {OPT_DATA_BATCHES, 0, "data-batches", "N", 0, "distinct batches, cycled over the steps (default 16;\n"
                                                  "--samples N says N / --batch)"},
    {OPT_SEED, 0, "seed", "S", 0, "seed for random or generated tokens (default 1)"},
    {OPT_INPUT, 0, "input", "MODE", 0, "quantized (default: block k sees the quantized\n"
                                       "prefix's activations) or fp (the FP model's; blocks\n"
                                       "are then independent, for parallel --work processes)"},
    {OPT_TRAIN_NORMS, 0, "train-norms", NULL, 0, "also tune the block's biases and norms (no decay)"},
    {OPT_INIT, 0, "init", "M", 0, "where each block starts: rtn (round to nearest, the\n"
                                  "default) or gptq (GPTQ on the same data, see\n"
                                  "quantize --method gptq; its scales stay fixed)"},
    {OPT_LEARN_CLIP, 0, "learn-clip", NULL, 0, "also train a multiplier of every group's scale\n"
                                               "(learned clipping, the default; the trained scales\n"
                                               "are written)"},
    {OPT_NO_LEARN_CLIP, 0, "no-learn-clip", NULL, 0, "keep round to nearest's scales"},
    {OPT_CLIP_LR, 0, "clip-lr", "X", 0, "its learning rate (default 1e-3)"},
    {OPT_RESUME, 0, "resume", NULL, 0, "continue a killed run from OUT.zq.lkd/"},
    {OPT_WORK, 0, "work", "DIR", 0, "a work directory processes share (make -j, hosts on\n"
                                    "one filesystem): without -o, distil the --layers\n"
                                    "not yet done there; with -o, assemble OUT from it\n"
                                    "once every block is done (else say which are not)"},
    CLI_OPTIONS_END};

static const cli_option lkd_tail[] = {
    {OPT_JSON, 0, "json", NULL, 0, "report layers[].{index,steps,seconds,loss_start,loss_end,\n"
                                   "curve[]: each step's loss}"},
    {'q', 'q', "quiet", NULL, 0, "no progress"},
    {'h', 'h', "help", NULL, 0, "this help"},
    CLI_OPTIONS_END};

static const cli_option *const tables[] = {lkd_opts, cli_data_opts, cli_gptq_opts, cli_qopts, lkd_tail, NULL};

/* The data options into o, checked before any work; the text's ids, when
 * --text names the data, into *ids (the caller frees them). */
static int take_data(zq_lkd_opts *o, const cli_data *d, int batch_given, const char *input, int32_t **ids)
{
    int rc = cli_data_check(d, "lkd");
    if (rc) return rc;
    if (d->seq_len) o->seq_len = (int)d->seq_len;
    if (d->samples && batch_given == 2)
        return cli_usage("lkd", "give --samples or --data-batches, not both (--samples N is N / --batch batches)");
    if (d->samples) o->data_batches = (int)((d->samples + o->batch - 1) / o->batch);
    if (d->kind == CLI_DATA_TOKENS) o->data = d->file, o->generated = 0;
    if (d->kind == CLI_DATA_RANDOM) o->data = NULL, o->generated = 0;
    if (d->kind == CLI_DATA_GENERATED) o->data = NULL, o->generated = 1;
    if (d->kind != CLI_DATA_TEXT) return 0;
    zq_error err = {0};
    size_t n = 0;
    if (cli_tokenize_text(d->file, d->tokenizer, input, NULL, ids, &n, &err) != ZQ_OK) return cli_fail(&err);
    o->data = NULL;
    o->generated = 0;
    o->data_ids = *ids;
    o->n_data_ids = n;
    return 0;
}

typedef struct {
    cli_progress bar;
    int layer_lines; /* print each block's line as it is done */
} lkd_view;

/* On a terminal a line redrawn; in a pipe or a log a plain line now and then. */
static void progress(void *ctx, const zq_lkd_progress *p)
{
    cli_progress *bar = &((lkd_view *)ctx)->bar;
    if (!bar->enabled) return;
    double now = cli_now();
    if (now - bar->last < (bar->tty ? 0.1 : CLI_PLAIN_EVERY) && (p->step < p->steps || !bar->tty)) return;
    bar->last = now;
    double rate = p->seconds > 0 ? p->step / p->seconds : 0;
    double eta = rate > 0 ? (p->steps - p->step) / rate : 0;
    fprintf(stderr, "%slkd layer %d/%d  step %d/%d  loss %.6g  %.1f steps/s  ETA %.0fs%s", bar->tty ? "\r" : "",
            p->layer + 1, p->n_layers, p->step, p->steps, p->loss, rate, eta, bar->tty ? "      " : "\n");
    fflush(stderr);
}

static void print_layer(const zq_lkd_layer *l)
{
    printf("layer %d: %d steps in %.2f s, loss %.6g -> %.6g\n", l->index, l->steps, l->seconds, l->loss_start,
           l->loss_end);
}

/* Each block's line when it is done, not all at the end: a long run in a
 * pipeline shows where it is. */
static void layer_done(void *ctx, const zq_lkd_layer *l)
{
    lkd_view *v = ctx;
    if (!v->layer_lines) return;
    if (v->bar.enabled && v->bar.tty) fprintf(stderr, "\r%*s\r", 100, "");
    print_layer(l);
    fflush(stdout);
}

/* What a signal leaves behind, said as the process dies. */
static void set_resume_note(const zq_lkd_opts *o)
{
    char note[1024];
    if (o->work)
        snprintf(note, sizeof note, "\nzquant: lkd interrupted; the blocks distilled so far are kept in %s: run the same "
                 "command again to go on\n", o->work);
    else if (o->q.output && strncmp(o->q.output, "/dev/", 5) && strcmp(o->q.output, "-"))
        snprintf(note, sizeof note, "\nzquant: lkd interrupted; the blocks distilled so far are kept in %s.lkd/: run the "
                 "same command with --resume to go on\n", o->q.output);
    else
        snprintf(note, sizeof note, "\nzquant: lkd interrupted (a stream output keeps no blocks to resume from)\n");
    zq_signal_note(note);
}

/* One zquant lkd job in this process; progress_bar: draw it (on a TTY). */
static int run_lkd(zq_lkd_opts *o, int progress_bar, int quiet, int json, const cli_chain *chain)
{
    int rc = 0;
    lkd_view view;
    cli_progress_init(&view.bar, "lkd", !progress_bar, 0);
    view.layer_lines = !quiet && !json;
    o->progress = progress;
    o->layer_done = layer_done;
    o->progress_ctx = &view;
    set_resume_note(o);
    zq_lkd_report rep;
    zq_error err = {0};
    double t0 = cli_now();
    zq_status st = zq_lkd(o, &rep, &err);
    zq_signal_note(NULL);
    cli_progress_end(&view.bar);
    for (int k = 0; st == ZQ_OK && !json && k < rep.n_discarded; k++)
        fprintf(stderr, "zquant lkd: block %d's work files did not check out: distilled again\n", rep.discarded[k]);
    if (st != ZQ_OK) {
        rc = cli_fail(&err);
    } else if (json) {
        cJSON *j = cJSON_CreateObject();
        if (o->q.output) cJSON_AddStringToObject(j, "output", o->q.output);
        else cJSON_AddNullToObject(j, "output");
        cJSON *arr = cJSON_AddArrayToObject(j, "layers");
        for (int k = 0; k < rep.n; k++) {
            cJSON *l = cJSON_CreateObject();
            cJSON_AddNumberToObject(l, "index", rep.layers[k].index);
            cJSON_AddNumberToObject(l, "steps", rep.layers[k].steps);
            cJSON_AddNumberToObject(l, "seconds", rep.layers[k].seconds);
            cJSON_AddNumberToObject(l, "loss_start", rep.layers[k].loss_start);
            cJSON_AddNumberToObject(l, "loss_end", rep.layers[k].loss_end);
            cJSON *curve = cJSON_AddArrayToObject(l, "curve");
            for (int i = 0; i < rep.layers[k].steps; i++)
                cJSON_AddItemToArray(curve, cJSON_CreateNumber(rep.layers[k].curve[i]));
            cJSON_AddItemToArray(arr, l);
        }
        cJSON *dis = cJSON_AddArrayToObject(j, "discarded");
        for (int k = 0; k < rep.n_discarded; k++) cJSON_AddItemToArray(dis, cJSON_CreateNumber(rep.discarded[k]));
        cJSON_AddNumberToObject(j, "total_bytes", (double)rep.quant.output_bytes);
        cJSON_AddNumberToObject(j, "seconds", cli_now() - t0);
        cli_json_print(stdout, j);
    } else if (!quiet) { /* the blocks' lines came as each was done */
        if (o->q.output) cli_quantize_report(&o->q, &rep.quant, cli_now() - t0, 0);
        else printf("%s: %d blocks distilled here; assemble with -o OUT.zq --work %s\n", o->work, rep.n, o->work);
    }
    if (st == ZQ_OK && chain) rc = cli_chain_end(chain, o->q.force, quiet || json);
    zq_lkd_report_free(&rep);
    return rc;
}

/* Under MPI (a binary built with MPI=1, started by mpirun): each rank
 * distils its share of the blocks into one work directory, then rank 0
 * assembles the output. A rank that fails fails the job; a rerun resumes. */
static int run_ranks(zq_lkd_opts *o, cli_mpi *m, int quiet, int json, const cli_chain *chain)
{
    /* one job, one recipe: a rank started with other options would mix it,
     * or (another --input) wait forever for sums the others never send */
    char *sig = zq_lkd_options_signature(o);
    int differs = cli_mpi_first_differing(m, sig ? zq_crc32c(0, sig, strlen(sig)) : 0);
    free(sig);
    if (differs >= 0) {
        if (m->rank == 0)
            fprintf(stderr, "zquant: lkd: rank %d was started with other options than rank 0 (every rank of a job "
                            "takes the same ones)\n", differs);
        return ZQ_ERR_USAGE;
    }
    if (o->input_quantized) { /* data parallel: every rank runs every block on its slice of each batch */
        o->data_rank = m->rank;
        o->data_ranks = m->size;
        o->sum_f32 = cli_mpi_sum_f32;
        o->sum_f64 = cli_mpi_sum_f64;
        o->max_f32 = cli_mpi_max_f32;
        o->reduce_ctx = m;
        int rc = run_lkd(o, m->rank == 0 && !quiet && !json, quiet || m->rank, json && !m->rank, m->rank ? NULL : chain);
        int failed = cli_mpi_failed_rank(m, rc);
        if (failed >= 0 && !rc) {
            if (m->rank == 0) fprintf(stderr, "zquant: lkd: rank %d failed (its message is above)\n", failed);
            rc = ZQ_ERR_IO;
        }
        return rc;
    }
    const char *out = o->q.output; /* the CLI asks for -o or --work */
    char *work = NULL;
    if (!o->work) { /* the work directory a single run would use */
        if (!(work = malloc(strlen(out) + 8))) return ZQ_ERR_NOMEM;
        sprintf(work, "%s.lkd", out);
        o->work = work;
    }
    o->q.output = NULL;
    o->share = m->rank;
    o->shares = m->size;
    int rc = run_lkd(o, m->rank == 0 && !quiet && !json, 1, 0, NULL); /* progress from rank 0 only */
    int failed = cli_mpi_failed_rank(m, rc);
    if (failed >= 0 && !rc) {
        if (m->rank == 0) fprintf(stderr, "zquant: lkd: rank %d failed (its message is above); rerun to resume\n", failed);
        rc = ZQ_ERR_IO;
    }
    if (failed < 0 && m->rank == 0 && out) {
        o->q.output = out;
        o->shares = 0;
        rc = run_lkd(o, 0, quiet, json, chain);
    }
    free(work);
    return rc;
}

int cmd_lkd(int argc, char **argv)
{
    zq_lkd_opts o;
    zq_lkd_opts_init(&o);
    cli_qargs q;
    cli_qargs_init(&q);
    int json = 0, quiet = 0, rc = 0, c, batches_given = 0;
    long v;
    cli_data d = {0};
    int32_t *text_ids = NULL;
    char *optarg;
    cli_args args;
    cli_args_init(&args, "lkd", tables, argc, argv);
    while (rc == 0 && (c = cli_next(&args, &optarg, &rc)) > 0) {
        int taken = cli_qargs_option(&q, c, optarg, "lkd");
        if (taken < 0) taken = cli_data_option(&d, c, optarg, "lkd");
        if (taken < 0) taken = cli_gptq_option(&o.damp, &o.act_order, c, optarg, "lkd");
        if (taken >= 0) {
            rc = taken;
            continue;
        }
        switch (c) {
        case OPT_LAYERS: o.layers = optarg; break;
        case OPT_STEPS:
            if (!(rc = cli_number("lkd", "--steps", optarg, 0, 10000000, &v))) o.steps = (int)v;
            break;
        case OPT_LR:
            if (!cli_parse_float(optarg, &o.lr) || !(o.lr > 0)) rc = cli_usage("lkd", "--lr must be a positive number");
            break;
        case OPT_WD:
            if (!cli_parse_float(optarg, &o.weight_decay)) rc = cli_usage("lkd", "--weight-decay must be a number >= 0");
            break;
        case OPT_BATCH:
            if (!(rc = cli_number("lkd", "--batch", optarg, 1, 65536, &v))) o.batch = (int)v;
            break;
        case OPT_DATA_BATCHES:
            if (!(rc = cli_number("lkd", "--data-batches", optarg, 1, 1 << 20, &v))) o.data_batches = (int)v;
            batches_given = 2;
            break;
        case OPT_SEED:
            if (!(rc = cli_number("lkd", "--seed", optarg, 0, 0x7fffffffL, &v))) o.seed = (uint64_t)v;
            break;
        case OPT_INPUT:
            if (!strcmp(optarg, "fp")) o.input_quantized = 0;
            else if (!strcmp(optarg, "quantized")) o.input_quantized = 1;
            else rc = cli_usage("lkd", "--input must be fp or quantized");
            break;
        case OPT_RESUME: o.resume = 1; break;
        case OPT_WORK: o.work = optarg; break;
        case OPT_TRAIN_NORMS: o.train_norms = 1; break;
        case OPT_INIT:
            if (!strcmp(optarg, "rtn") || !strcmp(optarg, "gptq")) o.init = strcmp(optarg, "rtn") ? ZQ_INIT_GPTQ : ZQ_INIT_RTN;
            else rc = cli_usage("lkd", "--init must be rtn or gptq");
            break;
        case OPT_LEARN_CLIP: o.learn_clip = 1; break;
        case OPT_NO_LEARN_CLIP: o.learn_clip = 0; break;
        case OPT_SCHEDULE:
            if (!strcmp(optarg, "constant") || !strcmp(optarg, "cosine")) o.lr_cosine = !strcmp(optarg, "cosine");
            else rc = cli_usage("lkd", "--lr-schedule must be constant or cosine");
            break;
        case OPT_CLIP_LR:
            if (!cli_parse_float(optarg, &o.clip_lr) || !(o.clip_lr > 0)) rc = cli_usage("lkd", "--clip-lr must be a positive number");
            break;
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case 'h':
            cli_print_help(help_head, tables, NULL);
            rc = -1;
            break;
        }
    }
    const char *input = args.noperands == 1 ? args.operands[0] : NULL;
    if (rc == 0 && !input) rc = cli_usage("lkd", args.noperands ? "exactly one INPUT expected" : "no INPUT given");
    if (rc == 0 && !q.o.output && !o.work) rc = cli_usage("lkd", "no output given (-o OUT.zq, or --work DIR to distil blocks only)");
    cli_chain chain = {0};
    if (rc == 0 && q.o.output) rc = cli_chain_begin(&q, "lkd", input, &chain);
    if (rc == 0) rc = take_data(&o, &d, batches_given, input, &text_ids);
    cli_mpi mpi;
    cli_mpi_start(&mpi);
    if (rc == 0) {
        cli_qargs_finish(&q);
        o.q = q.o;
        o.q.input = input;
        cli_data_memory(&d, &o.q);
        rc = mpi.size > 1 ? run_ranks(&o, &mpi, quiet, json, &chain) : run_lkd(&o, !quiet && !json, quiet, json, &chain);
    }
    cli_mpi_end(&mpi);
    cli_chain_free(&chain);
    cli_qargs_free(&q);
    free(text_ids);
    return rc < 0 ? 0 : rc;
}
