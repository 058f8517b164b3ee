/* A safetensors file: header checks, then every small tensor read as float,
 * as FP16 and by columns (the GPT-2 transpose path). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_read_source(fuzz_file("model.safetensors", data, size), 1);
    return 0;
}
