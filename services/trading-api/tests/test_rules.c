/* Unit tests of rules.c: markets.json, order validation (every field and
 * market rule), decimal edge cases, hold amounts, average price, candle
 * bucketing, timestamps and ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../trading.h"
#include "common/banned.h"

/* rules.c needs these process-wide tables only through its callers. */
struct market trading_markets[MAX_MARKETS];
size_t trading_nmarkets;

static struct market ms[MAX_MARKETS];
static size_t nms;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    char *json = slurp("services/trading-api/markets.json");
    if (!json)
        json = slurp("../markets.json");
    assert_non_null(json);
    char err[128];
    int n = markets_parse(json, ms, MAX_MARKETS, err, sizeof err);
    free(json);
    assert_true(n >= 2);
    nms = (size_t)n;
    return 0;
}

static void test_markets_file(void **state)
{
    (void)state;
    const struct market *b = market_find(ms, nms, "BTC-USDT");
    assert_non_null(b);
    assert_string_equal(b->base, "BTC");
    assert_string_equal(b->quote, "USDT");
    assert_int_equal(b->base_scale, 8);
    assert_int_equal(b->quote_scale, 6);
    assert_int_equal(b->tick, 10000);
    assert_int_equal(b->lot, 1000);
    assert_int_equal(b->min_qty, 1000);
    assert_int_equal(b->max_qty, 10000000000LL);
    assert_int_equal(b->min_price, 10000);
    assert_int_equal(b->max_price, 10000000000000LL);
    assert_int_equal(b->band_bps, 1000);
    assert_true(b->trading);
    assert_non_null(market_find(ms, nms, "ETH-USDT"));
    assert_null(market_find(ms, nms, "DOGE-USDT"));
    assert_null(market_find(ms, nms, NULL));
    char err[128];
    struct market one[1];
    assert_int_equal(markets_parse("{}", one, 1, err, sizeof err), -1);
    assert_int_equal(markets_parse("{\"markets\":[{\"symbol\":\"X-Y\"}]}", one, 1, err, sizeof err),
                     -1);
    /* Round trip through the API shape. */
    cJSON *j = market_json(b);
    char *s = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(s, "\"tick_size\":\"0.010000\""));
    assert_non_null(strstr(s, "\"lot_size\":\"0.00001000\""));
    assert_non_null(strstr(s, "\"max_price\":\"10000000.000000\""));
    free(s);
    cJSON_Delete(j);
}

struct vcase {
    const char *body;
    int status; /* 0 = valid */
    const char *field, *problem;
};

static const struct vcase cases[] = {
    /* valid shapes */
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"30000.00\","
     "\"quantity\":\"0.0015\",\"client_order_id\":\"a\"}",
     0, NULL, NULL},
    {"{\"market\":\"BTC-USDT\",\"side\":\"sell\",\"type\":\"market\",\"quantity\":\"0.001\","
     "\"time_in_force\":\"FOK\",\"client_order_id\":\"a\"}",
     0, NULL, NULL},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"quote_amount\":\"100\","
     "\"client_order_id\":\"a\"}",
     0, NULL, NULL},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1.00\","
     "\"quantity\":\"1\",\"post_only\":true,\"stp\":\"cancel_both\",\"client_order_id\":"
     "\"x--DROP.TABLE:orders\"}",
     0, NULL, NULL},
    /* body and fields */
    {"[]", 400, "", "body must be a JSON object"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\",\"extra\":1}",
     400, "extra", "unknown field"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\",\"quantity\":"
     "\"1\"}",
     400, "client_order_id", "required"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":7}",
     400, "client_order_id", "must be a string"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":\"'; DROP TABLE orders;--\"}",
     422, "client_order_id", "must be 1-64 of [A-Za-z0-9._:-]"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":\"\"}",
     422, "client_order_id", "must be 1-64 of [A-Za-z0-9._:-]"},
    {"{\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\",\"quantity\":\"1\",\"client_order_id\":"
     "\"a\"}",
     400, "market", "required"},
    {"{\"market\":\"DOGE-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "market", "unknown_market"},
    {"{\"market\":\"BTC-USDT\",\"type\":\"limit\",\"price\":\"1\",\"quantity\":\"1\","
     "\"client_order_id\":\"a\"}",
     400, "side", "required"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"hold\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "side", "unknown_value"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"stop\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "type", "unknown_value"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"time_in_force\":\"GTD\",\"client_order_id\":\"a\"}",
     422, "time_in_force", "unknown_value"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"post_only\":\"yes\",\"client_order_id\":\"a\"}",
     400, "post_only", "must be a boolean"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"stp\":\"maybe\",\"client_order_id\":\"a\"}",
     422, "stp", "unknown_value"},
    /* decimals */
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":30000,"
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     400, "price", "must be a decimal string"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1.0000001\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "price", "too_precise"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1e3\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "price", "invalid_decimal"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"-1\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "price", "negative"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"0\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "price", "must_be_positive"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":"
     "\"99999999999999999999\",\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "price", "too_large"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"0.000000001\",\"client_order_id\":\"a\"}",
     422, "quantity", "too_precise"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"quote_amount\":\" 1\","
     "\"client_order_id\":\"a\"}",
     422, "quote_amount", "invalid_decimal"},
    /* shapes */
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"quantity\":\"1\","
     "\"client_order_id\":\"a\"}",
     400, "price", "required for limit orders"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"client_order_id\":\"a\"}",
     400, "quantity", "required for limit orders"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"quote_amount\":\"1\",\"client_order_id\":\"a\"}",
     400, "quote_amount", "not allowed on limit orders"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"price\":\"1\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     400, "price", "not allowed on market orders"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"quantity\":\"1\","
     "\"quote_amount\":\"1\",\"client_order_id\":\"a\"}",
     400, "quote_amount", "market orders take exactly one of quantity and quote_amount"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"client_order_id\":\"a\"}",
     400, "quantity", "market orders take exactly one of quantity and quote_amount"},
    /* combinations */
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"1\",\"time_in_force\":\"IOC\",\"post_only\":true,\"client_order_id\":\"a\"}",
     422, "post_only", "only_with_limit_gtc"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"quantity\":\"1\","
     "\"time_in_force\":\"GTC\",\"client_order_id\":\"a\"}",
     422, "time_in_force", "market_orders_are_ioc_or_fok"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\",\"quote_amount\":\"1\","
     "\"time_in_force\":\"FOK\",\"client_order_id\":\"a\"}",
     422, "time_in_force", "quote_budget_orders_are_ioc"},
    /* market rules */
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"30000.005\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "price", "not_multiple_of_tick"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"10000000.01\","
     "\"quantity\":\"1\",\"client_order_id\":\"a\"}",
     422, "price", "above_max_price"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"0.000015\",\"client_order_id\":\"a\"}",
     422, "quantity", "not_multiple_of_lot"},
    {"{\"market\":\"ETH-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"0.00001\",\"client_order_id\":\"a\"}",
     422, "quantity", "not_multiple_of_lot"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"1\","
     "\"quantity\":\"100.00001\",\"client_order_id\":\"a\"}",
     422, "quantity", "above_max_quantity"},
    {"{\"market\":\"BTC-USDT\",\"side\":\"sell\",\"type\":\"market\",\"quote_amount\":"
     "\"9000000000000\",\"client_order_id\":\"a\"}",
     422, "quote_amount", "overflow"},
};

static void test_validation_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct vcase *c = &cases[i];
        cJSON *b = cJSON_Parse(c->body);
        assert_non_null(b);
        struct order_req o;
        struct vproblem p;
        int rc = order_validate(b, ms, nms, &o, &p);
        if (c->status == 0 && rc != 0)
            fail_msg("case %zu: expected valid, got %d %s %s", i, p.status, p.field, p.problem);
        if (c->status != 0) {
            if (rc == 0)
                fail_msg("case %zu: expected %d %s", i, c->status, c->problem);
            if (p.status != c->status || strcmp(p.field, c->field) != 0 ||
                strcmp(p.problem, c->problem) != 0)
                fail_msg("case %zu: got %d %s %s, want %d %s %s", i, p.status, p.field, p.problem,
                         c->status, c->field, c->problem);
            assert_string_equal(p.code, c->status == 400 ? "invalid_request" : "validation_failed");
        }
        cJSON_Delete(b);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    struct order_req o;
    struct vproblem p;
    cJSON *b = cJSON_Parse("{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"market\","
                           "\"quote_amount\":\"100.5\",\"client_order_id\":\"k\"}");
    assert_int_equal(order_validate(b, ms, nms, &o, &p), 0);
    assert_int_equal(o.tif, TIF_IOC);
    assert_int_equal(o.quote, 100500000);
    assert_false(o.post_only);
    assert_null(o.stp);
    cJSON_Delete(b);
    b = cJSON_Parse("{\"market\":\"BTC-USDT\",\"side\":\"sell\",\"type\":\"limit\",\"price\":"
                    "\"007.50\",\"quantity\":\"0.00150000\",\"client_order_id\":\"k\"}");
    assert_int_equal(order_validate(b, ms, nms, &o, &p), 0);
    assert_int_equal(o.tif, TIF_GTC);
    assert_int_equal(o.price, 7500000);
    assert_int_equal(o.qty, 150000);
    cJSON_Delete(b);
}

static struct order_req req(const char *market, int side, int type, int64_t price, int64_t qty,
                            int64_t quote)
{
    struct order_req o = {.m = market_find(ms, nms, market), .side = side, .type = type};
    o.has_price = price > 0, o.price = price;
    o.has_qty = qty > 0, o.qty = qty;
    o.has_quote = quote > 0, o.quote = quote;
    return o;
}

static void test_hold_amounts(void **state)
{
    (void)state;
    const char *asset;
    int scale;
    int64_t amount;
    /* buy limit 0.0015 BTC at 30000 USDT = 45 USDT */
    struct order_req o = req("BTC-USDT", SIDE_BUY, OT_LIMIT, 30000000000LL, 150000, 0);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), 0);
    assert_string_equal(asset, "USDT");
    assert_int_equal(scale, 6);
    assert_int_equal(amount, 45000000);
    /* rounding up: 0.00001 BTC at 0.01 USDT = 0.0000001 USDT -> 0.000001 */
    o = req("BTC-USDT", SIDE_BUY, OT_LIMIT, 10000, 1000, 0);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), 0);
    assert_int_equal(amount, 1);
    /* sell limit holds the base quantity */
    o = req("BTC-USDT", SIDE_SELL, OT_LIMIT, 30000000000LL, 150000, 0);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), 0);
    assert_string_equal(asset, "BTC");
    assert_int_equal(scale, 8);
    assert_int_equal(amount, 150000);
    /* market buy by quote holds the budget */
    o = req("BTC-USDT", SIDE_BUY, OT_MARKET, 0, 0, 100000000);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), 0);
    assert_string_equal(asset, "USDT");
    assert_int_equal(amount, 100000000);
    /* market buy by qty: worst case at max_price: 0.001 BTC * 10,000,000 = 10,000 USDT */
    o = req("BTC-USDT", SIDE_BUY, OT_MARKET, 0, 100000, 0);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), 0);
    assert_int_equal(amount, 10000000000LL);
    /* market sell by qty */
    o = req("ETH-USDT", SIDE_SELL, OT_MARKET, 0, 20000, 0);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), 0);
    assert_string_equal(asset, "ETH");
    assert_int_equal(amount, 20000);
    /* market sell by quote: worst case at min_price: 1 USDT / 0.01 = 100 BTC */
    o = req("BTC-USDT", SIDE_SELL, OT_MARKET, 0, 0, 1000000);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), 0);
    assert_string_equal(asset, "BTC");
    assert_int_equal(amount, 10000000000LL);
    /* overflow is refused, not wrapped */
    o = req("BTC-USDT", SIDE_BUY, OT_LIMIT, INT64_MAX / 2, INT64_MAX / 2, 0);
    assert_int_equal(order_hold(&o, &asset, &scale, &amount), -1);
}

static void test_fingerprint(void **state)
{
    (void)state;
    char a[256], b[256];
    struct order_req o = req("BTC-USDT", SIDE_BUY, OT_LIMIT, 30000000000LL, 150000, 0);
    order_fingerprint(&o, a, sizeof a);
    o.qty = 160000;
    order_fingerprint(&o, b, sizeof b);
    assert_string_not_equal(a, b);
    o.qty = 150000;
    order_fingerprint(&o, b, sizeof b);
    assert_string_equal(a, b);
}

static void test_average_price(void **state)
{
    (void)state;
    int64_t p;
    assert_int_equal(average_price(0, 0, 8, &p), -1);
    /* 0.001 @ 30000 + 0.002 @ 30001 = 30 + 60.002 = 90.002 over 0.003 = 30000.666666.. */
    assert_int_equal(average_price(300000, 90002000, 8, &p), 0);
    assert_int_equal(p, 30000666667LL);
    /* exact */
    assert_int_equal(average_price(150000, 45000000, 8, &p), 0);
    assert_int_equal(p, 30000000000LL);
    /* half-even: 0.000005 -> tie rounds to even */
    assert_int_equal(average_price(200000000, 1, 8, &p), 0); /* 0.0000005 -> 0 */
    assert_int_equal(p, 0);
    assert_int_equal(average_price(200000000, 3, 8, &p), 0); /* 0.0000015 -> 0.000002 */
    assert_int_equal(p, 2);
}

static void test_candles(void **state)
{
    (void)state;
    assert_int_equal(candle_interval_ms("1m"), 60000);
    assert_int_equal(candle_interval_ms("5m"), 300000);
    assert_int_equal(candle_interval_ms("1h"), 3600000);
    assert_int_equal(candle_interval_ms("1d"), 86400000);
    assert_int_equal(candle_interval_ms("2m"), -1);
    assert_int_equal(candle_interval_ms(NULL), -1);
    assert_int_equal(candle_bucket(0, 60000), 0);
    assert_int_equal(candle_bucket(59999, 60000), 0);
    assert_int_equal(candle_bucket(60000, 60000), 60000);
    assert_int_equal(candle_bucket(-1, 60000), -60000);
    assert_int_equal(candle_bucket(-60000, 60000), -60000);

    struct trade_pt t[] = {
        {60000, 100, 10, 1000}, {60500, 120, 5, 600}, {119999, 90, 1, 90},
        {180000, 95, 2, 190},   {180001, 95, 3, 285},
    };
    struct candle c[4];
    int n = candles_build(t, 5, 60000, c, 4);
    assert_int_equal(n, 2); /* the empty 120000 bucket is omitted */
    assert_int_equal(c[0].open_ms, 60000);
    assert_int_equal(c[0].open, 100);
    assert_int_equal(c[0].high, 120);
    assert_int_equal(c[0].low, 90);
    assert_int_equal(c[0].close, 90);
    assert_int_equal(c[0].volume, 16);
    assert_int_equal(c[0].quote_volume, 1690);
    assert_int_equal(c[0].trades, 3);
    assert_int_equal(c[1].open_ms, 180000);
    assert_int_equal(c[1].volume, 5);
    assert_int_equal(c[1].trades, 2);
    /* cap */
    assert_int_equal(candles_build(t, 5, 60000, c, 1), 1);
    /* one 5m bucket */
    assert_int_equal(candles_build(t, 5, 300000, c, 4), 1);
    assert_int_equal(c[0].trades, 5);
    /* overflow */
    struct trade_pt big[] = {{0, 1, INT64_MAX, 1}, {1, 1, 1, 1}};
    assert_int_equal(candles_build(big, 2, 60000, c, 4), -1);
    assert_int_equal(candles_build(t, 0, 60000, c, 4), 0);
}

static void test_time_and_ids(void **state)
{
    (void)state;
    int64_t us;
    assert_int_equal(parse_ts_us("1970-01-01T00:00:00Z", &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(parse_ts_us("2026-11-21T12:00:00.123456789Z", &us), 0);
    assert_int_equal(us, 1795262400123456LL);
    assert_int_equal(parse_ts_us("2000-02-29T23:59:59.5Z", &us), 0);
    assert_int_equal(us, 951868799500000LL);
    assert_int_equal(parse_ts_us("2026-11-21T12:00:00+01:00", &us), -1);
    assert_int_equal(parse_ts_us("2026-11-21 12:00:00Z", &us), -1);
    assert_int_equal(parse_ts_us("2026-11-21T12:00:00.Z", &us), -1);
    assert_int_equal(parse_ts_us(NULL, &us), -1);
    char buf[40];
    format_ts_ms(1795262400123LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-21T12:00:00.123Z");
    now_ts(buf, sizeof buf);
    assert_int_equal(parse_ts_us(buf, &us), 0);

    uint64_t id;
    assert_int_equal(parse_uint_id("1", &id), 0);
    assert_int_equal(parse_uint_id("18446744073709551615", &id), 0);
    assert_true(id == UINT64_MAX);
    assert_int_equal(parse_uint_id("18446744073709551616", &id), -1);
    assert_int_equal(parse_uint_id("0", &id), -1);
    assert_int_equal(parse_uint_id("01", &id), -1);
    assert_int_equal(parse_uint_id("1a", &id), -1);
    assert_int_equal(parse_uint_id("", &id), -1);
    assert_int_equal(parse_uint_id(NULL, &id), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_markets_file, setup),
        cmocka_unit_test_setup(test_validation_table, setup),
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_hold_amounts, setup),
        cmocka_unit_test_setup(test_fingerprint, setup),
        cmocka_unit_test_setup(test_average_price, setup),
        cmocka_unit_test_setup(test_candles, setup),
        cmocka_unit_test_setup(test_time_and_ids, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
