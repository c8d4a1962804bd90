/* Snapshot/restore: exact round trip, continued identical behaviour, and
 * rejection of damaged or crafted bytes (restore input is hostile). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"

#include "common/banned.h"

/* Layout constants mirrored from snapshot.c's format comment: must stay in
 * sync with it (the tests below fail loudly if they drift). */
#define ORDERS_AT (16 + 68 + 32)
#define ORDER_SIZE 58
#define COUNT_AT (ORDERS_AT - 8)

static struct evlog A, B;

static void apply_to(struct me_market *m, struct evlog *l, struct me_cmd c)
{
    assert_int_equal(me_market_apply(m, &c, evlog_emit, l), 0);
}

static struct me_market *sample_market(void)
{
    struct me_rules r = test_rules();
    r.band_bps = 2500;
    r.last_price = 1000;
    r.stp_default = ME_STP_CANCEL_MAKER;
    struct me_market *m = me_market_new(&r);
    assert_non_null(m);
    evlog_init(&A, 1);
    apply_to(m, &A, cmd_limit(1, 1, ME_BUY, 900, 100, ME_GTC));
    apply_to(m, &A, cmd_limit(2, 2, ME_BUY, 1000, 100, ME_GTC));
    apply_to(m, &A, cmd_limit(3, 3, ME_BUY, 1000, 50, ME_GTC));
    apply_to(m, &A, cmd_limit(4, 1, ME_SELL, 1100, 100, ME_GTC));
    apply_to(m, &A, cmd_limit(5, 2, ME_SELL, 1200, 100, ME_GTC));
    apply_to(m, &A, cmd_limit(6, 4, ME_SELL, 1000, 30, ME_GTC)); /* trades */
    return m;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void reseal(uint8_t *buf, size_t len)
{
    put64(buf + len - 8, me_hash(ME_HASH_INIT, buf, len - 8));
}

static void test_round_trip_and_continue(void **state)
{
    (void)state;
    struct me_market *m = sample_market();
    uint8_t *s1, *s2;
    size_t n1, n2;
    assert_int_equal(me_market_snapshot(m, &s1, &n1), 0);
    assert_int_equal(n1, ORDERS_AT + 5 * ORDER_SIZE + 8);
    struct me_market *r = me_market_restore(s1, n1);
    assert_non_null(r);
    assert_int_equal(me_market_snapshot(r, &s2, &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(s1, s2, n1);
    assert_int_equal(me_market_seq(r), me_market_seq(m));
    assert_int_equal(me_market_last_price(r), 1000);
    assert_int_equal(me_market_order_count(r), 5);
    assert_int_equal(me_market_rules(r)->stp_default, ME_STP_CANCEL_MAKER);
    struct me_order_info oi;
    assert_int_equal(me_market_find(r, 2, &oi), 0);
    assert_int_equal(oi.remaining, 70);
    assert_int_equal(oi.filled, 30);
    /* Same commands on both: identical events (time priority kept: 2
     * before 3 at 1000). */
    evlog_init(&A, me_market_seq(m) + 1);
    evlog_init(&B, me_market_seq(r) + 1);
    const struct me_cmd rest[] = {
        cmd_limit(7, 5, ME_SELL, 1000, 100, ME_GTC),
        cmd_market(8, 1, ME_BUY, 0, 200, ME_IOC),
        cmd_cancel(1, 1),
        cmd_cancel_all(2),
        cmd_limit(9, 1, ME_SELL, 900, 1000, ME_GTC),
    };
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
        apply_to(m, &A, rest[i]);
        apply_to(r, &B, rest[i]);
    }
    assert_true(A.total > 8);
    assert_int_equal(A.total, B.total);
    assert_true(A.hash == B.hash);
    assert_int_equal(B.seq_errors, 0);
    assert_int_equal(A.ev[1].maker_order_id, 2);
    free(s1);
    free(s2);
    me_market_free(r);
    me_market_free(m);
}

static void test_empty_market(void **state)
{
    (void)state;
    struct me_rules ru = test_rules();
    struct me_market *m = me_market_new(&ru);
    uint8_t *s;
    size_t n;
    assert_int_equal(me_market_snapshot(m, &s, &n), 0);
    struct me_market *r = me_market_restore(s, n);
    assert_non_null(r);
    assert_int_equal(me_market_order_count(r), 0);
    assert_int_equal(me_market_seq(r), 0);
    free(s);
    me_market_free(r);
    me_market_free(m);
}

static void test_damaged_bytes_rejected(void **state)
{
    (void)state;
    struct me_market *m = sample_market();
    uint8_t *s;
    size_t n;
    assert_int_equal(me_market_snapshot(m, &s, &n), 0);
    assert_null(me_market_restore(NULL, n));
    for (size_t len = 0; len < n; len += 7) /* every truncation */
        assert_null(me_market_restore(s, len));
    uint8_t *c = malloc(n);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) { /* every single-byte flip */
        memcpy(c, s, n);
        c[i] ^= 0x40;
        assert_null(me_market_restore(c, n));
    }
    free(c);
    free(s);
    me_market_free(m);
}

struct craft_case {
    const char *name;
    size_t at; /* byte offset to overwrite with value (8 bytes LE) */
    uint64_t value;
};

static void test_crafted_content_rejected(void **state)
{
    (void)state;
    /* Orders in the sample: bids 2 (1000), 3 (1000), 1 (900), asks 4, 5. */
    const size_t o0 = ORDERS_AT, o1 = ORDERS_AT + ORDER_SIZE, o2 = ORDERS_AT + 2 * ORDER_SIZE,
                 o3 = ORDERS_AT + 3 * ORDER_SIZE;
    const struct craft_case cases[] = {
        {"zero remaining", o0 + 32, 0},
        {"remaining off lot", o0 + 32, 75},
        {"negative remaining", o0 + 32, (uint64_t)-10},
        {"price off tick", o0 + 24, 1050},
        {"price above max", o0 + 24, 2000000000000ull},
        {"worse level first", o0 + 24, 800},
        {"crossed book", o3 + 24, 900},
        {"duplicate id", o1, 2},
        {"id zero", o2, 0},
        {"prio not increasing in level", o1 + 16, 1},
        {"prio beyond next_prio", o2 + 16, 1000000},
        {"order count too large", COUNT_AT, 6},
        {"order count huge", COUNT_AT, UINT64_MAX / 2},
        {"bad tick in rules", 16 + 8, 0},
        {"version", 8, 2},
    };
    struct me_market *m = sample_market();
    uint8_t *s;
    size_t n;
    assert_int_equal(me_market_snapshot(m, &s, &n), 0);
    uint8_t *c = malloc(n);
    assert_non_null(c);
    memcpy(c, s, n);
    reseal(c, n); /* resealing untouched bytes is a no-op: still valid */
    struct me_market *ok = me_market_restore(c, n);
    assert_non_null(ok);
    me_market_free(ok);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        memcpy(c, s, n);
        put64(c + cases[k].at, cases[k].value);
        reseal(c, n);
        print_message("# crafted case: %s\n", cases[k].name);
        assert_null(me_market_restore(c, n));
    }
    /* Side byte and stp byte. */
    memcpy(c, s, n);
    c[o0 + 56] = 7;
    reseal(c, n);
    assert_null(me_market_restore(c, n));
    memcpy(c, s, n);
    c[o0 + 57] = ME_STP_DEFAULT;
    reseal(c, n);
    assert_null(me_market_restore(c, n));
    free(c);
    free(s);
    me_market_free(m);
}

/* Random multi-byte damage with a valid checksum: restore must never
 * crash or return a market that breaks its invariants. */
static void test_random_damage_resealed(void **state)
{
    (void)state;
    struct me_market *m = sample_market();
    uint8_t *s;
    size_t n;
    assert_int_equal(me_market_snapshot(m, &s, &n), 0);
    uint8_t *c = malloc(n);
    assert_non_null(c);
    uint64_t x = 99;
    int restored = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(c, s, n);
        int flips = 1 + round % 4;
        for (int k = 0; k < flips; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            c[(x >> 33) % (n - 8)] = (uint8_t)(x >> 20);
        }
        reseal(c, n);
        struct me_market *r = me_market_restore(c, n);
        if (r) {
            restored++;
            assert_int_equal(me_market_check(r), 0);
            me_market_free(r);
        }
    }
    /* Some mutations are harmless (user ids, filled amounts, seq). */
    assert_true(restored > 0);
    free(c);
    free(s);
    me_market_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_continue),
        cmocka_unit_test(test_empty_market),
        cmocka_unit_test(test_damaged_bytes_rejected),
        cmocka_unit_test(test_crafted_content_rejected),
        cmocka_unit_test(test_random_damage_resealed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
