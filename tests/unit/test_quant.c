/* Quantization math against hand-worked cases. */
#include <stdint.h>
#include <stdlib.h>

#include "export/export_impl.h"
#include "export/gguf/rows.h"
#include "test.h"
#include "zquant/fp16.h"
#include "zquant/arch.h"
#include "zquant/quant.h"

static void quantize_group(const zq_qspec *s, const float *x, size_t n, uint8_t *q, float *deq, zq_err_sums *sums)
{
    float lo, hi;
    size_t bad;
    uint16_t scale, min;
    CHECK(zq_range_f32(x, n, &lo, &hi, &bad));
    CHECK(zq_group_params(s, lo, hi, &scale, &min));
    zq_quantize_run(s, x, n, scale, min, q, sums);
    uint8_t packed[64];
    zq_format_get(s->format)->pack_row(q, n, packed);
    zq_decode_run(s, packed, 0, n, scale, min, deq);
}

TEST(int8_symmetric_by_hand)
{
    /* max|w| = 1 -> scale 1/128; 0.126 * 128 = 16.128 rounds to 16 */
    zq_qspec s = {ZQ_FORMAT_INT8, 1, ZQ_GRAN_ROW, 0, 0};
    float x[4] = {0.5f, -1.0f, 0.25f, 0.126f}, d[4];
    uint8_t q[4];
    zq_err_sums sums = {0, 0};
    quantize_group(&s, x, 4, q, d, &sums);
    CHECK_EQ_U(q[0], 64);
    CHECK_EQ_U(q[1], (uint8_t)-128);
    CHECK_EQ_U(q[2], 32);
    CHECK_EQ_U(q[3], 16);
    CHECK(d[0] == 0.5f && d[1] == -1.0f && d[2] == 0.25f && d[3] == 0.125f);
    CHECK_NEAR(sums.err2, 0.001 * 0.001, 1e-9);
    CHECK_NEAR(sums.signal2, 0.25 + 1 + 0.0625 + 0.126 * 0.126, 1e-6);
}

TEST(int4_symmetric_clamps_and_ties_to_even)
{
    /* scale = 1/8: 1.0 -> 8 clamps to 7; -0.3 -> -2.4 -> -2; 0.0625 -> 0.5 -> 0 (even) */
    zq_qspec s = {ZQ_FORMAT_INT4, 1, ZQ_GRAN_ROW, 0, 0};
    float x[5] = {1.0f, -0.3f, 0.5f, 0.0625f, 0.1875f}, d[5];
    uint8_t q[5];
    zq_err_sums sums = {0, 0};
    quantize_group(&s, x, 5, q, d, &sums);
    CHECK(d[0] == 0.875f && d[1] == -0.25f && d[2] == 0.5f && d[3] == 0.0f && d[4] == 0.25f);
    uint8_t packed[3];
    zq_format_get(ZQ_FORMAT_INT4)->pack_row(q, 5, packed);
    CHECK_EQ_U(packed[0], 0xe7); /* 7 low, -2 (0xe) high */
    CHECK_EQ_U(packed[1], 0x04); /* 4 low, 0 high */
    CHECK_EQ_U(packed[2], 0x02); /* 1.5 -> 2 (even), odd tail padded with zero */
}

TEST(int4_asymmetric_by_hand)
{
    /* lo -1, hi 2: scale 3/16, min -1; 2 -> 16 clamps to 15; 1.0 -> 10.67 -> 11 */
    zq_qspec s = {ZQ_FORMAT_INT4, 0, ZQ_GRAN_ROW, 0, 0};
    float x[4] = {-1.0f, 0.5f, 2.0f, 1.0f}, d[4];
    uint8_t q[4];
    zq_err_sums sums = {0, 0};
    quantize_group(&s, x, 4, q, d, &sums);
    CHECK_EQ_U(q[0], 0);
    CHECK_EQ_U(q[1], 8);
    CHECK_EQ_U(q[2], 15);
    CHECK_EQ_U(q[3], 11);
    CHECK(d[0] == -1.0f && d[1] == 0.5f && d[2] == 1.8125f && d[3] == 1.0625f);
}

TEST(all_zero_group_has_zero_scale)
{
    zq_qspec s = {ZQ_FORMAT_INT8, 1, ZQ_GRAN_ROW, 0, 0};
    float x[3] = {0, 0, 0}, d[3];
    uint8_t q[3] = {9, 9, 9};
    zq_err_sums sums = {0, 0};
    quantize_group(&s, x, 3, q, d, &sums);
    CHECK(q[0] == 0 && q[1] == 0 && q[2] == 0);
    CHECK(d[0] == 0 && sums.err2 == 0);
}

TEST(range_finds_nonfinite)
{
    float x[20] = {0};
    x[13] = NAN;
    float lo, hi;
    size_t bad = 99;
    CHECK(!zq_range_f32(x, 20, &lo, &hi, &bad));
    CHECK_EQ_U(bad, 13);
    x[13] = -INFINITY;
    CHECK(!zq_range_f32(x, 20, &lo, &hi, &bad));
    x[13] = -3;
    x[19] = 5;
    CHECK(zq_range_f32(x, 20, &lo, &hi, &bad) && lo == -3 && hi == 5);
}

TEST(scale_overflow_is_refused)
{
    zq_qspec s = {ZQ_FORMAT_INT4, 0, ZQ_GRAN_ROW, 0, 0};
    uint16_t scale, min;
    CHECK(!zq_group_params(&s, -1e7f, 1e7f, &scale, &min));
    CHECK(zq_group_params(&s, -65504.0f, 65504.0f, &scale, &min));
}

TEST(grid_shapes)
{
    zq_qspec s = {ZQ_FORMAT_INT4, 1, ZQ_GRAN_GROUP, 12, 0};
    zq_grid g;
    zq_grid_init(&g, &s, 10, 40);
    CHECK_EQ_U(g.col_groups, 4); /* 12 + 12 + 12 + 4 */
    CHECK_EQ_U(g.row_groups, 10);
    CHECK_EQ_U(g.row_bytes, 20);
    s.gran = ZQ_GRAN_BLOCKS;
    s.blocks = 4;
    s.format = ZQ_FORMAT_INT8;
    zq_grid_init(&g, &s, 10, 41);
    CHECK_EQ_U(g.group_rows, 3); /* 3 + 3 + 3 + 1 */
    CHECK_EQ_U(g.row_groups, 4);
    CHECK_EQ_U(g.col_groups, 1);
    CHECK_EQ_U(g.row_bytes, 41);
    s.gran = ZQ_GRAN_TENSOR;
    zq_grid_init(&g, &s, 10, 41);
    CHECK(g.row_groups == 1 && g.col_groups == 1);
}

TEST(spec_parsing)
{
    zq_qspec s = {ZQ_FORMAT_INT8, 1, ZQ_GRAN_GROUP, 128, 0};
    zq_error err = {0};
    CHECK(zq_qspec_parse("int4:g64:asym", &s, &err) == ZQ_OK);
    CHECK(s.format == ZQ_FORMAT_INT4 && s.group_size == 64 && !s.symmetric && s.gran == ZQ_GRAN_GROUP);
    CHECK(zq_qspec_parse("int8", &s, &err) == ZQ_OK);
    CHECK(s.format == ZQ_FORMAT_INT8 && s.group_size == 64); /* keeps what it does not say */
    CHECK(zq_qspec_parse("int8:blocks48", &s, &err) == ZQ_OK && s.gran == ZQ_GRAN_BLOCKS && s.blocks == 48);
    char buf[64];
    zq_qspec_format(&s, buf, sizeof buf);
    CHECK(strcmp(buf, "int8:blocks48:asym") == 0);
    const char *bad[] = {"int3", "int8:g0", "int8:g2000000", "fp16:g8", "int8:rows", "", "int8:g12x"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        zq_error e = {0};
        CHECK(zq_qspec_parse(bad[k], &s, &e) == ZQ_ERR_USAGE);
        CHECK(e.msg[0] != 0);
    }
}

TEST(name_patterns)
{
    int layer = -1;
    CHECK(zq_pattern_match("*h.#.attn.c_attn.weight", "transformer.h.11.attn.c_attn.weight", &layer));
    CHECK(layer == 11);
    CHECK(zq_pattern_match("*h.#.attn.c_attn.weight", "h.0.attn.c_attn.weight", &layer) && layer == 0);
    CHECK(!zq_pattern_match("*h.#.attn.c_attn.weight", "h.x.attn.c_attn.weight", NULL));
    CHECK(!zq_pattern_match("*layer.#.output.dense.weight", "bert.encoder.layer.3.attention.output.dense.weight", NULL));
    CHECK(zq_pattern_match("*layer.#.output.dense.weight", "bert.encoder.layer.3.output.dense.weight", NULL));
}

TEST(fake_quant_matrix_matches_the_hand_worked_rows)
{
    zq_qspec s = {ZQ_FORMAT_INT4, 1, ZQ_GRAN_ROW, 0, 0};
    float w[10] = {1.0f, -0.3f, 0.5f, 0.0625f, 0.1875f, -1.0f, 0.5f, 2.0f, 1.0f, 0.0f}, out[10];
    zq_error err = {0};
    CHECK(zq_fake_quant_matrix(&s, w, 2, 5, out, &err) == ZQ_OK);
    /* row 0 as int4_symmetric_clamps_and_ties_to_even; row 1: max 2, scale 1/4 */
    CHECK(out[0] == 0.875f && out[1] == -0.25f && out[2] == 0.5f && out[3] == 0.0f && out[4] == 0.25f);
    CHECK(out[5] == -1.0f && out[6] == 0.5f && out[7] == 1.75f && out[8] == 1.0f && out[9] == 0.0f);
    s.gran = ZQ_GRAN_TENSOR; /* one scale for both rows: max 2 -> 1/4 */
    CHECK(zq_fake_quant_matrix(&s, w, 2, 5, out, &err) == ZQ_OK);
    CHECK(out[0] == 1.0f && out[1] == -0.25f && out[3] == 0.0f && out[7] == 1.75f);
}

/* compressed-tensors' documented golden word, and 8-bit packing */
TEST(ct_packing_golden)
{
    const int v4[8] = {-8, -7, 0, 1, 2, 3, 7, -1};
    CHECK_EQ_U(zq_ct_pack(v4, 8, 4), 0x7FBA9810u);
    const int v8[4] = {-128, 0, 127, -1};
    CHECK_EQ_U(zq_ct_pack(v8, 4, 8), 0x7FFF8000u);
    const int tail[3] = {-8, 7, 0}; /* a row's last word: the rest stays zero */
    CHECK_EQ_U(zq_ct_pack(tail, 3, 4), 0x8F0u);
}

/* GGUF's row orders: every row lands once, and the reader's map is the
 * writer's inverse (rotate pairs per head; NeoX's q/k/v regrouped). */
TEST(gguf_row_orders_are_inverse_permutations)
{
    const zq_arch_tensor rope = {ZQ_PART_K, ZQ_T_ROPE_HALVES, "k", "k"}, qkv = {ZQ_PART_QKV, ZQ_T_QKV_PER_HEAD, "x", "x"};
    const zq_arch_tensor *cases[] = {&rope, &qkv};
    for (int c = 0; c < 2; c++) {
        zq_gguf_rows m;
        zq_error err = {0};
        uint64_t rows = c == 0 ? 4 * 8 : 3 * 4 * 6; /* k: 4 kv heads of 8; qkv: 4 heads of 6 */
        CHECK(zq_gguf_rows_init(&m, cases[c], rows, 4, 4, "t", "t", &err) == ZQ_OK);
        int seen[96] = {0};
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t s = zq_gguf_rows_source(&m, r);
            CHECK(s < rows && !seen[s]++);
            CHECK(zq_gguf_rows_target(&m, s) == r);
        }
    }
    zq_gguf_rows m; /* the documented pair: GGUF row 2i+j is HF row j*hd/2+i */
    zq_error err = {0};
    CHECK(zq_gguf_rows_init(&m, &rope, 8, 1, 1, "t", "t", &err) == ZQ_OK);
    CHECK(zq_gguf_rows_source(&m, 1) == 4 && zq_gguf_rows_source(&m, 2) == 1 && zq_gguf_rows_source(&m, 7) == 7);
    CHECK(zq_gguf_rows_init(&m, &rope, 10, 4, 4, "t", "t", &err) == ZQ_ERR_FORMAT); /* 4 heads do not split 10 rows */
}
