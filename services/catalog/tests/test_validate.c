/* Catalog input validation: every bad-input path has a case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../catalog.h"
#include "common/banned.h"

static int product(const char *json, int partial, struct product_input *in)
{
    cJSON *body = cJSON_Parse(json);
    char err[160];
    int rc = validate_product(body, partial, in, err, sizeof err);
    cJSON_Delete(body);
    return rc;
}

static void test_product_ok(void **state)
{
    (void)state;
    struct product_input in;
    assert_int_equal(
        product("{\"name\":\"Mug\",\"price\":\"12.50\",\"stock\":3,\"category_id\":2}", 0, &in), 0);
    assert_int_equal(in.price_cents, 1250);
    assert_int_equal(in.stock, 3);
    assert_int_equal(in.category_id, 2);
    assert_string_equal(in.description, "");
    assert_int_equal(product("{\"name\":\"Mug\",\"price\":\"0.5\"}", 0, &in), 0);
    assert_int_equal(in.price_cents, 50);
    assert_int_equal(in.stock, 0);
    assert_int_equal(product("{\"name\":\"Mug\",\"price\":\"1.00\",\"currency\":\"USD\","
                             "\"category_id\":\"9007199254740993\"}",
                             0, &in),
                     0);
    assert_int_equal(in.category_id, 9007199254740993LL); /* exact past 2^53 as a string */
    assert_int_equal(product("{\"price\":\"1000000.00\"}", 1, &in), 0);
    assert_int_equal(in.has, PF_PRICE);
    assert_int_equal(product("{\"category_id\":null}", 1, &in), 0);
    assert_int_equal(in.has, PF_CATEGORY);
    assert_int_equal(in.category_id, 0);
    /* 200 characters of 2-byte UTF-8 is fine */
    char big[1024] = "{\"name\":\"";
    for (int i = 0; i < 200; i++)
        memcpy(big + strlen(big), "\xc3\xa9", 3);
    memcpy(big + strlen(big), "\"}", 3);
    assert_int_equal(product(big, 1, &in), 0);
}

static void test_product_bad(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "[]",
        "{}",
        "{\"name\":\"Mug\"}",                      /* price required */
        "{\"price\":\"1.00\"}",                    /* name required */
        "{\"name\":\"\",\"price\":\"1.00\"}",      /* empty name */
        "{\"name\":\"Mug\",\"price\":12.5}",       /* JSON number for money */
        "{\"name\":\"Mug\",\"price\":\"12.505\"}", /* too precise */
        "{\"name\":\"Mug\",\"price\":\"-1.00\"}",  /* negative */
        "{\"name\":\"Mug\",\"price\":\"1e3\"}",    /* exponent */
        "{\"name\":\"Mug\",\"price\":\"1000000.01\"}",
        "{\"name\":\"Mug\",\"price\":\"\"}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"stock\":-1}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"stock\":1.5}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"stock\":\"3\"}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"stock\":1000001}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"category_id\":0}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"category_id\":\"0\"}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"category_id\":\"2x\"}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"category_id\":\"02\"}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"category_id\":true}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"currency\":\"EUR\"}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"currency\":1}",
        "{\"name\":\"Mug\",\"price\":\"1.00\",\"prise\":\"1.00\"}", /* unknown field */
        "{\"name\":7,\"price\":\"1.00\"}",
        "{\"name\":\"a\\u0001b\",\"price\":\"1.00\"}", /* control character */
        "{\"name\":\"\xff\",\"price\":\"1.00\"}",      /* invalid UTF-8 */
    };
    struct product_input in;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (product(cases[i], 0, &in) != -1)
            fail_msg("accepted: %s", cases[i]);
    }
    assert_int_equal(product("{}", 1, &in), -1); /* nothing to update */
    char big[512] = "{\"name\":\"";
    for (int i = 0; i < 201; i++)
        big[strlen(big)] = 'x';
    memcpy(big + strlen(big), "\",\"price\":\"1.00\"}", 18);
    assert_int_equal(product(big, 0, &in), -1);
}

static void test_category(void **state)
{
    (void)state;
    struct category_input in;
    char err[160];
    cJSON *ok = cJSON_Parse("{\"name\":\"Kitchen\",\"parent_id\":3}");
    assert_int_equal(validate_category(ok, &in, err, sizeof err), 0);
    assert_int_equal(in.parent_id, 3);
    cJSON_Delete(ok);
    static const char *const bad[] = {"{}", "{\"name\":\"\"}", "{\"name\":\"a\",\"parent_id\":-1}",
                                      "{\"name\":\"a\",\"x\":1}", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *b = cJSON_Parse(bad[i]);
        if (validate_category(b, &in, err, sizeof err) != -1)
            fail_msg("accepted: %s", bad[i]);
        cJSON_Delete(b);
    }
}

static void test_reserve(void **state)
{
    (void)state;
    struct reserve_input in;
    char err[160];
    cJSON *ok = cJSON_Parse("{\"order_id\":\"9\",\"items\":[{\"product_id\":\"1\",\"quantity\":2},"
                            "{\"product_id\":5,\"quantity\":1000}]}");
    assert_int_equal(validate_reserve(ok, &in, err, sizeof err), 0);
    assert_int_equal(in.order_id, 9);
    assert_int_equal(in.nitems, 2);
    assert_int_equal(in.items[1].quantity, 1000);
    cJSON_Delete(ok);
    static const char *const bad[] = {
        "{\"items\":[{\"product_id\":1,\"quantity\":1}]}",
        "{\"order_id\":1,\"items\":[]}",
        "{\"order_id\":1,\"items\":[{\"product_id\":1,\"quantity\":0}]}",
        "{\"order_id\":1,\"items\":[{\"product_id\":1,\"quantity\":1001}]}",
        "{\"order_id\":1,\"items\":[{\"product_id\":0,\"quantity\":1}]}",
        "{\"order_id\":1,\"items\":[{\"product_id\":1,\"quantity\":1},"
        "{\"product_id\":1,\"quantity\":1}]}",
        "{\"order_id\":\"x1\",\"items\":[{\"product_id\":1,\"quantity\":1}]}",
        "{\"order_id\":1,\"items\":[{\"product_id\":\"0\",\"quantity\":1}]}",
        "{\"order_id\":1,\"items\":[{\"product_id\":\"1\",\"quantity\":\"1\"}]}",
        "{\"order_id\":1,\"items\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *b = cJSON_Parse(bad[i]);
        if (validate_reserve(b, &in, err, sizeof err) != -1)
            fail_msg("accepted: %s", bad[i]);
        cJSON_Delete(b);
    }
    int64_t oid;
    cJSON *rel = cJSON_Parse("{\"order_id\":4}");
    assert_int_equal(validate_release(rel, &oid, err, sizeof err), 0);
    assert_int_equal(oid, 4);
    cJSON_Delete(rel);
    rel = cJSON_Parse("{\"order_id\":4,\"x\":1}");
    assert_int_equal(validate_release(rel, &oid, err, sizeof err), -1);
    cJSON_Delete(rel);
}

static void test_parse_id(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(parse_id("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_id("9223372036854775807", &v), 0);
    assert_int_equal(parse_id("9223372036854775808", &v), -1);
    assert_int_equal(parse_id("0", &v), -1);
    assert_int_equal(parse_id("", &v), -1);
    assert_int_equal(parse_id(NULL, &v), -1);
    assert_int_equal(parse_id("-1", &v), -1);
    assert_int_equal(parse_id("+1", &v), -1);
    assert_int_equal(parse_id("01", &v), -1);
    assert_int_equal(parse_id("1a", &v), -1);
    assert_int_equal(parse_id(" 1", &v), -1);
}

static void test_like_pattern(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(like_pattern("mug", out, sizeof out), 0);
    assert_string_equal(out, "%mug%");
    assert_int_equal(like_pattern("50%_off\\", out, sizeof out), 0);
    assert_string_equal(out, "%50\\%\\_off\\\\%");
    assert_int_equal(like_pattern("abcdef", out, 6), -1);
}

static void test_roles_and_utf8(void **state)
{
    (void)state;
    assert_true(has_role("admin", "admin"));
    assert_true(has_role("user, admin", "admin"));
    assert_false(has_role("administrator", "admin"));
    assert_false(has_role("", "admin"));
    assert_false(has_role("user,adm", "admin"));
    assert_int_equal(cm_utf8_chars("h\xc3\xa9llo"), 5);
    assert_int_equal(cm_utf8_chars("\xc0\xaf"), -1);        /* overlong */
    assert_int_equal(cm_utf8_chars("\xed\xa0\x80"), -1);    /* surrogate */
    assert_int_equal(cm_utf8_chars("\xf0\x9f\x98\x80"), 1); /* emoji */
    assert_int_equal(cm_utf8_chars("a\tb"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_product_ok),     cmocka_unit_test(test_product_bad),
        cmocka_unit_test(test_category),       cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_parse_id),       cmocka_unit_test(test_like_pattern),
        cmocka_unit_test(test_roles_and_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
