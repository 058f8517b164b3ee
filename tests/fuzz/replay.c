/* Replays fuzz corpora without libFuzzer: every file named on the command
 * line, or found in a directory named there, goes once through the
 * harness's LLVMFuzzerTestOneInput. A crash is the test failing; the last
 * line says how many inputs ran. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (buf) LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    long count = 0;
    for (int k = 1; k < argc; k++) {
        struct stat st;
        if (stat(argv[k], &st) != 0) continue;
        if (!S_ISDIR(st.st_mode)) {
            count += run_file(argv[k]);
            continue;
        }
        DIR *d = opendir(argv[k]);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[k], e->d_name);
            count += run_file(path);
        }
        if (d) closedir(d);
    }
    printf("%ld inputs\n", count);
    return 0;
}
