/* Tests for common/breaker.h, on a fake clock (no real waiting). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/breaker.h"
#include "common/log.h"
#include "common/metrics.h"

#include "common/banned.h"

static int64_t fake_ms;
static int devnull = -1;

static int64_t fake_clock(void *ctx)
{
    return *(int64_t *)ctx;
}

static int setup(void **state)
{
    (void)state;
    cm_log_init("test_breaker", CM_LOG_ERROR);
    devnull = open("/dev/null", O_WRONLY);
    cm_log_set_fd(devnull);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_log_set_fd(1);
    close(devnull);
    return 0;
}

static int reset(void **state)
{
    (void)state;
    fake_ms = 1000000;
    cm_metrics_reset();
    return 0;
}

static struct cm_breaker *mk(int consecutive, int window, int min_calls, int pct, int probes)
{
    struct cm_breaker_config c = {
        .name = "risk",
        .consecutive_failures = consecutive,
        .window = window,
        .min_calls = min_calls,
        .failure_rate_pct = pct,
        .open_ms = 5000,
        .half_open_probes = probes,
        .clock = fake_clock,
        .clock_ctx = &fake_ms,
    };
    struct cm_breaker *b = cm_breaker_new(&c);
    assert_non_null(b);
    return b;
}

static double gauge(const char *upstream)
{
    struct cm_metric *m = cm_metric_gauge("circuit_breaker_state",
                                          "Circuit breaker state per upstream: 0 closed, 1 open, "
                                          "2 half-open.",
                                          "upstream");
    double v = -1;
    assert_non_null(m);
    assert_int_equal(cm_metric_value(m, &v, upstream), 0);
    return v;
}

static void call(struct cm_breaker *b, int success)
{
    assert_true(cm_breaker_allow(b));
    cm_breaker_record(b, success);
}

static void test_opens_after_consecutive_failures(void **state)
{
    (void)state;
    struct cm_breaker *b = mk(3, 10, 0, 0, 1);
    assert_int_equal(gauge("risk"), CM_BREAKER_CLOSED);
    call(b, 0);
    call(b, 0);
    call(b, 1); /* a success resets the streak */
    call(b, 0);
    call(b, 0);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_CLOSED);
    call(b, 0);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    assert_int_equal(gauge("risk"), CM_BREAKER_OPEN);
    /* rejects while open */
    for (int i = 0; i < 5; i++)
        assert_false(cm_breaker_allow(b));
    fake_ms += 4999;
    assert_false(cm_breaker_allow(b));
    cm_breaker_free(b);
}

static void test_half_open_then_close(void **state)
{
    (void)state;
    struct cm_breaker *b = mk(2, 10, 0, 0, 2);
    call(b, 0);
    call(b, 0);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    fake_ms += 5000;
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_HALF_OPEN);
    assert_int_equal(gauge("risk"), CM_BREAKER_HALF_OPEN);
    /* K = 2 probes, the third is refused */
    assert_true(cm_breaker_allow(b));
    assert_true(cm_breaker_allow(b));
    assert_false(cm_breaker_allow(b));
    cm_breaker_record(b, 1);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_CLOSED);
    assert_int_equal(gauge("risk"), CM_BREAKER_CLOSED);
    /* fresh window: one failure does not reopen */
    call(b, 0);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_CLOSED);
    cm_breaker_free(b);
}

static void test_half_open_failure_reopens(void **state)
{
    (void)state;
    struct cm_breaker *b = mk(1, 10, 0, 0, 1);
    call(b, 0);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    fake_ms += 5000;
    assert_true(cm_breaker_allow(b));
    cm_breaker_record(b, 0);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    /* the open period restarts from the failed probe */
    fake_ms += 4999;
    assert_false(cm_breaker_allow(b));
    fake_ms += 1;
    assert_true(cm_breaker_allow(b));
    cm_breaker_free(b);
}

static void test_lost_probe_does_not_wedge(void **state)
{
    (void)state;
    struct cm_breaker *b = mk(1, 10, 0, 0, 1);
    call(b, 0);
    fake_ms += 5000;
    assert_true(cm_breaker_allow(b)); /* probe never recorded */
    assert_false(cm_breaker_allow(b));
    fake_ms += 5000;
    assert_true(cm_breaker_allow(b));
    cm_breaker_free(b);
}

static void test_failure_ratio_window(void **state)
{
    (void)state;
    /* 50 % of the last 10, at least 10 calls; streak rule out of the way */
    struct cm_breaker *b = mk(100, 10, 10, 50, 1);
    for (int i = 0; i < 9; i++)
        call(b, i % 2); /* 0,1,0,1,... : 5 failures in 9 calls */
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_CLOSED); /* below min_calls */
    call(b, 1);                                                   /* 10 calls, 5 failures = 50 % */
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    cm_breaker_free(b);

    /* the window rolls: old failures fall out */
    b = mk(100, 4, 4, 75, 1);
    call(b, 0);
    call(b, 0);
    call(b, 1);
    call(b, 1); /* 2/4 */
    call(b, 0); /* drops a failure: 2/4 */
    call(b, 1); /* drops a failure: 1/4 */
    call(b, 0); /* drops a success: 2/4 */
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_CLOSED);
    call(b, 0); /* drops a success: 3/4 = 75 % */
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    cm_breaker_free(b);
}

static void test_late_results_ignored_while_open(void **state)
{
    (void)state;
    struct cm_breaker *b = mk(1, 10, 0, 0, 1);
    assert_true(cm_breaker_allow(b)); /* in flight */
    call(b, 0);                       /* opens */
    cm_breaker_record(b, 1);          /* the in-flight one finishes late */
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    cm_breaker_free(b);
}

static void test_bad_config(void **state)
{
    (void)state;
    struct cm_breaker_config c = {.failure_rate_pct = 101};
    assert_null(cm_breaker_new(&c));
    c.failure_rate_pct = 0;
    c.window = CM_BREAKER_MAX_WINDOW + 1;
    assert_null(cm_breaker_new(&c));
    c.window = 0;
    c.open_ms = -1;
    assert_null(cm_breaker_new(&c));
    c.open_ms = 0;
    c.consecutive_failures = -1;
    assert_null(cm_breaker_new(&c));
    c.consecutive_failures = 0;
    c.half_open_probes = -1;
    assert_null(cm_breaker_new(&c));
    /* all defaults */
    struct cm_breaker *b = cm_breaker_new(NULL);
    assert_non_null(b);
    assert_string_equal(cm_breaker_name(b), "default");
    for (int i = 0; i < 4; i++)
        call(b, 0);
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_CLOSED);
    call(b, 0); /* default streak of 5 */
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_OPEN);
    cm_breaker_free(b);
    assert_string_equal(cm_breaker_state_name(CM_BREAKER_HALF_OPEN), "half_open");
}

struct hammer {
    struct cm_breaker *b;
    int allowed;
};

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 20000; i++) {
        if (cm_breaker_allow(h->b)) {
            h->allowed++;
            cm_breaker_record(h->b, i % 3 != 0);
        }
    }
    return NULL;
}

/* Under ASan/TSan-ish load nothing breaks and counts stay sane. */
static void test_threads(void **state)
{
    (void)state;
    struct cm_breaker_config c = {
        .name = "threads", .consecutive_failures = 1000, .failure_rate_pct = 90};
    struct cm_breaker *b = cm_breaker_new(&c);
    struct hammer h[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        h[i].b = b;
        h[i].allowed = 0;
        assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].allowed, 20000); /* 33 % failures never open it */
    }
    assert_int_equal(cm_breaker_get_state(b), CM_BREAKER_CLOSED);
    cm_breaker_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_opens_after_consecutive_failures, reset),
        cmocka_unit_test_setup(test_half_open_then_close, reset),
        cmocka_unit_test_setup(test_half_open_failure_reopens, reset),
        cmocka_unit_test_setup(test_lost_probe_does_not_wedge, reset),
        cmocka_unit_test_setup(test_failure_ratio_window, reset),
        cmocka_unit_test_setup(test_late_results_ignored_while_open, reset),
        cmocka_unit_test_setup(test_bad_config, reset),
        cmocka_unit_test_setup(test_threads, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
