/* HTTP server pipeline over real sockets: routing, ids, trace context,
 * body cap, metrics, access log, streaming and graceful shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/http_server.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "support/http_test_client.h"
#include "common/banned.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls cond() until true or the deadline; the test then asserts. */
static int wait_for(int (*cond)(void), int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (!cond()) {
        if (now_ms() > end)
            return 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

/* ---- handlers */

static void h_hello(struct cm_http_req *r)
{
    cm_http_reply_json_str(r, 200, "{\"hello\":\"world\"}");
}

static void h_order(struct cm_http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", cm_http_req_param(r, "id"));
    const char *q = cm_http_req_query(r, "q");
    cJSON_AddStringToObject(o, "q", q ? q : "(none)");
    const char *flag = cm_http_req_query(r, "flag");
    cJSON_AddStringToObject(o, "flag", flag ? flag : "(none)");
    cJSON_AddStringToObject(o, "route", cm_http_req_route(r));
    cJSON_AddStringToObject(o, "ip", cm_http_req_client_ip(r));
    cJSON_AddStringToObject(o, "log_rid", cm_log_request_id());
    cJSON_AddStringToObject(o, "outbound_tp", cm_http_req_traceparent(r));
    cm_http_reply_json(r, 200, o);
}

static void h_fills(struct cm_http_req *r)
{
    /* Literal segment beats the parameter route. */
    cm_http_reply_json_str(r, 200, "{\"fills\":true}");
}

static void h_echo(struct cm_http_req *r)
{
    cJSON *j = cm_http_req_json(r);
    if (!j)
        return;
    cJSON *out = cJSON_Duplicate(j, 1);
    /* arena memory past the inline block, released on completion */
    char *big = cm_http_req_alloc(r, 10000);
    assert_non_null(big);
    memset(big, 'x', 10000);
    cm_http_set_header(r, "X-Extra", "yes");
    cm_http_reply_json(r, 201, out);
}

static void h_raw_body(struct cm_http_req *r)
{
    size_t len;
    const char *b = cm_http_req_body(r, &len);
    cm_http_reply(r, 200, "text/plain", b, len);
}

static void h_silent(struct cm_http_req *r)
{
    (void)r;
}

static _Atomic int slow_started, slow_release;
static int slow_is_started(void)
{
    return atomic_load(&slow_started);
}
static void h_slow(struct cm_http_req *r)
{
    atomic_store(&slow_started, 1);
    /* Hold the request until the test has begun shutting down. */
    uint64_t end = now_ms() + 5000;
    while (!atomic_load(&slow_release) && now_ms() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
    cm_http_reply_json_str(r, 200, "{\"slow\":\"done\"}");
}

/* Streams: one fed from another thread, one with a producer callback. */
static struct cm_http_stream *_Atomic fed_stream;
static _Atomic int fed_closed;
static void fed_on_close(void *ctx)
{
    (void)ctx;
    atomic_store(&fed_closed, 1);
}
static void h_stream(struct cm_http_req *r)
{
    struct cm_http_stream *st =
        cm_http_reply_stream(r, 200, "text/event-stream", NULL, NULL, fed_on_close);
    assert_non_null(st);
    atomic_store(&fed_stream, st);
}
static int fed_ready(void)
{
    return atomic_load(&fed_stream) != NULL;
}

struct counter_ctx {
    int n;
    int closed;
};
static struct counter_ctx prod_ctx;
static ssize_t producer(void *ctx, char *buf, size_t max)
{
    struct counter_ctx *c = ctx;
    if (c->n == 3)
        return CM_HTTP_STREAM_END;
    int n = snprintf(buf, max, "data: %d\n\n", c->n++);
    return n;
}
static void prod_close(void *ctx)
{
    ((struct counter_ctx *)ctx)->closed = 1;
}
static void h_produce(struct cm_http_req *r)
{
    prod_ctx.n = 0;
    prod_ctx.closed = 0;
    struct cm_http_stream *st =
        cm_http_reply_stream(r, 200, "text/event-stream", producer, &prod_ctx, prod_close);
    cm_http_stream_release(st);
}

/* Deferred replies: answered from another thread, or not at all. */
static struct cm_http_deferred *_Atomic parked;
static int parked_ready(void)
{
    return atomic_load(&parked) != NULL;
}

static void *answer_later(void *arg)
{
    struct cm_http_deferred *d = arg;
    struct timespec ts = {0, 20 * 1000000}; /* the handler has long returned */
    nanosleep(&ts, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "answered", "later");
    assert_int_equal(cm_http_deferred_reply_json(d, 202, o), 0);
    return NULL;
}

static void h_deferred(struct cm_http_req *r)
{
    const char *mode = cm_http_req_query(r, "mode");
    cm_http_set_header(r, "X-Before-Defer", "kept");
    struct cm_http_deferred *d = cm_http_req_defer(r);
    assert_non_null(d);
    assert_null(cm_http_req_defer(r)); /* once */
    if (mode && strcmp(mode, "now") == 0) {
        assert_int_equal(cm_http_deferred_reply(d, 200, "text/plain", "now", 3), 0);
    } else if (mode && strcmp(mode, "error") == 0) {
        assert_int_equal(cm_http_deferred_reply_error(d, 409, "conflict", "taken by %s", "x"), 0);
    } else if (mode && strcmp(mode, "never") == 0) {
        atomic_store(&parked, d); /* the test answers (too late) */
    } else {
        pthread_t t;
        pthread_create(&t, NULL, answer_later, d);
        pthread_detach(t);
    }
}

static const struct cm_http_route routes[] = {
    {"GET", "/deferred", h_deferred, 0, NULL},
    {"GET", "/hello", h_hello, 0, NULL},
    {"GET", "/v1/orders/{id}", h_order, 0, NULL},
    {"DELETE", "/v1/orders/{id}", h_order, 0, NULL},
    {"GET", "/v1/orders/{id}/fills", h_fills, 0, NULL},
    {"POST", "/v1/echo", h_echo, CM_ROUTE_BODY, NULL},
    {"POST", "/v1/raw", h_raw_body, CM_ROUTE_BODY, NULL},
    {"POST", "/v1/nobody", h_hello, 0, NULL},
    {"GET", "/silent", h_silent, 0, NULL},
    {"GET", "/slow", h_slow, 0, NULL},
    {"GET", "/stream", h_stream, 0, NULL},
    {"GET", "/produce", h_produce, 0, NULL},
};

static struct cm_http_server *srv;
static int port;
static int log_pipe[2];

static int setup(void **state)
{
    (void)state;
    cm_metrics_reset();
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.service = "test";
    cfg.bind_addr = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 2;
    cfg.max_body = 1024;
    cfg.drain_timeout_ms = 5000;
    srv = cm_http_server_new(&cfg, routes, sizeof routes / sizeof routes[0]);
    assert_non_null(srv);
    assert_int_equal(cm_http_server_start(srv), 0);
    port = cm_http_server_port(srv);
    assert_true(port > 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(srv);
    srv = NULL;
    return 0;
}

static const char *hdr(const struct tc_resp *r, const char *name)
{
    static char buf[256];
    return tc_header(r, name, buf, sizeof buf);
}

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    return strspn(s, "0123456789abcdef") == n;
}

static void test_json_route_and_generated_ids(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/hello", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"hello\":\"world\"}");
    assert_string_equal(hdr(&r, "Content-Type"), "application/json");
    assert_true(is_hex(hdr(&r, "X-Request-Id"), 32));
    const char *tp = hdr(&r, "traceparent");
    assert_int_equal(strlen(tp), 55);
    assert_memory_equal(tp, "00-", 3);
    assert_string_equal(tp + 52, "-01");
    tc_resp_free(&r);
}

static void test_path_params_query_and_context(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/v1/orders/ord-42?q=a%20b&x=1",
                                "X-Request-Id: req.1_A-b\r\n", NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "ord-42");
    assert_string_equal(cJSON_GetObjectItem(j, "q")->valuestring, "a b");
    assert_string_equal(cJSON_GetObjectItem(j, "flag")->valuestring, "(none)");
    assert_string_equal(cJSON_GetObjectItem(j, "route")->valuestring, "/v1/orders/{id}");
    assert_string_equal(cJSON_GetObjectItem(j, "ip")->valuestring, "127.0.0.1");
    assert_string_equal(cJSON_GetObjectItem(j, "log_rid")->valuestring, "req.1_A-b");
    assert_string_equal(hdr(&r, "X-Request-Id"), "req.1_A-b");
    cJSON_Delete(j);
    tc_resp_free(&r);

    assert_int_equal(tc_request(port, "GET", "/v1/orders/8?flag&q=", NULL, NULL, 0, &r), 0);
    j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "flag")->valuestring, "");
    assert_string_equal(cJSON_GetObjectItem(j, "q")->valuestring, "");
    cJSON_Delete(j);
    tc_resp_free(&r);

    assert_int_equal(tc_request(port, "GET", "/v1/orders/7/fills", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"fills\":true}");
    tc_resp_free(&r);
}

static void test_unknown_route_404(void **state)
{
    (void)state;
    struct tc_resp r;
    static const char *const paths[] = {"/nope",          "/v1/orders", "/v1/orders/",
                                        "/v1/orders/1/x", "/hello/",    "//hello"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(tc_request(port, "GET", paths[i], NULL, NULL, 0, &r), 0);
        assert_int_equal(r.status, 404);
        cJSON *j = cJSON_Parse(r.body);
        assert_non_null(j);
        cJSON *e = cJSON_GetObjectItem(j, "error");
        assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, "not_found");
        assert_string_equal(cJSON_GetObjectItem(e, "request_id")->valuestring,
                            hdr(&r, "X-Request-Id"));
        cJSON_Delete(j);
        tc_resp_free(&r);
    }
}

static void test_wrong_method_405_with_allow(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "PUT", "/v1/orders/1", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(hdr(&r, "Allow"), "GET, HEAD, DELETE");
    assert_non_null(strstr(r.body, "\"code\":\"method_not_allowed\""));
    tc_resp_free(&r);
    /* HEAD is served by the GET route, without a body. */
    assert_int_equal(tc_request(port, "HEAD", "/hello", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    tc_resp_free(&r);
}

static void test_oversized_body_413(void **state)
{
    (void)state;
    char body[2048];
    memset(body, 'a', sizeof body);
    struct tc_resp r;
    assert_int_equal(tc_request(port, "POST", "/v1/raw", NULL, body, sizeof body, &r), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"code\":\"payload_too_large\""));
    tc_resp_free(&r);

    /* A huge declared length is refused before any of it is sent. */
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    const char *req = "POST /v1/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n";
    assert_int_equal(tc_send_all(fd, req, strlen(req)), 0);
    assert_int_equal(tc_read_response(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 413);
    tc_resp_free(&r);

    /* Chunked, no length: cut off when it passes the cap. */
    fd = tc_connect(port);
    assert_true(fd >= 0);
    const char *head = "POST /v1/raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n";
    assert_int_equal(tc_send_all(fd, head, strlen(head)), 0);
    char chunk[700];
    int n = snprintf(chunk, sizeof chunk, "258\r\n");
    memset(chunk + n, 'b', 600);
    memcpy(chunk + n + 600, "\r\n", 2);
    for (int i = 0; i < 3; i++)
        tc_send_all(fd, chunk, (size_t)n + 602);
    tc_send_all(fd, "0\r\n\r\n", 5);
    assert_int_equal(tc_read_response(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 413);
    tc_resp_free(&r);

    /* Exactly at the cap is fine. */
    assert_int_equal(tc_request(port, "POST", "/v1/raw", NULL, body, 1024, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1024);
    tc_resp_free(&r);
}

static void test_keep_alive_bodies(void **state)
{
    (void)state;
    /* Three requests on one connection: bodies must not leak or mix. */
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    const char *reqs = "POST /v1/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
                       "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /v1/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                       "Connection: close\r\n\r\nsec";
    assert_int_equal(tc_send_all(fd, reqs, strlen(reqs)), 0);
    char buf[8192];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    const char *a = strstr(buf, "\r\n\r\nfirst");
    const char *b = strstr(buf, "{\"hello\":\"world\"}");
    const char *c = strstr(buf, "\r\n\r\nsec");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    assert_null(strstr(buf, "firstsec"));
}

static void test_body_and_bad_json(void **state)
{
    (void)state;
    struct tc_resp r;
    const char *good = "{\"a\":[1,2]}";
    assert_int_equal(tc_request(port, "POST", "/v1/echo", NULL, good, strlen(good), &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, good);
    assert_string_equal(hdr(&r, "X-Extra"), "yes");
    tc_resp_free(&r);

    static const char *const bad[] = {"{\"a\":", "not json", "{} trailing", "", "{\"a\":1}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tc_request(port, "POST", "/v1/echo", NULL, bad[i], strlen(bad[i]), &r), 0);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "{\"error\":{\"code\":\"invalid_json\""));
        tc_resp_free(&r);
    }
    /* A body on a route that does not read one is ignored. */
    assert_int_equal(tc_request(port, "POST", "/v1/nobody", NULL, "xyz", 3, &r), 0);
    assert_int_equal(r.status, 200);
    tc_resp_free(&r);
}

static void test_request_id_validation(void **state)
{
    (void)state;
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    char h[128];
    static const char *const bad[] = {"has space", "semi;colon", "quote\"", NULL};
    struct tc_resp r;
    for (int i = 0; i < 4; i++) {
        snprintf(h, sizeof h, "X-Request-Id: %s\r\n", bad[i] ? bad[i] : long_id);
        assert_int_equal(tc_request(port, "GET", "/hello", h, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        assert_true(is_hex(hdr(&r, "X-Request-Id"), 32));
        tc_resp_free(&r);
    }
    memset(long_id, 'b', 64);
    long_id[64] = '\0';
    snprintf(h, sizeof h, "X-Request-Id: %s\r\n", long_id);
    assert_int_equal(tc_request(port, "GET", "/hello", h, NULL, 0, &r), 0);
    assert_string_equal(hdr(&r, "X-Request-Id"), long_id);
    tc_resp_free(&r);
}

static void test_traceparent(void **state)
{
    (void)state;
    const char *trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    struct tc_resp r;
    assert_int_equal(
        tc_request(port, "GET", "/v1/orders/1",
                   "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n", NULL,
                   0, &r),
        0);
    const char *tp = hdr(&r, "traceparent");
    assert_memory_equal(tp + 3, trace, 32);
    assert_false(memcmp(tp + 36, "00f067aa0ba902b7", 16) == 0); /* our own span */
    assert_string_equal(tp + 52, "-01");
    cJSON *j = cJSON_Parse(r.body);
    /* What the handler sends on is exactly what we echoed. */
    assert_string_equal(cJSON_GetObjectItem(j, "outbound_tp")->valuestring, tp);
    cJSON_Delete(j);
    tc_resp_free(&r);

    static const char *const bad[] = {
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero span */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* v00 extra */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* short */
        "garbage"};
    char h[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(h, sizeof h, "traceparent: %s\r\n", bad[i]);
        assert_int_equal(tc_request(port, "GET", "/hello", h, NULL, 0, &r), 0);
        tp = hdr(&r, "traceparent");
        assert_int_equal(strlen(tp), 55);
        assert_false(memcmp(tp + 3, trace, 32) == 0);
        assert_true(memcmp(tp + 3, "00000000000000000000000000000000", 32) != 0);
        tc_resp_free(&r);
    }
    /* A later version with extra fields is accepted. */
    assert_int_equal(
        tc_request(port, "GET", "/hello",
                   "traceparent: 01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-ext\r\n",
                   NULL, 0, &r),
        0);
    tp = hdr(&r, "traceparent");
    assert_memory_equal(tp + 3, trace, 32);
    assert_string_equal(tp + 52, "-00");
    tc_resp_free(&r);
}

static void test_handler_without_reply_500(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/silent", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "\"code\":\"internal\""));
    tc_resp_free(&r);
}

static double metric(struct cm_metric *m, const char *a, const char *b, const char *c)
{
    double v = -1;
    if (cm_metric_value(m, &v, a, b, c) < 0)
        return -1;
    return v;
}

static int log_has_line(void)
{
    char buf[8192];
    struct pollfd p = {log_pipe[0], POLLIN, 0};
    return poll(&p, 1, 0) == 1 && read(log_pipe[0], buf, sizeof buf) >= 0 &&
           strstr(buf, "\"msg\":\"request\"") != NULL;
}

static void test_metrics_and_access_log(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/v1/orders/1", NULL, NULL, 0, &r), 0);
    tc_resp_free(&r);
    assert_int_equal(tc_request(port, "GET", "/v1/orders/2", NULL, NULL, 0, &r), 0);
    tc_resp_free(&r);
    assert_int_equal(tc_request(port, "GET", "/missing", NULL, NULL, 0, &r), 0);
    tc_resp_free(&r);
    struct cm_metric *total =
        cm_metric_counter("http_requests_total", "HTTP requests completed.", "route,method,code");
    struct cm_metric *dur = cm_metric_histogram(
        "http_request_duration_seconds", "HTTP request duration, first byte read to last sent.",
        "route,method", NULL, 0);
    struct cm_metric *inflight =
        cm_metric_gauge("http_requests_in_flight", "HTTP requests being served.", NULL);
    assert_non_null(total);
    assert_non_null(dur);
    /* Completion runs after the last byte is sent: poll briefly. */
    uint64_t end = now_ms() + 2000;
    while (metric(total, "unmatched", "GET", "404") < 1 && now_ms() < end)
        usleep(1000);
    assert_true(metric(total, "/v1/orders/{id}", "GET", "200") == 2);
    assert_true(metric(total, "unmatched", "GET", "404") == 1);
    double v;
    assert_int_equal(cm_metric_value(dur, &v, "/v1/orders/{id}", "GET"), 0);
    assert_true(v == 2);
    assert_int_equal(cm_metric_value(inflight, &v), 0);
    assert_true(v == 0);

    /* The access log line, captured through a pipe. */
    assert_int_equal(pipe2(log_pipe, O_CLOEXEC), 0);
    cm_log_set_level(CM_LOG_INFO);
    cm_log_set_fd(log_pipe[1]);
    assert_int_equal(
        tc_request(port, "GET", "/v1/orders/9?z=1", "X-Request-Id: logme\r\n", NULL, 0, &r), 0);
    tc_resp_free(&r);
    char line[4096] = "";
    end = now_ms() + 2000;
    size_t got = 0;
    while (!strstr(line, "\"msg\":\"request\"") && now_ms() < end) {
        struct pollfd p = {log_pipe[0], POLLIN, 0};
        if (poll(&p, 1, 50) == 1) {
            ssize_t n = read(log_pipe[0], line + got, sizeof line - 1 - got);
            if (n > 0)
                got += (size_t)n;
            line[got] = '\0';
        }
    }
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cm_log_set_fd(devnull);
    cm_log_set_level(CM_LOG_ERROR);
    close(log_pipe[0]);
    close(log_pipe[1]);
    (void)log_has_line;
    const char *l = strstr(line, "{\"ts\"");
    assert_non_null(l);
    cJSON *j = cJSON_Parse(l);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring, "request");
    assert_string_equal(cJSON_GetObjectItem(j, "method")->valuestring, "GET");
    assert_string_equal(cJSON_GetObjectItem(j, "route")->valuestring, "/v1/orders/{id}");
    assert_string_equal(cJSON_GetObjectItem(j, "path")->valuestring, "/v1/orders/9");
    assert_int_equal(cJSON_GetObjectItem(j, "status")->valueint, 200);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "duration_ms")));
    assert_true(cJSON_GetObjectItem(j, "bytes")->valuedouble > 0);
    assert_string_equal(cJSON_GetObjectItem(j, "request_id")->valuestring, "logme");
    assert_int_equal(strlen(cJSON_GetObjectItem(j, "trace_id")->valuestring), 32);
    assert_string_equal(cJSON_GetObjectItem(j, "client_ip")->valuestring, "127.0.0.1");
    cJSON_Delete(j);
}

#define CLIENTS 4
#define PER_CLIENT 100

static void *keepalive_client(void *arg)
{
    int *ok = arg;
    int fd = tc_connect(port);
    if (fd < 0)
        return NULL;
    char req[128];
    for (int i = 0; i < PER_CLIENT; i++) {
        int n = snprintf(req, sizeof req, "GET /v1/orders/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        struct tc_resp r;
        if (tc_send_all(fd, req, (size_t)n) < 0 || tc_read_one(fd, &r) < 0)
            break;
        char want[32];
        snprintf(want, sizeof want, "{\"id\":\"%d\"", i);
        if (r.status == 200 && strncmp(r.body, want, strlen(want)) == 0)
            (*ok)++;
        tc_resp_free(&r);
    }
    close(fd);
    return NULL;
}

static struct cm_metric *total_family(void)
{
    return cm_metric_counter("http_requests_total", "HTTP requests completed.",
                             "route,method,code");
}

static int all_counted(void)
{
    double v = 0;
    cm_metric_value(total_family(), &v, "/v1/orders/{id}", "GET", "200");
    return v >= CLIENTS * PER_CLIENT;
}

static void test_concurrent_keepalive_clients(void **state)
{
    (void)state;
    pthread_t t[CLIENTS];
    int ok[CLIENTS] = {0};
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&t[i], NULL, keepalive_client, &ok[i]);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(ok[i], PER_CLIENT);
    /* Completion (and the counter) runs just after the last byte is sent. */
    assert_true(wait_for(all_counted, 3000));
    double v = 0;
    assert_int_equal(cm_metric_value(total_family(), &v, "/v1/orders/{id}", "GET", "200"), 0);
    assert_true(v == CLIENTS * PER_CLIENT);
    struct cm_metric *dur = cm_metric_histogram(
        "http_request_duration_seconds", "HTTP request duration, first byte read to last sent.",
        "route,method", NULL, 0);
    assert_int_equal(cm_metric_value(dur, &v, "/v1/orders/{id}", "GET"), 0);
    assert_true(v == CLIENTS * PER_CLIENT);
}

static void test_deferred_replies(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/deferred", "X-Request-Id: def-1\r\n", NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "{\"answered\":\"later\"}");
    assert_string_equal(hdr(&r, "X-Before-Defer"), "kept");
    assert_string_equal(hdr(&r, "X-Request-Id"), "def-1");
    tc_resp_free(&r);

    assert_int_equal(tc_request(port, "GET", "/deferred?mode=now", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "now");
    tc_resp_free(&r);

    assert_int_equal(
        tc_request(port, "GET", "/deferred?mode=error", "X-Request-Id: def-2\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 409);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"conflict\",\"message\":\"taken by x\","
                                "\"request_id\":\"def-2\"}}");
    tc_resp_free(&r);
}

static void *call_never(void *arg)
{
    struct tc_resp *r = arg;
    tc_request(port, "GET", "/deferred?mode=never", NULL, NULL, 0, r);
    return NULL;
}

static void test_deferred_unanswered_at_shutdown(void **state)
{
    (void)state;
    /* A server with a short drain: the pending deferral is answered 503. */
    cm_http_server_free(srv);
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.threads = 1;
    cfg.drain_timeout_ms = 100;
    srv = cm_http_server_new(&cfg, routes, sizeof routes / sizeof routes[0]);
    assert_int_equal(cm_http_server_start(srv), 0);
    port = cm_http_server_port(srv);
    atomic_store(&parked, NULL);
    struct tc_resp r;
    memset(&r, 0, sizeof r);
    pthread_t t;
    pthread_create(&t, NULL, call_never, &r);
    assert_true(wait_for(parked_ready, 3000));
    /* The parked request does not hold the only worker. */
    struct tc_resp h;
    assert_int_equal(tc_request(port, "GET", "/hello", NULL, NULL, 0, &h), 0);
    assert_int_equal(h.status, 200);
    tc_resp_free(&h);
    assert_int_equal(cm_http_server_shutdown(srv), 0);
    pthread_join(t, NULL);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"code\":\"service_unavailable\""));
    tc_resp_free(&r);
    /* The owner's late answer is refused (and frees the handle). */
    assert_int_equal(cm_http_deferred_reply_json(atomic_load(&parked), 200, cJSON_CreateObject()),
                     -1);
}

static void test_stream_fed_from_another_thread(void **state)
{
    (void)state;
    atomic_store(&fed_stream, NULL);
    atomic_store(&fed_closed, 0);
    int fd = tc_connect(port);
    assert_true(fd >= 0);
    const char *req = "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(tc_send_all(fd, req, strlen(req)), 0);
    assert_true(wait_for(fed_ready, 3000));
    struct cm_http_stream *st = atomic_load(&fed_stream);
    char ev[64];
    for (int i = 0; i < 3; i++) {
        int n = snprintf(ev, sizeof ev, "event: tick\ndata: {\"n\":%d}\n\n", i);
        assert_int_equal(cm_http_stream_send(st, ev, (size_t)n), 0);
        struct timespec ts = {0, 5 * 1000000}; /* let the parked connection drain */
        nanosleep(&ts, NULL);
    }
    cm_http_stream_close(st);
    assert_int_equal(cm_http_stream_send(st, "x", 1), -1);
    struct tc_resp r;
    assert_int_equal(tc_read_response(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Content-Type"), "text/event-stream");
    assert_string_equal(r.body, "event: tick\ndata: {\"n\":0}\n\n"
                                "event: tick\ndata: {\"n\":1}\n\n"
                                "event: tick\ndata: {\"n\":2}\n\n");
    tc_resp_free(&r);
    assert_true(cm_http_stream_closed(st));
    cm_http_stream_release(st);
}

static int prod_closed(void)
{
    return prod_ctx.closed;
}
static int fed_is_closed(void)
{
    return atomic_load(&fed_closed);
}

static void test_stream_with_producer(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/produce", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    tc_resp_free(&r);
    assert_true(wait_for(prod_closed, 2000));
}

static void test_stream_client_gone(void **state)
{
    (void)state;
    atomic_store(&fed_stream, NULL);
    atomic_store(&fed_closed, 0);
    int fd = tc_connect(port);
    const char *req = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tc_send_all(fd, req, strlen(req)), 0);
    assert_true(wait_for(fed_ready, 3000));
    struct cm_http_stream *st = atomic_load(&fed_stream);
    close(fd);
    /* Heartbeats until the server notices (bounded by a deadline). */
    uint64_t end = now_ms() + 3000;
    int rc = 0;
    while (rc == 0 && now_ms() < end) {
        rc = cm_http_stream_send(st, ": ping\n\n", 8);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rc, -1);
    assert_true(cm_http_stream_closed(st));
    assert_true(wait_for(fed_is_closed, 2000));
    cm_http_stream_release(st);
}

static void test_shutdown_ends_open_streams(void **state)
{
    (void)state;
    atomic_store(&fed_stream, NULL);
    atomic_store(&fed_closed, 0);
    int fd = tc_connect(port);
    const char *req = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tc_send_all(fd, req, strlen(req)), 0);
    assert_true(wait_for(fed_ready, 3000));
    struct cm_http_stream *st = atomic_load(&fed_stream);
    assert_int_equal(cm_http_stream_send(st, "data: 1\n\n", 9), 0);
    assert_int_equal(cm_http_server_shutdown(srv), 0);
    struct tc_resp r;
    assert_int_equal(tc_read_response(fd, &r), 0);
    close(fd);
    assert_string_equal(r.body, "data: 1\n\n");
    tc_resp_free(&r);
    assert_true(wait_for(fed_is_closed, 2000));
    cm_http_stream_release(st);
}

struct client_result {
    int rc;
    struct tc_resp resp;
};

static void *slow_client(void *arg)
{
    struct client_result *cr = arg;
    cr->rc = tc_request(port, "GET", "/slow", NULL, NULL, 0, &cr->resp);
    return NULL;
}

static void test_graceful_shutdown_finishes_in_flight(void **state)
{
    (void)state;
    atomic_store(&slow_started, 0);
    atomic_store(&slow_release, 0);
    struct client_result cr;
    memset(&cr, 0, sizeof cr);
    pthread_t t;
    pthread_create(&t, NULL, slow_client, &cr);
    assert_true(wait_for(slow_is_started, 3000));
    atomic_store(&slow_release, 1);
    assert_int_equal(cm_http_server_shutdown(srv), 0);
    pthread_join(t, NULL);
    assert_int_equal(cr.rc, 0);
    assert_int_equal(cr.resp.status, 200);
    assert_string_equal(cr.resp.body, "{\"slow\":\"done\"}");
    assert_string_equal(hdr(&cr.resp, "Connection"), "close");
    tc_resp_free(&cr.resp);
    /* No longer accepting. */
    assert_true(tc_connect(port) < 0);
    assert_int_equal(cm_http_server_shutdown(srv), 0); /* idempotent */
}

static void *send_sigterm(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL); /* run_until_signal must be waiting: nothing to poll */
    kill(getpid(), SIGTERM);
    return NULL;
}

static void test_run_until_signal(void **state)
{
    (void)state;
    pthread_t t;
    pthread_create(&t, NULL, send_sigterm, NULL);
    assert_int_equal(cm_http_server_run_until_signal(srv), 0);
    pthread_join(t, NULL);
    assert_true(cm_http_server_draining(srv));
    assert_true(tc_connect(port) < 0);
}

static void test_bad_config_and_patterns(void **state)
{
    (void)state;
    static const struct cm_http_route bad1[] = {{"GET", "no-slash", h_hello, 0, NULL}};
    static const struct cm_http_route bad2[] = {{"GET", "/a/{", h_hello, 0, NULL}};
    static const struct cm_http_route bad3[] = {{"GET", "/a", NULL, 0, NULL}};
    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    assert_null(cm_http_server_new(&cfg, bad1, 1));
    assert_null(cm_http_server_new(&cfg, bad2, 1));
    assert_null(cm_http_server_new(&cfg, bad3, 1));
    cfg.bind_addr = "not-an-ip";
    struct cm_http_server *s = cm_http_server_new(&cfg, NULL, 0);
    assert_non_null(s);
    assert_int_equal(cm_http_server_start(s), -1);
    assert_int_equal(cm_http_server_port(s), -1);
    cm_http_server_free(s);
    /* Port in use. */
    cm_http_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.port = port;
    s = cm_http_server_new(&cfg, NULL, 0);
    assert_int_equal(cm_http_server_start(s), -1);
    cm_http_server_free(s);
    assert_int_equal(cm_http_server_add_routes(srv, routes, 1), -1); /* after start */
}

/* BIND_ADDR picks the interface (the lab: loopback only). */
static void test_bind_addr_from_env(void **state)
{
    (void)state;
    struct cm_http_config cfg;
    setenv("BIND_ADDR", "127.0.0.1", 1);
    cm_http_config_init(&cfg);
    assert_string_equal(cfg.bind_addr, "127.0.0.1");
    unsetenv("BIND_ADDR");
    cm_http_config_init(&cfg);
    assert_string_equal(cfg.bind_addr, "0.0.0.0");
}

int main(void)
{
    cm_log_init("test_http_server", CM_LOG_ERROR);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cm_log_set_fd(devnull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_addr_from_env),
        cmocka_unit_test_setup_teardown(test_json_route_and_generated_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_params_query_and_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_route_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_method_405_with_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_body_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_and_bad_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_id_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traceparent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_without_reply_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_access_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_keepalive_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_unanswered_at_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_fed_from_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_with_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_client_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_ends_open_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_shutdown_finishes_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_until_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_and_patterns, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cm_metrics_reset();
    return rc;
}
