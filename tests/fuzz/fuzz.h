/* Shared by the fuzz harnesses (one per parser, fuzz_*.c): libFuzzer gives
 * bytes, zquant's readers take paths, so each input is written to a file
 * first. Run by libFuzzer (make fuzz) or replayed from the corpora by
 * replay.c (make check). Every harness ends by forgetting its inputs: the
 * list zquant keeps of them would otherwise grow with every run. */
#ifndef ZQ_FUZZ_H
#define ZQ_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zquant/source.h"
#include "zquant/zq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A directory of this process's own for the files inputs become. */
static inline const char *fuzz_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/zq-fuzz-%d", base && *base ? base : "/tmp", (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

/* Writes size bytes to NAME in the fuzz directory; returns its path. */
static inline const char *fuzz_file(const char *name, const void *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

/* Bounds what a harness reads of a tensor a fuzzed header describes. */
#define FUZZ_MAX_ELEMS ((uint64_t)1 << 16)

/* Opens a .zq file (checksums checked or not) and reads every section and
 * every small tensor back. */
static inline void fuzz_read_zq(const char *path, int verify)
{
    zq_file *f = NULL;
    zq_error err = {0};
    if (zq_file_open(path, verify, &f, &err) != ZQ_OK) return;
    for (size_t i = 0; i < zq_file_count(f); i++) {
        const zq_tensor *t = zq_file_tensor(f, i);
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
        for (int k = 0; k < ZQ_SEC_COUNT; k++) {
            const void *p;
            size_t len;
            zq_error e = {0};
            if (t->sec[k].present) zq_file_section(f, i, (zq_section_kind)k, &p, &len, &e);
        }
        if (n > FUZZ_MAX_ELEMS) continue;
        float *out = malloc((n + 1) * sizeof *out);
        zq_error e = {0};
        zq_file_read_float(f, i, out, &e);
        zq_file_read_matrix(f, i, out, &e);
        free(out);
    }
    zq_file_close(f);
}


/* Opens path as a checkpoint and reads back every small tensor as float;
 * every_reader: also as FP16 and by columns (the GPT-2 transpose path). */
static inline void fuzz_read_source(const char *path, int every_reader)
{
    zq_source *src = NULL;
    zq_error err = {0};
    if (zq_source_open(path, &src, &err) == ZQ_OK) {
        for (size_t i = 0; i < zq_source_count(src); i++) {
            const zq_tensor_info *t = zq_source_tensor(src, i);
            if (t->numel > FUZZ_MAX_ELEMS) continue;
            float *f = malloc((t->numel + 1) * sizeof *f);
            uint16_t *h = malloc((t->numel + 1) * sizeof *h);
            zq_error e = {0};
            zq_source_read(src, i, 0, t->rows, 0, t->cols, f, &e);
            if (every_reader) {
                zq_source_read_f16(src, i, 0, t->rows, h, &e);
                zq_source_read_columns(src, i, 0, t->cols, f, &e);
            }
            free(f), free(h);
        }
        zq_source_close(src);
    }
    zq_forget_inputs();
}

#endif
