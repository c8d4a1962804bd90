/* Scenario tests of the matching core: every order type, STP mode,
 * validation rule and cancel path, with exact expected event streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"

#include "common/banned.h"

static struct evlog L;

static struct me_market *new_market(const struct me_rules *r)
{
    struct me_market *m = me_market_new(r);
    assert_non_null(m);
    evlog_init(&L, 1);
    return m;
}

static void apply(struct me_market *m, struct me_cmd c)
{
    assert_int_equal(me_market_apply(m, &c, evlog_emit, &L), 0);
    assert_int_equal(L.seq_errors, 0);
    assert_int_equal(me_market_check(m), 0);
}

/* apply() without the O(book) invariant check, for bulk setup. */
static void apply_fast(struct me_market *m, struct me_cmd c)
{
    assert_int_equal(me_market_apply(m, &c, evlog_emit, &L), 0);
}

/* Applies c after forgetting earlier events, so L holds only its events. */
static void step(struct me_market *m, struct me_cmd c)
{
    evlog_clear(&L);
    apply(m, c);
}

static void expect_types_(const int *types, size_t n)
{
    if (L.n != n) {
        evlog_dump(&L);
        fail_msg("expected %zu events, got %zu", n, L.n);
    }
    for (size_t i = 0; i < n; i++) {
        if (L.ev[i].type != types[i]) {
            evlog_dump(&L);
            fail_msg("event %zu: expected %s got %s", i, me_event_type_name(types[i]),
                     me_event_type_name(L.ev[i].type));
        }
    }
}
#define EXPECT_TYPES(...)                                                                          \
    do {                                                                                           \
        const int t_[] = {__VA_ARGS__};                                                            \
        expect_types_(t_, sizeof(t_) / sizeof(t_[0]));                                             \
    } while (0)

enum {
    ACC = ME_EV_ACCEPTED,
    REJ = ME_EV_REJECTED,
    TRD = ME_EV_TRADE,
    PF = ME_EV_PARTIALLY_FILLED,
    FIL = ME_EV_FILLED,
    CAN = ME_EV_CANCELLED,
    EXP = ME_EV_EXPIRED
};

static void expect_trade(size_t i, uint64_t taker, uint64_t maker, int64_t price, int64_t qty,
                         int64_t quote)
{
    const struct me_event *e = &L.ev[i];
    assert_int_equal(e->type, ME_EV_TRADE);
    assert_int_equal(e->order_id, taker);
    assert_int_equal(e->maker_order_id, maker);
    assert_int_equal(e->price, price);
    assert_int_equal(e->qty, qty);
    assert_int_equal(e->quote, quote);
}

static void expect_status(size_t i, int type, uint64_t id, int reason, int64_t remaining,
                          int64_t filled)
{
    const struct me_event *e = &L.ev[i];
    assert_int_equal(e->type, type);
    assert_int_equal(e->order_id, id);
    assert_int_equal(e->reason, reason);
    assert_int_equal(e->remaining, remaining);
    assert_int_equal(e->filled, filled);
}

static void expect_best(struct me_market *m, int side, int64_t price)
{
    int64_t p = 0;
    if (price < 0) {
        assert_int_equal(me_market_best(m, side, &p), -1);
        return;
    }
    assert_int_equal(me_market_best(m, side, &p), 0);
    assert_int_equal(p, price);
}

static void test_limit_rests_and_full_fill(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    step(m, cmd_limit(1, 1, ME_SELL, 1000, 100, ME_GTC));
    EXPECT_TYPES(ACC);
    assert_int_equal(L.ev[0].seq, 1);
    assert_int_equal(L.ev[0].qty, 100);
    expect_best(m, ME_SELL, 1000);
    assert_int_equal(me_market_order_count(m), 1);

    step(m, cmd_limit(2, 2, ME_BUY, 1000, 100, ME_GTC));
    EXPECT_TYPES(ACC, TRD, FIL, FIL);
    expect_trade(1, 2, 1, 1000, 100, 100); /* 1000 * 100 / 10^3 */
    assert_int_equal(L.ev[1].maker_user_id, 1);
    assert_int_equal(L.ev[1].user_id, 2);
    assert_int_equal(L.ev[1].side, ME_BUY);
    expect_status(2, FIL, 1, ME_R_NONE, 0, 100);
    expect_status(3, FIL, 2, ME_R_NONE, 0, 100);
    assert_int_equal(L.ev[3].quote, 100);
    assert_int_equal(L.ev[3].seq, 5);
    assert_int_equal(me_market_order_count(m), 0);
    assert_int_equal(me_market_last_price(m), 1000);
    expect_best(m, ME_BUY, -1);
    expect_best(m, ME_SELL, -1);
    me_market_free(m);
}

static void test_partial_fills_across_levels(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_SELL, 1000, 100, ME_GTC));
    apply(m, cmd_limit(2, 2, ME_SELL, 1000, 50, ME_GTC));
    apply(m, cmd_limit(3, 3, ME_SELL, 1100, 200, ME_GTC));
    apply(m, cmd_limit(4, 4, ME_SELL, 1300, 100, ME_GTC));
    step(m, cmd_limit(10, 9, ME_BUY, 1200, 400, ME_GTC));
    EXPECT_TYPES(ACC, TRD, FIL, TRD, FIL, TRD, FIL, PF);
    expect_trade(1, 10, 1, 1000, 100, 100); /* time priority: 1 before 2 */
    assert_int_equal(L.ev[1].remaining, 300);
    expect_trade(3, 10, 2, 1000, 50, 50);
    expect_trade(5, 10, 3, 1100, 200, 220); /* maker's price, not 1200 */
    expect_status(7, PF, 10, ME_R_NONE, 50, 350);
    assert_int_equal(L.ev[7].quote, 370);
    expect_best(m, ME_BUY, 1200);
    expect_best(m, ME_SELL, 1300);
    assert_int_equal(me_market_last_price(m), 1100);
    struct me_order_info oi;
    assert_int_equal(me_market_find(m, 10, &oi), 0);
    assert_int_equal(oi.remaining, 50);
    assert_int_equal(oi.filled, 350);

    /* Sell side sweep: partially fills the resting bid, then rests. */
    apply(m, cmd_limit(11, 8, ME_BUY, 1100, 60, ME_GTC));
    step(m, cmd_limit(12, 7, ME_SELL, 1100, 200, ME_GTC));
    EXPECT_TYPES(ACC, TRD, FIL, TRD, FIL, PF);
    expect_trade(1, 12, 10, 1200, 50, 60);
    expect_trade(3, 12, 11, 1100, 60, 66);
    expect_status(5, PF, 12, ME_R_NONE, 90, 110);
    expect_best(m, ME_SELL, 1100);
    expect_best(m, ME_BUY, -1);
    me_market_free(m);
}

static void test_maker_partial_fill(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_BUY, 2000, 500, ME_GTC));
    step(m, cmd_limit(2, 2, ME_SELL, 1500, 200, ME_GTC));
    EXPECT_TYPES(ACC, TRD, PF, FIL);
    expect_trade(1, 2, 1, 2000, 200, 400);
    expect_status(2, PF, 1, ME_R_NONE, 300, 200);
    struct me_depth_level d[4];
    assert_int_equal(me_market_depth(m, ME_BUY, d, 4), 1);
    assert_int_equal(d[0].qty, 300);
    me_market_free(m);
}

static void test_ioc_remainder_expires(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_SELL, 1000, 50, ME_GTC));
    step(m, cmd_limit(2, 2, ME_BUY, 1000, 80, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, EXP);
    expect_status(3, EXP, 2, ME_R_IOC, 30, 50);
    assert_int_equal(me_market_order_count(m), 0);
    /* IOC that cannot trade at all still ends, it never rests. */
    step(m, cmd_limit(3, 2, ME_BUY, 1000, 80, ME_IOC));
    EXPECT_TYPES(ACC, EXP);
    expect_status(1, EXP, 3, ME_R_IOC, 80, 0);
    assert_int_equal(me_market_order_count(m), 0);
    me_market_free(m);
}

static void test_fok(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_SELL, 1000, 50, ME_GTC));
    apply(m, cmd_limit(2, 2, ME_SELL, 1100, 50, ME_GTC));
    apply(m, cmd_limit(3, 3, ME_SELL, 1200, 50, ME_GTC));
    uint64_t seq = me_market_seq(m);
    /* 120 wanted, only 100 available at or below 1100: nothing trades. */
    step(m, cmd_limit(4, 4, ME_BUY, 1100, 120, ME_FOK));
    EXPECT_TYPES(ACC, EXP);
    expect_status(1, EXP, 4, ME_R_FOK, 120, 0);
    assert_int_equal(me_market_seq(m), seq + 2);
    assert_int_equal(me_market_order_count(m), 3);
    struct me_depth_level d[4];
    assert_int_equal(me_market_depth(m, ME_SELL, d, 4), 3);
    assert_int_equal(d[0].qty, 50);
    assert_int_equal(me_market_last_price(m), 0);
    /* Exactly fillable: fills completely. */
    step(m, cmd_limit(5, 4, ME_BUY, 1100, 100, ME_FOK));
    EXPECT_TYPES(ACC, TRD, FIL, TRD, FIL, FIL);
    /* FOK blocked by the taker's own order under STP cancel-taker. */
    apply(m, cmd_limit(6, 4, ME_SELL, 1100, 50, ME_GTC)); /* own, ahead */
    struct me_cmd c = cmd_limit(7, 4, ME_BUY, 1200, 100, ME_FOK);
    c.stp = ME_STP_CANCEL_TAKER;
    step(m, c);
    EXPECT_TYPES(ACC, EXP);
    expect_status(1, EXP, 7, ME_R_FOK, 100, 0);
    /* ... but under cancel-maker the own order is skipped: 50 left. */
    c = cmd_limit(8, 4, ME_BUY, 1200, 100, ME_FOK);
    c.stp = ME_STP_CANCEL_MAKER;
    step(m, c);
    EXPECT_TYPES(ACC, EXP);
    c = cmd_limit(9, 4, ME_BUY, 1200, 50, ME_FOK);
    c.stp = ME_STP_CANCEL_MAKER;
    step(m, c);
    EXPECT_TYPES(ACC, CAN, TRD, FIL, FIL);
    expect_status(1, CAN, 6, ME_R_STP, 50, 0);
    expect_trade(2, 9, 3, 1200, 50, 60);
    assert_int_equal(me_market_order_count(m), 0);
    me_market_free(m);
}

static void test_post_only(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_SELL, 1000, 50, ME_GTC));
    struct me_cmd c = cmd_limit(2, 2, ME_BUY, 1000, 50, ME_GTC);
    c.flags = ME_FLAG_POST_ONLY;
    step(m, c);
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_POST_ONLY);
    assert_int_equal(L.ev[0].order_id, 2);
    c.price = 900;
    step(m, c);
    EXPECT_TYPES(ACC);
    expect_best(m, ME_BUY, 900);
    /* Post-only sell at a price crossing the bid: rejected, not re-priced. */
    c = cmd_limit(3, 2, ME_SELL, 800, 50, ME_GTC);
    c.flags = ME_FLAG_POST_ONLY;
    step(m, c);
    EXPECT_TYPES(REJ);
    assert_int_equal(me_market_order_count(m), 2);
    me_market_free(m);
}

static void test_market_by_qty(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_BUY, 1000, 100, ME_GTC));
    apply(m, cmd_limit(2, 1, ME_BUY, 900, 100, ME_GTC));
    step(m, cmd_market(3, 2, ME_SELL, 150, 0, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, TRD, PF, FIL);
    expect_trade(1, 3, 1, 1000, 100, 100);
    expect_trade(3, 3, 2, 900, 50, 45);
    expect_status(5, FIL, 3, ME_R_NONE, 0, 150);
    assert_int_equal(L.ev[5].quote, 145);
    /* More than the book holds: the rest expires. */
    step(m, cmd_market(4, 2, ME_SELL, 200, 0, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, EXP);
    expect_status(3, EXP, 4, ME_R_NO_LIQUIDITY, 150, 50);
    /* Empty book. */
    step(m, cmd_market(5, 2, ME_BUY, 200, 0, ME_IOC));
    EXPECT_TYPES(ACC, EXP);
    me_market_free(m);
}

static void test_market_by_quote_lot_rounding(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_SELL, 1000, 100, ME_GTC));
    apply(m, cmd_limit(2, 1, ME_SELL, 1500, 1000, ME_GTC));
    step(m, cmd_market(3, 2, ME_BUY, 0, 500, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, TRD, PF, FIL);
    assert_int_equal(L.ev[0].quote, 500);
    expect_trade(1, 3, 1, 1000, 100, 100);
    assert_int_equal(L.ev[1].remaining, 400); /* budget left */
    /* 400 buys 266.6 at 1500 -> 266 -> 260 after lot rounding (lot 10). */
    expect_trade(3, 3, 2, 1500, 260, 390);
    expect_status(4, PF, 2, ME_R_NONE, 740, 260);
    /* 10 left cannot buy one lot: filled, unspent budget reported. */
    expect_status(5, FIL, 3, ME_R_NONE, 10, 360);
    assert_int_equal(L.ev[5].quote, 490);
    /* Sell by quote: receive at most 300 quote. */
    apply(m, cmd_limit(4, 1, ME_BUY, 700, 1000, ME_GTC));
    step(m, cmd_market(5, 2, ME_SELL, 0, 300, ME_IOC));
    EXPECT_TYPES(ACC, TRD, PF, FIL);
    expect_trade(1, 5, 4, 700, 420, 294); /* 300*1000/700 = 428 -> 420 */
    expect_status(3, FIL, 5, ME_R_NONE, 6, 420);
    /* Budget larger than the book: expires with the unspent budget. */
    step(m, cmd_market(6, 3, ME_BUY, 0, 10000000, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, EXP);
    expect_status(3, EXP, 6, ME_R_NO_LIQUIDITY, 10000000 - 1110, 740);
    me_market_free(m);
}

struct stp_case {
    const char *name;
    int order_stp;
    int market_stp;
    int types[8];
    size_t ntypes;
    size_t open_after;
};

static void test_stp_modes(void **state)
{
    (void)state;
    static const struct stp_case cases[] = {
        {"none", ME_STP_NONE, ME_STP_NONE, {ACC, TRD, FIL, TRD, PF, FIL}, 6, 1},
        {"cancel taker", ME_STP_CANCEL_TAKER, ME_STP_NONE, {ACC, CAN}, 2, 2},
        {"cancel maker", ME_STP_CANCEL_MAKER, ME_STP_NONE, {ACC, CAN, TRD, FIL, PF}, 5, 1},
        {"cancel both", ME_STP_CANCEL_BOTH, ME_STP_NONE, {ACC, CAN, CAN}, 3, 1},
        {"market default", ME_STP_DEFAULT, ME_STP_CANCEL_TAKER, {ACC, CAN}, 2, 2},
        {"order overrides market",
         ME_STP_NONE,
         ME_STP_CANCEL_BOTH,
         {ACC, TRD, FIL, TRD, PF, FIL},
         6,
         1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct stp_case *tc = &cases[k];
        struct me_rules r = test_rules();
        r.stp_default = (uint8_t)tc->market_stp;
        struct me_market *m = new_market(&r);
        apply(m, cmd_limit(1, 1, ME_SELL, 1000, 100, ME_GTC)); /* own */
        apply(m, cmd_limit(2, 2, ME_SELL, 1000, 100, ME_GTC));
        struct me_cmd c = cmd_limit(3, 1, ME_BUY, 1000, 150, ME_GTC);
        c.stp = (uint8_t)tc->order_stp;
        step(m, c);
        print_message("# stp case: %s\n", tc->name);
        expect_types_(tc->types, tc->ntypes);
        assert_int_equal(me_market_order_count(m), tc->open_after);
        for (size_t i = 0; i < L.n; i++)
            if (L.ev[i].type == CAN)
                assert_int_equal(L.ev[i].reason, ME_R_STP);
        me_market_free(m);
    }
    /* Details of cancel-both: maker 1 cancelled, taker cancelled, 2 stays. */
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_SELL, 1000, 100, ME_GTC));
    apply(m, cmd_limit(2, 2, ME_SELL, 1000, 100, ME_GTC));
    struct me_cmd c = cmd_limit(3, 1, ME_BUY, 1000, 150, ME_GTC);
    c.stp = ME_STP_CANCEL_BOTH;
    step(m, c);
    expect_status(1, CAN, 1, ME_R_STP, 100, 0);
    expect_status(2, CAN, 3, ME_R_STP, 150, 0);
    struct me_order_info oi;
    assert_int_equal(me_market_find(m, 2, &oi), 0);
    assert_int_equal(me_market_find(m, 1, &oi), -1);
    me_market_free(m);
}

static void test_cancel(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_BUY, 1000, 100, ME_GTC));
    step(m, cmd_cancel(99, 1));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_NOT_FOUND);
    assert_int_equal(L.ev[0].cmd_type, ME_CMD_CANCEL);
    assert_int_equal(L.ev[0].order_id, 99);
    step(m, cmd_cancel(1, 2)); /* another user's order */
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_NOT_OWNER);
    assert_int_equal(me_market_order_count(m), 1);
    step(m, cmd_cancel(0, 1));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_NOT_FOUND);
    /* Partially filled, then cancelled: remaining and filled reported. */
    apply(m, cmd_limit(2, 3, ME_SELL, 1000, 30, ME_GTC));
    step(m, cmd_cancel(1, 1));
    EXPECT_TYPES(CAN);
    expect_status(0, CAN, 1, ME_R_USER_CANCEL, 70, 30);
    expect_best(m, ME_BUY, -1);
    /* Already cancelled / already filled: no longer open. */
    step(m, cmd_cancel(1, 1));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_NOT_FOUND);
    step(m, cmd_cancel(2, 3));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_NOT_FOUND);
    /* Unknown command type. */
    struct me_cmd c = cmd_cancel(1, 1);
    c.type = 77;
    step(m, c);
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_INVALID);
    me_market_free(m);
}

static void test_cancel_all(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_BUY, 900, 100, ME_GTC));
    apply(m, cmd_limit(2, 1, ME_BUY, 1000, 100, ME_GTC));
    apply(m, cmd_limit(3, 2, ME_BUY, 1000, 100, ME_GTC));
    apply(m, cmd_limit(4, 1, ME_SELL, 1200, 100, ME_GTC));
    apply(m, cmd_limit(5, 1, ME_SELL, 1100, 100, ME_GTC));
    step(m, cmd_cancel_all(1));
    EXPECT_TYPES(CAN, CAN, CAN, CAN);
    const uint64_t order[] = {2, 1, 5, 4};
    for (size_t i = 0; i < 4; i++)
        expect_status(i, CAN, order[i], ME_R_CANCEL_ALL, 100, 0);
    assert_int_equal(me_market_order_count(m), 1);
    expect_best(m, ME_BUY, 1000);
    expect_best(m, ME_SELL, -1);
    step(m, cmd_cancel_all(1)); /* nothing left: no events */
    assert_int_equal(L.n, 0);
    me_market_free(m);
}

struct reject_case {
    const char *name;
    struct me_cmd cmd;
    int reason;
};

#define LIM(side, price, qty, tif) cmd_limit(100, 5, side, price, qty, tif)

static struct me_cmd with_flags(struct me_cmd c, int type, int side, int tif, int stp, int flags)
{
    if (type >= 0)
        c.type = (uint8_t)type;
    if (side >= 0)
        c.side = (uint8_t)side;
    if (tif >= 0)
        c.tif = (uint8_t)tif;
    if (stp >= 0)
        c.stp = (uint8_t)stp;
    if (flags >= 0)
        c.flags = (uint8_t)flags;
    return c;
}

static void test_validation_rejects(void **state)
{
    (void)state;
    struct me_cmd zero_id = LIM(ME_BUY, 1000, 100, ME_GTC);
    zero_id.order_id = 0;
    struct me_cmd limit_quote = LIM(ME_BUY, 1000, 100, ME_GTC);
    limit_quote.quote = 5;
    struct me_cmd mkt_price = cmd_market(100, 5, ME_BUY, 100, 0, ME_IOC);
    mkt_price.price = 1000;
    struct me_cmd bad_otype = LIM(ME_BUY, 1000, 100, ME_GTC);
    bad_otype.order_type = 7;
    const struct reject_case cases[] = {
        {"price off tick", LIM(ME_BUY, 1050, 100, ME_GTC), ME_R_BAD_TICK},
        {"price zero", LIM(ME_BUY, 0, 100, ME_GTC), ME_R_BAD_TICK},
        {"price negative", LIM(ME_SELL, -1000, 100, ME_GTC), ME_R_BAD_TICK},
        {"qty off lot", LIM(ME_BUY, 1000, 105, ME_GTC), ME_R_BAD_LOT},
        {"qty zero", LIM(ME_BUY, 1000, 0, ME_GTC), ME_R_BAD_LOT},
        {"qty negative", LIM(ME_BUY, 1000, -100, ME_GTC), ME_R_BAD_LOT},
        {"qty below min", LIM(ME_BUY, 1000, 10, ME_GTC), ME_R_QTY_MIN},
        {"qty above max", LIM(ME_BUY, 1000, 1000000010, ME_IOC), ME_R_QTY_MAX},
        {"price above max", LIM(ME_BUY, 1000000000100, 100, ME_GTC), ME_R_PRICE_RANGE},
        {"order id 0", zero_id, ME_R_INVALID},
        {"user id 0", cmd_limit(100, 0, ME_BUY, 1000, 100, ME_GTC), ME_R_INVALID},
        {"side 2", with_flags(LIM(ME_BUY, 1000, 100, ME_GTC), -1, 2, -1, -1, -1), ME_R_INVALID},
        {"tif 3", with_flags(LIM(ME_BUY, 1000, 100, ME_GTC), -1, -1, 3, -1, -1), ME_R_INVALID},
        {"stp 9", with_flags(LIM(ME_BUY, 1000, 100, ME_GTC), -1, -1, -1, 9, -1), ME_R_INVALID},
        {"unknown flag", with_flags(LIM(ME_BUY, 1000, 100, ME_GTC), -1, -1, -1, -1, 0x80),
         ME_R_INVALID},
        {"order type 7", bad_otype, ME_R_INVALID},
        {"limit with quote", limit_quote, ME_R_INVALID},
        {"post-only IOC",
         with_flags(LIM(ME_BUY, 1000, 100, ME_IOC), -1, -1, -1, -1, ME_FLAG_POST_ONLY),
         ME_R_BAD_TIF},
        {"market GTC", cmd_market(100, 5, ME_BUY, 100, 0, ME_GTC), ME_R_BAD_TIF},
        {"market post-only",
         with_flags(cmd_market(100, 5, ME_BUY, 100, 0, ME_IOC), -1, -1, -1, -1, ME_FLAG_POST_ONLY),
         ME_R_BAD_TIF},
        {"market by quote FOK", cmd_market(100, 5, ME_BUY, 0, 500, ME_FOK), ME_R_BAD_TIF},
        {"market with price", mkt_price, ME_R_INVALID},
        {"market qty and quote", cmd_market(100, 5, ME_BUY, 100, 500, ME_IOC), ME_R_INVALID},
        {"market nothing", cmd_market(100, 5, ME_BUY, 0, 0, ME_IOC), ME_R_BAD_LOT},
        {"market negative quote", cmd_market(100, 5, ME_BUY, 0, -5, ME_IOC), ME_R_INVALID},
        {"market qty off lot", cmd_market(100, 5, ME_SELL, 25, 0, ME_IOC), ME_R_BAD_LOT},
        {"duplicate open id", LIM(ME_SELL, 5000, 100, ME_GTC), ME_R_DUPLICATE_ID},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct me_rules r = test_rules();
        struct me_market *m = new_market(&r);
        apply(m, cmd_limit(100, 6, ME_BUY, 500, 100, ME_GTC)); /* id 100 open */
        if (k + 1 < sizeof(cases) / sizeof(cases[0]))
            apply(m, cmd_cancel(100, 6));
        size_t open = me_market_order_count(m);
        uint64_t seq = me_market_seq(m);
        step(m, cases[k].cmd);
        print_message("# reject case: %s\n", cases[k].name);
        EXPECT_TYPES(REJ);
        assert_int_equal(L.ev[0].reason, cases[k].reason);
        assert_int_equal(L.ev[0].seq, seq + 1);
        assert_int_equal(me_market_order_count(m), open);
        me_market_free(m);
    }
}

static void test_overflow_rejected(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    r.base_scale = 0;
    r.tick = 1;
    r.lot = 1;
    r.min_qty = 1;
    r.max_qty = INT64_MAX;
    r.min_price = 1;
    r.max_price = INT64_MAX;
    struct me_market *m = new_market(&r);
    step(m, cmd_limit(1, 1, ME_BUY, INT64_MAX / 2, 3, ME_GTC));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_OVERFLOW);
    step(m, cmd_limit(2, 1, ME_SELL, INT64_MAX, INT64_MAX, ME_GTC));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_OVERFLOW);
    /* The largest notional that fits is fine and trades exactly. */
    step(m, cmd_limit(3, 1, ME_SELL, INT64_MAX, 1, ME_GTC));
    EXPECT_TYPES(ACC);
    step(m, cmd_limit(4, 2, ME_BUY, INT64_MAX, 1, ME_GTC));
    EXPECT_TYPES(ACC, TRD, FIL, FIL);
    assert_int_equal(L.ev[1].quote, INT64_MAX);
    /* Resting quantity on one side cannot overflow its sum either. */
    step(m, cmd_limit(5, 1, ME_BUY, 1, INT64_MAX - 5, ME_GTC));
    EXPECT_TYPES(ACC);
    step(m, cmd_limit(6, 1, ME_BUY, 1, 10, ME_GTC));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_OVERFLOW);
    /* A sell's notional is bounded by max_price, not by its own limit:
     * bids up to max_price could take it. Same for a market order. */
    step(m, cmd_limit(8, 1, ME_SELL, 1, 2, ME_IOC));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_OVERFLOW);
    step(m, cmd_market(9, 1, ME_SELL, 2, 0, ME_IOC));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_OVERFLOW);
    /* A huge quote budget against a huge book stays in range. */
    step(m, cmd_market(7, 3, ME_SELL, 0, INT64_MAX, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, EXP);
    assert_int_equal(L.ev[1].qty, INT64_MAX - 5);
    me_market_free(m);
}

static void test_price_band(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    r.band_bps = 1000; /* 10% */
    r.last_price = 10000;
    struct me_market *m = new_market(&r);
    step(m, cmd_limit(1, 1, ME_SELL, 11000, 100, ME_GTC));
    EXPECT_TYPES(ACC);
    step(m, cmd_limit(2, 1, ME_SELL, 11100, 100, ME_GTC));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_PRICE_BAND);
    step(m, cmd_limit(3, 1, ME_BUY, 8900, 100, ME_GTC));
    EXPECT_TYPES(REJ);
    assert_int_equal(L.ev[0].reason, ME_R_PRICE_BAND);
    step(m, cmd_limit(4, 2, ME_BUY, 9000, 100, ME_GTC));
    EXPECT_TYPES(ACC);
    /* A trade at 11000 moves the band to [9900, 12100]. */
    step(m, cmd_limit(5, 3, ME_BUY, 11000, 50, ME_GTC));
    EXPECT_TYPES(ACC, TRD, PF, FIL);
    assert_int_equal(me_market_last_price(m), 11000);
    step(m, cmd_limit(6, 1, ME_SELL, 12100, 100, ME_GTC));
    EXPECT_TYPES(ACC);
    /* A market sell may not trade below 9900: the 9000 bid is out. */
    step(m, cmd_market(7, 3, ME_SELL, 100, 0, ME_IOC));
    EXPECT_TYPES(ACC, EXP);
    expect_status(1, EXP, 7, ME_R_NO_LIQUIDITY, 100, 0);
    /* A market buy takes up to 12100 inclusive. */
    step(m, cmd_market(8, 3, ME_BUY, 200, 0, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, TRD, FIL, EXP);
    me_market_free(m);

    /* Extreme band and prices: bounds clamp instead of overflowing. */
    r = test_rules();
    r.base_scale = 0;
    r.tick = 1;
    r.lot = 1;
    r.min_qty = 1;
    r.max_qty = 1;
    r.min_price = 1;
    r.max_price = INT64_MAX;
    r.band_bps = 1000000;
    r.last_price = INT64_MAX / 2;
    m = new_market(&r);
    step(m, cmd_limit(1, 1, ME_BUY, INT64_MAX, 1, ME_GTC));
    EXPECT_TYPES(ACC);
    step(m, cmd_market(2, 2, ME_SELL, 1, 0, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, FIL);
    assert_int_equal(L.ev[1].quote, INT64_MAX);
    step(m, cmd_limit(3, 1, ME_SELL, 1, 1, ME_GTC)); /* lower bound: 0 */
    EXPECT_TYPES(ACC);
    step(m, cmd_market(4, 2, ME_BUY, 1, 0, ME_IOC));
    EXPECT_TYPES(ACC, TRD, FIL, FIL);
    me_market_free(m);
}

static void test_depth(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = new_market(&r);
    apply(m, cmd_limit(1, 1, ME_BUY, 1000, 30, ME_GTC));
    apply(m, cmd_limit(2, 2, ME_BUY, 800, 50, ME_GTC));
    apply(m, cmd_limit(3, 3, ME_BUY, 1000, 40, ME_GTC));
    apply(m, cmd_limit(4, 4, ME_BUY, 900, 20, ME_GTC));
    apply(m, cmd_limit(5, 4, ME_SELL, 1200, 20, ME_GTC));
    apply(m, cmd_limit(6, 4, ME_SELL, 1100, 20, ME_GTC));
    struct me_depth_level d[8];
    assert_int_equal(me_market_depth(m, ME_BUY, d, 2), 2);
    assert_int_equal(d[0].price, 1000);
    assert_int_equal(d[0].qty, 70);
    assert_int_equal(d[0].count, 2);
    assert_int_equal(d[1].price, 900);
    assert_int_equal(d[1].qty, 20);
    assert_int_equal(d[1].count, 1);
    assert_int_equal(me_market_depth(m, ME_BUY, d, 8), 3);
    assert_int_equal(d[2].price, 800);
    assert_int_equal(me_market_depth(m, ME_SELL, d, 8), 2);
    assert_int_equal(d[0].price, 1100);
    assert_int_equal(d[1].price, 1200);
    assert_int_equal(me_market_depth(m, 5, d, 8), 0);
    apply(m, cmd_cancel(1, 1));
    assert_int_equal(me_market_depth(m, ME_BUY, d, 1), 1);
    assert_int_equal(d[0].qty, 40);
    assert_int_equal(d[0].count, 1);
    me_market_free(m);
}

static void test_many_levels_and_growth(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    r.order_capacity = 1; /* force slab, id map and level array growth */
    struct me_market *m = new_market(&r);
    /* Levels inserted out of order, deep and near the touch. */
    for (uint64_t i = 0; i < 3000; i++) {
        int64_t p = 100 + (int64_t)((i * 7919) % 1500) * 100;
        apply_fast(m, cmd_limit(i + 1, i % 50 + 1, ME_SELL, 200000 + p, 20, ME_GTC));
        apply_fast(m, cmd_limit(i + 100001, i % 50 + 1, ME_BUY, p, 20, ME_GTC));
    }
    assert_int_equal(me_market_order_count(m), 6000);
    assert_int_equal(me_market_check(m), 0);
    assert_int_equal(L.seq_errors, 0);
    struct me_depth_level d[3];
    assert_int_equal(me_market_depth(m, ME_SELL, d, 3), 3);
    assert_int_equal(d[0].price, 200100);
    assert_int_equal(d[0].count, 2);
    /* Sweep the whole ask side with one order. */
    size_t before = L.total;
    step(m, cmd_limit(999999, 999, ME_BUY, 400000, 60000, ME_IOC));
    assert_int_equal(L.total - before, 1 + 3000 * 2 + 1);
    assert_int_equal(L.ev[L.n - 1].type, FIL);
    expect_best(m, ME_SELL, -1);
    for (uint64_t i = 0; i < 3000; i++)
        apply_fast(m, cmd_cancel(i + 100001, i % 50 + 1));
    assert_int_equal(me_market_order_count(m), 0);
    assert_int_equal(me_market_check(m), 0);
    assert_int_equal(L.seq_errors, 0);
    me_market_free(m);
}

static void test_event_encoding(void **state)
{
    (void)state;
    struct me_event ev = {0};
    ev.seq = 0x0102030405060708ull;
    ev.type = ME_EV_TRADE;
    ev.price = -2;
    ev.ts = 9;
    uint8_t buf[ME_EVENT_WIRE_SIZE];
    assert_int_equal(me_event_encode(&ev, buf), ME_EVENT_WIRE_SIZE);
    assert_int_equal(buf[0], 0x08);
    assert_int_equal(buf[7], 0x01);
    assert_int_equal(buf[8], ME_EV_TRADE);
    assert_int_equal(buf[28], 0xfe); /* price, LE two's complement */
    assert_int_equal(buf[35], 0xff);
    assert_int_equal(buf[84], 9); /* ts: last field */
    /* FNV-1a test vectors. */
    assert_true(me_hash(ME_HASH_INIT, "", 0) == 0xcbf29ce484222325ull);
    assert_true(me_hash(ME_HASH_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
    char line[256];
    assert_int_equal(me_event_format(&ev, line, sizeof(line)), 0);
    assert_non_null(strstr(line, "TRADE"));
    assert_string_equal(me_reason_name(ME_R_STP), "stp");
    assert_string_equal(me_reason_name(250), "unknown");
    assert_string_equal(me_event_type_name(0), "UNKNOWN");
}

static void test_rules_validated(void **state)
{
    (void)state;
    struct me_rules good = test_rules();
    struct me_market *m = me_market_new(&good);
    assert_non_null(m);
    me_market_free(m);
    struct me_rules bad[8];
    for (int i = 0; i < 8; i++)
        bad[i] = good;
    bad[0].tick = 0;
    bad[1].lot = -1;
    bad[2].min_qty = 5; /* below lot */
    bad[3].max_qty = 10;
    bad[4].base_scale = 19;
    bad[5].stp_default = ME_STP_DEFAULT;
    bad[6].min_price = 0;
    bad[7].last_price = -1;
    for (int i = 0; i < 8; i++)
        assert_null(me_market_new(&bad[i]));
    assert_null(me_market_new(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_rests_and_full_fill),
        cmocka_unit_test(test_partial_fills_across_levels),
        cmocka_unit_test(test_maker_partial_fill),
        cmocka_unit_test(test_ioc_remainder_expires),
        cmocka_unit_test(test_fok),
        cmocka_unit_test(test_post_only),
        cmocka_unit_test(test_market_by_qty),
        cmocka_unit_test(test_market_by_quote_lot_rounding),
        cmocka_unit_test(test_stp_modes),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_all),
        cmocka_unit_test(test_validation_rejects),
        cmocka_unit_test(test_overflow_rejected),
        cmocka_unit_test(test_price_band),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_many_levels_and_growth),
        cmocka_unit_test(test_event_encoding),
        cmocka_unit_test(test_rules_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
