/* Readers and the .zq writer/reader, on the committed fixtures (run from
 * the repository root). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "zquant/fp16.h"
#include "zquant/quantize.h"
#include "zquant/source.h"
#include "zquant/zq.h"

#define FIX "tests/fixtures/models/"

static long find(const zq_source *s, const char *name)
{
    for (size_t i = 0; i < zq_source_count(s); i++)
        if (strcmp(zq_source_tensor(s, i)->name, name) == 0) return (long)i;
    return -1;
}

static float *read_all(zq_source *s, const char *name, const zq_tensor_info **info)
{
    long i = find(s, name);
    if (i < 0) return NULL;
    *info = zq_source_tensor(s, (size_t)i);
    float *x = malloc((*info)->numel * sizeof *x);
    zq_error err = {0};
    if (zq_source_read(s, (size_t)i, 0, (*info)->rows, 0, (*info)->cols, x, &err) != ZQ_OK) {
        free(x);
        return NULL;
    }
    return x;
}

TEST(every_input_format_reads_the_same_weights)
{
    const char *paths[] = {FIX "llama", FIX "llama/model.safetensors", FIX "llama.h5", FIX "llama-sharded",
                           FIX "llama-f32.safetensors"};
    const char *name = "model.layers.1.self_attn.k_proj.weight";
    float *ref = NULL;
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        zq_source *s = NULL;
        zq_error err = {0};
        CHECK(zq_source_open(paths[k], &s, &err) == ZQ_OK);
        if (!s) { fprintf(stderr, "  %s\n", err.msg); continue; }
        CHECK_EQ_U(zq_source_count(s), 2 * 8 + 3); /* 4 attention + 3 MLP + 1 norm per layer */
        const zq_tensor_info *t = NULL;
        float *x = read_all(s, name, &t);
        CHECK(x && t->ndim == 2 && t->shape[0] == 8 && t->shape[1] == 16);
        if (x && !ref) ref = x;
        else if (x) {
            CHECK(memcmp(x, ref, 8 * 16 * sizeof *x) == 0);
            free(x);
        }
        if (k < 4) CHECK(zq_source_config(s) && strstr(zq_source_config(s), "\"llama\""));
        else CHECK(zq_source_config(s) == NULL); /* no config.json beside it */
        zq_source_close(s);
    }
    /* bf16 holds the same values to bf16 precision */
    zq_source *s = NULL;
    zq_error err = {0};
    CHECK(zq_source_open(FIX "llama-bf16.safetensors", &s, &err) == ZQ_OK);
    const zq_tensor_info *t = NULL;
    float *x = s ? read_all(s, name, &t) : NULL;
    CHECK(x && t->dtype == ZQ_DT_BF16);
    for (int k = 0; x && ref && k < 8 * 16; k++) CHECK(fabsf(x[k] - ref[k]) <= fabsf(ref[k]) / 128);
    free(x);
    free(ref);
    zq_source_close(s);
}

TEST(block_reads_match_whole_reads)
{
    const char *paths[] = {FIX "gpt2", FIX "gpt2.h5"};
    for (int k = 0; k < 2; k++) {
        zq_source *s = NULL;
        zq_error err = {0};
        CHECK(zq_source_open(paths[k], &s, &err) == ZQ_OK);
        if (!s) continue;
        const zq_tensor_info *t = NULL;
        float *all = read_all(s, "h.0.mlp.c_fc.weight", &t); /* [16, 40] */
        float block[3 * 5];
        CHECK(zq_source_read(s, (size_t)find(s, "h.0.mlp.c_fc.weight"), 4, 3, 30, 5, block, &err) == ZQ_OK);
        for (int r = 0; all && r < 3; r++)
            for (int c = 0; c < 5; c++) CHECK(block[r * 5 + c] == all[(4 + r) * 40 + 30 + c]);
        CHECK(zq_source_read(s, 0, 0, 1, 0, 1000000, block, &err) == ZQ_ERR_INTERNAL);
        free(all);
        zq_source_close(s);
    }
}

static zq_status quantize_to(const char *in, const char *out, int threads, int zstd, const char *preset)
{
    zq_quantize_opts o;
    zq_quantize_opts_init(&o);
    o.input = in;
    o.output = out;
    o.threads = threads;
    o.zstd_level = zstd;
    o.force = 1;
    o.preset = preset;
    o.base.group_size = 12;
    zq_quantize_report rep;
    zq_error err = {0};
    zq_status st = zq_quantize(&o, &rep, &err);
    if (st) fprintf(stderr, "  %s\n", err.msg);
    return st;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    if (fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    return b;
}

TEST(output_is_the_same_for_any_thread_count)
{
    char a[] = "/tmp/zq-test-XXXXXX";
    CHECK(mkdtemp(a) != NULL);
    char p1[64], p4[64];
    snprintf(p1, sizeof p1, "%s/t1.zq", a);
    snprintf(p4, sizeof p4, "%s/t4.zq", a);
    CHECK(quantize_to(FIX "gpt2", p1, 1, 0, "w4/8a8") == ZQ_OK);
    CHECK(quantize_to(FIX "gpt2", p4, 4, 0, "w4/8a8") == ZQ_OK);
    size_t n1 = 0, n4 = 0;
    unsigned char *b1 = slurp(p1, &n1), *b4 = slurp(p4, &n4);
    CHECK(b1 && b4 && n1 == n4 && n1 > 0 && memcmp(b1, b4, n1) == 0);
    free(b1);
    free(b4);
    unlink(p1);
    unlink(p4);
    rmdir(a);
}

TEST(zq_file_roundtrip_and_corruption)
{
    char dir[] = "/tmp/zq-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char raw[64], packed[64], broken[64];
    snprintf(raw, sizeof raw, "%s/raw.zq", dir);
    snprintf(packed, sizeof packed, "%s/z.zq", dir);
    snprintf(broken, sizeof broken, "%s/broken.zq", dir);
    CHECK(quantize_to(FIX "llama", raw, 2, 0, "w4/8a16") == ZQ_OK);
    CHECK(quantize_to(FIX "llama", packed, 2, 9, "w4/8a16") == ZQ_OK);
    zq_file *a = NULL, *b = NULL;
    zq_error err = {0};
    CHECK(zq_file_open(raw, 1, &a, &err) == ZQ_OK);
    CHECK(zq_file_open(packed, 1, &b, &err) == ZQ_OK);
    if (!a || !b) return;
    CHECK(strcmp(zq_file_model_type(a), "llama") == 0);
    CHECK(zq_file_activation(a)->bits == 16);
    CHECK_EQ_U(zq_file_count(a), zq_file_count(b));
    long gate = zq_file_find(a, "model.layers.0.mlp.gate_proj.weight");
    long q = zq_file_find(a, "model.layers.0.self_attn.q_proj.weight");
    long emb = zq_file_find(a, "model.embed_tokens.weight");
    CHECK(gate >= 0 && q >= 0 && emb >= 0);
    CHECK(zq_file_tensor(a, (size_t)gate)->spec.format == ZQ_FORMAT_INT4);
    CHECK(zq_file_tensor(a, (size_t)q)->spec.format == ZQ_FORMAT_INT8);
    CHECK(zq_file_tensor(a, (size_t)emb)->spec.format == ZQ_FORMAT_F16);
    for (size_t i = 0; i < zq_file_count(a); i++) {
        const zq_tensor *t = zq_file_tensor(a, i);
        for (int k = 0; k < ZQ_SEC_COUNT; k++)
            if (t->sec[k].present) CHECK(t->sec[k].offset % ZQ_ALIGN == 0);
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
        float *x = malloc(n * 4), *y = malloc(n * 4);
        CHECK(zq_file_read_float(a, i, x, &err) == ZQ_OK);
        CHECK(zq_file_read_float(b, i, y, &err) == ZQ_OK);
        CHECK(memcmp(x, y, n * 4) == 0);
        free(x);
        free(y);
    }
    /* flip one byte of a q section: open with checks must refuse it */
    const zq_tensor *t = zq_file_tensor(a, (size_t)gate);
    uint64_t off = t->sec[ZQ_SEC_Q].offset + 3;
    size_t len = 0;
    unsigned char *bytes = slurp(raw, &len);
    bytes[off] ^= 0x10;
    FILE *f = fopen(broken, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    zq_file *c = NULL;
    zq_error e2 = {0};
    CHECK(zq_file_open(broken, 1, &c, &e2) == ZQ_ERR_CORRUPT);
    CHECK(strstr(e2.msg, "model.layers.0.mlp.gate_proj.weight") != NULL);
    /* truncation is caught before any section is trusted */
    f = fopen(broken, "wb");
    fwrite(bytes, 1, len / 2, f);
    fclose(f);
    zq_error e3 = {0};
    CHECK(zq_file_open(broken, 0, &c, &e3) == ZQ_ERR_FORMAT);
    free(bytes);
    zq_file_close(a);
    zq_file_close(b);
    unlink(raw);
    unlink(packed);
    unlink(broken);
    rmdir(dir);
}

TEST(existing_output_is_kept_without_force)
{
    char dir[] = "/tmp/zq-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char out[64];
    snprintf(out, sizeof out, "%s/keep.zq", dir);
    FILE *f = fopen(out, "w");
    fputs("precious", f);
    fclose(f);
    zq_quantize_opts o;
    zq_quantize_opts_init(&o);
    o.input = FIX "opt";
    o.output = out;
    zq_quantize_report rep;
    zq_error err = {0};
    CHECK(zq_quantize(&o, &rep, &err) == ZQ_ERR_EXISTS);
    size_t len = 0;
    unsigned char *b = slurp(out, &len);
    CHECK(b && len == 8 && memcmp(b, "precious", 8) == 0);
    free(b);
    unlink(out);
    rmdir(dir);
}

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include "../../src/io/atomic.h"
#include "zquant/signals.h"

static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, ".."));
    if (d) closedir(d);
    return n;
}

/* A run killed by SIGTERM or SIGINT while writing leaves neither the output
 * nor its temp file, and still dies of the signal. */
TEST(interrupted_write_leaves_nothing)
{
    int sigs[2] = {SIGTERM, SIGINT};
    for (int k = 0; k < 2; k++) {
        char dir[] = "/tmp/zq-test-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        char out[64];
        snprintf(out, sizeof out, "%s/out.zq", dir);
        pid_t pid = fork();
        if (pid == 0) {
            zq_install_signal_cleanup();
            zq_atomic a;
            zq_error err = {0};
            if (zq_atomic_open(&a, out, 0, &err) != ZQ_OK) _exit(3);
            zq_atomic_write(&a, "partial", 7, &err);
            raise(sigs[k]);
            _exit(4); /* not reached */
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sigs[k]);
        CHECK(files_in(dir) == 0);
        rmdir(dir);
    }
}

/* An output's bytes, however its writes fall on the direct writer's
 * blocks and stages: a skipped gap, pieces across 4 KiB blocks and 4 MiB
 * stages, a patch of bytes still staged, one of bytes long on the disk
 * (from then on the file is written buffered), a short last block. In a
 * folder on the disk and in /dev/shm, whichever of them takes O_DIRECT. */
TEST(atomic_output_has_every_byte_written_direct_or_not)
{
    const char *roots[2] = {"/tmp", "/dev/shm"};
    size_t n = (9u << 20) + 12345;
    unsigned char *want = calloc(n, 1), *got = malloc(n);
    for (size_t k = 100; k < n; k++) want[k] = (unsigned char)(k * 2654435761u >> 13);
    for (int r = 0; r < 2; r++) {
        char dir[64], out[80];
        snprintf(dir, sizeof dir, "%s/zq-test-XXXXXX", roots[r]);
        if (!mkdtemp(dir)) continue; /* no /dev/shm here */
        snprintf(out, sizeof out, "%s/out.bin", dir);
        for (int small = 0; small < 2; small++) {
            size_t len = small ? 5000 : n; /* small: every byte still staged at the end */
            zq_atomic a;
            zq_error err = {0};
            CHECK(zq_atomic_open(&a, out, 1, &err) == ZQ_OK);
            CHECK(zq_atomic_seek(&a, 100, &err) == ZQ_OK);
            size_t at = 100, piece[] = {1, 4095, 4097, 3u << 20, 77, 1u << 20};
            for (int p = 0; at < len; p = (p + 1) % 6) {
                size_t k = piece[p] < len - at ? piece[p] : len - at;
                CHECK(zq_atomic_write(&a, want + at, k, &err) == ZQ_OK);
                at += k;
            }
            CHECK(zq_atomic_pwrite(&a, want + len - 10, 10, len - 10, &err) == ZQ_OK);
            memcpy(want, "HEAD", 4);
            CHECK(zq_atomic_pwrite(&a, "HEAD", 4, 0, &err) == ZQ_OK);
            CHECK(zq_atomic_commit(&a, &err) == ZQ_OK);
            memset(want, 0, 4);
            FILE *f = fopen(out, "rb");
            size_t read = f ? fread(got, 1, n, f) : 0;
            if (f) fclose(f);
            CHECK_EQ_U(read, len);
            CHECK(read == len && memcmp(got, "HEAD", 4) == 0 && memcmp(got + 4, want + 4, len - 4) == 0);
        }
        unlink(out);
        CHECK(files_in(dir) == 0);
        rmdir(dir);
    }
    free(want);
    free(got);
}

/* A .zq file truncated by someone else while mapped: the read faults
 * (SIGBUS) and the handler of zq_install_signal_cleanup turns it into a
 * one-line error and exit code 4, temp files removed. */
TEST(shrinking_zq_input_is_a_clean_error)
{
    char dir[] = "/tmp/zq-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char in[64], out[64];
    snprintf(in, sizeof in, "%s/in.zq", dir);
    snprintf(out, sizeof out, "%s/out.zq", dir);
    zq_quantize_opts o;
    zq_quantize_opts_init(&o);
    o.input = FIX "llama";
    o.output = in;
    zq_quantize_report rep;
    zq_error err = {0};
    CHECK(zq_quantize(&o, &rep, &err) == ZQ_OK);
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        zq_install_signal_cleanup();
        zq_file *f = NULL;
        zq_atomic a;
        if (zq_file_open(in, 1, &f, &err) != ZQ_OK || zq_atomic_open(&a, out, 0, &err) != ZQ_OK) _exit(10);
        if (truncate(in, 4096) != 0) _exit(11);
        static float buf[1 << 16];
        for (size_t i = 0; i < zq_file_count(f); i++) zq_file_read_float(f, i, buf, &err); /* faults */
        _exit(12); /* not reached */
    }
    close(pipefd[1]);
    char msg[512] = {0};
    ssize_t got = 0, k;
    while (got < (ssize_t)sizeof msg - 1 && (k = read(pipefd[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0) got += k;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == ZQ_ERR_IO);
    CHECK(got > 0 && strstr(msg, "in.zq': the file shrank") && strchr(msg, '\n') == msg + strlen(msg) - 1);
    unlink(in);
    CHECK(files_in(dir) == 0); /* the temp file of out.zq went too */
    rmdir(dir);
}

#include "../../src/base/files.h"
#include "zquant/crc32c.h"

/* A file's CRC-32C over its first bytes only (the recipe's head_crc32c of
 * a weights file), across the 1 MiB read pieces, and over all of it. */
TEST(file_crc32c_of_a_head_and_of_all)
{
    char path[] = "/tmp/zq-crc-XXXXXX";
    int fd = mkstemp(path);
    size_t n = (3u << 20) + 12345;
    unsigned char *b = malloc(n);
    for (size_t i = 0; b && i < n; i++) b[i] = (unsigned char)(i * 2654435761u >> 13);
    CHECK(fd >= 0 && b && write(fd, b, n) == (ssize_t)n);
    close(fd);
    uint32_t crc;
    uint64_t got;
    zq_error err = {0};
    CHECK(zq_file_crc32c(path, (1u << 20) + 7, &crc, &got, &err) == ZQ_OK);
    CHECK(got == (1u << 20) + 7 && crc == zq_crc32c(0, b, (1u << 20) + 7));
    CHECK(zq_file_crc32c(path, 0, &crc, &got, &err) == ZQ_OK);
    CHECK(got == n && crc == zq_crc32c(0, b, n));
    CHECK(zq_file_crc32c(path, 2 * (uint64_t)n, &crc, &got, &err) == ZQ_OK && got == n); /* past the end: the file */
    unlink(path);
    free(b);
}
