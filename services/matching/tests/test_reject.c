/* The service-side additions to the core: me_market_reject (a rejection in
 * the gap-free stream without touching the book, surviving snapshots) and
 * the per-side order/level counts behind the depth gauge. */
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

static void test_reject_takes_one_seq(void **state)
{
    (void)state;
    struct me_market *m = me_market_new(&(struct me_rules){0});
    assert_null(m); /* invalid rules */
    struct me_rules r = test_rules();
    m = me_market_new(&r);
    assert_non_null(m);
    evlog_init(&L, 1);
    struct me_cmd c = cmd_limit(7, 3, ME_BUY, 1000, 100, ME_GTC);
    assert_int_equal(me_market_apply(m, &c, evlog_emit, &L), 0);
    c = cmd_limit(8, 4, ME_SELL, 1100, 100, ME_GTC);
    c.ts = 99;
    assert_int_equal(me_market_reject(m, &c, ME_R_INVALID, evlog_emit, &L), 0);
    assert_int_equal(L.n, 2);
    const struct me_event *ev = &L.ev[1];
    assert_int_equal(ev->seq, 2);
    assert_int_equal(ev->type, ME_EV_REJECTED);
    assert_int_equal(ev->cmd_type, ME_CMD_PLACE);
    assert_int_equal(ev->reason, ME_R_INVALID);
    assert_int_equal(ev->order_id, 8);
    assert_int_equal(ev->user_id, 4);
    assert_int_equal(ev->side, ME_SELL);
    assert_int_equal(ev->ts, 99);
    /* the book is untouched */
    assert_int_equal(me_market_order_count(m), 1);
    assert_int_equal(me_market_check(m), 0);
    /* not a rejection reason: nothing emitted, seq unchanged */
    assert_int_equal(me_market_reject(m, &c, ME_R_NONE, evlog_emit, &L), -1);
    assert_int_equal(me_market_reject(m, &c, ME_R_MAX_, evlog_emit, &L), -1);
    assert_int_equal(L.n, 2);
    assert_int_equal(me_market_seq(m), 2);
    /* seq survives a snapshot round trip and continues gap-free */
    uint8_t *snap;
    size_t len;
    assert_int_equal(me_market_snapshot(m, &snap, &len), 0);
    struct me_market *m2 = me_market_restore(snap, len);
    free(snap);
    assert_non_null(m2);
    assert_int_equal(me_market_seq(m2), 2);
    c = cmd_cancel_all(9);
    assert_int_equal(me_market_reject(m2, &c, ME_R_INVALID, evlog_emit, &L), 0);
    assert_int_equal(L.ev[2].seq, 3);
    assert_int_equal(L.ev[2].cmd_type, ME_CMD_CANCEL_ALL);
    assert_int_equal(L.seq_errors, 0);
    me_market_free(m2);
    me_market_free(m);
}

static void test_side_counts(void **state)
{
    (void)state;
    struct me_rules r = test_rules();
    struct me_market *m = me_market_new(&r);
    assert_non_null(m);
    evlog_init(&L, 1);
    struct me_cmd cs[] = {
        cmd_limit(1, 1, ME_BUY, 1000, 100, ME_GTC),
        cmd_limit(2, 1, ME_BUY, 1000, 100, ME_GTC),
        cmd_limit(3, 2, ME_BUY, 900, 100, ME_GTC),
        cmd_limit(4, 2, ME_SELL, 1200, 100, ME_GTC),
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        assert_int_equal(me_market_apply(m, &cs[i], evlog_emit, &L), 0);
    assert_int_equal(me_market_side_orders(m, ME_BUY), 3);
    assert_int_equal(me_market_side_orders(m, ME_SELL), 1);
    assert_int_equal(me_market_side_levels(m, ME_BUY), 2);
    assert_int_equal(me_market_side_levels(m, ME_SELL), 1);
    assert_int_equal(me_market_side_orders(m, 5), 0);
    assert_int_equal(me_market_side_levels(m, 5), 0);
    me_market_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_takes_one_seq),
        cmocka_unit_test(test_side_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
