/* Unit tests of the wallet's pure rules (domain.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../wallet.h"
#include "common/banned.h"

struct wallet_config wallet_cfg;

static void test_ids(void **state)
{
    (void)state;
    assert_true(valid_user_id("1"));
    assert_true(valid_user_id("12345678901234567890"));
    assert_false(valid_user_id("0"));
    assert_false(valid_user_id("01"));
    assert_false(valid_user_id("123456789012345678901"));
    assert_false(valid_user_id("1a"));
    assert_false(valid_user_id(""));
    assert_false(valid_user_id(NULL));
    assert_true(valid_opaque_id("wd_1"));
    assert_true(valid_opaque_id("BTC-USDT:42"));
    assert_false(valid_opaque_id("_x"));
    assert_false(valid_opaque_id("a b"));
    assert_false(valid_opaque_id("a\"b"));
    assert_true(valid_idempotency_key("k-1"));
    assert_false(valid_idempotency_key("has space"));
    assert_false(valid_idempotency_key(""));
    assert_true(
        valid_tx_hash("0xabababababababababababababababababababababababababababababababab"));
    assert_false(
        valid_tx_hash("0xABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"));
    assert_false(valid_tx_hash("0xab"));
}

static void test_addresses(void **state)
{
    (void)state;
    const struct wallet_asset *btc = asset_find("BTC"), *eth = asset_find("ETH"),
                              *usdt = asset_find("USDT");
    assert_non_null(btc);
    assert_null(asset_find("DOGE"));
    assert_true(valid_address(btc, "tb1qexampleaddress0001"));
    assert_true(valid_address(btc, "bc1qxyz00000"));
    assert_false(valid_address(btc, "tb1QUPPER0000"));
    assert_false(valid_address(btc, "xx1qexampleaddress"));
    assert_false(valid_address(btc, "tb1q"));
    assert_true(valid_address(eth, "0x52908400098527886E0F7030069857D2E4169EE7"));
    assert_true(valid_address(usdt, "0x52908400098527886e0f7030069857d2e4169ee7"));
    assert_false(valid_address(eth, "0x52908400098527886E0F7030069857D2E4169EE"));
    assert_false(valid_address(eth, "tb1qexampleaddress0001"));
    assert_false(valid_address(eth, "0xZZ908400098527886E0F7030069857D2E4169EE7"));
}

static void test_amounts(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int ok;
        int64_t v;
    } cases[] = {
        {"\"1\"", 1, 100000000},
        {"\"0.00000001\"", 1, 1},
        {"\"1.50000000\"", 1, 150000000},
        {"\"0\"", 0, 0},
        {"\"-1\"", 0, 0},
        {"\"0.000000001\"", 0, 0},
        {"\"1e3\"", 0, 0},
        {"1", 0, 0},
        {"\"abc\"", 0, 0},
        {"\"99999999999999999999\"", 0, 0},
        {"\" 1\"", 0, 0},
        {"null", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        int64_t v = 0;
        char err[96];
        int rc = amount_from_json(j, 8, &v, err, sizeof err);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(v, cases[i].v);
        } else {
            assert_int_equal(rc, -1);
            assert_true(strlen(err) > 0);
        }
        cJSON_Delete(j);
    }
    char err[96];
    assert_int_equal(amount_from_json(NULL, 8, &(int64_t){0}, err, sizeof err), -1);
    /* the cap: 10^15 minor units */
    cJSON *max = cJSON_CreateString("10000000"), *over = cJSON_CreateString("10000000.00000001");
    int64_t v;
    assert_int_equal(amount_from_json(max, 8, &v, err, sizeof err), 0);
    assert_int_equal(v, WALLET_AMOUNT_MAX);
    assert_int_equal(amount_from_json(over, 8, &v, err, sizeof err), -1);
    cJSON_Delete(max);
    cJSON_Delete(over);
}

static void test_fees(void **state)
{
    (void)state;
    int64_t f;
    assert_int_equal(fee_of(10000, 10, &f), 0);
    assert_int_equal(f, 10);
    assert_int_equal(fee_of(10001, 10, &f), 0);
    assert_int_equal(f, 11); /* rounded up: the exchange's favour */
    assert_int_equal(fee_of(1, 1, &f), 0);
    assert_int_equal(f, 1);
    assert_int_equal(fee_of(0, 10, &f), 0);
    assert_int_equal(f, 0);
    assert_int_equal(fee_of(100, 0, &f), 0);
    assert_int_equal(f, 0);
    assert_int_equal(fee_of(100, -1, &f), -1);
    assert_int_equal(fee_of(100, 10001, &f), -1);
    assert_int_equal(fee_of(INT64_MAX, 10000, &f), 0);
    assert_int_equal(f, INT64_MAX);
}

static const char TRADE[] =
    "{\"type\":\"trade\",\"version\":1,\"id\":\"BTC-USDT:3\",\"ts\":\"2026-11-21T12:00:00."
    "123456Z\","
    "\"market\":\"BTC-USDT\",\"seq\":3,\"price\":\"30000.000000\",\"quantity\":\"0.00100000\","
    "\"quote_amount\":\"30.000000\",\"taker_side\":\"sell\",\"taker_order_id\":\"1004\","
    "\"taker_user_id\":\"43\",\"maker_order_id\":\"1001\",\"maker_user_id\":\"42\"}";

static void test_trade(void **state)
{
    (void)state;
    struct trade t;
    char err[128];
    assert_int_equal(trade_parse(TRADE, strlen(TRADE), &t, err, sizeof err), 0);
    assert_string_equal(t.id, "BTC-USDT:3");
    assert_int_equal(t.quantity, 100000);
    assert_int_equal(t.quote_amount, 30000000);
    assert_false(t.taker_buys);
    assert_string_equal(trade_buyer(&t), "42");
    assert_string_equal(trade_seller(&t), "43");
    assert_string_equal(trade_buyer_order(&t), "1001");
    assert_string_equal(trade_seller_order(&t), "1004");
    assert_int_equal(t.ts_ms, 1795262400123LL);

    struct leg legs[TRADE_MAX_LEGS];
    int64_t bu, su;
    int n = trade_legs(&t, 10, 20, legs, &bu, &su);
    assert_true(n >= 4);
    int64_t sum_btc = 0, sum_usdt = 0;
    for (int i = 0; i < n; i++) {
        assert_true(legs[i].amount != 0);
        if (strcmp(legs[i].asset, "BTC") == 0)
            sum_btc += legs[i].amount;
        else
            sum_usdt += legs[i].amount;
    }
    assert_int_equal(sum_btc, 0);
    assert_int_equal(sum_usdt, 0);
    assert_int_equal(bu, 30000000);
    assert_int_equal(su, 100000);
    /* buyer 42 is the maker (10 bps of 0.001 BTC = 100 sat), seller 43 the
     * taker (20 bps of 30 USDT = 0.06 USDT). */
    int found = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(legs[i].owner, "sys:fees") == 0 && strcmp(legs[i].asset, "BTC") == 0) {
            assert_int_equal(legs[i].amount, 100);
            found++;
        }
        if (strcmp(legs[i].owner, "sys:fees") == 0 && strcmp(legs[i].asset, "USDT") == 0) {
            assert_int_equal(legs[i].amount, 60000);
            found++;
        }
    }
    assert_int_equal(found, 2);

    /* a dust fill: quote_amount 0 is a valid trade */
    const char *dust =
        "{\"type\":\"trade\",\"id\":\"BTC-USDT:4\",\"market\":\"BTC-USDT\",\"seq\":4,"
        "\"quantity\":\"0.00000001\",\"quote_amount\":\"0.000000\",\"taker_side\":\"buy\","
        "\"taker_order_id\":\"1\",\"taker_user_id\":\"1\",\"maker_order_id\":\"2\","
        "\"maker_user_id\":\"2\"}";
    assert_int_equal(trade_parse(dust, strlen(dust), &t, err, sizeof err), 0);
    assert_int_equal(t.quote_amount, 0);
    n = trade_legs(&t, 10, 20, legs, &bu, &su);
    for (int i = 0; i < n; i++)
        assert_true(legs[i].amount != 0);

    static const char *const bad[] = {
        "{}",
        "not json",
        "{\"type\":\"trade\",\"id\":\"X:1\",\"market\":\"DOGE-USDT\",\"seq\":1}",
        "{\"type\":\"trade\",\"version\":1,\"id\":\"BTC-USDT:3\",\"market\":\"BTC-USDT\",\"seq\":3,"
        "\"quantity\":0.001,\"quote_amount\":\"30.000000\",\"taker_side\":\"sell\","
        "\"taker_order_id\":\"1004\",\"taker_user_id\":\"43\",\"maker_order_id\":\"1001\","
        "\"maker_user_id\":\"42\"}",
        "{\"type\":\"trade\",\"version\":1,\"id\":\"BTC-USDT:3\",\"market\":\"BTC-USDT\",\"seq\":3,"
        "\"quantity\":\"0.001\",\"quote_amount\":\"30.000000\",\"taker_side\":\"up\","
        "\"taker_order_id\":\"1004\",\"taker_user_id\":\"43\",\"maker_order_id\":\"1001\","
        "\"maker_user_id\":\"42\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(trade_parse(bad[i], strlen(bad[i]), &t, err, sizeof err), -1);
}

static void test_order_events(void **state)
{
    (void)state;
    struct order_event e;
    char err[128];
    const char *cancelled =
        "{\"type\":\"order.cancelled\",\"version\":1,\"id\":\"BTC-USDT:6\",\"market\":\"BTC-USDT\","
        "\"seq\":6,\"order_id\":\"1001\",\"user_id\":\"42\",\"side\":\"buy\","
        "\"filled_quantity\":\"0.00100000\",\"filled_quote\":\"30.000000\","
        "\"remaining_quantity\":\"0.00050000\",\"reason\":\"user_cancel\"}";
    assert_int_equal(order_event_parse(cancelled, strlen(cancelled), &e, err, sizeof err), 0);
    assert_true(e.relevant);
    assert_string_equal(e.end_reason, "order_cancelled");
    assert_int_equal(e.expected, 30000000);
    assert_string_equal(e.order_id, "1001");

    const char *filled_sell =
        "{\"type\":\"order.filled\",\"id\":\"BTC-USDT:5\",\"market\":\"BTC-USDT\",\"order_id\":"
        "\"1004\","
        "\"side\":\"sell\",\"filled_quantity\":\"0.00100000\",\"filled_quote\":\"30.000000\"}";
    assert_int_equal(order_event_parse(filled_sell, strlen(filled_sell), &e, err, sizeof err), 0);
    assert_int_equal(e.expected, 100000);
    assert_string_equal(e.end_reason, "order_filled");

    const char *accepted =
        "{\"type\":\"order.accepted\",\"id\":\"BTC-USDT:1\",\"order_id\":\"1001\"}";
    assert_int_equal(order_event_parse(accepted, strlen(accepted), &e, err, sizeof err), 0);
    assert_true(e.relevant);
    assert_null(e.end_reason);

    const char *rej_cancel =
        "{\"type\":\"order.rejected\",\"id\":\"BTC-USDT:9\",\"command\":\"cancel\","
        "\"order_id\":\"1001\"}";
    assert_int_equal(order_event_parse(rej_cancel, strlen(rej_cancel), &e, err, sizeof err), 0);
    assert_false(e.relevant);

    const char *rej_place =
        "{\"type\":\"order.rejected\",\"id\":\"BTC-USDT:2\",\"command\":\"place\","
        "\"order_id\":\"1002\"}";
    assert_int_equal(order_event_parse(rej_place, strlen(rej_place), &e, err, sizeof err), 0);
    assert_true(e.relevant);
    assert_int_equal(e.expected, 0);
    assert_string_equal(e.end_reason, "order_rejected");

    const char *bad_fill = "{\"type\":\"order.filled\",\"id\":\"BTC-USDT:5\",\"market\":\"BTC-"
                           "USDT\",\"order_id\":\"1004\","
                           "\"side\":\"sell\",\"filled_quantity\":0.001}";
    assert_int_equal(order_event_parse(bad_fill, strlen(bad_fill), &e, err, sizeof err), -1);
    assert_int_equal(order_event_parse("[]", 2, &e, err, sizeof err), -1);
}

static void test_ts(void **state)
{
    (void)state;
    assert_int_equal(parse_ts_ms("1970-01-01T00:00:01Z"), 1000);
    assert_int_equal(parse_ts_ms("1970-01-01T00:00:01.5Z"), 1500);
    assert_int_equal(parse_ts_ms("1970-01-01T00:00:01+01:00"), -1);
    assert_int_equal(parse_ts_ms(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),     cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_amounts), cmocka_unit_test(test_fees),
        cmocka_unit_test(test_trade),   cmocka_unit_test(test_order_events),
        cmocka_unit_test(test_ts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
