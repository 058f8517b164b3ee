/* A token file: the first byte picks .npy (even) or raw uint32 (odd). */
#include "fuzz.h"
#include "zquant/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    const char *path = fuzz_file(data[0] & 1 ? "tokens.bin" : "tokens.npy", data + 1, size - 1);
    int32_t *ids = NULL;
    size_t n = 0;
    zq_error err = {0};
    zq_tokens_read(path, &ids, &n, &err);
    free(ids);
    zq_forget_inputs();
    return 0;
}
