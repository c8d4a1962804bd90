/* Tests for common/decimal.h: exact parsing, formatting, checked math. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/decimal.h"

#include "common/banned.h"

struct parse_case {
    const char *in;
    int scale;
    unsigned flags;
    int rc;
    int64_t want;
    const char *canon; /* formatted back; NULL: same as in */
};

#define NEG CM_DECIMAL_ALLOW_NEGATIVE

static const struct parse_case parse_cases[] = {
    /* accepted, round-trip exact */
    {"0.00150000", 8, 0, 0, 150000, NULL},
    {"1.00000000", 8, 0, 0, 100000000, NULL},
    {"0", 0, 0, 0, 0, NULL},
    {"0.00", 2, 0, 0, 0, NULL},
    {"12345.678901", 6, 0, 0, 12345678901LL, NULL},
    {"9223372036854775807", 0, 0, 0, INT64_MAX, NULL},
    {"9.223372036854775807", 18, 0, 0, INT64_MAX, NULL},
    {"0.000000000000000001", 18, 0, 0, 1, NULL},
    {"92233720368.54775807", 8, 0, 0, INT64_MAX, NULL},
    {"-1.50", 2, NEG, 0, -150, NULL},
    {"-9223372036854775807", 0, NEG, 0, -INT64_MAX, NULL},
    /* accepted, canonicalised */
    {"1.5", 2, 0, 0, 150, "1.50"},
    {"7", 2, 0, 0, 700, "7.00"},
    {"007.50", 2, 0, 0, 750, "7.50"},
    {"1.500", 2, 0, 0, 150, "1.50"},
    {"1.0", 0, 0, 0, 1, "1"},
    {"-0", 2, NEG, 0, 0, "0.00"},
    {"0000000000000000000000000000000000000001", 0, 0, 0, 1, "1"},
    /* syntax */
    {"", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"-", 2, NEG, CM_DECIMAL_EINVAL, 0, NULL},
    {".5", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1.", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1.2.3", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1e5", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1E-2", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"+1", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"+1", 2, NEG, CM_DECIMAL_EINVAL, 0, NULL},
    {" 1", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1 ", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1\n", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1,5", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"abc", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"0x10", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"NaN", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"inf", 2, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"--1", 2, NEG, CM_DECIMAL_EINVAL, 0, NULL},
    {"1-", 2, NEG, CM_DECIMAL_EINVAL, 0, NULL},
    {"1.-5", 2, NEG, CM_DECIMAL_EINVAL, 0, NULL},
    {"1", -1, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"1", 19, 0, CM_DECIMAL_EINVAL, 0, NULL},
    {"00000000000000000000000000000000000000000000000000000000000000001", 0, 0, CM_DECIMAL_EINVAL,
     0, NULL}, /* 65 chars: over the length cap */
    /* signs */
    {"-1", 2, 0, CM_DECIMAL_ENEGATIVE, 0, NULL},
    {"-0.01", 2, 0, CM_DECIMAL_ENEGATIVE, 0, NULL},
    /* too precise */
    {"1.505", 2, 0, CM_DECIMAL_EPRECISION, 0, NULL},
    {"0.000000001", 8, 0, CM_DECIMAL_EPRECISION, 0, NULL},
    {"1.1", 0, 0, CM_DECIMAL_EPRECISION, 0, NULL},
    {"1.0000001", 2, 0, CM_DECIMAL_EPRECISION, 0, NULL},
    /* overflow */
    {"9223372036854775808", 0, 0, CM_DECIMAL_ERANGE, 0, NULL},
    {"-9223372036854775808", 0, NEG, CM_DECIMAL_ERANGE, 0, NULL},
    {"92233720368.54775808", 8, 0, CM_DECIMAL_ERANGE, 0, NULL},
    {"10", 18, 0, CM_DECIMAL_ERANGE, 0, NULL},
    {"99999999999999999999999999999999", 0, 0, CM_DECIMAL_ERANGE, 0, NULL},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const struct parse_case *c = &parse_cases[i];
        int64_t v = 4242;
        int rc = cm_decimal_parse(c->in, c->scale, c->flags, &v);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\" scale %d: rc %d, want %d", i, c->in, c->scale, rc, c->rc);
        if (rc != 0) {
            assert_int_equal(v, 4242); /* untouched on error */
            continue;
        }
        if (v != c->want)
            fail_msg("case %zu \"%s\": got %lld want %lld", i, c->in, (long long)v,
                     (long long)c->want);
        char out[CM_DECIMAL_STR_MAX];
        int n = cm_decimal_format(v, c->scale, out, sizeof out);
        const char *canon = c->canon ? c->canon : c->in;
        assert_int_equal(n, (int)strlen(canon));
        assert_string_equal(out, canon);
        int64_t back;
        assert_int_equal(cm_decimal_parse(out, c->scale, c->flags, &back), 0);
        assert_int_equal(back, v);
    }
}

static void test_parse_n_and_nul(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(cm_decimal_parse_n("1.25xyz", 4, 2, 0, &v), 0);
    assert_int_equal(v, 125);
    assert_int_equal(cm_decimal_parse_n("1\0"
                                        "5",
                                        3, 2, 0, &v),
                     CM_DECIMAL_EINVAL);
    assert_int_equal(cm_decimal_parse(NULL, 2, 0, &v), CM_DECIMAL_EINVAL);
    assert_int_equal(cm_decimal_parse("1", 2, 0, NULL), CM_DECIMAL_EINVAL);
}

static void test_format(void **state)
{
    (void)state;
    char out[CM_DECIMAL_STR_MAX];
    assert_int_equal(cm_decimal_format(150000, 8, out, sizeof out), 10);
    assert_string_equal(out, "0.00150000");
    assert_true(cm_decimal_format(-5, 3, out, sizeof out) > 0);
    assert_string_equal(out, "-0.005");
    assert_true(cm_decimal_format(INT64_MIN, 18, out, sizeof out) > 0);
    assert_string_equal(out, "-9.223372036854775808");
    assert_true(cm_decimal_format(INT64_MAX, 0, out, sizeof out) > 0);
    assert_string_equal(out, "9223372036854775807");
    /* too small a buffer: exactly one byte short */
    assert_int_equal(cm_decimal_format(150000, 8, out, 10), -1);
    assert_int_equal(cm_decimal_format(150000, 8, out, 11), 10);
    assert_int_equal(cm_decimal_format(1, 19, out, sizeof out), -1);
    assert_int_equal(cm_decimal_format(1, -1, out, sizeof out), -1);

    struct cm_buf b;
    cm_buf_init(&b, 0);
    assert_int_equal(cm_decimal_append(&b, 123, 2), 0);
    assert_string_equal(b.data, "1.23");
    assert_int_equal(cm_decimal_append(&b, 1, 40), -1);
    cm_buf_release(&b);
}

static void test_from_json(void **state)
{
    (void)state;
    cJSON *doc = cJSON_Parse("{\"s\":\"0.00150000\",\"n\":0.0015,\"i\":1,\"b\":true,\"z\":null,"
                             "\"bad\":\"1e3\"}");
    assert_non_null(doc);
    int64_t v = 0;
    assert_int_equal(cm_decimal_from_json(cJSON_GetObjectItem(doc, "s"), 8, 0, &v), 0);
    assert_int_equal(v, 150000);
    assert_int_equal(cm_decimal_from_json(cJSON_GetObjectItem(doc, "n"), 8, 0, &v),
                     CM_DECIMAL_EINVAL);
    assert_int_equal(cm_decimal_from_json(cJSON_GetObjectItem(doc, "i"), 8, 0, &v),
                     CM_DECIMAL_EINVAL);
    assert_int_equal(cm_decimal_from_json(cJSON_GetObjectItem(doc, "b"), 8, 0, &v),
                     CM_DECIMAL_EINVAL);
    assert_int_equal(cm_decimal_from_json(cJSON_GetObjectItem(doc, "z"), 8, 0, &v),
                     CM_DECIMAL_EINVAL);
    assert_int_equal(cm_decimal_from_json(cJSON_GetObjectItem(doc, "bad"), 8, 0, &v),
                     CM_DECIMAL_EINVAL);
    assert_int_equal(cm_decimal_from_json(cJSON_GetObjectItem(doc, "missing"), 8, 0, &v),
                     CM_DECIMAL_EINVAL);
    cJSON_Delete(doc);
}

static void test_add_sub(void **state)
{
    (void)state;
    int64_t r = 7;
    assert_int_equal(cm_money_add(1, 2, &r), 0);
    assert_int_equal(r, 3);
    assert_int_equal(cm_money_add(INT64_MAX, 0, &r), 0);
    assert_int_equal(cm_money_add(INT64_MAX, 1, &r), -1);
    assert_int_equal(r, INT64_MAX);
    assert_int_equal(cm_money_add(-INT64_MAX, -1, &r), -1); /* INT64_MIN refused */
    assert_int_equal(cm_money_sub(5, 7, &r), 0);
    assert_int_equal(r, -2);
    assert_int_equal(cm_money_sub(-INT64_MAX, 1, &r), -1);
    assert_int_equal(cm_money_sub(INT64_MAX, -1, &r), -1);
}

struct muldiv_case {
    int64_t a, b, c;
    enum cm_money_round mode;
    int rc;
    int64_t want;
};

static const struct muldiv_case muldiv_cases[] = {
    /* 0.5 BTC (scale 8) * 30000.00 USDT (scale 2) / 1e8 -> 15000.00 */
    {50000000, 3000000, 100000000, CM_ROUND_DOWN, 0, 1500000},
    {7, 1, 2, CM_ROUND_DOWN, 0, 3},
    {7, 1, 2, CM_ROUND_UP, 0, 4},
    {7, 1, 2, CM_ROUND_HALF_EVEN, 0, 4},  /* 3.5 -> 4 */
    {5, 1, 2, CM_ROUND_HALF_EVEN, 0, 2},  /* 2.5 -> 2 */
    {11, 1, 4, CM_ROUND_HALF_EVEN, 0, 3}, /* 2.75 -> 3 */
    {9, 1, 4, CM_ROUND_HALF_EVEN, 0, 2},  /* 2.25 -> 2 */
    {-7, 1, 2, CM_ROUND_DOWN, 0, -3},
    {-7, 1, 2, CM_ROUND_UP, 0, -4},
    {-5, 1, 2, CM_ROUND_HALF_EVEN, 0, -2},
    {7, 1, -2, CM_ROUND_UP, 0, -4},
    {6, 1, 2, CM_ROUND_UP, 0, 3},
    {INT64_MAX, INT64_MAX, INT64_MAX, CM_ROUND_DOWN, 0, INT64_MAX},
    {INT64_MAX, 2, 1, CM_ROUND_DOWN, -1, 0},
    {INT64_MAX, 3, 2, CM_ROUND_DOWN, -1, 0},
    {1, 1, 0, CM_ROUND_DOWN, -1, 0},
    {1, 1, 1, (enum cm_money_round)99, -1, 0},
    {INT64_MIN, 1, 1, CM_ROUND_DOWN, -1, 0},
};

static void test_mul_div_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof muldiv_cases / sizeof muldiv_cases[0]; i++) {
        const struct muldiv_case *c = &muldiv_cases[i];
        int64_t r = 4242;
        int rc = cm_money_mul_div(c->a, c->b, c->c, c->mode, &r);
        if (rc != c->rc)
            fail_msg("mul_div case %zu: rc %d want %d", i, rc, c->rc);
        if (rc == 0 && r != c->want)
            fail_msg("mul_div case %zu: got %lld want %lld", i, (long long)r, (long long)c->want);
        if (rc != 0)
            assert_int_equal(r, 4242);
    }
}

static void test_pow10(void **state)
{
    (void)state;
    assert_int_equal(cm_decimal_pow10(0), 1);
    assert_int_equal(cm_decimal_pow10(8), 100000000);
    assert_int_equal(cm_decimal_pow10(18), 1000000000000000000LL);
    assert_int_equal(cm_decimal_pow10(19), -1);
    assert_int_equal(cm_decimal_pow10(-1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table), cmocka_unit_test(test_parse_n_and_nul),
        cmocka_unit_test(test_format),      cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_add_sub),     cmocka_unit_test(test_mul_div_table),
        cmocka_unit_test(test_pow10),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
