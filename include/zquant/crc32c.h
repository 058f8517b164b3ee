/* CRC-32C (Castagnoli), the checksum of every section of a .zq file.
 * Check value: crc32c("123456789") == 0xe3069283. */
#ifndef ZQUANT_CRC32C_H
#define ZQUANT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Continues a running checksum: start with crc = 0. */
uint32_t zq_crc32c(uint32_t crc, const void *data, size_t len);
/* The checksum of A followed by B, from crc(A), crc(B) and B's length:
 * pieces checksummed on different threads join without a second pass. */
uint32_t zq_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
/* The table-driven path alone, to test the hardware path against. */
uint32_t zq_crc32c_ref(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
