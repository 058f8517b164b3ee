/* An HDF5 file, as users open it: through the helper process that runs
 * libhdf5 (a crash in there is a clean error, not a harness crash), then
 * every small tensor read back through it. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.h5", data, size);
    zq_source *src = NULL;
    zq_error err = {0};
    if (zq_source_open(path, &src, &err) == ZQ_OK) {
        for (size_t i = 0; i < zq_source_count(src); i++) {
            const zq_tensor_info *t = zq_source_tensor(src, i);
            if (t->numel > FUZZ_MAX_ELEMS) continue;
            float *f = malloc((t->numel + 1) * sizeof *f);
            zq_error e = {0};
            zq_source_read(src, i, 0, t->rows, 0, t->cols, f, &e);
            free(f);
        }
        zq_source_close(src);
    }
    zq_forget_inputs();
    return 0;
}
