#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zquant/quantize.h"

static const char help[] =
    "usage: zquant quantize INPUT -o OUT.zq [options]\n"
    "\n"
    "INPUT is a Hugging Face model folder (config.json + model.safetensors or\n"
    "sharded safetensors), a .safetensors file, or an .h5/.hdf5 file.\n"
    "\n"
    "  -o, --output FILE     the .zq file to write (required)\n"
    "  -p, --preset NAME     w8a8 (default), w8a16, w4/8a16, w4/8a8, w4a16;\n"
    "                        w4/8: INT4 in MLP/FC weights, INT8 in attention\n"
    "      --group-size N    N weights per group along the input dimension\n"
    "                        (default 128; 1 to 1048576)\n"
    "      --groups G        the paper's split instead: G blocks of whole output rows\n"
    "      --per-row         one scale per output row\n"
    "      --per-tensor      one scale per matrix\n"
    "      --asym            asymmetric (scale and min) instead of symmetric\n"
    "      --rule GLOB=SPEC  per-tensor override, last match wins; SPEC is\n"
    "                        fp16 | int8 | int4, then :gN :row :tensor :blocksN,\n"
    "                        then :sym or :asym (e.g. 'lm_head.weight=int8:row')\n"
    "      --include GLOB    also quantize tensors matching GLOB\n"
    "      --exclude GLOB    keep tensors matching GLOB in FP16\n"
    "      --act SCHEME      activation scheme to record: int8-token (dynamic,\n"
    "                        asymmetric), int8-tensor (static), none\n"
    "  -t, --threads N       worker threads (default: all cores)\n"
    "      --compress[=L]    zstd-compress every section (level L, default 3)\n"
    "  -f, --force           overwrite OUT if it exists\n"
    "      --json            print the report as JSON on stdout\n"
    "  -q, --quiet           no progress bar, no summary\n"
    "  -h, --help            this help\n"
    "\n"
    "Embeddings, norms, biases and the LM head stay FP16 unless a rule or\n"
    "--include says otherwise. See zquant-quantize(1).\n";

enum { OPT_GROUP_SIZE = 256, OPT_GROUPS, OPT_PER_ROW, OPT_PER_TENSOR, OPT_ASYM, OPT_SYM, OPT_RULE,
       OPT_INCLUDE, OPT_EXCLUDE, OPT_ACT, OPT_COMPRESS, OPT_JSON };

static const struct option longopts[] = {
    {"output", required_argument, NULL, 'o'},   {"preset", required_argument, NULL, 'p'},
    {"group-size", required_argument, NULL, OPT_GROUP_SIZE}, {"groups", required_argument, NULL, OPT_GROUPS},
    {"per-row", no_argument, NULL, OPT_PER_ROW}, {"per-tensor", no_argument, NULL, OPT_PER_TENSOR},
    {"asym", no_argument, NULL, OPT_ASYM},      {"sym", no_argument, NULL, OPT_SYM},
    {"rule", required_argument, NULL, OPT_RULE}, {"include", required_argument, NULL, OPT_INCLUDE},
    {"exclude", required_argument, NULL, OPT_EXCLUDE}, {"act", required_argument, NULL, OPT_ACT},
    {"threads", required_argument, NULL, 't'},  {"compress", optional_argument, NULL, OPT_COMPRESS},
    {"force", no_argument, NULL, 'f'},          {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, 'q'},          {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

typedef struct {
    zq_rule *rules;
    size_t nrules;
    const char **include, **exclude;
    size_t ninclude, nexclude;
} lists;

static int push(const char ***arr, size_t *n, const char *v)
{
    const char **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a) return 0;
    a[(*n)++] = v;
    *arr = a;
    return 1;
}

static int push_rule(lists *l, char *arg)
{
    char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) return 0;
    zq_rule *r = realloc(l->rules, (l->nrules + 1) * sizeof *r);
    if (!r) return 0;
    *eq = 0;
    r[l->nrules++] = (zq_rule){arg, eq + 1};
    l->rules = r;
    return 1;
}

static void print_report(const zq_quantize_opts *o, const zq_quantize_report *r, double seconds, int json)
{
    double ratio = r->output_bytes ? (double)r->fp16_bytes / (double)r->output_bytes : 0;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", o->output);
        cJSON_AddNumberToObject(j, "tensors", (double)r->tensors);
        cJSON_AddNumberToObject(j, "quantized", (double)r->quantized);
        cJSON_AddNumberToObject(j, "input_bytes", (double)r->input_bytes);
        cJSON_AddNumberToObject(j, "fp16_bytes", (double)r->fp16_bytes);
        cJSON_AddNumberToObject(j, "total_bytes", (double)r->output_bytes);
        cJSON_AddNumberToObject(j, "compression_ratio", ratio);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        cJSON_AddNumberToObject(j, "worst_rel_rmse", r->worst_rel_rmse);
        cJSON_AddStringToObject(j, "worst_tensor", r->worst_tensor);
        cli_json_print(stdout, j);
        return;
    }
    printf("%s: %zu tensors, %zu quantized, %.2f MB (%.2fx smaller than FP16) in %.2f s\n", o->output, r->tensors,
           r->quantized, (double)r->output_bytes / 1e6, ratio, seconds);
    if (r->quantized) printf("worst relative RMSE %.4f in '%s'\n", r->worst_rel_rmse, r->worst_tensor);
}

int cmd_quantize(int argc, char **argv)
{
    zq_quantize_opts o;
    zq_quantize_opts_init(&o);
    lists l = {0};
    int json = 0, quiet = 0, rc = 0;
    long v;
    optind = 0;
    opterr = 0;
    int c;
    while (rc == 0 && (c = getopt_long(argc, argv, ":o:p:t:fqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o.output = optarg; break;
        case 'p':
            if (!zq_preset_find(optarg)) rc = cli_usage("quantize", "unknown preset '%s' (w8a8, w8a16, w4/8a16, w4/8a8, w4a16)", optarg);
            o.preset = optarg;
            break;
        case OPT_GROUP_SIZE:
            if (!cli_parse_long(optarg, 1, ZQ_MAX_GROUP_SIZE, &v))
                rc = cli_usage("quantize", "--group-size must be a whole number from 1 to %u, not '%s'", ZQ_MAX_GROUP_SIZE, optarg);
            o.base.gran = ZQ_GRAN_GROUP;
            o.base.group_size = (uint32_t)v;
            break;
        case OPT_GROUPS:
            if (!cli_parse_long(optarg, 1, ZQ_MAX_GROUP_SIZE, &v))
                rc = cli_usage("quantize", "--groups must be a whole number from 1 to %u, not '%s'", ZQ_MAX_GROUP_SIZE, optarg);
            o.base.gran = ZQ_GRAN_BLOCKS;
            o.base.blocks = (uint32_t)v;
            break;
        case OPT_PER_ROW: o.base.gran = ZQ_GRAN_ROW; break;
        case OPT_PER_TENSOR: o.base.gran = ZQ_GRAN_TENSOR; break;
        case OPT_ASYM: o.base.symmetric = 0; break;
        case OPT_SYM: o.base.symmetric = 1; break;
        case OPT_RULE:
            if (!push_rule(&l, optarg)) rc = cli_usage("quantize", "--rule takes GLOB=SPEC, not '%s'", optarg);
            break;
        case OPT_INCLUDE: push(&l.include, &l.ninclude, optarg); break;
        case OPT_EXCLUDE: push(&l.exclude, &l.nexclude, optarg); break;
        case OPT_ACT: o.act = optarg; break;
        case 't':
            if (!cli_parse_long(optarg, 1, 1024, &v)) rc = cli_usage("quantize", "--threads must be 1 to 1024, not '%s'", optarg);
            o.threads = (int)v;
            break;
        case OPT_COMPRESS:
            o.zstd_level = 3;
            if (optarg && !cli_parse_long(optarg, 1, 19, &v)) rc = cli_usage("quantize", "--compress level must be 1 to 19");
            else if (optarg) o.zstd_level = (int)v;
            break;
        case 'f': o.force = 1; break;
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(help, stdout); rc = -1; break;
        case ':': rc = cli_usage("quantize", "option '%s' needs a value", argv[optind - 1]); break;
        default: rc = cli_usage("quantize", "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (rc == 0 && optind != argc - 1)
        rc = cli_usage("quantize", optind >= argc ? "no INPUT given" : "exactly one INPUT expected");
    if (rc == 0 && !o.output) rc = cli_usage("quantize", "no output given (-o OUT.zq)");
    if (rc == 0) {
        o.input = argv[optind];
        o.rules = l.rules;
        o.nrules = l.nrules;
        o.include = l.include;
        o.ninclude = l.ninclude;
        o.exclude = l.exclude;
        o.nexclude = l.nexclude;
        cli_progress prog;
        cli_progress_init(&prog, "quantize", quiet, 1);
        o.progress = cli_progress_update;
        o.progress_ctx = &prog;
        zq_quantize_report rep;
        zq_error err = {0};
        double t0 = cli_now();
        zq_status st = zq_quantize(&o, &rep, &err);
        cli_progress_end(&prog);
        if (st != ZQ_OK) rc = cli_fail(&err);
        else if (!quiet || json) print_report(&o, &rep, cli_now() - t0, json);
    }
    free(l.rules);
    free(l.include);
    free(l.exclude);
    return rc < 0 ? 0 : rc;
}
