/*
 * Database pool and transactions against the fixture's PostgreSQL
 * (TEST_DATABASE_URL, TEST_PG_ADMIN_URL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "common/db.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/banned.h"

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run through tests/run.sh (the integration fixture)", name);
    return v;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct cm_db_pool *open_pool(int max)
{
    char err[256];
    struct cm_db_pool_config cfg = {.url = need_env("TEST_DATABASE_URL"),
                                    .max_conns = max,
                                    .acquire_timeout_ms = 10000,
                                    .application_name = "itest_db"};
    struct cm_db_pool *p = cm_db_pool_open(&cfg, err, sizeof err);
    if (!p)
        fail_msg("pool: %s", err);
    return p;
}

static void sql(struct cm_db_pool *p, const char *stmt)
{
    struct cm_db_conn *c = cm_db_acquire(p, -1);
    assert_non_null(c);
    if (cm_db_exec(c, stmt, 0, NULL, NULL) != 0)
        fail_msg("%s: %s", stmt, cm_db_errmsg(c));
    cm_db_release(p, c);
}

static long scalar_long(struct cm_db_pool *p, const char *stmt)
{
    struct cm_db_conn *c = cm_db_acquire(p, -1);
    assert_non_null(c);
    PGresult *r = cm_db_query(c, stmt, 0, NULL);
    if (!r)
        fail_msg("%s: %s", stmt, cm_db_errmsg(c));
    long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    cm_db_release(p, c);
    return v;
}

struct worker {
    struct cm_db_pool *pool;
    atomic_int *busy, *max_busy;
    int failures;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 50; i++) {
        struct cm_db_conn *c = cm_db_acquire(w->pool, -1);
        if (!c) {
            w->failures++;
            continue;
        }
        int b = atomic_fetch_add(w->busy, 1) + 1, m = atomic_load(w->max_busy);
        while (b > m && !atomic_compare_exchange_weak(w->max_busy, &m, b))
            ;
        const char *params[] = {"1"};
        if (cm_db_exec(c, "UPDATE counter SET n = n + $1::int", 1, params, NULL) != 0)
            w->failures++;
        atomic_fetch_sub(w->busy, 1);
        cm_db_release(w->pool, c);
    }
    return NULL;
}

static void pool_under_concurrency(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(4);
    sql(p, "CREATE TABLE counter (n int NOT NULL)");
    sql(p, "INSERT INTO counter VALUES (0)");
    atomic_int busy = 0, max_busy = 0;
    pthread_t t[16];
    struct worker w[16];
    for (int i = 0; i < 16; i++) {
        w[i] = (struct worker){.pool = p, .busy = &busy, .max_busy = &max_busy};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_true(atomic_load(&max_busy) <= 4);
    assert_int_equal(scalar_long(p, "SELECT n FROM counter"), 800);
    int in_use = -1, idle = -1;
    cm_db_pool_stats(p, &in_use, &idle);
    assert_int_equal(in_use, 0);
    assert_true(idle >= 1 && idle <= 4);
    struct cm_metric *g = cm_metric_gauge("db_pool_connections", "x", "state");
    double v = -1;
    assert_int_equal(cm_metric_value(g, &v, "in_use"), 0);
    assert_true(v == 0);
    assert_int_equal(cm_db_pool_ping(p), 0);
    cm_db_pool_close(p);
}

static void acquire_times_out(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(1);
    struct cm_db_conn *c = cm_db_acquire(p, -1);
    assert_non_null(c);
    int64_t t0 = now_ms();
    assert_null(cm_db_acquire(p, 200));
    int64_t dt = now_ms() - t0;
    assert_true(dt >= 180 && dt < 2000);
    cm_db_release(p, c);
    c = cm_db_acquire(p, 200);
    assert_non_null(c);
    cm_db_release(p, c);
    cm_db_pool_close(p);
}

static int insert_dup(struct cm_db_conn *c, void *ctx)
{
    (void)ctx;
    const char *params[] = {"alice"};
    if (cm_db_exec(c, "INSERT INTO users (name) VALUES ($1)", 1, params, NULL) != 0)
        return -1;
    return 0;
}

static void unique_violation_surfaces(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(2);
    sql(p, "CREATE TABLE users (id serial PRIMARY KEY, name text UNIQUE NOT NULL)");
    struct cm_db_conn *c = cm_db_acquire(p, -1);
    const char *params[] = {"alice"};
    long n = 0;
    assert_int_equal(cm_db_exec(c, "INSERT INTO users (name) VALUES ($1)", 1, params, &n), 0);
    assert_int_equal(n, 1);
    assert_null(cm_db_query(c, "INSERT INTO users (name) VALUES ($1)", 1, params));
    assert_string_equal(cm_db_sqlstate(c), CM_DB_UNIQUE_VIOLATION);
    assert_non_null(strstr(cm_db_errmsg(c), "duplicate key"));
    /* Parameters are data, never SQL. */
    const char *evil[] = {"x'); DROP TABLE users; --"};
    assert_int_equal(cm_db_exec(c, "INSERT INTO users (name) VALUES ($1)", 1, evil, NULL), 0);
    /* A NULL parameter is SQL NULL. */
    const char *nul[] = {NULL};
    assert_null(cm_db_query(c, "INSERT INTO users (name) VALUES ($1)", 1, nul));
    assert_string_equal(cm_db_sqlstate(c), "23502");
    cm_db_release(p, c);

    struct cm_db_error err;
    assert_int_equal(cm_db_tx(p, insert_dup, NULL, 3, &err), -1);
    assert_string_equal(err.sqlstate, CM_DB_UNIQUE_VIOLATION);
    assert_int_equal(scalar_long(p, "SELECT count(*) FROM users"), 2);
    struct cm_metric *errors = cm_metric_counter("db_errors_total", "x", "kind");
    double v = 0;
    assert_int_equal(cm_metric_value(errors, &v, "query"), 0);
    assert_true(v >= 3);
    cm_db_pool_close(p);
}

/* Write skew: both read the sum, both insert it. Under SERIALIZABLE one of
 * them must fail with 40001 and run again. */
struct skew {
    pthread_barrier_t *barrier;
    int attempts;
};

static int skew_fn(struct cm_db_conn *c, void *ctx)
{
    struct skew *s = ctx;
    s->attempts++;
    PGresult *r = cm_db_query(c, "SELECT coalesce(sum(v), 0)::text FROM skew", 0, NULL);
    if (!r)
        return -1;
    char sum[32];
    snprintf(sum, sizeof sum, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (s->attempts == 1)
        pthread_barrier_wait(s->barrier); /* both have read before either writes */
    const char *params[] = {sum};
    return cm_db_exec(c, "INSERT INTO skew (v) VALUES ($1::int + 1)", 1, params, NULL);
}

struct skew_thread {
    struct cm_db_pool *pool;
    struct skew s;
    int rc;
};

static void *skew_main(void *arg)
{
    struct skew_thread *t = arg;
    t->rc = cm_db_tx_iso(t->pool, CM_DB_SERIALIZABLE, skew_fn, &t->s, 5, NULL);
    return NULL;
}

static void serialization_failure_is_retried(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(4);
    sql(p, "CREATE TABLE skew (v int NOT NULL)");
    struct cm_metric *retries = cm_metric_counter("db_tx_retries_total", "x", NULL);
    double before = 0, after = 0;
    cm_metric_value(retries, &before);
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    struct skew_thread t[2] = {{.pool = p, .s = {.barrier = &b}},
                               {.pool = p, .s = {.barrier = &b}}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, skew_main, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&b);
    assert_int_equal(t[0].rc, 0);
    assert_int_equal(t[1].rc, 0);
    int attempts = t[0].s.attempts + t[1].s.attempts;
    assert_true(attempts >= 3); /* at least one retry */
    /* Serial outcome: values 1 and 2, not 1 and 1. */
    assert_int_equal(scalar_long(p, "SELECT sum(v) FROM skew"), 3);
    assert_int_equal(cm_metric_value(retries, &after), 0);
    assert_true(after - before == attempts - 2);
    cm_db_pool_close(p);
}

static int insert_then_fail(struct cm_db_conn *c, void *ctx)
{
    int *ret = ctx;
    if (cm_db_exec(c, "INSERT INTO rb VALUES (1)", 0, NULL, NULL) != 0)
        return -1;
    return *ret;
}

static void tx_rolls_back_on_failure(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(2);
    sql(p, "CREATE TABLE rb (v int)");
    int ret = -1;
    struct cm_db_error err;
    assert_int_equal(cm_db_tx(p, insert_then_fail, &ret, 3, &err), -1);
    assert_string_equal(err.sqlstate, "");
    ret = 7;
    assert_int_equal(cm_db_tx(p, insert_then_fail, &ret, 3, &err), 7);
    assert_int_equal(scalar_long(p, "SELECT count(*) FROM rb"), 0);
    ret = 0;
    assert_int_equal(cm_db_tx(p, insert_then_fail, &ret, 3, &err), 0);
    assert_int_equal(scalar_long(p, "SELECT count(*) FROM rb"), 1);
    cm_db_pool_close(p);
}

/* First attempt: the backend dies mid-transaction (as in a failover). */
static int die_once(struct cm_db_conn *c, void *ctx)
{
    int *attempts = ctx;
    if (++*attempts == 1) {
        cm_db_exec(c, "INSERT INTO lost VALUES (1)", 0, NULL, NULL);
        cm_db_exec(c, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL, NULL);
        return -1;
    }
    return cm_db_exec(c, "INSERT INTO lost VALUES (2)", 0, NULL, NULL);
}

static void tx_retried_after_connection_loss(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(2);
    sql(p, "CREATE TABLE lost (v int)");
    int attempts = 0;
    struct cm_db_error err;
    assert_int_equal(cm_db_tx(p, die_once, &attempts, 2, &err), 0);
    assert_int_equal(attempts, 2);
    assert_int_equal(scalar_long(p, "SELECT sum(v) FROM lost"), 2);
    cm_db_pool_close(p);
}

static int drop_postgres(const char *dep)
{
    return strcmp(dep, "postgres") == 0;
}

static void broken_connection_is_replaced(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(1);
    long pid = scalar_long(p, "SELECT pg_backend_pid()");
    char q[128];
    snprintf(q, sizeof q, "SELECT pg_terminate_backend(%ld)", pid);
    PGconn *admin = PQconnectdb(need_env("TEST_PG_ADMIN_URL"));
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    PQclear(PQexec(admin, q));
    /* Wait until the backend is really gone (its socket closed). */
    snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE pid = %ld", pid);
    int64_t end = now_ms() + 5000;
    int gone = 0;
    while (!gone && now_ms() < end) {
        PGresult *r = PQexec(admin, q);
        gone = strcmp(PQgetvalue(r, 0, 0), "0") == 0;
        PQclear(r);
    }
    PQfinish(admin);
    assert_true(gone);
    long pid2 = scalar_long(p, "SELECT pg_backend_pid()"); /* no error on the way */
    assert_true(pid2 != pid);

    cm_db_set_drop_hook(drop_postgres);
    assert_null(cm_db_acquire(p, 100));
    assert_int_equal(cm_db_pool_ping(p), -1);
    cm_db_set_drop_hook(NULL);
    assert_int_equal(cm_db_pool_ping(p), 0);
    cm_db_pool_close(p);
}

/* Prepared once per connection, then only executed; a new session (the
 * backend killed) or one that lost its statements (DISCARD ALL) still
 * answers; errors carry their SQLSTATE as with cm_db_query. */
static void prepared_statements(void **state)
{
    (void)state;
    struct cm_db_pool *p = open_pool(1);
    static const char *const sqls[] = {"SELECT $1::int + 1", "SELECT $1::int * 10"};
    for (int round = 0; round < 3; round++) {
        struct cm_db_conn *c = cm_db_acquire(p, -1);
        assert_non_null(c);
        for (int i = 0; i < 5; i++) {
            const char *v[1] = {round == 1 && i == 2 ? "7" : "41"};
            PGresult *r =
                cm_db_query_prepared(c, i % 2 ? "itest_times" : "itest_plus", sqls[i % 2], 1, v);
            if (!r)
                fail_msg("round %d: %s", round, cm_db_errmsg(c));
            long want = i % 2 ? 410 : (round == 1 && i == 2 ? 8 : 42);
            assert_int_equal(strtol(PQgetvalue(r, 0, 0), NULL, 10), want);
            PQclear(r);
        }
        PGresult *r = cm_db_query(c, "SELECT count(*) FROM pg_prepared_statements", 0, NULL);
        assert_non_null(r);
        assert_int_equal(strtol(PQgetvalue(r, 0, 0), NULL, 10), 2);
        PQclear(r);
        const char *bad[1] = {"x"};
        assert_null(cm_db_query_prepared(c, "itest_plus", sqls[0], 1, bad));
        assert_string_equal(cm_db_sqlstate(c), "22P02");
        if (round == 0)
            assert_int_equal(cm_db_exec(c, "DISCARD ALL", 0, NULL, NULL), 0);
        cm_db_release(p, c);
        if (round == 1) { /* a new backend: prepared again */
            long pid = scalar_long(p, "SELECT pg_backend_pid()");
            char q[128];
            snprintf(q, sizeof q, "SELECT pg_terminate_backend(%ld)", pid);
            PGconn *admin = PQconnectdb(need_env("TEST_PG_ADMIN_URL"));
            assert_int_equal(PQstatus(admin), CONNECTION_OK);
            PQclear(PQexec(admin, q));
            snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE pid = %ld", pid);
            int64_t end = now_ms() + 5000;
            int gone = 0;
            while (!gone && now_ms() < end) {
                PGresult *a = PQexec(admin, q);
                gone = strcmp(PQgetvalue(a, 0, 0), "0") == 0;
                PQclear(a);
            }
            PQfinish(admin);
            assert_true(gone);
        }
    }
    cm_db_pool_close(p);
}

int main(void)
{
    cm_log_init("itest_db", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_under_concurrency),
        cmocka_unit_test(acquire_times_out),
        cmocka_unit_test(unique_violation_surfaces),
        cmocka_unit_test(serialization_failure_is_retried),
        cmocka_unit_test(tx_rolls_back_on_failure),
        cmocka_unit_test(tx_retried_after_connection_loss),
        cmocka_unit_test(broken_connection_is_replaced),
        cmocka_unit_test(prepared_statements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
