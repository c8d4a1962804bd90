/* /healthz, /readyz with dependency checks, draining, /metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/faults.h"
#include "common/health.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "support/http_test_client.h"
#include "common/banned.h"

static struct cm_http_server *srv;
static int port;

static int check_ok(void *ctx, char *msg, size_t n)
{
    (void)ctx;
    (void)msg;
    (void)n;
    return 0;
}

static _Atomic int db_down;
static int check_db(void *ctx, char *msg, size_t n)
{
    (void)ctx;
    if (atomic_load(&db_down)) {
        snprintf(msg, n, "connection refused");
        return -1;
    }
    return 0;
}

static _Atomic int hang;
static int check_slow(void *ctx, char *msg, size_t n)
{
    (void)ctx;
    (void)msg;
    (void)n;
    if (atomic_load(&hang)) {
        /* Overruns its 100 ms budget; the probe must not wait for it. */
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    cm_metrics_reset();
    atomic_store(&db_down, 0);
    atomic_store(&hang, 0);
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.threads = 2;
    srv = cm_http_server_new(&cfg, NULL, 0);
    assert_non_null(srv);
    assert_int_equal(cm_health_add_check(srv, "postgres", check_db, NULL, 500), 0);
    assert_int_equal(cm_health_add_check(srv, "redis", check_ok, NULL, 0), 0);
    assert_int_equal(cm_health_add_check(srv, "kafka", check_slow, NULL, 100), 0);
    assert_int_equal(cm_http_server_start(srv), 0);
    port = cm_http_server_port(srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(srv);
    cm_faults_clear();
    return 0;
}

static cJSON *get_json(const char *path, int *status)
{
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", path, NULL, NULL, 0, &r), 0);
    *status = r.status;
    cJSON *j = cJSON_Parse(r.body);
    tc_resp_free(&r);
    assert_non_null(j);
    return j;
}

static const char *status_of(cJSON *j)
{
    return cJSON_GetObjectItem(j, "status")->valuestring;
}

static cJSON *check_named(cJSON *j, const char *name)
{
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "checks"))
    {
        if (strcmp(cJSON_GetObjectItem(c, "name")->valuestring, name) == 0)
            return c;
    }
    return NULL;
}

static void test_healthz(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    tc_resp_free(&r);
}

static void test_readyz_all_ok(void **state)
{
    (void)state;
    int st;
    cJSON *j = get_json("/readyz", &st);
    assert_int_equal(st, 200);
    assert_string_equal(status_of(j), "ready");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "checks")), 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(check_named(j, "postgres"), "ok")));
    cJSON_Delete(j);
}

static void test_readyz_failing_check_503(void **state)
{
    (void)state;
    atomic_store(&db_down, 1);
    int st;
    cJSON *j = get_json("/readyz", &st);
    assert_int_equal(st, 503);
    assert_string_equal(status_of(j), "not_ready");
    cJSON *c = check_named(j, "postgres");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(c, "ok")));
    assert_string_equal(cJSON_GetObjectItem(c, "message")->valuestring, "connection refused");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(check_named(j, "redis"), "ok")));
    cJSON_Delete(j);
}

static void test_readyz_check_timeout_503(void **state)
{
    (void)state;
    atomic_store(&hang, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st;
    cJSON *j = get_json("/readyz", &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_int_equal(st, 503);
    assert_true(ms < 800); /* bounded by the 100 ms budget, not the 1 s check */
    cJSON *c = check_named(j, "kafka");
    assert_string_equal(cJSON_GetObjectItem(c, "message")->valuestring, "timed out after 100 ms");
    cJSON_Delete(j);
    /* Let the overrunning check finish before the next test (no leak report). */
    struct timespec ts = {1, 100 * 1000000};
    nanosleep(&ts, NULL);
}

static void test_readyz_draining_503(void **state)
{
    (void)state;
    cm_http_server_set_draining(srv);
    int st;
    cJSON *j = get_json("/readyz", &st);
    assert_int_equal(st, 503);
    assert_string_equal(status_of(j), "draining");
    cJSON_Delete(j);
    /* Liveness does not change while draining. */
    j = get_json("/healthz", &st);
    assert_int_equal(st, 200);
    cJSON_Delete(j);
}

static void test_readyz_faults(void **state)
{
    (void)state;
    char err[128];
    cJSON *spec = cJSON_Parse("{\"type\":\"readiness_fail\"}");
    assert_true(cm_faults_add(spec, err, sizeof err) > 0);
    cJSON_Delete(spec);
    int st;
    cJSON *j = get_json("/readyz", &st);
    assert_int_equal(st, 503);
    assert_string_equal(status_of(j), "readiness_fail_fault");
    cJSON_Delete(j);
    cm_faults_clear();

    spec = cJSON_Parse("{\"type\":\"drop_dependency\",\"name\":\"redis\"}");
    assert_true(cm_faults_add(spec, err, sizeof err) > 0);
    cJSON_Delete(spec);
    j = get_json("/readyz", &st);
    assert_int_equal(st, 503);
    cJSON *c = check_named(j, "redis");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(c, "ok")));
    assert_non_null(strstr(cJSON_GetObjectItem(c, "message")->valuestring, "fault"));
    cJSON_Delete(j);
}

static void test_metrics_endpoint(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    tc_resp_free(&r);
    assert_int_equal(tc_request(port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    char ct[80];
    assert_string_equal(tc_header(&r, "Content-Type", ct, sizeof ct),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "# TYPE http_requests_total counter\n"));
    assert_non_null(
        strstr(r.body, "http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 1\n"));
    assert_non_null(strstr(r.body, "# TYPE http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(r.body, "# TYPE http_requests_in_flight gauge\n"));
    assert_non_null(strstr(r.body, "fault_injection_active{fault=\"latency\"} 0\n"));
    tc_resp_free(&r);
}

static void test_bad_check_registration(void **state)
{
    (void)state;
    assert_int_equal(cm_health_add_check(NULL, "x", check_ok, NULL, 1), -1);
    assert_int_equal(cm_health_add_check(srv, "", check_ok, NULL, 1), -1);
    assert_int_equal(cm_health_add_check(srv, NULL, check_ok, NULL, 1), -1);
    assert_int_equal(cm_health_add_check(srv, "x", NULL, NULL, 1), -1);
}

int main(void)
{
    cm_log_init("test_health", CM_LOG_ERROR);
    cm_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_all_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_failing_check_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_check_timeout_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_draining_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_check_registration, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cm_metrics_reset();
    return rc;
}
