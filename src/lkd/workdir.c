/* The work directory that makes an LKD run resumable: for each distilled
 * block, its tuned weights as a patch file and a sidecar that vouches for
 * it (see lkd_impl.h). Nothing is trusted that does not check out. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/files.h"
#include "base/util.h"
#include "io/atomic.h"
#include "io/source_impl.h"
#include "zquant/fp16.h"
#include "io/st_write.h"
#include "lkd/lkd_impl.h"
#include "zquant/crc32c.h"

static char *block_path(const workdir *w, int layer, const char *ext)
{
    char name[64];
    snprintf(name, sizeof name, "block-%d.%s", layer, ext);
    return zq_path_join(w->dir, name);
}

char *zq_lkd_patch_path(const workdir *w, int layer) { return block_path(w, layer, "safetensors"); }

/* The sidecar's fields but its own checksum, as the text that checksum is of. */
static char *sidecar_body(const workdir *w, int layer, uint64_t bytes, uint32_t crc)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "layer", layer);
    cJSON_AddStringToObject(j, "signature", w->signature);
    cJSON_AddNumberToObject(j, "patch_bytes", (double)bytes);
    cJSON_AddNumberToObject(j, "patch_crc32c", crc);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static zq_status write_sidecar(const workdir *w, int layer, uint64_t bytes, uint32_t crc, zq_error *err)
{
    char *body = sidecar_body(w, layer, bytes, crc), *path = block_path(w, layer, "json");
    char *text = NULL;
    if (body && path && (text = malloc(strlen(body) + 32)))
        sprintf(text, "%s\n%u\n", body, zq_crc32c(0, body, strlen(body)));
    zq_atomic f;
    zq_status st = text ? zq_atomic_open(&f, path, 1, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_atomic_write(&f, text, strlen(text), err);
    if (st == ZQ_OK) st = zq_atomic_commit(&f, err);
    else if (text) zq_atomic_abort(&f);
    free(body), free(path), free(text);
    return st;
}

/* Whether the file at path is `bytes` long, and its CRC-32C. */
static int file_crc(const char *path, uint64_t bytes, uint32_t *crc)
{
    uint64_t got;
    zq_error ignore = {0};
    return zq_file_crc32c(path, 0, crc, &got, &ignore) == ZQ_OK && got == bytes;
}

/* What differs between a work file's signature and this run's, for the
 * message: the first key whose value differs, and a way out. */
static void name_difference(const char *there, const char *here, char *buf, size_t size)
{
    cJSON *a = cJSON_Parse(there), *b = cJSON_Parse(here), *it;
    snprintf(buf, size, "made from another checkpoint or data, or with other options");
    cJSON_ArrayForEach(it, b) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(a, it->string);
        if (o && cJSON_Compare(o, it, 1)) continue;
        char *va = o ? cJSON_PrintUnformatted(o) : NULL, *vb = cJSON_PrintUnformatted(it);
        if (!strcmp(it->string, "model_crc32c")) snprintf(buf, size, "made from another checkpoint");
        else if (!strncmp(it->string, "data", 4)) snprintf(buf, size, "made from other data (%s differs)", it->string);
        else if (!strcmp(it->string, "layers"))
            snprintf(buf, size, "made with --layers %s, this run has %s: with --input quantized (the default) a block's "
                     "inputs come through the blocks before it, so every process sharing a work directory lists the "
                     "same blocks (give --input fp to distil blocks in parallel processes)", va ? va : "?", vb ? vb : "?");
        else snprintf(buf, size, "made with %s %s, this run has %s", it->string, va ? va : "(none)", vb ? vb : "?");
        free(va), free(vb);
        break;
    }
    cJSON_Delete(a), cJSON_Delete(b);
}

zq_status zq_lkd_block_done(const workdir *w, int layer, int *done, int *damaged, zq_error *err)
{
    *done = *damaged = 0;
    char *path = block_path(w, layer, "json"), *patch = zq_lkd_patch_path(w, layer);
    if (!path || !patch) {
        free(path), free(patch);
        return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    }
    char *text = NULL;
    zq_error ignore = {0};
    int there = access(path, F_OK) == 0 || access(patch, F_OK) == 0;
    zq_status st = ZQ_OK;
    cJSON *j = NULL;
    if (zq_read_small_file(path, 1 << 20, &text, NULL, &ignore) == ZQ_OK) {
        char *nl = strchr(text, '\n');
        unsigned long long crc = 0;
        if (nl) *nl = 0, crc = strtoull(nl + 1, NULL, 10);
        if (nl && crc == zq_crc32c(0, text, strlen(text))) j = cJSON_Parse(text);
    }
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(j, "signature"), *l = cJSON_GetObjectItemCaseSensitive(j, "layer");
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(j, "patch_bytes");
    const cJSON *pcrc = cJSON_GetObjectItemCaseSensitive(j, "patch_crc32c");
    if (cJSON_IsString(sig) && cJSON_IsNumber(l) && l->valueint == layer && cJSON_IsNumber(bytes) && cJSON_IsNumber(pcrc)) {
        uint32_t c;
        char why[512];
        if (strcmp(sig->valuestring, w->signature) != 0) {
            name_difference(sig->valuestring, w->signature, why, sizeof why);
            st = zq_fail(err, ZQ_ERR_USAGE, "'%s': %s (a work directory is resumed or shared with the same options; rerun "
                         "without --resume, or give another --work, to start over)", path, why);
        }
        else if (file_crc(patch, (uint64_t)bytes->valuedouble, &c) && c == (uint32_t)pcrc->valuedouble)
            *done = 1;
    }
    *damaged = there && !*done;
    cJSON_Delete(j);
    free(text), free(path), free(patch);
    return st;
}

int zq_lkd_block_lock(const workdir *w, int layer, zq_error *err)
{
    char *path = block_path(w, layer, "lock");
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666) : -1;
    if (fd < 0) zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create the block's lock", path ? path : w->dir);
    while (fd >= 0 && flock(fd, LOCK_EX) != 0) /* waits while another process distils the block */
        if (errno != EINTR) {
            zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot lock", path);
            close(fd);
            fd = -1;
        }
    free(path);
    return fd;
}

void zq_lkd_block_unlock(int fd)
{
    if (fd >= 0) close(fd); /* releases the lock */
}

void zq_lkd_workdir_remove(const workdir *w, int n_layers)
{
    for (int k = 0; k < n_layers; k++) {
        char *a = zq_lkd_patch_path(w, k), *b = block_path(w, k, "json"), *c = block_path(w, k, "lock");
        if (a) unlink(a);
        if (b) unlink(b);
        if (c) unlink(c);
        free(a), free(b), free(c);
    }
    rmdir(w->dir);
}

/* The tuned weights of one block, in the checkpoint's names and layouts;
 * a weight whose scales were chosen (GPTQ) has them beside it as
 * NAME#scale (and NAME#min), F16 [row_groups, col_groups], which quantize
 * then uses instead of the weight's ranges. */
/* The tensors a block's patch holds: each param's master in the
 * checkpoint's layout, then its chosen scales (and mins) as NAME#scale,
 * NAME#min; data[k] NULL for a master (converted on the way out). */
/* A patch's entries: each tuned tensor, and its chosen scales (and mins)
 * as entries of their own; e[k].shape points into item[k]. */
typedef struct {
    zq_st_entry *e;
    struct patch_item {
        const void *data; /* NULL: the param's master */
        const param *of;
        int64_t shape[2];
        char name[320];
    } *item;
    size_t n;
} patch_entries;

static void free_patch(patch_entries *pe)
{
    if (pe) free(pe->e), free(pe->item);
    free(pe);
}

static zq_status list_patch(trainee *tr, patch_entries **out, zq_error *err)
{
    patch_entries *pe = *out = calloc(1, sizeof *pe);
    size_t room = 3 * (size_t)tr->np + 1; /* a tensor, its scales, its mins */
    if (pe) pe->e = calloc(room, sizeof *pe->e), pe->item = calloc(room, sizeof *pe->item);
    if (!pe || !pe->e || !pe->item) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int k = 0; k < tr->np; k++) {
        const param *p = &tr->p[k];
        const zq_net_tensor *u = &p->u;
        size_t ne = pe->n;
        pe->item[ne].shape[0] = u->conv1d ? u->cols : u->rows;
        pe->item[ne].shape[1] = u->conv1d ? u->rows : u->cols;
        pe->item[ne].of = p, pe->item[ne].data = NULL;
        pe->e[ne] = (zq_st_entry){u->name, u->vector ? 1 : 2, pe->item[ne].shape, ZQ_ST_F32};
        pe->n++;
        if (!p->scale) continue;
        zq_grid g;
        zq_grid_init(&g, &p->spec, (uint64_t)u->rows, (uint64_t)u->cols);
        for (int m = 0; m < (p->spec.symmetric ? 1 : 2); m++) {
            ne = pe->n;
            if ((size_t)snprintf(pe->item[ne].name, sizeof pe->item[ne].name, "%s#%s", u->name, m ? "min" : "scale") >=
                sizeof pe->item[ne].name)
                return zq_fail(err, ZQ_ERR_USAGE, "tensor '%s': name too long for its scales' entry", u->name);
            pe->item[ne].shape[0] = (int64_t)g.row_groups;
            pe->item[ne].shape[1] = (int64_t)g.col_groups;
            pe->item[ne].of = p, pe->item[ne].data = m ? (const void *)p->min : (const void *)p->scale;
            pe->e[ne] = (zq_st_entry){pe->item[ne].name, 2, pe->item[ne].shape, ZQ_ST_F16};
            pe->n++;
        }
    }
    return ZQ_OK;
}

static zq_status write_patch_file(const workdir *w, int layer, const patch_entries *pe, const zq_arch *a,
                                  zq_error *err)
{
    size_t hlen;
    unsigned char *header = zq_st_header(pe->e, pe->n, &hlen);
    char *path = zq_lkd_patch_path(w, layer);
    zq_atomic f;
    zq_status st = header && path ? zq_atomic_open(&f, path, 1, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    uint32_t crc = header ? zq_crc32c(0, header, hlen) : 0;
    uint64_t bytes = hlen;
    if (st == ZQ_OK) st = zq_atomic_write(&f, header, hlen, err);
    for (size_t k = 0; st == ZQ_OK && k < pe->n; k++) {
        const param *p = pe->item[k].of;
        const int64_t *shape = pe->item[k].shape;
        size_t len = pe->item[k].data ? (size_t)(shape[0] * shape[1]) * 2 : p->n * sizeof(float);
        float *disk = pe->item[k].data ? NULL : malloc(len);
        if (!pe->item[k].data && !disk) { st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory"); break; }
        if (disk) zq_net_tensor_layout(&p->u, a->n_heads, p->u.w, disk, 1);
        const void *bytes_of = disk ? (const void *)disk : pe->item[k].data;
        crc = zq_crc32c(crc, bytes_of, len);
        bytes += len;
        st = zq_atomic_write(&f, bytes_of, len, err);
        free(disk);
    }
    if (st == ZQ_OK) st = zq_atomic_commit(&f, err);
    else if (header && path) zq_atomic_abort(&f);
    if (st == ZQ_OK) st = write_sidecar(w, layer, bytes, crc, err); /* after: it vouches for a whole patch */
    free(header);
    free(path);
    return st;
}

zq_status zq_lkd_write_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err)
{
    patch_entries *pe;
    zq_status st = list_patch(tr, &pe, err);
    if (st == ZQ_OK) st = write_patch_file(w, layer, pe, a, err);
    free_patch(pe);
    return st;
}

zq_status zq_lkd_patch_source(trainee *tr, const zq_arch *a, const char *path, zq_source **out, zq_error *err)
{
    *out = NULL;
    patch_entries *pe;
    zq_status st = list_patch(tr, &pe, err);
    if (st == ZQ_OK) st = zq_source_memory(path, out, err);
    for (size_t k = 0; st == ZQ_OK && k < pe->n; k++) {
        const param *p = pe->item[k].of;
        size_t n = pe->item[k].data ? (size_t)(pe->item[k].shape[0] * pe->item[k].shape[1]) : p->n;
        float *v = malloc((n ? n : 1) * sizeof *v);
        if (!v) {
            st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
            break;
        }
        if (!pe->item[k].data) zq_net_tensor_layout(&p->u, a->n_heads, p->u.w, v, 1);
        else
            for (size_t i = 0; i < n; i++) v[i] = zq_f16_to_f32(((const uint16_t *)pe->item[k].data)[i]); /* exact */
        st = zq_source_memory_add(*out, pe->e[k].name, pe->e[k].ndim, pe->item[k].shape, v, err);
    }
    free_patch(pe);
    if (st != ZQ_OK) {
        zq_source_close(*out);
        *out = NULL;
    }
    return st;
}

static long find_tensor(zq_source *src, const char *name)
{
    for (size_t i = 0; i < zq_source_count(src); i++)
        if (!strcmp(zq_source_tensor(src, i)->name, name)) return (long)i;
    return -1;
}

/* Reads a block's tuned weights (and chosen scales) back into its params
 * (a resumed run). */
zq_status zq_lkd_read_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err)
{
    char *path = zq_lkd_patch_path(w, layer);
    zq_source *src = NULL;
    zq_status st = path ? zq_source_open(path, &src, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int k = 0; st == ZQ_OK && k < tr->np; k++) {
        param *p = &tr->p[k];
        long idx = find_tensor(src, p->u.name);
        if (idx < 0) { st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': no tensor '%s'", path, p->u.name); break; }
        const zq_tensor_info *t = zq_source_tensor(src, (size_t)idx);
        /* the checkpoint's layout, as zq_lkd_write_patch wrote it */
        uint64_t rows = (uint64_t)(p->u.conv1d ? p->u.cols : p->u.rows), cols = (uint64_t)(p->u.conv1d ? p->u.rows : p->u.cols);
        if (t->numel != p->n || (!p->u.vector && (t->ndim != 2 || (uint64_t)t->shape[0] != rows || (uint64_t)t->shape[1] != cols))) {
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s' has another shape than the checkpoint's", path, p->u.name);
            break;
        }
        float *disk = malloc(p->n * sizeof *disk);
        st = disk ? zq_source_read(src, (size_t)idx, 0, t->rows, 0, t->cols, disk, err)
                  : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK) zq_net_tensor_layout(&p->u, a->n_heads, disk, p->u.w, 0);
        free(disk);
        if (st == ZQ_OK) st = zq_source_group_params(src, p->u.name, &p->scale, &p->min, &p->ngroups, err);
        zq_grid g;
        zq_grid_init(&g, &p->spec, (uint64_t)p->u.rows, (uint64_t)p->u.cols);
        if (st == ZQ_OK && p->scale && p->ngroups != (size_t)(g.row_groups * g.col_groups))
            st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': tensor '%s': its scales are not the recipe's groups", path, p->u.name);
    }
    zq_source_close(src);
    free(path);
    return st;
}

/* The options the tuned weights depend on. Not the thread count: results
 * do not depend on it. */
static cJSON *options_json(const zq_lkd_opts *o)
{
    cJSON *j = cJSON_CreateObject();
    char spec[64];
    zq_qspec_format(&o->q.base, spec, sizeof spec);
    cJSON_AddStringToObject(j, "preset", o->q.preset ? o->q.preset : "w8a8");
    cJSON_AddStringToObject(j, "base", spec);
    cJSON_AddStringToObject(j, "act", o->q.act_given ? zq_act_mode_name(o->q.act) : "");
    cJSON *r = cJSON_AddArrayToObject(j, "rules");
    for (size_t k = 0; k < o->q.nrules; k++) {
        cJSON_AddItemToArray(r, cJSON_CreateString(o->q.rules[k].glob));
        cJSON_AddItemToArray(r, cJSON_CreateString(o->q.rules[k].spec));
    }
    for (size_t k = 0; k < o->q.ninclude; k++) cJSON_AddItemToArray(r, cJSON_CreateString(o->q.include[k]));
    for (size_t k = 0; k < o->q.nexclude; k++) cJSON_AddItemToArray(r, cJSON_CreateString(o->q.exclude[k]));
    /* with FP inputs a block's tuning does not depend on which others are
     * distilled, so processes given different --layers share a directory */
    if (o->input_quantized) cJSON_AddStringToObject(j, "layers", o->layers ? o->layers : "all");
    cJSON_AddNumberToObject(j, "steps", o->steps);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    if (o->lr_cosine) cJSON_AddStringToObject(j, "lr_schedule", "cosine");
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "seq_len", o->seq_len);
    cJSON_AddNumberToObject(j, "data_batches", o->data_batches);
    cJSON_AddStringToObject(j, "data", o->data ? "file" : o->data_ids ? "" : o->generated ? "generated" : "random");
    if (o->data_ids) { /* text given in memory: its tokens' checksum stands for it */
        cJSON_AddNumberToObject(j, "data_tokens", (double)o->n_data_ids);
        cJSON_AddNumberToObject(j, "data_crc32c", zq_crc32c(0, o->data_ids, o->n_data_ids * sizeof *o->data_ids));
    }
    if (o->learn_clip) {
        cJSON_AddBoolToObject(j, "learn_clip", 1);
        cJSON_AddNumberToObject(j, "clip_lr", o->clip_lr);
    }
    if (o->init == ZQ_INIT_GPTQ) {
        cJSON_AddStringToObject(j, "init", "gptq");
        cJSON_AddNumberToObject(j, "damp", o->damp);
        cJSON_AddBoolToObject(j, "act_order", o->act_order);
    }
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddBoolToObject(j, "input_quantized", o->input_quantized);
    cJSON_AddBoolToObject(j, "train_norms", o->train_norms);
    return j;
}

char *zq_lkd_options_signature(const zq_lkd_opts *o)
{
    cJSON *j = options_json(o);
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

char *zq_lkd_recipe_method(const zq_lkd_opts *o)
{
    cJSON *j = options_json(o);
    if (!j) return NULL;
    /* steps 0 from GPTQ is quantize --method gptq */
    cJSON_AddStringToObject(j, "name", o->steps == 0 && o->init == ZQ_INIT_GPTQ ? "gptq" : "lkd");
    uint32_t crc;
    uint64_t bytes;
    zq_error ignore = {0};
    if (o->data && zq_file_crc32c(o->data, 0, &crc, &bytes, &ignore) == ZQ_OK) {
        const char *slash = strrchr(o->data, '/');
        cJSON_AddStringToObject(j, "data_file", slash ? slash + 1 : o->data);
        cJSON_AddNumberToObject(j, "data_file_bytes", (double)bytes);
        cJSON_AddNumberToObject(j, "data_file_crc32c", crc);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* What the tuned weights depend on: the options, and the inputs by their
 * content (a checkpoint or a token file replaced at the same path is
 * another input). */
static char *make_signature(const zq_lkd_opts *o, uint32_t model_crc, uint32_t data_crc)
{
    cJSON *j = options_json(o);
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "model_crc32c", model_crc);
    if (o->data) cJSON_AddNumberToObject(j, "data_file_crc32c", data_crc);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

zq_status zq_lkd_workdir_open(workdir *w, const zq_lkd_opts *o, int stream, zq_source *src, zq_error *err)
{
    memset(w, 0, sizeof *w);
    uint32_t model_crc = 0, data_crc = 0;
    uint64_t bytes;
    ZQ_TRY(zq_source_fingerprint(src, &model_crc, err));
    if (o->data) ZQ_TRY(zq_file_crc32c(o->data, 0, &data_crc, &bytes, err));
    struct stat st;
    if (o->work && o->q.output && stat(o->work, &st) != 0) /* assembling: nothing to assemble from */
        return zq_fail(err, ZQ_ERR_USAGE, "'%s': no such work directory (distil into it first: zquant lkd %s --work %s)",
                       o->work, o->q.input, o->work);
    if (o->work) {
        if (!(w->dir = strdup(o->work))) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (mkdir(w->dir, 0777) != 0 && errno != EEXIST) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create", w->dir);
    } else if (stream) {
        if (o->resume) return zq_fail(err, ZQ_ERR_USAGE, "'%s': --resume needs a file as output", o->q.output);
        w->dir = zq_path_join(zq_tmpdir(), "zquant-lkd-XXXXXX");
        if (w->dir && !mkdtemp(w->dir)) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create", w->dir);
    } else if ((w->dir = malloc(strlen(o->q.output) + 8))) {
        sprintf(w->dir, "%s.lkd", o->q.output);
        if (mkdir(w->dir, 0777) != 0 && errno != EEXIST) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create", w->dir);
    }
    w->signature = make_signature(o, model_crc, data_crc);
    if (!w->dir || !w->signature) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    return ZQ_OK;
}

void zq_lkd_workdir_close(workdir *w)
{
    free(w->dir);
    free(w->signature);
}
