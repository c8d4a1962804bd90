/*
 * Span export end to end in one process: an instrumented server whose
 * handler calls a second route through the HTTP client, and a collector
 * (another server) that keeps every OTLP/HTTP JSON body it receives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json_http.h"
#include "common/metrics.h"
#include "common/trace.h"
#include "support/http_test_client.h"
#include "common/banned.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static cJSON *received;    /* array of every span object the collector got */
static int collector_fail; /* answer 503 instead of 200 */
static struct cm_http_server *collector, *app;
static struct cm_http_client *client;

static void collect(struct cm_http_req *r)
{
    size_t len;
    const char *body = cm_http_req_body(r, &len);
    cJSON *j = cJSON_Parse(body);
    pthread_mutex_lock(&mu);
    cJSON *spans = cJSON_GetObjectItem(
        cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "resourceSpans"), 0),
                                "scopeSpans"),
            0),
        "spans");
    cJSON *s;
    for (s = spans ? spans->child : NULL; s; s = s->next)
        cJSON_AddItemToArray(received, cJSON_Duplicate(s, 1));
    pthread_mutex_unlock(&mu);
    cJSON_Delete(j);
    cm_http_reply_json_str(r, collector_fail ? 503 : 200, "{}");
}

static void ping(struct cm_http_req *r)
{
    cm_http_reply_json_str(r, 200, "{\"pong\":true}");
}

static void work(struct cm_http_req *r)
{
    struct cm_http_response resp;
    int rc = cm_http_client_get(client, "/ping", &resp);
    cm_http_response_release(&resp);
    cm_http_reply_json_str(r, rc == 0 ? 200 : 502, "{}");
}

static const struct cm_http_route collector_routes[] = {
    {"POST", "/v1/traces", collect, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL},
};
static const struct cm_http_route app_routes[] = {
    {"GET", "/work", work, 0, NULL},
    {"GET", "/ping", ping, 0, NULL},
};

static struct cm_http_server *serve(const struct cm_http_route *routes, size_t n)
{
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.service = "trace-test";
    cfg.bind_addr = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 2;
    cfg.max_body = 8u << 20;
    struct cm_http_server *s = cm_http_server_new(&cfg, routes, n);
    assert_non_null(s);
    assert_int_equal(cm_http_server_start(s), 0);
    return s;
}

static int setup(void **state)
{
    (void)state;
    received = cJSON_CreateArray();
    collector = serve(collector_routes, 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", cm_http_server_port(collector));
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "50", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64", 1);
    if (cm_trace_init("trace-test") != 0 || !cm_trace_enabled())
        return -1;
    app = serve(app_routes, 2);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", cm_http_server_port(app));
    struct cm_http_client_config cc = {.name = "self", .base_url = base, .timeout_ms = 2000};
    client = cm_http_client_new(&cc);
    return client ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_client_free(client);
    cm_http_server_free(app);
    cm_trace_shutdown();
    cm_http_server_free(collector);
    cJSON_Delete(received);
    return 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The received span called name (the last one), or NULL. */
static cJSON *span_named(const char *name)
{
    cJSON *s, *found = NULL;
    for (s = received->child; s; s = s->next)
        if (strcmp(str(s, "name"), name) == 0)
            found = s;
    return found;
}

/* Span and trace ids: lowercase hex of the asked length, never all zero
 * (the last nibble is odd), different on every call. */
static void random_ids_are_hex_nonzero_and_fresh(void **state)
{
    (void)state;
    char a[65], b[65];
    for (int n = 1; n <= 32; n++) {
        cm_trace_random_hex(a, n);
        cm_trace_random_hex(b, n);
        assert_int_equal(strlen(a), (size_t)(2 * n));
        assert_int_equal(strspn(a, "0123456789abcdef"), (size_t)(2 * n));
        assert_non_null(strchr("13579bdf", a[2 * n - 1]));
        if (n >= 4)
            assert_string_not_equal(a, b);
    }
    cm_trace_random_hex(a, 40); /* capped at 32 bytes */
    assert_int_equal(strlen(a), 64);
}

static void server_and_client_spans_form_one_trace(void **state)
{
    (void)state;
    const char *hdr = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";
    struct tc_resp r;
    assert_int_equal(tc_request(cm_http_server_port(app), "GET", "/work", hdr, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
    assert_int_equal(cm_trace_flush(5000), 0);

    pthread_mutex_lock(&mu);
    cJSON *work_span = span_named("GET /work");
    cJSON *client_span = span_named("GET self");
    cJSON *ping_span = span_named("GET /ping");
    assert_non_null(work_span);
    assert_non_null(client_span);
    assert_non_null(ping_span);
    /* one trace: caller -> /work (server) -> client call -> /ping (server) */
    assert_string_equal(str(work_span, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(client_span, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(ping_span, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(work_span, "parentSpanId"), "00f067aa0ba902b7");
    assert_string_equal(str(client_span, "parentSpanId"), str(work_span, "spanId"));
    assert_string_equal(str(ping_span, "parentSpanId"), str(client_span, "spanId"));
    assert_int_equal(cJSON_GetObjectItem(work_span, "kind")->valueint, CM_SPAN_SERVER);
    assert_int_equal(cJSON_GetObjectItem(client_span, "kind")->valueint, CM_SPAN_CLIENT);
    /* 64-bit times as strings, end after start */
    long long st = strtoll(str(work_span, "startTimeUnixNano"), NULL, 10);
    long long en = strtoll(str(work_span, "endTimeUnixNano"), NULL, 10);
    assert_true(st > 1700000000000000000LL && en >= st);
    pthread_mutex_unlock(&mu);
}

static double dropped(const char *reason)
{
    struct cm_metric *m = cm_metric_counter(
        "otel_spans_dropped_total", "Spans dropped: queue_full or export_failed.", "reason");
    double v = 0;
    return m && cm_metric_value(m, &v, reason) == 0 ? v : 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void full_queue_drops_without_blocking(void **state)
{
    (void)state;
    double before = dropped("queue_full");
    struct cm_span sp;
    memset(&sp, 0, sizeof sp);
    memcpy(sp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    memcpy(sp.span_id, "00f067aa0ba902b7", 17);
    snprintf(sp.name, sizeof sp.name, "burst");
    sp.kind = CM_SPAN_INTERNAL;
    int64_t t0 = mono_ms();
    for (int i = 0; i < 20000; i++)
        cm_trace_record(&sp);
    assert_true(mono_ms() - t0 < 2000); /* copies into a queue of 64, never waits */
    assert_true(dropped("queue_full") - before > 10000);
    assert_int_equal(cm_trace_flush(5000), 0);
}

static void collector_errors_are_counted_not_retried(void **state)
{
    (void)state;
    collector_fail = 1;
    double before = dropped("export_failed");
    struct cm_span sp;
    memset(&sp, 0, sizeof sp);
    memcpy(sp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    memcpy(sp.span_id, "00f067aa0ba902b8", 17);
    snprintf(sp.name, sizeof sp.name, "rejected");
    cm_trace_record(&sp);
    assert_int_equal(cm_trace_flush(5000), 0);
    assert_true(dropped("export_failed") - before == 1);
    collector_fail = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_ids_are_hex_nonzero_and_fresh),
        cmocka_unit_test(server_and_client_spans_form_one_trace),
        cmocka_unit_test(full_queue_drops_without_blocking),
        cmocka_unit_test(collector_errors_are_counted_not_retried),
    };
    return cmocka_run_group_tests_name("trace", tests, setup, teardown);
}
