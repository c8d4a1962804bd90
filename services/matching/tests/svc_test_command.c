/* The service's pure modules: hostile command JSON (command.c) -> OK,
 * REJECT with a reason, or SKIP, never a crash; event rendering
 * (render.c) against the contract examples; the markets file (config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../matching.h"

#include "common/banned.h"

static char markets_path[256];

static int setup(void **state)
{
    (void)state;
    /* unique: several test runs may share the machine */
    snprintf(markets_path, sizeof markets_path, "/tmp/matching_svc_test_markets.%d.json",
             (int)getpid());
    FILE *f = fopen(markets_path, "w");
    if (!f)
        return -1;
    fputs("{\"markets\":[{\"symbol\":\"BTC-USDT\",\"base_scale\":8,\"quote_scale\":6,"
          "\"tick_size\":\"0.010000\",\"lot_size\":\"0.00001000\",\"min_quantity\":\"0.00001000\","
          "\"max_quantity\":\"100.00000000\",\"min_price\":\"0.010000\","
          "\"max_price\":\"10000000.000000\",\"price_band_bps\":1000,\"status\":\"trading\"}]}",
          f);
    fclose(f);
    char err[256];
    return mt_markets_load(markets_path, 1024, err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    mt_markets_free();
    remove(markets_path);
    return 0;
}

#define PLACE_HEAD                                                                                 \
    "{\"type\":\"order.place\",\"version\":1,\"id\":\"c1\",\"ts\":\"2026-11-21T12:00:00."          \
    "123456Z\","                                                                                   \
    "\"market\":\"BTC-USDT\",\"order_id\":\"1001\",\"user_id\":\"42\",\"side\":\"buy\","

static const struct {
    const char *json;
    int rc;
    int reason;
} cases[] = {
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"30000.000000\",\"quantity\":\"0.00150000\","
                "\"time_in_force\":\"GTC\",\"post_only\":false}",
     MT_CMD_OK, 0},
    {PLACE_HEAD "\"order_type\":\"market\",\"quote_amount\":\"100.000000\","
                "\"time_in_force\":\"IOC\",\"post_only\":false,\"stp\":\"cancel_maker\"}",
     MT_CMD_OK, 0},
    {"{\"type\":\"order.cancel\",\"version\":1,\"id\":\"c\",\"ts\":\"2026-11-21T12:00:00Z\","
     "\"market\":\"BTC-USDT\",\"order_id\":\"1\",\"user_id\":\"2\"}",
     MT_CMD_OK, 0},
    {"{\"type\":\"order.cancel_all\",\"version\":1,\"id\":\"c\",\"ts\":\"2026-11-21T12:00:00Z\","
     "\"market\":\"BTC-USDT\",\"user_id\":\"2\"}",
     MT_CMD_OK, 0},
    /* identifiable but malformed: rejected */
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"1e5\",\"quantity\":\"0.00150000\","
                "\"time_in_force\":\"GTC\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_INVALID},
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":30000,\"quantity\":\"0.00150000\","
                "\"time_in_force\":\"GTC\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_INVALID},
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"30000.0000001\",\"quantity\":\"0.001\","
                "\"time_in_force\":\"GTC\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_BAD_TICK},
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"30000\",\"quantity\":\"0.000000001\","
                "\"time_in_force\":\"GTC\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_BAD_LOT},
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"99999999999999999999\",\"quantity\":\"1\","
                "\"time_in_force\":\"GTC\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_OVERFLOW},
    {PLACE_HEAD "\"order_type\":\"limit\",\"quantity\":\"1\",\"time_in_force\":\"GTC\","
                "\"post_only\":false}",
     MT_CMD_REJECT, ME_R_INVALID},
    {PLACE_HEAD "\"order_type\":\"market\",\"quantity\":\"1\",\"quote_amount\":\"1\","
                "\"time_in_force\":\"IOC\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_INVALID},
    {PLACE_HEAD "\"order_type\":\"stop\",\"time_in_force\":\"GTC\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_INVALID},
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"1\",\"quantity\":\"1\","
                "\"time_in_force\":\"DAY\",\"post_only\":false}",
     MT_CMD_REJECT, ME_R_INVALID},
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"1\",\"quantity\":\"1\","
                "\"time_in_force\":\"GTC\",\"post_only\":\"no\"}",
     MT_CMD_REJECT, ME_R_INVALID},
    {PLACE_HEAD "\"order_type\":\"limit\",\"price\":\"1\",\"quantity\":\"1\","
                "\"time_in_force\":\"GTC\",\"post_only\":false,\"stp\":\"maybe\"}",
     MT_CMD_REJECT, ME_R_INVALID},
    {"{\"type\":\"order.cancel\",\"version\":2,\"id\":\"c\",\"ts\":\"2026-11-21T12:00:00Z\","
     "\"market\":\"BTC-USDT\",\"order_id\":\"1\",\"user_id\":\"2\"}",
     MT_CMD_REJECT, ME_R_INVALID},
    /* unanswerable: skipped */
    {"", MT_CMD_SKIP, 0},
    {"{", MT_CMD_SKIP, 0},
    {"[1,2]", MT_CMD_SKIP, 0},
    {"null", MT_CMD_SKIP, 0},
    {"{\"market\":\"DOGE-USDT\"}", MT_CMD_NO_MARKET, 0},
    {"{\"market\":7}", MT_CMD_SKIP, 0},
    {"{\"type\":\"order.teleport\",\"market\":\"BTC-USDT\"}", MT_CMD_SKIP, 0},
    {"{\"type\":\"order.cancel\",\"market\":\"BTC-USDT\",\"ts\":\"yesterday\"}", MT_CMD_SKIP, 0},
    {"{\"type\":\"order.cancel\",\"market\":\"BTC-USDT\",\"ts\":\"2026-11-21T12:00:00+01:00\"}",
     MT_CMD_SKIP, 0},
    {"{\"type\":\"order.cancel\",\"market\":\"BTC-USDT\",\"ts\":\"2026-11-21T12:00:00Z\","
     "\"user_id\":\"0\",\"order_id\":\"1\"}",
     MT_CMD_SKIP, 0},
    {"{\"type\":\"order.cancel\",\"market\":\"BTC-USDT\",\"ts\":\"2026-11-21T12:00:00Z\","
     "\"user_id\":\"18446744073709551616\",\"order_id\":\"1\"}",
     MT_CMD_SKIP, 0},
    {"{\"type\":\"order.cancel\",\"market\":\"BTC-USDT\",\"ts\":\"2026-11-21T12:00:00Z\","
     "\"user_id\":\"1\",\"order_id\":42}",
     MT_CMD_SKIP, 0},
    {"{\"type\":\"order.place\",\"market\":\"BTC-USDT\",\"ts\":\"2026-11-21T12:00:00Z\","
     "\"user_id\":\"1\",\"order_id\":\"1\",\"side\":\"up\"}",
     MT_CMD_SKIP, 0},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct mt_cmd c;
        int rc = mt_command_parse(cases[i].json, strlen(cases[i].json), &c);
        if (rc != cases[i].rc || (rc == MT_CMD_REJECT && c.reject_reason != cases[i].reason))
            fail_msg("case %zu: rc %d reason %d (%s), want %d/%d: %s", i, rc, c.reject_reason,
                     c.why ? c.why : "", cases[i].rc, cases[i].reason, cases[i].json);
    }
}

static void test_parse_values(void **state)
{
    (void)state;
    struct mt_cmd c;
    const char *j = cases[0].json;
    assert_int_equal(mt_command_parse(j, strlen(j), &c), MT_CMD_OK);
    assert_int_equal(c.cmd.type, ME_CMD_PLACE);
    assert_int_equal(c.cmd.order_id, 1001);
    assert_int_equal(c.cmd.user_id, 42);
    assert_int_equal(c.cmd.price, 30000000000);
    assert_int_equal(c.cmd.qty, 150000);
    assert_string_equal(c.ts, "2026-11-21T12:00:00.123456Z");
    assert_int_equal(c.cmd.ts, 1795262400123456000ull);
    uint64_t ns;
    assert_int_equal(mt_parse_ts("1970-01-01T00:00:00Z", &ns), 0);
    assert_int_equal(ns, 0);
    assert_int_equal(mt_parse_ts("2000-03-01T00:00:01.5Z", &ns), 0);
    assert_int_equal(ns, 951868801500000000ull);
    assert_int_equal(mt_parse_ts("2000-03-01T00:00:01.Z", &ns), -1);
    assert_int_equal(mt_parse_ts("2000-03-01T00:00:01.1234567890Z", &ns), -1);
    assert_int_equal(mt_parse_ts("2000-13-01T00:00:01Z", &ns), -1);
    /* every truncation of a valid command is handled */
    for (size_t n = 0; n < strlen(j); n++)
        (void)mt_command_parse(j, n, &c);
    /* and every single-byte corruption */
    char buf[512];
    for (size_t i = 0; i < strlen(j); i++)
        for (int b = 0; b < 256; b += 37) {
            memcpy(buf, j, strlen(j) + 1);
            buf[i] = (char)b;
            (void)mt_command_parse(buf, strlen(j), &c);
        }
}

struct cap {
    struct cm_buf b;
    const struct mt_cmd *c;
};

static void on_ev(void *ctx, const struct me_event *ev)
{
    struct cap *k = ctx;
    int trade;
    assert_int_equal(mt_render_event(&k->b, k->c->market, k->c, ev, &trade), 0);
    cm_buf_puts(&k->b, "\n");
}

static void test_render(void **state)
{
    (void)state;
    struct me_market *m = me_market_new(&mt_markets[0].rules);
    assert_non_null(m);
    struct cap k;
    cm_buf_init(&k.b, 0);
    struct mt_cmd c;
    const char *j = cases[0].json;
    assert_int_equal(mt_command_parse(j, strlen(j), &c), MT_CMD_OK);
    k.c = &c;
    assert_int_equal(me_market_apply(m, &c.cmd, on_ev, &k), 0);
    assert_string_equal(k.b.data,
                        "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"BTC-USDT:1\","
                        "\"ts\":\"2026-11-21T12:00:00.123456Z\",\"market\":\"BTC-USDT\","
                        "\"seq\":1,\"order_id\":\"1001\",\"user_id\":\"42\",\"side\":\"buy\","
                        "\"order_type\":\"limit\",\"price\":\"30000.000000\","
                        "\"quantity\":\"0.00150000\",\"time_in_force\":\"GTC\","
                        "\"post_only\":false}\n");
    cm_buf_reset(&k.b);
    const char *sell =
        "{\"type\":\"order.place\",\"version\":1,\"id\":\"c2\",\"ts\":\"2026-11-21T12:00:00Z\","
        "\"market\":\"BTC-USDT\",\"order_id\":\"1004\",\"user_id\":\"43\",\"side\":\"sell\","
        "\"order_type\":\"market\",\"quote_amount\":\"30.000000\",\"time_in_force\":\"IOC\","
        "\"post_only\":false}";
    assert_int_equal(mt_command_parse(sell, strlen(sell), &c), MT_CMD_OK);
    assert_int_equal(me_market_apply(m, &c.cmd, on_ev, &k), 0);
    assert_non_null(strstr(k.b.data, "{\"type\":\"trade\",\"version\":1,\"id\":\"BTC-USDT:3\","
                                     "\"ts\":\"2026-11-21T12:00:00Z\",\"market\":\"BTC-USDT\","
                                     "\"seq\":3,\"price\":\"30000.000000\","
                                     "\"quantity\":\"0.00100000\",\"quote_amount\":\"30.000000\","
                                     "\"taker_side\":\"sell\",\"taker_order_id\":\"1004\","
                                     "\"taker_user_id\":\"43\",\"maker_order_id\":\"1001\","
                                     "\"maker_user_id\":\"42\"}\n"));
    /* the market taker's status has no price and reports the unspent budget */
    assert_non_null(strstr(k.b.data, "\"order_id\":\"1004\",\"user_id\":\"43\",\"side\":\"sell\","
                                     "\"filled_quantity\":\"0.00100000\","
                                     "\"filled_quote\":\"30.000000\",\"remaining_quote\":"));
    cm_buf_reset(&k.b);
    const char *bad = cases[4].json;
    assert_int_equal(mt_command_parse(bad, strlen(bad), &c), MT_CMD_REJECT);
    assert_int_equal(me_market_reject(m, &c.cmd, c.reject_reason, on_ev, &k), 0);
    assert_non_null(strstr(k.b.data,
                           "\"command\":\"place\",\"order_id\":\"1001\","
                           "\"user_id\":\"42\",\"side\":\"buy\",\"reason\":\"invalid\"}"));
    cm_buf_release(&k.b);
    me_market_free(m);
}

static void test_markets_file(void **state)
{
    (void)state;
    assert_int_equal(mt_nmarkets, 1);
    const struct me_rules *r = &mt_markets[0].rules;
    assert_int_equal(r->tick, 10000);
    assert_int_equal(r->lot, 1000);
    assert_int_equal(r->max_price, 10000000000000);
    assert_int_equal(r->band_bps, 1000);
    assert_non_null(mt_market_find("BTC-USDT", 8));
    assert_null(mt_market_find("BTC-USD", 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_markets_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
