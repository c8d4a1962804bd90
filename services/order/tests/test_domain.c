/* The order service's pure rules: state machine, validation, totals, events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../order.h"
#include "common/banned.h"

static void test_state_machine(void **state)
{
    (void)state;
    /* every (from, to) pair: exactly these are legal */
    static const char *const legal[] = {"pending>paid", "paid>shipped", "shipped>delivered",
                                        "pending>cancelled", "paid>cancelled"};
    for (int f = 0; f < ST_COUNT; f++)
        for (int t = 0; t < ST_COUNT; t++) {
            char pair[32];
            snprintf(pair, sizeof pair, "%s>%s", status_name((enum order_status)f),
                     status_name((enum order_status)t));
            int expect = 0;
            for (size_t i = 0; i < sizeof legal / sizeof legal[0]; i++)
                if (strcmp(pair, legal[i]) == 0)
                    expect = 1;
            if (transition_allowed((enum order_status)f, (enum order_status)t) != expect)
                fail_msg("%s should be %s", pair, expect ? "legal" : "illegal");
        }
    assert_false(transition_allowed((enum order_status) - 1, ST_PAID));
    assert_false(transition_allowed(ST_PENDING, ST_COUNT));
    assert_int_equal(status_parse("shipped"), ST_SHIPPED);
    assert_int_equal(status_parse("Shipped"), -1);
    assert_int_equal(status_parse(""), -1);
    assert_int_equal(status_parse(NULL), -1);
    assert_true(may_request(1, ST_SHIPPED));
    assert_false(may_request(0, ST_SHIPPED));
    assert_false(may_request(0, ST_DELIVERED));
    assert_true(may_request(0, ST_CANCELLED));
    assert_false(may_request(0, ST_PAID));
    assert_true(may_request(1, ST_PAID));
}

static const char *GOOD =
    "{\"items\":[{\"product_id\":1,\"quantity\":2},{\"product_id\":7,\"quantity\":1000}],"
    "\"shipping_address\":{\"name\":\"Ada\",\"line1\":\"1 Main St\",\"city\":\"Berlin\","
    "\"postal_code\":\"10115\",\"country\":\"DE\"}}";

/* req borrows strings from the tree: keep it until req is done with. */
static cJSON *tree;

static int check(const char *json, struct order_request *req)
{
    cJSON_Delete(tree);
    tree = cJSON_Parse(json);
    char err[160];
    return validate_order_request(tree, req, err, sizeof err);
}

static void test_validation(void **state)
{
    (void)state;
    struct order_request req;
    assert_int_equal(check(GOOD, &req), 0);
    assert_int_equal(req.nitems, 2);
    assert_int_equal(req.items[1].quantity, 1000);
    assert_int_equal(check("{\"items\":[{\"product_id\":\"9007199254740993\",\"quantity\":1}],"
                           "\"shipping_address\":{\"name\":\"A\",\"line1\":\"l\",\"city\":\"c\","
                           "\"postal_code\":\"1\",\"country\":\"DE\"}}",
                           &req),
                     0);
    assert_int_equal(req.items[0].product_id, 9007199254740993LL);
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"items\":[],\"shipping_address\":{}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":0}],\"shipping_address\":{\"name\":\"A\","
        "\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":1001}],\"shipping_address\":{\"name\":\"A\","
        "\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":1.5,\"quantity\":1}],\"shipping_address\":{\"name\":\"A\","
        "\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":\"01\",\"quantity\":1}],\"shipping_address\":{\"name\":\"A\","
        "\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":1},{\"product_id\":1,\"quantity\":1}],"
        "\"shipping_address\":{\"name\":\"A\",\"line1\":\"l\",\"city\":\"c\",\"postal_code\":"
        "\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":1}],\"shipping_address\":{\"name\":\"A\","
        "\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"de\"}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":1}],\"shipping_address\":{\"name\":\"\","
        "\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":1}],\"shipping_address\":{"
        "\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":1,\"price\":\"1.00\"}],\"shipping_address\":"
        "{\"name\":\"A\",\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
        "{\"items\":[{\"product_id\":1,\"quantity\":1}],\"coupon\":\"x\",\"shipping_address\":"
        "{\"name\":\"A\",\"line1\":\"l\",\"city\":\"c\",\"postal_code\":\"1\",\"country\":\"DE\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (check(bad[i], &req) != -1)
            fail_msg("accepted: %s", bad[i]);
    cJSON_Delete(tree);
    tree = NULL;
}

static void test_fingerprint(void **state)
{
    (void)state;
    struct order_request a, b;
    char fa[FINGERPRINT_LEN + 1], fb[FINGERPRINT_LEN + 1];
    assert_int_equal(check(GOOD, &a), 0);
    assert_int_equal(request_fingerprint(&a, fa), 0);
    struct cm_buf addr;
    cm_buf_init(&addr, 4096);
    assert_int_equal(address_render(&addr, &a.address), 0);
    assert_string_equal(addr.data, "{\"name\":\"Ada\",\"line1\":\"1 Main St\",\"city\":"
                                   "\"Berlin\",\"postal_code\":\"10115\",\"country\":\"DE\"}");
    cm_buf_release(&addr);
    assert_int_equal(strlen(fa), FINGERPRINT_LEN);
    /* same content, other spacing and key order: same fingerprint */
    assert_int_equal(check("{ \"shipping_address\":{\"country\":\"DE\",\"postal_code\":\"10115\","
                           "\"city\":\"Berlin\",\"line1\":\"1 Main St\",\"name\":\"Ada\"},"
                           "\"items\":[{\"quantity\":2,\"product_id\":1},"
                           "{\"product_id\":7,\"quantity\":1000}]}",
                           &b),
                     0);
    assert_int_equal(request_fingerprint(&b, fb), 0);
    assert_string_equal(fa, fb);
    b.items[0].quantity = 3;
    assert_int_equal(request_fingerprint(&b, fb), 0);
    assert_string_not_equal(fa, fb);
    cJSON_Delete(tree);
    tree = NULL;
}

static void test_totals(void **state)
{
    (void)state;
    struct order_item items[3] = {{.quantity = 3, .unit_price_cents = 1999},
                                  {.quantity = 1, .unit_price_cents = 5},
                                  {.quantity = 1000, .unit_price_cents = 100000000}};
    int64_t total;
    assert_int_equal(order_totals(items, 3, &total), 0);
    assert_int_equal(items[0].line_total_cents, 5997);
    assert_int_equal(total, 5997 + 5 + 100000000000LL);
    struct order_item huge[2] = {{.quantity = 1000, .unit_price_cents = INT64_MAX / 999},
                                 {.quantity = 1, .unit_price_cents = 1}};
    assert_int_equal(order_totals(huge, 2, &total), -1);
    struct order_item sum_over[2] = {{.quantity = 1, .unit_price_cents = INT64_MAX - 1},
                                     {.quantity = 1, .unit_price_cents = 5}};
    assert_int_equal(order_totals(sum_over, 2, &total), -1);
}

static void test_event(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b, 4096);
    char id[37], ts[32];
    event_id_new(id);
    utc_now(ts);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[23], 'Z');
    assert_int_equal(
        event_render(&b, "e1", "2026-01-01T00:00:00.000Z", 42, "u\"1", -1, ST_PENDING, 2550), 0);
    assert_string_equal(b.data,
                        "{\"type\":\"shop_order.status_changed\",\"version\":1,\"id\":\"e1\","
                        "\"ts\":\"2026-01-01T00:00:00.000Z\",\"order_id\":\"42\",\"user_id\":"
                        "\"u\\\"1\",\"from\":null,\"to\":\"pending\",\"currency\":\"USD\","
                        "\"total\":\"25.50\"}");
    cm_buf_reset(&b);
    assert_int_equal(event_render(&b, "e2", "t", 42, "u", ST_PAID, ST_CANCELLED, 5), 0);
    assert_non_null(strstr(
        b.data, "\"from\":\"paid\",\"to\":\"cancelled\",\"currency\":\"USD\",\"total\":\"0.05\""));
    cm_buf_release(&b);
}

static void test_identity_checks(void **state)
{
    (void)state;
    assert_true(valid_user_id("42"));
    assert_true(valid_user_id("9223372036854775807"));
    assert_false(valid_user_id("user-7@example.com")); /* the gateway's ids are digits */
    assert_false(valid_user_id("042"));
    assert_false(valid_user_id("9223372036854775808"));
    assert_false(valid_user_id(""));
    assert_false(valid_user_id("a b"));
    assert_false(valid_user_id("a/b"));
    char long_id[80];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_false(valid_user_id(long_id));
    assert_true(valid_idempotency_key("3f2c-abc"));
    assert_false(valid_idempotency_key(""));
    assert_false(valid_idempotency_key("a b"));
    assert_false(valid_idempotency_key("a/b"));
    assert_true(valid_idempotency_key("order:2026-11-22_1.a"));
    char long_key[200];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_false(valid_idempotency_key(long_key));
    assert_true(has_role("user,admin", "admin"));
    assert_false(has_role("user", "admin"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_machine), cmocka_unit_test(test_validation),
        cmocka_unit_test(test_fingerprint),   cmocka_unit_test(test_totals),
        cmocka_unit_test(test_event),         cmocka_unit_test(test_identity_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
