/* CRC-32C: the table-driven definition (slicing by 8), the entry point
 * that runs the active kernel set, and combining checksums of pieces. */
#include "zquant/crc32c.h"

#include <pthread.h>
#include <string.h>

#include "base/le.h"
#include "simd/kernels.h"

#define POLY_REFLECTED 0x82f63b78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY_REFLECTED & (0u - (c & 1)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t zq_crc32c_ref(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, build_table);
    const unsigned char *p = data;
    crc = ~crc;
    while (len >= 8) { /* slicing by 8, little-endian words */
        uint32_t lo = zq_load_le32(p) ^ crc;
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

uint32_t zq_crc32c(uint32_t crc, const void *data, size_t len) { return zq_kernels_active()->crc32c(crc, data, len); }

/* Polynomial arithmetic mod P over GF(2), bit-reflected as the CRC is:
 * appending n zero bytes to a message multiplies its CRC state by x^(8n). */
static uint32_t multmodp(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ POLY_REFLECTED : b >> 1;
    }
    return p;
}

static uint32_t x2n[32]; /* x^(2^k) mod P */
static pthread_once_t x2n_once = PTHREAD_ONCE_INIT;

static void build_x2n(void)
{
    uint32_t p = 1u << 30; /* x^1 */
    x2n[0] = p;
    for (int k = 1; k < 32; k++) x2n[k] = p = multmodp(p, p);
}

/* x^(8 len) mod P: what appending len zero bytes multiplies by */
static uint32_t past_zeros(uint64_t len)
{
    pthread_once(&x2n_once, build_x2n);
    uint32_t p = 1u << 31; /* x^0 */
    unsigned k = 3;        /* x^(8 len) = product of x^(2^(k)) over the bits of len, from 2^3 */
    for (uint64_t n = len; n; n >>= 1, k++)
        if (n & 1) p = multmodp(x2n[k & 31], p);
    return p;
}

uint32_t zq_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    return multmodp(past_zeros(len_b), crc_a) ^ crc_b;
}

void zq_crc32c_zeros_table(uint64_t len, uint32_t t[4][256])
{
    uint32_t p = past_zeros(len);
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) t[k][v] = multmodp(p, v << (8 * k));
}
