/* An HDF5 file, as users open it: through the helper process that runs
 * libhdf5 (a crash in there is a clean error, not a harness crash), then
 * every small tensor read back through it. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_read_source(fuzz_file("model.h5", data, size), 0);
    return 0;
}
