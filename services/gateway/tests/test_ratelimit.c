/* Token bucket arithmetic, and the local limiter used when Redis is down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "common/metrics.h"
#include "../gateway.h"
#include "common/banned.h"

static void new_bucket_is_full(void **state)
{
    (void)state;
    struct gw_bucket b = {0};
    struct gw_limit l = {.rate = 2, .burst = 5};
    struct gw_take t;
    gw_bucket_take(&b, &l, 1000, &t);
    assert_true(t.allowed);
    assert_int_equal(t.limit, 5);
    assert_int_equal(t.remaining, 4);
    assert_int_equal(t.reset_s, 1); /* one token at 2/s: 0.5 s, rounded up */
}

static void burst_then_refuse_then_refill(void **state)
{
    (void)state;
    struct gw_bucket b = {0};
    struct gw_limit l = {.rate = 2, .burst = 3};
    struct gw_take t;
    for (int i = 0; i < 3; i++) {
        gw_bucket_take(&b, &l, 1000, &t);
        assert_true(t.allowed);
    }
    assert_int_equal(t.remaining, 0);
    gw_bucket_take(&b, &l, 1000, &t);
    assert_false(t.allowed);
    assert_int_equal(t.retry_ms, 500);
    assert_int_equal(t.reset_s, 2);   /* 3 tokens at 2/s */
    gw_bucket_take(&b, &l, 1250, &t); /* half a token: still no */
    assert_false(t.allowed);
    assert_int_equal(t.retry_ms, 250);
    gw_bucket_take(&b, &l, 1500, &t);
    assert_true(t.allowed);
    assert_int_equal(t.remaining, 0);
    /* A long pause refills to the burst, not beyond. */
    gw_bucket_take(&b, &l, 100000, &t);
    assert_true(t.allowed);
    assert_int_equal(t.remaining, 2);
}

static void clock_going_back_does_not_add(void **state)
{
    (void)state;
    struct gw_bucket b = {0};
    struct gw_limit l = {.rate = 1, .burst = 1};
    struct gw_take t;
    gw_bucket_take(&b, &l, 5000, &t);
    assert_true(t.allowed);
    gw_bucket_take(&b, &l, 1000, &t);
    assert_false(t.allowed);
}

static void fractional_rates(void **state)
{
    (void)state;
    struct gw_bucket b = {0};
    struct gw_limit l = {.rate = 0.5, .burst = 1};
    struct gw_take t;
    gw_bucket_take(&b, &l, 1, &t);
    assert_true(t.allowed);
    gw_bucket_take(&b, &l, 1001, &t);
    assert_false(t.allowed);
    assert_int_equal(t.retry_ms, 1000);
    gw_bucket_take(&b, &l, 2001, &t);
    assert_true(t.allowed);
}

static void local_limiter_without_redis(void **state)
{
    (void)state;
    struct gw_limiter *l = gw_limiter_new(NULL);
    assert_non_null(l);
    struct gw_class cls = {.name = "t",
                           .has_user = 1,
                           .has_ip = 1,
                           .user = {.rate = 0.001, .burst = 2},
                           .ip = {.rate = 0.001, .burst = 3}};
    struct gw_rl_result r;
    gw_limiter_check(l, &cls, "7", "10.0.0.1", NULL, &r);
    assert_true(r.take.allowed);
    assert_true(r.fallback);
    assert_int_equal(r.take.limit, 2); /* the tighter bucket is reported */
    assert_int_equal(r.take.remaining, 1);
    gw_limiter_check(l, &cls, "7", "10.0.0.1", NULL, &r);
    assert_true(r.take.allowed);
    gw_limiter_check(l, &cls, "7", "10.0.0.1", NULL, &r);
    assert_false(r.take.allowed);
    assert_int_equal(r.refused_by, GW_RL_USER);
    /* Another user from the same address has one ip token left. */
    gw_limiter_check(l, &cls, "8", "10.0.0.1", NULL, &r);
    assert_true(r.take.allowed);
    gw_limiter_check(l, &cls, "9", "10.0.0.1", NULL, &r);
    assert_false(r.take.allowed);
    assert_int_equal(r.refused_by, GW_RL_IP);
    /* Anonymous callers only have the ip bucket. */
    gw_limiter_check(l, &cls, NULL, "10.0.0.2", NULL, &r);
    assert_true(r.take.allowed);
    assert_int_equal(r.take.limit, 3);
    double v = -1;
    struct cm_metric *m = cm_metric_counter("gateway_ratelimit_rejections_total",
                                            "Requests rejected with 429 by the rate limiter; "
                                            "scope is ip, user or global.",
                                            "scope");
    assert_int_equal(cm_metric_value(m, &v, "user"), 0);
    assert_true(v == 1.0);
    gw_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_bucket_is_full),
        cmocka_unit_test(burst_then_refuse_then_refill),
        cmocka_unit_test(clock_going_back_does_not_add),
        cmocka_unit_test(fractional_rates),
        cmocka_unit_test(local_limiter_without_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
