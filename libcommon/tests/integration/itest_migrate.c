/*
 * Migrations against the fixture's PostgreSQL (TEST_DATABASE_URL): four
 * concurrent runners apply each file exactly once; a changed applied file
 * is refused; a failing file leaves nothing behind. Each case works in its
 * own schema of the test database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "common/migrate.h"
#include "common/banned.h"

#define SRC_DIR "libcommon/tests/integration/migrations"

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run through tests/run.sh (the integration fixture)", name);
    return v;
}

/* One-value query on a fresh connection; caller frees. */
static char *scalar(const char *url, const char *sql)
{
    PGconn *pg = PQconnectdb(url);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    char *v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
    return v;
}

static void assert_scalar(const char *url, const char *sql, const char *want)
{
    char *v = scalar(url, sql);
    assert_string_equal(v, want);
    free(v);
}

struct runner {
    const char *url;
    int rc;
};

static void *run_migrator(void *arg)
{
    struct runner *r = arg;
    r->rc = cm_migrate_run(r->url, SRC_DIR, "itest", "mig_conc");
    return NULL;
}

static void concurrent_runners_apply_once(void **state)
{
    (void)state;
    const char *url = need_env("TEST_DATABASE_URL");
    pthread_t t[4];
    struct runner r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct runner){.url = url, .rc = -2};
        assert_int_equal(pthread_create(&t[i], NULL, run_migrator, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, 0);
    }
    assert_scalar(url,
                  "SELECT string_agg(version || ':' || name, ',' ORDER BY version) "
                  "FROM mig_conc.schema_migrations WHERE service = 'itest'",
                  "1:001_create_accounts.sql,2:002_seed_accounts.sql,3:003_add_note.sql");
    assert_scalar(url, "SELECT count(*) FROM mig_conc.accounts", "1");
    assert_scalar(url,
                  "SELECT bool_and(length(checksum) = 64 AND applied_at <= now()) "
                  "FROM mig_conc.schema_migrations",
                  "t");
    /* Run again: nothing to do, still fine. */
    assert_int_equal(cm_migrate_run(url, SRC_DIR, "itest", "mig_conc"), 0);
    assert_scalar(url, "SELECT count(*) FROM mig_conc.schema_migrations", "3");
}

static void write_file(const char *dir, const char *name, const char *content)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void changed_file_is_refused(void **state)
{
    (void)state;
    const char *url = need_env("TEST_DATABASE_URL");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/mig_sum", need_env("TEST_TMPDIR"));
    mkdir(dir, 0755);
    write_file(dir, "001_t.sql", "CREATE TABLE t (id int);");
    write_file(dir, "002_u.sql", "CREATE TABLE u (id int);");
    assert_int_equal(cm_migrate_run(url, dir, "sum", "mig_sum"), 0);

    write_file(dir, "002_u.sql", "CREATE TABLE u (id bigint);");
    write_file(dir, "003_v.sql", "CREATE TABLE v (id int);");
    assert_int_equal(cm_migrate_run(url, dir, "sum", "mig_sum"), -1);
    assert_scalar(url, "SELECT count(*) FROM mig_sum.schema_migrations", "2");
    assert_scalar(url, "SELECT to_regclass('mig_sum.v') IS NULL", "t");

    /* Restoring the file lets the new one through. */
    write_file(dir, "002_u.sql", "CREATE TABLE u (id int);");
    assert_int_equal(cm_migrate_run(url, dir, "sum", "mig_sum"), 0);
    assert_scalar(url, "SELECT count(*) FROM mig_sum.schema_migrations", "3");
}

static void failing_file_rolls_back(void **state)
{
    (void)state;
    const char *url = need_env("TEST_DATABASE_URL");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/mig_fail", need_env("TEST_TMPDIR"));
    mkdir(dir, 0755);
    write_file(dir, "001_ok.sql", "CREATE TABLE ok (id int);");
    write_file(dir, "002_bad.sql", "CREATE TABLE half (id int); SELECT no_such_function();");
    assert_int_equal(cm_migrate_run(url, dir, "fail", "mig_fail"), -1);
    assert_scalar(url, "SELECT string_agg(name, ',') FROM mig_fail.schema_migrations",
                  "001_ok.sql");
    assert_scalar(url, "SELECT to_regclass('mig_fail.half') IS NULL", "t");
    /* Duplicate versions and a missing directory are refused. */
    write_file(dir, "001_dup.sql", "SELECT 1;");
    assert_int_equal(cm_migrate_run(url, dir, "fail", "mig_fail"), -1);
    assert_int_equal(cm_migrate_run(url, "/nonexistent/migrations", "fail", "mig_fail"), -1);
    assert_int_equal(
        cm_migrate_run("postgresql://127.0.0.1:1/x?connect_timeout=2", dir, "fail", NULL), -1);
}

int main(void)
{
    cm_log_init("itest_migrate", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_runners_apply_once),
        cmocka_unit_test(changed_file_is_refused),
        cmocka_unit_test(failing_file_rolls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
