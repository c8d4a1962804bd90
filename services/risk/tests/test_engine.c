/*
 * Unit tests of the risk rules engine (engine.h): per rule, fires at the
 * threshold and not below (table-driven); pre-trade decisions; simulate vs
 * block; offsets dedup; snapshot round trip; the rules file's validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../engine.h"
#include "common/decimal.h"
#include "common/banned.h"

#define NOW 1795000000000LL /* wall clock for blocks; events use their own ts */

static char *ts_of(int64_t ms)
{
    static char buf[8][RISK_TS_MAX];
    static int i;
    char *b = buf[i++ % 8];
    risk_format_ts(ms, b, RISK_TS_MAX);
    return b;
}

static int64_t T0 = 1763726400000LL; /* 2025-11-21T12:00:00Z */

static struct risk_engine *engine_with(const char *rules_json)
{
    char err[256] = "";
    struct risk_rules *r = risk_rules_parse(rules_json, 900, err, sizeof err);
    if (!r)
        fail_msg("rules: %s", err);
    struct risk_engine *e = risk_engine_new(r);
    assert_non_null(e);
    return e;
}

static int apply(struct risk_engine *e, struct risk_hits *h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int apply(struct risk_engine *e, struct risk_hits *h, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (h)
        h->n = 0;
    int rc = risk_engine_apply_json(e, NULL, 0, -1, buf, strlen(buf), NOW, h);
    if (rc < 0)
        fail_msg("event rejected: %s", buf);
    return rc;
}

static int seq = 0;

static void accepted(struct risk_engine *e, struct risk_hits *h, const char *user, int order,
                     const char *price, const char *qty, int64_t ts)
{
    seq++;
    apply(e, h,
          "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"BTC-USDT:%d\",\"ts\":\"%s\","
          "\"market\":\"BTC-USDT\",\"seq\":%d,\"order_id\":\"%d\",\"user_id\":\"%s\","
          "\"side\":\"buy\",\"order_type\":\"limit\",\"price\":\"%s\",\"quantity\":\"%s\","
          "\"time_in_force\":\"GTC\",\"post_only\":false}",
          seq, ts_of(ts), seq, order, user, price, qty);
}

static void trade(struct risk_engine *e, struct risk_hits *h, const char *taker, const char *maker,
                  const char *price, const char *qty, int64_t ts)
{
    seq++;
    apply(e, h,
          "{\"type\":\"trade\",\"version\":1,\"id\":\"BTC-USDT:%d\",\"ts\":\"%s\","
          "\"market\":\"BTC-USDT\",\"seq\":%d,\"price\":\"%s\",\"quantity\":\"%s\","
          "\"taker_side\":\"buy\",\"taker_order_id\":\"%d\",\"taker_user_id\":\"%s\","
          "\"maker_order_id\":\"%d\",\"maker_user_id\":\"%s\"}",
          seq, ts_of(ts), seq, price, qty, 90000 + seq, taker, 80000 + seq, maker);
}

static void deposit(struct risk_engine *e, struct risk_hits *h, const char *user,
                    const char *amount, int64_t ts)
{
    apply(e, h,
          "{\"type\":\"deposit.credited\",\"version\":1,\"id\":\"wal-%d\",\"ts\":\"%s\","
          "\"deposit_id\":\"dep_1\",\"user_id\":\"%s\",\"asset\":\"BTC\",\"amount\":\"%s\","
          "\"tx_hash\":\"0xab\",\"entry_id\":\"je_1\"}",
          ++seq, ts_of(ts), user, amount);
}

static void withdrawal(struct risk_engine *e, struct risk_hits *h, const char *user,
                       const char *amount, int64_t ts)
{
    apply(e, h,
          "{\"type\":\"withdrawal.requested\",\"version\":1,\"id\":\"wal-%d\",\"ts\":\"%s\","
          "\"withdrawal_id\":\"wd_1\",\"user_id\":\"%s\",\"asset\":\"BTC\",\"amount\":\"%s\","
          "\"fee\":\"0.0001\",\"address\":\"tb1q\",\"requires_approval\":false}",
          ++seq, ts_of(ts), user, amount);
}

/* ---- per rule: fires at the threshold, not below ------------------------ */

struct rule_case {
    const char *name;
    const char *rule; /* one rule object */
    /* Drives the engine to observed == level; hits of the last event are left in h. */
    void (*drive)(struct risk_engine *e, struct risk_hits *h, int level);
    int below, at; /* levels */
};

static void drive_rate(struct risk_engine *e, struct risk_hits *h, int level)
{
    for (int i = 0; i < level; i++)
        accepted(e, h, "7", 100 + i, "100", "0.1", T0 + i * 10);
}

static void drive_open(struct risk_engine *e, struct risk_hits *h, int level)
{
    for (int i = 0; i < level; i++)
        accepted(e, h, "7", 100 + i, "100", "0.1", T0 + i * 5000); /* apart: no rate */
}

static void drive_notional(struct risk_engine *e, struct risk_hits *h, int level)
{
    /* level 0: 99.99999999 notional, level 1: exactly 100 */
    accepted(e, h, "7", 100, level ? "100" : "99.99999999", "1", T0);
}

static void drive_band(struct risk_engine *e, struct risk_hits *h, int level)
{
    trade(e, NULL, "8", "9", "100", "0.1", T0);
    /* 500 bps above the last trade is 105; 104.99 is 499 bps */
    accepted(e, h, "7", 100, level ? "105" : "104.99", "0.1", T0 + 1000);
}

static void drive_wash(struct risk_engine *e, struct risk_hits *h, int level)
{
    trade(e, NULL, "7", "8", "99", "0.1", T0); /* another price: not in the streak */
    for (int i = 0; i < level; i++)
        trade(e, h, i % 2 ? "7" : "8", i % 2 ? "8" : "7", "100", "0.1", T0 + 1000 + i * 10);
}

static void drive_velocity(struct risk_engine *e, struct risk_hits *h, int level)
{
    deposit(e, NULL, "7", "5", T0);
    withdrawal(e, h, "7", level ? "1" : "0.99999999", T0 + 60000);
}

static void drive_exposure(struct risk_engine *e, struct risk_hits *h, int level)
{
    /* user 7 buys 10 BTC at 100 = 1000 exposure; 9.99999999 is below */
    trade(e, h, "7", "8", "100", level ? "10" : "9.99999999", T0);
}

static const struct rule_case rule_cases[] = {
    {"order_rate",
     "{\"id\":\"r\",\"kind\":\"order_rate\",\"action\":\"alert\","
     "\"threshold\":\"5\",\"window_s\":1}",
     drive_rate, 4, 5},
    {"max_open_orders",
     "{\"id\":\"r\",\"kind\":\"max_open_orders\",\"action\":\"alert\","
     "\"threshold\":\"3\"}",
     drive_open, 2, 3},
    {"max_order_notional",
     "{\"id\":\"r\",\"kind\":\"max_order_notional\",\"action\":\"alert\","
     "\"threshold\":\"100\"}",
     drive_notional, 0, 1},
    {"price_band",
     "{\"id\":\"r\",\"kind\":\"price_band\",\"action\":\"alert\","
     "\"threshold\":\"500\"}",
     drive_band, 0, 1},
    {"wash_trading",
     "{\"id\":\"r\",\"kind\":\"wash_trading\",\"action\":\"alert\","
     "\"threshold\":\"4\",\"window_s\":60}",
     drive_wash, 3, 4},
    {"withdrawal_velocity",
     "{\"id\":\"r\",\"kind\":\"withdrawal_velocity\",\"action\":\"alert\","
     "\"threshold\":\"1\",\"window_s\":600}",
     drive_velocity, 0, 1},
    {"exposure_concentration",
     "{\"id\":\"r\",\"kind\":\"exposure_concentration\","
     "\"action\":\"alert\",\"threshold\":\"1000\"}",
     drive_exposure, 0, 1},
};

static void test_rules_fire_at_threshold(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_cases / sizeof *rule_cases; i++) {
        const struct rule_case *c = &rule_cases[i];
        char doc[1024];
        snprintf(doc, sizeof doc, "{\"rules\":[%s]}", c->rule);
        for (int at = 0; at < 2; at++) {
            struct risk_engine *e = engine_with(doc);
            struct risk_hits h = {.n = 0};
            c->drive(e, &h, at ? c->at : c->below);
            if (at && h.n == 0)
                fail_msg("%s: no hit at the threshold", c->name);
            if (!at && h.n != 0)
                fail_msg("%s: hit below the threshold: %s", c->name, h.v[0].message);
            if (at) {
                assert_string_equal(h.v[0].rule_id, "r");
                assert_int_equal(h.v[0].action, RA_ALERT);
                assert_int_equal(h.v[0].observed, h.v[0].threshold);
                assert_true(h.v[0].message[0] != '\0');
            }
            risk_engine_free(e);
        }
    }
}

static void test_wash_needs_same_price(void **state)
{
    (void)state;
    struct risk_engine *e = engine_with("{\"rules\":[{\"id\":\"w\",\"kind\":\"wash_trading\","
                                        "\"action\":\"alert\",\"threshold\":\"3\"}]}");
    struct risk_hits h = {.n = 0};
    trade(e, &h, "7", "8", "100", "1", T0);
    trade(e, &h, "8", "7", "100", "1", T0 + 1);
    trade(e, &h, "7", "8", "101", "1", T0 + 2); /* price moved: the streak restarts */
    assert_int_equal(h.n, 0);
    trade(e, &h, "7", "8", "101", "1", T0 + 3);
    assert_int_equal(h.n, 0);
    trade(e, &h, "8", "7", "101", "1", T0 + 4);
    assert_int_equal(h.n, 2); /* both users */
    /* other users at the same price do not count */
    struct risk_engine *e2 = engine_with("{\"rules\":[{\"id\":\"w\",\"kind\":\"wash_trading\","
                                         "\"action\":\"alert\",\"threshold\":\"2\"}]}");
    trade(e2, &h, "7", "8", "100", "1", T0);
    trade(e2, &h, "7", "9", "100", "1", T0 + 1);
    assert_int_equal(h.n, 0);
    risk_engine_free(e2);
    risk_engine_free(e);
}

static void test_rate_window_slides(void **state)
{
    (void)state;
    struct risk_engine *e =
        engine_with("{\"rules\":[{\"id\":\"o\",\"kind\":\"order_rate\","
                    "\"action\":\"alert\",\"threshold\":\"3\",\"window_s\":2}]}");
    struct risk_hits h = {.n = 0};
    accepted(e, &h, "7", 1, "1", "1", T0);
    accepted(e, &h, "7", 2, "1", "1", T0 + 1000);
    accepted(e, &h, "7", 3, "1", "1", T0 + 2500); /* the first is out of the 2 s window */
    assert_int_equal(h.n, 0);
    accepted(e, &h, "7", 4, "1", "1", T0 + 2600);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.v[0].observed, 3);
    risk_engine_free(e);
}

/* ---- pre-trade ---------------------------------------------------------- */

static void pretrade(struct risk_engine *e, const char *user, const char *price, const char *qty,
                     struct risk_decision *d)
{
    struct risk_order o = {.market = "BTC-USDT", .side_buy = 1, .has_price = 1, .has_qty = 1};
    assert_int_equal(risk_parse_user(user, &o.user_id), 0);
    assert_int_equal(cm_decimal_parse(price, RISK_SCALE, 0, &o.price), 0);
    assert_int_equal(cm_decimal_parse(qty, RISK_SCALE, 0, &o.qty), 0);
    risk_engine_pretrade(e, &o, T0 + 5000, d);
}

static void test_pretrade_limits(void **state)
{
    (void)state;
    struct risk_engine *e =
        engine_with("{\"rules\":["
                    "{\"id\":\"max_notional\",\"kind\":\"max_order_notional\",\"action\":\"block\","
                    "\"threshold\":\"50000\"},"
                    "{\"id\":\"max_open_orders\",\"kind\":\"max_open_orders\",\"action\":\"alert\","
                    "\"threshold\":\"2\"},"
                    "{\"id\":\"price_band\",\"kind\":\"price_band\",\"action\":\"alert\","
                    "\"threshold\":\"1000\"}"
                    "]}");
    struct risk_decision d;
    pretrade(e, "7", "30000", "1.66666666", &d); /* 49999.99 */
    assert_int_equal(d.deny, 0);
    pretrade(e, "7", "30000", "3", &d); /* 90000 */
    assert_int_equal(d.deny, 1);
    assert_string_equal(d.rule_id, "max_notional");
    assert_non_null(strstr(d.reason, "90000.00000000"));

    trade(e, NULL, "8", "9", "30000", "0.001", T0);
    pretrade(e, "7", "33000", "0.1", &d); /* 1000 bps: at the band */
    assert_int_equal(d.deny, 1);
    assert_string_equal(d.rule_id, "price_band");
    pretrade(e, "7", "32999.99", "0.1", &d);
    assert_int_equal(d.deny, 0);

    accepted(e, NULL, "7", 1, "30000", "0.1", T0 + 1000);
    pretrade(e, "7", "30000", "0.1", &d);
    assert_int_equal(d.deny, 0);
    accepted(e, NULL, "7", 2, "30000", "0.1", T0 + 2000);
    pretrade(e, "7", "30000", "0.1", &d);
    assert_int_equal(d.deny, 1);
    assert_string_equal(d.rule_id, "max_open_orders");
    /* a cancel frees a slot */
    apply(e, NULL,
          "{\"type\":\"order.cancelled\",\"version\":1,\"id\":\"BTC-USDT:900\",\"ts\":\"%s\","
          "\"market\":\"BTC-USDT\",\"seq\":900,\"order_id\":\"1\",\"user_id\":\"7\","
          "\"side\":\"buy\",\"price\":\"30000\",\"filled_quantity\":\"0\","
          "\"filled_quote\":\"0\",\"remaining_quantity\":\"0.1\",\"reason\":\"user_cancel\"}",
          ts_of(T0 + 3000));
    pretrade(e, "7", "30000", "0.1", &d);
    assert_int_equal(d.deny, 0);
    risk_engine_free(e);
}

static void test_simulate_vs_block(void **state)
{
    (void)state;
    struct risk_engine *sim =
        engine_with("{\"rules\":[{\"id\":\"order_rate\",\"kind\":"
                    "\"order_rate\",\"action\":\"simulate\",\"threshold\":\"3\"}]}");
    struct risk_engine *blk = engine_with("{\"rules\":[{\"id\":\"order_rate\",\"kind\":"
                                          "\"order_rate\",\"action\":\"block\",\"threshold\":\"3\","
                                          "\"block_ttl_s\":60}]}");
    struct risk_hits hs = {.n = 0}, hb = {.n = 0};
    for (int i = 0; i < 3; i++) {
        accepted(sim, &hs, "7", 10 + i, "1", "1", T0 + i);
        accepted(blk, &hb, "7", 10 + i, "1", "1", T0 + i);
    }
    assert_int_equal(hs.n, 1);
    assert_int_equal(hs.v[0].action, RA_SIMULATE);
    assert_int_equal(hs.v[0].newly_blocked, 0);
    assert_int_equal(hb.n, 1);
    assert_int_equal(hb.v[0].action, RA_BLOCK);
    assert_int_equal(hb.v[0].newly_blocked, 1);
    assert_int_equal(risk_engine_blocked_count(sim, NOW), 0);
    assert_int_equal(risk_engine_blocked_count(blk, NOW), 1);
    assert_int_equal(risk_engine_blocked_count(blk, NOW + 61000), 0); /* TTL */

    struct risk_order o = {.market = "BTC-USDT",
                           .user_id = 7,
                           .has_price = 1,
                           .has_qty = 1,
                           .price = 100000000,
                           .qty = 100000000};
    struct risk_decision d;
    risk_engine_pretrade(blk, &o, NOW, &d);
    assert_int_equal(d.deny, 1);
    assert_int_equal(d.blocked, 1);
    assert_string_equal(d.rule_id, "account_blocked");
    /* simulate: allowed, but the rule that would have denied is named */
    risk_engine_pretrade(sim, &o, T0 + 100, &d);
    assert_int_equal(d.deny, 0);
    assert_int_equal(d.simulated, 1);
    assert_string_equal(d.rule_id, "order_rate");
    /* already blocked: no second block hit */
    accepted(blk, &hb, "7", 20, "1", "1", T0 + 5000);
    accepted(blk, &hb, "7", 21, "1", "1", T0 + 5001);
    accepted(blk, &hb, "7", 22, "1", "1", T0 + 5002);
    assert_int_equal(hb.n, 0);
    assert_int_equal(risk_engine_unblock(blk, 7), 1);
    risk_engine_pretrade(blk, &o, NOW, &d);
    assert_int_equal(d.blocked, 0);
    risk_engine_free(sim);
    risk_engine_free(blk);
}

static void test_alert_does_not_silence_block(void **state)
{
    (void)state;
    struct risk_engine *e = engine_with(
        "{\"rules\":[{\"id\":\"rate_alert\",\"kind\":\"order_rate\",\"action\":\"alert\","
        "\"threshold\":\"3\"},{\"id\":\"rate_block\",\"kind\":\"order_rate\",\"action\":"
        "\"block\",\"threshold\":\"5\"}]}");
    struct risk_hits h = {.n = 0};
    int alerts = 0, blocks = 0;
    for (int i = 0; i < 6; i++) {
        accepted(e, &h, "7", 50 + i, "1", "1", T0 + i * 10);
        for (size_t k = 0; k < h.n; k++) {
            alerts += h.v[k].action == RA_ALERT;
            blocks += h.v[k].action == RA_BLOCK;
        }
    }
    assert_int_equal(alerts, 1); /* once per second, not once per order */
    assert_int_equal(blocks, 1);
    /* the cooldown survives a snapshot */
    size_t len;
    char *snap = risk_engine_snapshot(e, &len);
    struct risk_engine *r =
        engine_with("{\"rules\":[{\"id\":\"rate_alert\",\"kind\":"
                    "\"order_rate\",\"action\":\"alert\",\"threshold\":\"3\"}]}");
    assert_int_equal(risk_engine_restore(r, snap, len), 0);
    accepted(r, &h, "7", 60, "1", "1", T0 + 100);
    assert_int_equal(h.n, 0);
    accepted(r, &h, "7", 61, "1", "1", T0 + 1100); /* next second: 1 order, below 3 */
    assert_int_equal(h.n, 0);
    free(snap);
    risk_engine_free(r);
    risk_engine_free(e);
}

/* ---- offsets, snapshots ------------------------------------------------- */

static char *user_json(struct risk_engine *e, uint64_t id)
{
    cJSON *j = risk_engine_user_json(e, id, NOW);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void feed(struct risk_engine *e, int from, int to)
{
    for (int i = from; i < to; i++) {
        char buf[1024];
        int n;
        if (i % 3 == 2)
            n = snprintf(buf, sizeof buf,
                         "{\"type\":\"trade\",\"version\":1,\"id\":\"BTC-USDT:%d\",\"ts\":\"%s\","
                         "\"market\":\"BTC-USDT\",\"seq\":%d,\"price\":\"100.5\",\"quantity\":"
                         "\"0.25\",\"quote_amount\":\"25.125\",\"taker_side\":\"sell\","
                         "\"taker_order_id\":\"%d\",\"taker_user_id\":\"7\",\"maker_order_id\":"
                         "\"%d\",\"maker_user_id\":\"8\"}",
                         i, ts_of(T0 + i), i, i, i - 1);
        else
            n = snprintf(buf, sizeof buf,
                         "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"BTC-USDT:%d\","
                         "\"ts\":\"%s\",\"market\":\"BTC-USDT\",\"seq\":%d,\"order_id\":\"%d\","
                         "\"user_id\":\"%d\",\"side\":\"%s\",\"order_type\":\"limit\",\"price\":"
                         "\"100.5\",\"quantity\":\"0.5\",\"time_in_force\":\"GTC\","
                         "\"post_only\":false}",
                         i, ts_of(T0 + i), i, i, 7 + i % 2, i % 2 ? "sell" : "buy");
        risk_engine_apply_json(e, "t", i % 2, i, buf, (size_t)n, NOW, NULL);
    }
}

static void test_offsets_dedup(void **state)
{
    (void)state;
    struct risk_engine *e = engine_with("{\"rules\":[]}");
    feed(e, 0, 10);
    char *a = user_json(e, 7);
    feed(e, 0, 10); /* replayed: every event is at or below its offset */
    char *b = user_json(e, 7);
    assert_string_equal(a, b);
    assert_int_equal(risk_engine_next_offset(e, "t", 0), 9);
    assert_int_equal(risk_engine_next_offset(e, "t", 1), 10);
    assert_int_equal(risk_engine_next_offset(e, "t", 5), -1);
    free(a);
    free(b);
    risk_engine_free(e);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    const char *rules = "{\"rules\":[{\"id\":\"w\",\"kind\":\"wash_trading\",\"action\":\"alert\","
                        "\"threshold\":\"50\"}]}";
    struct risk_engine *whole = engine_with(rules), *part = engine_with(rules);
    feed(whole, 0, 60);
    feed(part, 0, 25);
    risk_engine_block(part, 9, "manual", NOW + 60000);
    risk_engine_block(whole, 9, "manual", NOW + 60000);
    size_t len;
    char *snap = risk_engine_snapshot(part, &len);
    assert_non_null(snap);
    struct risk_engine *restored = engine_with(rules);
    assert_int_equal(risk_engine_restore(restored, snap, len), 0);
    size_t len2;
    char *snap2 = risk_engine_snapshot(restored, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(snap, snap2, len);
    feed(restored, 0, 60); /* replay from the start: the first 25 are duplicates */
    for (uint64_t u = 7; u <= 9; u++) {
        char *a = user_json(whole, u), *b = user_json(restored, u);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    /* a truncated snapshot is refused */
    assert_int_equal(risk_engine_restore(restored, snap, len - 4), -1);
    assert_int_equal(risk_engine_restore(restored, "junk", 4), -1);
    free(snap);
    free(snap2);
    risk_engine_free(whole);
    risk_engine_free(part);
    risk_engine_free(restored);
}

static void test_positions(void **state)
{
    (void)state;
    struct risk_engine *e = engine_with("{\"rules\":[]}");
    trade(e, NULL, "7", "8", "30000", "0.5", T0);
    accepted(e, NULL, "7", 1, "100", "2", T0);
    char *a = user_json(e, 7), *b = user_json(e, 8);
    assert_string_equal(a, "{\"user_id\":\"7\",\"blocked\":false,\"open_orders\":1,"
                           "\"order_rate_per_s\":0,\"exposures\":["
                           "{\"asset\":\"BTC\",\"position\":\"0.50000000\",\"open_notional\":"
                           "\"0.00000000\"},"
                           "{\"asset\":\"USDT\",\"position\":\"-15000.00000000\",\"open_notional\":"
                           "\"200.00000000\"}]}");
    assert_non_null(strstr(b, "\"position\":\"-0.50000000\""));
    free(a);
    free(b);
    risk_engine_free(e);
}

static void test_open_notional_follows_fills(void **state)
{
    (void)state;
    struct risk_engine *e = engine_with("{\"rules\":[]}");
    accepted(e, NULL, "7", 1, "100", "2", T0); /* buy: 200 USDT can be spent */
    apply(e, NULL,
          "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"BTC-USDT:801\",\"ts\":\"%s\","
          "\"market\":\"BTC-USDT\",\"seq\":801,\"order_id\":\"2\",\"user_id\":\"7\",\"side\":"
          "\"buy\",\"order_type\":\"market\",\"quote_amount\":\"300\",\"time_in_force\":\"IOC\","
          "\"post_only\":false}",
          ts_of(T0));
    apply(e, NULL,
          "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"BTC-USDT:802\",\"ts\":\"%s\","
          "\"market\":\"BTC-USDT\",\"seq\":802,\"order_id\":\"3\",\"user_id\":\"7\",\"side\":"
          "\"sell\",\"order_type\":\"limit\",\"price\":\"120\",\"quantity\":\"1.5\","
          "\"time_in_force\":\"GTC\",\"post_only\":false}",
          ts_of(T0));
    char *j = user_json(e, 7);
    assert_non_null(strstr(j, "{\"asset\":\"USDT\",\"position\":\"0.00000000\",\"open_notional\":"
                              "\"500.00000000\"}"));
    assert_non_null(strstr(j, "{\"asset\":\"BTC\",\"position\":\"0.00000000\",\"open_notional\":"
                              "\"1.50000000\"}"));
    assert_non_null(strstr(j, "\"open_orders\":3"));
    free(j);
    static const char *const upd[] = {
        "\"type\":\"order.partially_filled\",\"order_id\":\"1\",\"remaining_quantity\":\"0.5\"",
        "\"type\":\"order.partially_filled\",\"order_id\":\"2\",\"remaining_quote\":\"120\"",
        "\"type\":\"order.partially_filled\",\"order_id\":\"3\",\"remaining_quantity\":\"0.25\"",
    };
    for (size_t i = 0; i < 3; i++)
        apply(e, NULL,
              "{%s,\"version\":1,\"id\":\"BTC-USDT:%zu\",\"ts\":\"%s\",\"market\":\"BTC-USDT\","
              "\"seq\":%zu,\"user_id\":\"7\",\"side\":\"buy\",\"filled_quantity\":\"1\","
              "\"filled_quote\":\"1\"}",
              upd[i], 810 + i, ts_of(T0 + 1), 810 + i);
    j = user_json(e, 7);
    assert_non_null(strstr(j, "\"open_notional\":\"170.00000000\"")); /* 50 + 120 USDT */
    assert_non_null(strstr(j, "\"open_notional\":\"0.25000000\""));   /* BTC */
    free(j);
    for (int id = 1; id <= 3; id++)
        apply(e, NULL,
              "{\"type\":\"order.filled\",\"version\":1,\"id\":\"BTC-USDT:%d\",\"ts\":\"%s\","
              "\"market\":\"BTC-USDT\",\"seq\":%d,\"order_id\":\"%d\",\"user_id\":\"7\","
              "\"side\":\"buy\",\"filled_quantity\":\"1\",\"filled_quote\":\"1\","
              "\"remaining_quantity\":\"0\"}",
              820 + id, ts_of(T0 + 2), 820 + id, id);
    j = user_json(e, 7);
    assert_non_null(strstr(j, "\"open_orders\":0"));
    assert_null(strstr(j, "\"open_notional\":\"1")); /* every contribution subtracted exactly */
    assert_non_null(strstr(j, "\"asset\":\"USDT\",\"position\":\"0.00000000\",\"open_notional\":"
                              "\"0.00000000\""));
    free(j);
    risk_engine_free(e);
}

static void test_prune_idle_pairs(void **state)
{
    (void)state;
    struct risk_engine *e = engine_with("{\"rules\":[{\"id\":\"w\",\"kind\":\"wash_trading\","
                                        "\"action\":\"alert\",\"threshold\":\"2\"}]}");
    struct risk_hits h = {.n = 0};
    trade(e, &h, "7", "8", "100", "1", T0);
    trade(e, &h, "9", "10", "100", "1", T0 + 3000 * 1000); /* 50 min later */
    assert_int_equal(risk_engine_prune(e), 0);             /* within the 1 h horizon */
    trade(e, &h, "9", "10", "100", "1", T0 + 3700 * 1000);
    assert_int_equal(h.n, 0);                  /* the first 9-10 trade is outside the 60 s window */
    assert_int_equal(risk_engine_prune(e), 1); /* 7-8 went idle over an hour ago */
    trade(e, &h, "7", "8", "100", "1", T0 + 3701 * 1000);
    assert_int_equal(h.n, 0); /* a fresh streak of one */
    trade(e, &h, "8", "7", "100", "1", T0 + 3702 * 1000);
    assert_int_equal(h.n, 2);
    risk_engine_free(e);
}

/* ---- rules file --------------------------------------------------------- */

static void test_rules_validation(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *why;
    } bad[] = {
        {"not json", "not valid JSON"},
        {"{}", "no \"rules\" array"},
        {"{\"rules\":[{\"kind\":\"order_rate\",\"action\":\"alert\",\"threshold\":\"1\"}]}", "id"},
        {"{\"rules\":[{\"id\":\"Bad\",\"kind\":\"order_rate\",\"action\":\"alert\",\"threshold\":"
         "\"1\"}]}",
         "id"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"nope\",\"action\":\"alert\",\"threshold\":\"1\"}]}",
         "kind"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"order_rate\",\"action\":\"ban\",\"threshold\":\"1\"}"
         "]}",
         "action"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"order_rate\",\"action\":\"alert\",\"severity\":"
         "\"x\",\"threshold\":\"1\"}]}",
         "severity"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"order_rate\",\"action\":\"alert\",\"threshold\":\"1."
         "5\"}]}",
         "threshold"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"max_order_notional\",\"action\":\"alert\","
         "\"threshold\":\"1e3\"}]}",
         "threshold"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"max_order_notional\",\"action\":\"alert\","
         "\"threshold\":\"0\"}]}",
         "range"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"order_rate\",\"action\":\"alert\",\"threshold\":"
         "\"1\",\"window_s\":61}]}",
         "window_s"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"order_rate\",\"action\":\"alert\",\"threshold\":"
         "\"1\",\"enabled\":1}]}",
         "enabled"},
        {"{\"rules\":[{\"id\":\"a\",\"kind\":\"order_rate\",\"action\":\"alert\",\"threshold\":"
         "\"1\"},"
         "{\"id\":\"a\",\"kind\":\"order_rate\",\"action\":\"alert\",\"threshold\":\"2\"}]}",
         "duplicate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256] = "";
        struct risk_rules *r = risk_rules_parse(bad[i].doc, 900, err, sizeof err);
        if (r)
            fail_msg("accepted: %s", bad[i].doc);
        if (!strstr(err, bad[i].why))
            fail_msg("%s: error \"%s\" does not mention %s", bad[i].doc, err, bad[i].why);
    }
    char err[256];
    struct risk_rules *r = risk_rules_parse(
        "{\"rules\":[{\"id\":\"max_notional\",\"kind\":\"max_order_notional\",\"severity\":"
        "\"critical\",\"action\":\"block\",\"threshold\":\"50000.5\",\"enabled\":false}]}",
        900, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->v[0].threshold, 5000050000000LL);
    assert_int_equal(r->v[0].block_ttl_s, 900);
    assert_int_equal(r->v[0].enabled, 0);
    cJSON *j = risk_rules_json(r);
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "rules"));
    assert_string_equal(s, "[{\"id\":\"max_notional\",\"kind\":\"max_order_notional\",\"severity\":"
                           "\"critical\",\"action\":\"block\",\"threshold\":\"50000.50000000\","
                           "\"block_ttl_s\":900,\"enabled\":false}]");
    free(s);
    cJSON_Delete(j);
    risk_rules_free(r);
    /* the shipped file parses */
    r = risk_rules_load("services/risk/rules.json", 900, err, sizeof err);
    if (!r)
        fail_msg("services/risk/rules.json: %s", err);
    assert_true(r->n >= 7);
    risk_rules_free(r);
}

static void test_malformed_events(void **state)
{
    (void)state;
    struct risk_engine *e = engine_with("{\"rules\":[]}");
    static const char *const bad[] = {
        "{}",
        "{\"type\":\"trade\",\"ts\":\"2026-11-21T12:00:00Z\"}",
        "{\"type\":\"order.accepted\",\"ts\":\"yesterday\",\"user_id\":\"1\"}",
        "{\"type\":\"order.accepted\",\"ts\":\"2026-11-21T12:00:00Z\",\"user_id\":\"x\","
        "\"order_id\":\"1\",\"market\":\"BTC-USDT\",\"side\":\"buy\"}",
        "{\"type\":\"order.accepted\",\"ts\":\"2026-11-21T12:00:00Z\",\"user_id\":\"1\","
        "\"order_id\":\"1\",\"market\":\"BTC-USDT\",\"side\":\"buy\",\"price\":12}",
        "{\"type\":\"deposit.credited\",\"ts\":\"2026-11-21T12:00:00Z\",\"user_id\":\"1\","
        "\"amount\":\"0.000000001\"}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(
            risk_engine_apply_json(e, "t", 0, (int64_t)i, bad[i], strlen(bad[i]), NOW, NULL),
            RISK_MALFORMED);
    assert_int_equal(risk_engine_next_offset(e, "t", 0), 7); /* skipped, not stuck */
    const char *hold = "{\"type\":\"hold.placed\",\"ts\":\"2026-11-21T12:00:00Z\"}";
    assert_int_equal(risk_engine_apply_json(e, "t", 0, 7, hold, strlen(hold), NOW, NULL),
                     RISK_IGNORED);
    risk_engine_free(e);
}

static void test_parse_ts(void **state)
{
    (void)state;
    assert_int_equal(risk_parse_ts("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(risk_parse_ts("2026-11-21T12:00:00.123456Z"), 1795262400123LL);
    assert_int_equal(risk_parse_ts("2026-11-21T12:00:00.5Z"), 1795262400500LL);
    assert_int_equal(risk_parse_ts("2026-11-21T12:00:00+01:00"), -1);
    assert_int_equal(risk_parse_ts("2026-13-21T12:00:00Z"), -1);
    assert_int_equal(risk_parse_ts("2026-11-21T12:00:00.Z"), -1);
    char buf[RISK_TS_MAX];
    risk_format_ts(1795262400123LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-21T12:00:00.123Z");
    uint64_t u;
    assert_int_equal(risk_parse_user("18446744073709551615", &u), 0);
    assert_int_equal(risk_parse_user("18446744073709551616", &u), -1);
    assert_int_equal(risk_parse_user("0", &u), -1);
    assert_int_equal(risk_parse_user("12a", &u), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_fire_at_threshold),
        cmocka_unit_test(test_wash_needs_same_price),
        cmocka_unit_test(test_rate_window_slides),
        cmocka_unit_test(test_pretrade_limits),
        cmocka_unit_test(test_simulate_vs_block),
        cmocka_unit_test(test_alert_does_not_silence_block),
        cmocka_unit_test(test_offsets_dedup),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_open_notional_follows_fills),
        cmocka_unit_test(test_prune_idle_pairs),
        cmocka_unit_test(test_rules_validation),
        cmocka_unit_test(test_malformed_events),
        cmocka_unit_test(test_parse_ts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
