/* A .zq file, checksums and all (most mutations stop at a CRC), then every
 * small tensor decoded. fuzz_zq_sealed.c gets past the checksums. */
#include "fuzz.h"
#include "zquant/zq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_read_zq(fuzz_file("model.zq", data, size), 1);
    zq_forget_inputs();
    return 0;
}
