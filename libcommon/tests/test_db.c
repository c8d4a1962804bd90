/* Database pool configuration and failure paths that need no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/db.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/banned.h"

static void config_validation(void **state)
{
    (void)state;
    char err[256];
    static const struct {
        struct cm_db_pool_config cfg;
        const char *want;
    } bad[] = {
        {{.url = NULL}, "required"},
        {{.url = ""}, "required"},
        {{.url = "postgresql://[::1"}, "invalid"},
        {{.url = "nosuchkey=1"}, "invalid"},
        {{.url = "postgresql://h/db?bogus_option=1"}, "invalid"},
        {{.url = "postgresql://h/db", .max_conns = -1}, "range"},
        {{.url = "postgresql://h/db", .max_conns = 5000}, "range"},
        {{.url = "postgresql://h/db", .acquire_timeout_ms = -5}, "range"},
        {{.url = "postgresql://h/db", .isolation = (enum cm_db_isolation)9}, "range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_null(cm_db_pool_open(&bad[i].cfg, err, sizeof err));
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].want);
    }
    assert_null(cm_db_pool_open(NULL, err, sizeof err));
    struct cm_db_pool_config ok = {.url = "postgresql://user@127.0.0.1:1/db"};
    struct cm_db_pool *p = cm_db_pool_open(&ok, err, sizeof err);
    assert_non_null(p); /* no connection attempted yet */
    cm_db_pool_close(p);
    struct cm_db_pool_config kv = {.url = "host=127.0.0.1 port=1 dbname=x",
                                   .statement_timeout_ms = 100,
                                   .application_name = "t"};
    p = cm_db_pool_open(&kv, err, sizeof err);
    assert_non_null(p);
    cm_db_pool_close(p);
}

static void retryable_states(void **state)
{
    (void)state;
    assert_true(cm_db_is_retryable("40001"));
    assert_true(cm_db_is_retryable("40P01"));
    assert_false(cm_db_is_retryable("23505"));
    assert_false(cm_db_is_retryable(""));
    assert_false(cm_db_is_retryable(NULL));
}

static int never_called(struct cm_db_conn *c, void *ctx)
{
    (void)c;
    (void)ctx;
    fail_msg("transaction body ran without a connection");
    return 0;
}

static void unreachable_database(void **state)
{
    (void)state;
    char err[256];
    struct cm_db_pool_config cfg = {.url = "postgresql://u@127.0.0.1:1/db", .max_conns = 2};
    struct cm_db_pool *p = cm_db_pool_open(&cfg, err, sizeof err);
    assert_non_null(p);
    assert_null(cm_db_acquire(p, 1000));
    assert_int_equal(cm_db_pool_ping(p), -1);
    struct cm_db_error e;
    assert_int_equal(cm_db_tx(p, never_called, NULL, 3, &e), -1);
    assert_string_equal(e.sqlstate, "");
    assert_non_null(strstr(e.message, "connection"));
    int in_use = -1, idle = -1;
    cm_db_pool_stats(p, &in_use, &idle);
    assert_int_equal(in_use, 0);
    assert_int_equal(idle, 0);
    struct cm_metric *errors = cm_metric_counter("db_errors_total", "x", "kind");
    double v = 0;
    assert_int_equal(cm_metric_value(errors, &v, "connection"), 0);
    assert_true(v >= 3);
    assert_null(cm_db_query(NULL, "SELECT 1", 0, NULL));
    assert_string_equal(cm_db_sqlstate(NULL), "");
    cm_db_pool_close(p);
}

int main(void)
{
    cm_log_init("test_db", CM_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_validation),
        cmocka_unit_test(retryable_states),
        cmocka_unit_test(unreachable_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
