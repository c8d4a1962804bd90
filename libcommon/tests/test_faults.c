/* Fault injection through the admin API, and the admin guard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/faults.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "support/http_test_client.h"
#include "common/banned.h"

#define AUTH "Authorization: Bearer s3cret\r\n"

static void h_work(struct cm_http_req *r)
{
    cm_http_reply_json_str(r, 200, "{\"work\":1}");
}

static void h_ctx(struct cm_http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "log_request_id", cm_log_request_id());
    cm_http_reply_json(r, 200, o);
}

static const struct cm_http_route routes[] = {
    {"GET", "/work", h_work, 0, NULL},
    {"GET", "/ctx", h_ctx, 0, NULL},
    {"GET", "/v1/items/{id}", h_work, 0, NULL},
    {"GET", "/other", h_work, 0, NULL},
};

static struct cm_http_server *srv;
static int port;

static int setup(void **state)
{
    (void)state;
    cm_metrics_reset();
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.threads = 2;
    cfg.admin_token = "s3cret";
    srv = cm_http_server_new(&cfg, routes, sizeof routes / sizeof routes[0]);
    assert_non_null(srv);
    assert_int_equal(cm_http_server_start(srv), 0);
    port = cm_http_server_port(srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_faults_clear();
    cm_http_server_free(srv);
    return 0;
}

static int req(const char *method, const char *path, const char *headers, const char *body,
               struct tc_resp *r)
{
    assert_int_equal(tc_request(port, method, path, headers, body, body ? strlen(body) : 0, r), 0);
    return r->status;
}

static int status_of(const char *method, const char *path, const char *headers, const char *body)
{
    struct tc_resp r;
    int st = req(method, path, headers, body, &r);
    tc_resp_free(&r);
    return st;
}

static double elapsed_ms(const char *path)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(status_of("GET", path, NULL, NULL), 200);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static void test_admin_guard(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(req("GET", "/admin/faults", NULL, NULL, &r), 401);
    assert_non_null(strstr(r.body, "\"code\":\"unauthorized\""));
    tc_resp_free(&r);
    assert_int_equal(req("GET", "/admin/faults", "Authorization: Bearer nope\r\n", NULL, &r), 403);
    assert_non_null(strstr(r.body, "\"code\":\"forbidden\""));
    tc_resp_free(&r);
    assert_int_equal(status_of("GET", "/admin/faults", "X-Admin-Token: s3cre\r\n", NULL), 403);
    assert_int_equal(status_of("GET", "/admin/faults", "X-Admin-Token: s3cret!\r\n", NULL), 403);
    assert_int_equal(status_of("GET", "/admin/faults", "Authorization: Basic s3cret\r\n", NULL),
                     401);
    assert_int_equal(status_of("POST", "/admin/faults", NULL, "{\"type\":\"kafka_pause\"}"), 401);
    assert_int_equal(status_of("DELETE", "/admin/faults", "X-Admin-Token: x\r\n", NULL), 403);
    assert_int_equal(status_of("PUT", "/admin/loglevel", NULL, "{\"level\":\"debug\"}"), 401);
    assert_false(cm_faults_kafka_paused());
    assert_int_equal(status_of("GET", "/admin/faults", AUTH, NULL), 200);
    assert_int_equal(status_of("GET", "/admin/faults", "X-Admin-Token: s3cret\r\n", NULL), 200);
}

static void test_admin_disabled_without_token(void **state)
{
    (void)state;
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.threads = 1;
    struct cm_http_server *s = cm_http_server_new(&cfg, NULL, 0);
    assert_int_equal(cm_http_server_start(s), 0);
    struct tc_resp r;
    assert_int_equal(tc_request(cm_http_server_port(s), "GET", "/admin/faults", AUTH, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 403);
    tc_resp_free(&r);
    cm_http_server_free(s);
}

static void test_latency_fault(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(req("POST", "/admin/faults", AUTH,
                         "{\"type\":\"latency\",\"route\":\"/work\",\"ms\":300}", &r),
                     201);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "latency");
    assert_int_equal(cJSON_GetObjectItem(j, "min_ms")->valueint, 300);
    cJSON_Delete(j);
    tc_resp_free(&r);
    double ms = elapsed_ms("/work");
    assert_true(ms >= 300);
    assert_true(elapsed_ms("/other") < 250);
    /* A path or a pattern both select a route. */
    assert_int_equal(status_of("POST", "/admin/faults", AUTH,
                               "{\"type\":\"latency\",\"route\":\"/v1/items/{id}\",\"min_ms\":100,"
                               "\"max_ms\":120}"),
                     201);
    ms = elapsed_ms("/v1/items/7");
    assert_true(ms >= 100);
    assert_int_equal(status_of("DELETE", "/admin/faults", AUTH, NULL), 200);
    assert_true(elapsed_ms("/work") < 250);
}

struct slow_call {
    int port;
    int status;
    double ms;
};

static void *call_work(void *arg)
{
    struct slow_call *c = arg;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct tc_resp r;
    c->status = tc_request(c->port, "GET", "/work", NULL, NULL, 0, &r) == 0 ? r.status : -1;
    tc_resp_free(&r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    c->ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    return NULL;
}

static double metric_in_flight(void)
{
    double v = -1;
    cm_metric_value(cm_metric_gauge("http_requests_in_flight", "HTTP requests being served.", NULL),
                    &v);
    return v;
}

static void test_latency_parks_connection_not_worker(void **state)
{
    (void)state;
    /* One worker only: if the delay blocked it, /healthz would wait too. */
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.threads = 1;
    struct cm_http_server *s = cm_http_server_new(&cfg, routes, sizeof routes / sizeof routes[0]);
    assert_int_equal(cm_http_server_start(s), 0);
    int p = cm_http_server_port(s);
    char err[128];
    cJSON *spec = cJSON_Parse("{\"type\":\"latency\",\"route\":\"/work\",\"ms\":1000}");
    assert_true(cm_faults_add(spec, err, sizeof err) > 0);
    cJSON_Delete(spec);
    struct slow_call c = {p, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, call_work, &c);
    /* Wait (bounded) until the slow request is parked inside the server. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 2000 && metric_in_flight() < 1; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(metric_in_flight() >= 1);
    struct tc_resp r;
    assert_int_equal(tc_request(p, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    assert_int_equal(tc_request(p, "GET", "/other", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    /* Both answered while /work was still parked (its delay is 1 s). */
    assert_true(ms < 900);
    assert_true(metric_in_flight() >= 1);
    pthread_join(t, NULL);
    assert_int_equal(c.status, 200);
    assert_true(c.ms >= 1000);

    /* Latency then an injected error: both apply, in that order. */
    spec = cJSON_Parse("{\"type\":\"error\",\"route\":\"/work\",\"status\":502}");
    assert_true(cm_faults_add(spec, err, sizeof err) > 0);
    cJSON_Delete(spec);
    call_work(&c);
    assert_int_equal(c.status, 502);
    assert_true(c.ms >= 1000);
    cm_faults_clear();

    /* Shutdown cuts a parked delay short and lets the request finish. */
    spec = cJSON_Parse("{\"type\":\"latency\",\"route\":\"/work\",\"ms\":30000}");
    assert_true(cm_faults_add(spec, err, sizeof err) > 0);
    cJSON_Delete(spec);
    pthread_create(&t, NULL, call_work, &c);
    for (int i = 0; i < 2000 && metric_in_flight() < 1; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(cm_http_server_shutdown(s), 0);
    pthread_join(t, NULL);
    assert_int_equal(c.status, 200);
    assert_true(c.ms < 5000);
    cm_http_server_free(s);
}

struct ctx_call {
    int port;
    struct tc_resp resp;
};

static void *call_ctx(void *arg)
{
    struct ctx_call *c = arg;
    tc_request(c->port, "GET", "/ctx", "X-Request-Id: ctx-a\r\n", NULL, 0, &c->resp);
    return NULL;
}

static void test_log_context_survives_parking(void **state)
{
    (void)state;
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.threads = 1; /* the other request runs on the same worker meanwhile */
    struct cm_http_server *s = cm_http_server_new(&cfg, routes, sizeof routes / sizeof routes[0]);
    assert_int_equal(cm_http_server_start(s), 0);
    char err[128];
    cJSON *spec = cJSON_Parse("{\"type\":\"latency\",\"route\":\"/ctx\",\"ms\":300}");
    assert_true(cm_faults_add(spec, err, sizeof err) > 0);
    cJSON_Delete(spec);
    struct ctx_call c = {cm_http_server_port(s), {0, NULL, NULL, 0}};
    pthread_t t;
    pthread_create(&t, NULL, call_ctx, &c);
    for (int i = 0; i < 2000 && metric_in_flight() < 1; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct tc_resp r;
    assert_int_equal(tc_request(c.port, "GET", "/work", "X-Request-Id: other-b\r\n", NULL, 0, &r),
                     0);
    tc_resp_free(&r);
    pthread_join(t, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(c.resp.body, "{\"log_request_id\":\"ctx-a\"}");
    tc_resp_free(&c.resp);
    cm_http_server_free(s);
}

static void test_error_fault_rate_one(void **state)
{
    (void)state;
    assert_int_equal(status_of("POST", "/admin/faults", AUTH,
                               "{\"type\":\"error\",\"route\":\"*\",\"rate\":1.0,\"status\":503}"),
                     201);
    struct tc_resp r;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(req("GET", "/work", NULL, NULL, &r), 503);
        assert_non_null(strstr(r.body, "\"code\":\"service_unavailable\""));
        tc_resp_free(&r);
    }
    assert_int_equal(status_of("GET", "/v1/items/3", NULL, NULL), 503);
    /* Built-in routes are exempt, so the fault can be seen and cleared. */
    assert_int_equal(status_of("GET", "/healthz", NULL, NULL), 200);
    assert_int_equal(status_of("GET", "/admin/faults", AUTH, NULL), 200);
    assert_int_equal(req("DELETE", "/admin/faults/error", AUTH, NULL, &r), 200);
    assert_string_equal(r.body, "{\"cleared\":1}");
    tc_resp_free(&r);
    assert_int_equal(status_of("GET", "/work", NULL, NULL), 200);
    /* Default status 503 and rate 1. */
    assert_int_equal(status_of("POST", "/admin/faults", AUTH,
                               "{\"type\":\"error\",\"route\":\"/other\",\"status\":429}"),
                     201);
    assert_int_equal(status_of("GET", "/other", NULL, NULL), 429);
    assert_int_equal(status_of("GET", "/work", NULL, NULL), 200);
}

static void test_list_flags_metrics_and_clear(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "{\"type\":\"kafka_pause\"}",
        "{\"type\":\"drop_dependency\",\"name\":\"redis\"}",
        "{\"type\":\"readiness_fail\"}",
        "{\"type\":\"latency\",\"ms\":0}",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        assert_int_equal(status_of("POST", "/admin/faults", AUTH, specs[i]), 201);
    assert_true(cm_faults_kafka_paused());
    assert_true(cm_faults_readiness_failed());
    assert_true(cm_faults_dependency_dropped("redis"));
    assert_false(cm_faults_dependency_dropped("postgres"));
    assert_false(cm_faults_dependency_dropped(NULL));
    assert_int_equal(status_of("GET", "/readyz", NULL, NULL), 503);

    struct tc_resp r;
    assert_int_equal(req("GET", "/admin/faults", AUTH, NULL, &r), 200);
    cJSON *j = cJSON_Parse(r.body);
    cJSON *list = cJSON_GetObjectItem(j, "faults");
    assert_int_equal(cJSON_GetArraySize(list), 4);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "name")->valuestring,
                        "redis");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 3), "route")->valuestring,
                        "*");
    cJSON_Delete(j);
    tc_resp_free(&r);

    assert_int_equal(req("GET", "/metrics", NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, "fault_injection_active{fault=\"kafka_pause\"} 1\n"));
    assert_non_null(strstr(r.body, "fault_injection_active{fault=\"error\"} 0\n"));
    tc_resp_free(&r);

    assert_int_equal(req("DELETE", "/admin/faults/unknown", AUTH, NULL, &r), 400);
    tc_resp_free(&r);
    assert_int_equal(req("DELETE", "/admin/faults/kafka_pause", AUTH, NULL, &r), 200);
    assert_string_equal(r.body, "{\"cleared\":1}");
    tc_resp_free(&r);
    assert_false(cm_faults_kafka_paused());
    assert_int_equal(req("DELETE", "/admin/faults", AUTH, NULL, &r), 200);
    assert_string_equal(r.body, "{\"cleared\":3}");
    tc_resp_free(&r);
    assert_false(cm_faults_readiness_failed());
    assert_false(cm_faults_dependency_dropped("redis"));
    assert_int_equal(req("GET", "/admin/faults", AUTH, NULL, &r), 200);
    assert_string_equal(r.body, "{\"faults\":[]}");
    tc_resp_free(&r);
    assert_int_equal(req("GET", "/metrics", NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, "fault_injection_active{fault=\"kafka_pause\"} 0\n"));
    tc_resp_free(&r);
}

static void test_background_faults_stop_on_clear(void **state)
{
    (void)state;
    assert_int_equal(status_of("POST", "/admin/faults", AUTH,
                               "{\"type\":\"cpu_burn\",\"millicores\":200,\"duration_s\":30}"),
                     201);
    assert_int_equal(status_of("POST", "/admin/faults", AUTH,
                               "{\"type\":\"memory_growth\",\"mb_per_s\":10,\"max_mb\":2}"),
                     201);
    struct timespec ts = {0, 250 * 1000000}; /* let both threads do some work */
    nanosleep(&ts, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct tc_resp r;
    assert_int_equal(req("DELETE", "/admin/faults", AUTH, NULL, &r), 200);
    assert_string_equal(r.body, "{\"cleared\":2}");
    tc_resp_free(&r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms < 1000); /* joined promptly, not after duration_s */
}

static void test_validation(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[]",
        "\"latency\"",
        "{}",
        "{\"type\":1}",
        "{\"type\":\"nope\"}",
        "{\"type\":\"latency\"}",
        "{\"type\":\"latency\",\"ms\":-1}",
        "{\"type\":\"latency\",\"ms\":60001}",
        "{\"type\":\"latency\",\"ms\":1.5}",
        "{\"type\":\"latency\",\"ms\":\"200\"}",
        "{\"type\":\"latency\",\"ms\":10,\"min_ms\":1,\"max_ms\":2}",
        "{\"type\":\"latency\",\"min_ms\":5,\"max_ms\":2}",
        "{\"type\":\"latency\",\"min_ms\":5}",
        "{\"type\":\"latency\",\"ms\":5,\"route\":\"orders\"}",
        "{\"type\":\"latency\",\"ms\":5,\"route\":7}",
        "{\"type\":\"latency\",\"ms\":5,\"extra\":1}",
        "{\"type\":\"error\",\"rate\":0}",
        "{\"type\":\"error\",\"rate\":1.5}",
        "{\"type\":\"error\",\"rate\":\"x\"}",
        "{\"type\":\"error\",\"status\":200}",
        "{\"type\":\"error\",\"status\":600}",
        "{\"type\":\"cpu_burn\"}",
        "{\"type\":\"cpu_burn\",\"millicores\":0}",
        "{\"type\":\"cpu_burn\",\"millicores\":4001}",
        "{\"type\":\"cpu_burn\",\"millicores\":100,\"duration_s\":0}",
        "{\"type\":\"memory_growth\"}",
        "{\"type\":\"memory_growth\",\"mb_per_s\":2000}",
        "{\"type\":\"memory_growth\",\"mb_per_s\":1,\"max_mb\":0}",
        "{\"type\":\"kafka_pause\",\"ms\":1}",
        "{\"type\":\"readiness_fail\",\"route\":\"*\"}",
        "{\"type\":\"drop_dependency\"}",
        "{\"type\":\"drop_dependency\",\"name\":\"\"}",
        "{\"type\":\"drop_dependency\",\"name\":\"Redis\"}",
        "{\"type\":\"drop_dependency\",\"name\":\"a-very-long-dependency-name-over-32\"}",
    };
    struct tc_resp r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = req("POST", "/admin/faults", AUTH, bad[i], &r);
        if (st != 400)
            print_error("spec %s -> %d %s\n", bad[i], st, r.body);
        assert_int_equal(st, 400);
        assert_non_null(strstr(r.body, "\"code\":\"invalid_request\""));
        tc_resp_free(&r);
    }
    assert_int_equal(req("POST", "/admin/faults", AUTH, "{bad json", &r), 400);
    assert_non_null(strstr(r.body, "\"code\":\"invalid_json\""));
    tc_resp_free(&r);
    cJSON *none = cm_faults_list();
    assert_int_equal(cJSON_GetArraySize(none), 0);
    cJSON_Delete(none);
}

static void test_loglevel(void **state)
{
    (void)state;
    struct tc_resp r;
    cm_log_set_level(CM_LOG_ERROR);
    assert_int_equal(req("GET", "/admin/loglevel", AUTH, NULL, &r), 200);
    assert_string_equal(r.body, "{\"level\":\"error\"}");
    tc_resp_free(&r);
    assert_int_equal(req("PUT", "/admin/loglevel", AUTH, "{\"level\":\"warn\"}", &r), 200);
    assert_string_equal(r.body, "{\"level\":\"warn\"}");
    tc_resp_free(&r);
    assert_int_equal(cm_log_get_level(), CM_LOG_WARN);
    static const char *const bad[] = {"{\"level\":\"loud\"}", "{\"level\":1}", "{}",
                                      "{\"level\":\"info\",\"x\":1}", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(status_of("PUT", "/admin/loglevel", AUTH, bad[i]), 400);
    assert_int_equal(cm_log_get_level(), CM_LOG_WARN);
    cm_log_set_level(CM_LOG_ERROR);
}

static void test_api_without_http(void **state)
{
    (void)state;
    char err[128];
    cJSON *spec = cJSON_Parse("{\"type\":\"latency\",\"ms\":5}");
    int id = cm_faults_add(spec, err, sizeof err);
    assert_true(id > 0);
    cJSON_Delete(spec);
    spec = cJSON_Parse("{\"type\":\"latency\",\"ms\":\"x\"}");
    assert_int_equal(cm_faults_add(spec, err, sizeof err), -1);
    assert_string_equal(err, "\"ms\" must be an integer in [0, 60000]");
    cJSON_Delete(spec);
    assert_int_equal(cm_faults_add(NULL, err, sizeof err), -1);
    assert_int_equal(cm_faults_clear_type("latency"), 1);
    assert_int_equal(cm_faults_clear_type("bogus"), -1);
    assert_int_equal(cm_faults_clear_type(NULL), -1);
    assert_int_equal(cm_faults_clear(), 0);
}

int main(void)
{
    cm_log_init("test_faults", CM_LOG_ERROR);
    cm_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_disabled_without_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency_parks_connection_not_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_context_survives_parking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_fault_rate_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_flags_metrics_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_faults_stop_on_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loglevel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_without_http, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cm_metrics_reset();
    return rc;
}
