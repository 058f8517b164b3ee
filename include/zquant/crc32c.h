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
/* The table-driven path alone, to test the hardware path against. */
uint32_t zq_crc32c_ref(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
