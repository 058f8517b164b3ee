/* fp16 conversion and CRC-32C against hand-worked values and each other. */
#include <stdint.h>
#include <stdlib.h>

#include "test.h"
#include "zquant/crc32c.h"
#include "zquant/fp16.h"

static uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

TEST(fp16_known_values)
{
    CHECK_EQ_U(zq_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_U(zq_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_U(zq_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_U(zq_f32_to_f16(65519.0f), 0x7bff);  /* below the halfway point */
    CHECK_EQ_U(zq_f32_to_f16(65520.0f), 0x7c00);  /* halfway rounds to even: overflow */
    CHECK_EQ_U(zq_f32_to_f16(0.1f), 0x2e66);
    CHECK_EQ_U(zq_f32_to_f16(5.9604644775390625e-08f), 0x0001); /* 2^-24, smallest subnormal */
    CHECK_EQ_U(zq_f32_to_f16(2.98023223876953125e-08f), 0x0000); /* 2^-25 ties to even: zero */
    CHECK_EQ_U(zq_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);       /* tie, to even */
    CHECK_EQ_U(zq_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);       /* tie, to even (up) */
    CHECK_EQ_U(zq_f32_to_f16(INFINITY), 0x7c00);
    CHECK((zq_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (zq_f32_to_f16(NAN) & 0x3ff));
    CHECK(zq_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(zq_f16_to_f32(0x8001) == -5.9604644775390625e-08f);
    CHECK(zq_bf16_to_f32(0x3f80) == 1.0f);
}

TEST(fp16_roundtrip_every_half)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads may change */
        if (zq_f32_to_f16(zq_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0);
}

TEST(fp16_vector_matches_scalar)
{
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x);
    uint16_t *v = malloc(N * 2), *h = malloc(N * 2);
    float *back = malloc(N * sizeof *back);
    uint32_t s = 12345;
    for (int k = 0; k < N; k++) {
        s = s * 1664525u + 1013904223u;
        uint32_t b = s;
        if (k % 3 == 0) b = (b & 0x807fffffu) | ((100 + (b >> 23) % 50) << 23); /* near the fp16 range */
        x[k] = from_bits(b);
        if (isnan(x[k])) x[k] = 0;
    }
    zq_f32_to_f16_n(x, v, N);
    int bad = 0;
    for (int k = 0; k < N; k++) bad += v[k] != zq_f32_to_f16(x[k]);
    CHECK(bad == 0);
    for (int k = 0; k < N; k++) h[k] = (uint16_t)k;
    zq_f16_to_f32_n(h, back, 0x10000);
    bad = 0;
    for (int k = 0; k < 0x10000; k++) {
        float r = zq_f16_to_f32((uint16_t)k);
        bad += bits_of(back[k]) != bits_of(r) && !(isnan(r) && isnan(back[k]));
    }
    CHECK(bad == 0);
    free(x), free(v), free(h), free(back);
}

TEST(crc32c_check_value)
{
    CHECK_EQ_U(zq_crc32c(0, "123456789", 9), 0xe3069283u);
    CHECK_EQ_U(zq_crc32c_ref(0, "123456789", 9), 0xe3069283u);
    CHECK_EQ_U(zq_crc32c(0, "", 0), 0);
    unsigned char zeros[32] = {0};
    CHECK_EQ_U(zq_crc32c(0, zeros, 32), 0x8a9136aau); /* RFC 3720, B.4 */
}

TEST(crc32c_hardware_matches_table)
{
    unsigned char buf[1000];
    for (int k = 0; k < 1000; k++) buf[k] = (unsigned char)(k * 7 + 3);
    for (size_t len = 0; len < 1000; len += 37) {
        CHECK_EQ_U(zq_crc32c(0, buf, len), zq_crc32c_ref(0, buf, len));
        /* a running checksum equals the one-shot one */
        uint32_t part = zq_crc32c(zq_crc32c(0, buf, len / 3), buf + len / 3, len - len / 3);
        CHECK_EQ_U(part, zq_crc32c(0, buf, len));
    }
}

TEST(crc32c_combine_joins_pieces)
{
    unsigned char buf[3000];
    for (int k = 0; k < 3000; k++) buf[k] = (unsigned char)(k * 31 + 7);
    size_t cuts[] = {0, 1, 7, 64, 1000, 2999, 3000};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        size_t a = cuts[c];
        uint32_t joined = zq_crc32c_combine(zq_crc32c(0, buf, a), zq_crc32c(0, buf + a, 3000 - a), 3000 - a);
        CHECK_EQ_U(joined, zq_crc32c(0, buf, 3000));
    }
}
