/* A GGUF file: the header and tensor table checks, every small tensor
 * decoded under its Hugging Face name (the GGUF source), and the stored
 * listing `zquant inspect` prints. */
#include "fuzz.h"
#include "zquant/export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.gguf", data, size);
    fuzz_read_source(path, 1);
    zq_stored_listing l;
    zq_error err = {0};
    if (zq_list_stored(path, &l, &err) == ZQ_OK) zq_stored_listing_free(&l);
    zq_forget_inputs();
    return 0;
}
