/* The work directory that makes an LKD run resumable: each block's tuned
 * weights as a patch file, and a state file saying which blocks are done. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/files.h"
#include "base/util.h"
#include "io/atomic.h"
#include "io/st_write.h"
#include "lkd/lkd_impl.h"

char *lkd_patch_path(const workdir *w, int layer)
{
    char name[64];
    snprintf(name, sizeof name, "block-%d.safetensors", layer);
    return zq_path_join(w->dir, name);
}

/* The tuned weights of one block, in the checkpoint's names and layouts. */
zq_status lkd_write_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err)
{
    zq_st_entry e[32];
    int64_t shapes[32][2];
    for (int k = 0; k < tr->np; k++) {
        const zq_net_tensor *u = &tr->p[k].u;
        shapes[k][0] = u->conv1d ? u->cols : u->rows;
        shapes[k][1] = u->conv1d ? u->rows : u->cols;
        e[k] = (zq_st_entry){u->name, u->vector ? 1 : 2, shapes[k]};
    }
    size_t hlen;
    unsigned char *header = zq_st_header(e, (size_t)tr->np, 4, &hlen);
    char *path = lkd_patch_path(w, layer);
    zq_atomic f;
    zq_status st = header && path ? zq_atomic_open(&f, path, 1, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_atomic_write(&f, header, hlen, err);
    for (int k = 0; st == ZQ_OK && k < tr->np; k++) {
        const param *p = &tr->p[k];
        float *disk = malloc(p->n * sizeof *disk);
        if (!disk) { st = zq_fail(err, ZQ_ERR_NOMEM, "out of memory"); break; }
        zq_net_tensor_layout(&p->u, a->n_heads, p->master, disk, 1);
        st = zq_atomic_write(&f, disk, p->n * sizeof *disk, err);
        free(disk);
    }
    if (st == ZQ_OK) st = zq_atomic_commit(&f, err);
    else if (header && path) zq_atomic_abort(&f);
    free(header);
    free(path);
    return st;
}

/* Reads a block's tuned weights back into its masters (a resumed run). */
zq_status lkd_read_patch(const workdir *w, int layer, trainee *tr, const zq_arch *a, zq_error *err)
{
    char *path = lkd_patch_path(w, layer);
    zq_source *src = NULL;
    zq_status st = path ? zq_source_open(path, &src, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    for (int k = 0; st == ZQ_OK && k < tr->np; k++) {
        param *p = &tr->p[k];
        long idx = -1;
        for (size_t i = 0; i < zq_source_count(src); i++)
            if (!strcmp(zq_source_tensor(src, i)->name, p->u.name)) idx = (long)i;
        if (idx < 0) { st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': no tensor '%s'", path, p->u.name); break; }
        float *disk = malloc(p->n * sizeof *disk);
        const zq_tensor_info *t = zq_source_tensor(src, (size_t)idx);
        st = disk ? zq_source_read(src, (size_t)idx, 0, t->rows, 0, t->cols, disk, err)
                  : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
        if (st == ZQ_OK) zq_net_tensor_layout(&p->u, a->n_heads, disk, p->master, 0);
        free(disk);
    }
    zq_source_close(src);
    free(path);
    return st;
}

zq_status lkd_save_state(const workdir *w, const unsigned char *done, int n, zq_error *err)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "signature", w->signature);
    cJSON *arr = cJSON_AddArrayToObject(j, "done");
    for (int k = 0; k < n; k++)
        if (done[k]) cJSON_AddItemToArray(arr, cJSON_CreateNumber(k));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    zq_atomic f;
    zq_status st = text ? zq_atomic_open(&f, w->state, 1, err) : zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    if (st == ZQ_OK) st = zq_atomic_write(&f, text, strlen(text), err);
    if (st == ZQ_OK) st = zq_atomic_commit(&f, err);
    else if (text) zq_atomic_abort(&f);
    free(text);
    return st;
}

/* done[] from a state file whose signature matches; a missing file is a
 * fresh start, a different signature an error. */
zq_status lkd_load_state(const workdir *w, unsigned char *done, int n, zq_error *err)
{
    memset(done, 0, (size_t)n);
    if (access(w->state, F_OK) != 0) return ZQ_OK;
    char *text;
    ZQ_TRY(zq_read_small_file(w->state, 1 << 20, &text, NULL, err));
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(j, "signature"), *arr = cJSON_GetObjectItemCaseSensitive(j, "done");
    zq_status st = ZQ_OK;
    if (!cJSON_IsString(sig) || !cJSON_IsArray(arr)) st = zq_fail(err, ZQ_ERR_FORMAT, "'%s': not an lkd state file", w->state);
    else if (strcmp(sig->valuestring, w->signature) != 0)
        st = zq_fail(err, ZQ_ERR_USAGE, "'%s': made with other options; rerun without --resume to start over", w->state);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) if (st == ZQ_OK && cJSON_IsNumber(it) && it->valueint >= 0 && it->valueint < n) done[it->valueint] = 1;
    cJSON_Delete(j);
    return st;
}

static char *make_signature(const zq_lkd_opts *o)
{
    cJSON *j = cJSON_CreateObject();
    char spec[64];
    zq_qspec_format(&o->q.base, spec, sizeof spec);
    cJSON_AddStringToObject(j, "input", o->q.input);
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
    cJSON_AddStringToObject(j, "layers", o->layers ? o->layers : "all");
    cJSON_AddNumberToObject(j, "steps", o->steps);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "seq_len", o->seq_len);
    cJSON_AddNumberToObject(j, "data_batches", o->data_batches);
    cJSON_AddStringToObject(j, "data", o->data ? o->data : "random");
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddBoolToObject(j, "input_quantized", o->input_quantized);
    cJSON_AddBoolToObject(j, "train_norms", o->train_norms);
    cJSON_AddNumberToObject(j, "threads", o->q.threads);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

zq_status lkd_workdir_open(workdir *w, const zq_lkd_opts *o, int stream, zq_error *err)
{
    memset(w, 0, sizeof *w);
    if (stream) {
        if (o->resume) return zq_fail(err, ZQ_ERR_USAGE, "'%s': --resume needs a file as output", o->q.output);
        const char *tmpdir = getenv("TMPDIR");
        w->dir = zq_path_join(tmpdir && *tmpdir ? tmpdir : "/tmp", "zquant-lkd-XXXXXX");
        if (w->dir && !mkdtemp(w->dir)) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create", w->dir);
    } else if ((w->dir = malloc(strlen(o->q.output) + 8))) {
        sprintf(w->dir, "%s.lkd", o->q.output);
        if (mkdir(w->dir, 0777) != 0 && errno != EEXIST) return zq_fail_errno(err, ZQ_ERR_IO, "'%s': cannot create", w->dir);
    }
    w->state = w->dir ? zq_path_join(w->dir, "state.json") : NULL;
    w->signature = make_signature(o);
    if (!w->dir || !w->state || !w->signature) return zq_fail(err, ZQ_ERR_NOMEM, "out of memory");
    return ZQ_OK;
}

void lkd_workdir_close(workdir *w)
{
    free(w->dir);
    free(w->state);
    free(w->signature);
}
