/* A .zq file whose metadata checksum is recomputed before it is read, and
 * read without checking section checksums: mutations reach the metadata
 * decoder and the decoding of codes, which checksums would otherwise keep
 * them from. */
#include "fuzz.h"
#include "zquant/crc32c.h"
#include "zquant/zq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (size >= ZQ_HEADER_SIZE) {
        uint64_t mlen = 0;
        for (int b = 7; b >= 0; b--) mlen = mlen << 8 | copy[16 + b];
        if (mlen <= size - ZQ_HEADER_SIZE) {
            uint32_t crc = zq_crc32c(0, copy + ZQ_HEADER_SIZE, (size_t)mlen);
            for (int b = 0; b < 4; b++) copy[12 + b] = (uint8_t)(crc >> (8 * b));
        }
    }
    fuzz_read_zq(fuzz_file("sealed.zq", copy, size), 0);
    free(copy);
    zq_forget_inputs();
    return 0;
}
