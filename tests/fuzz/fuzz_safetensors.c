/* A safetensors file: header checks, then every small tensor read as float,
 * as FP16 and by columns (the GPT-2 transpose path). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.safetensors", data, size);
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
            zq_source_read_f16(src, i, 0, t->rows, h, &e);
            zq_source_read_columns(src, i, 0, t->cols, f, &e);
            free(f), free(h);
        }
        zq_source_close(src);
    }
    zq_forget_inputs();
    return 0;
}
