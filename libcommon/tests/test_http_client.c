/* Tests for common/http_client.h against a scripted loopback server
 * (tests/support/mini_http_server.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/metrics.h"
#include "support/mini_http_server.h"

#include "common/banned.h"

struct script {
    int flaky_left; /* /flaky answers 503 while > 0 */
    char method[16];
    char request_id[128];
    char traceparent[128];
    char custom[128];
    char content_type[128];
    char body[256];
};

static struct script sc;
static struct mini_http_server *srv;
static char base[64];
static int devnull = -1;
static int64_t fake_ms;

static int64_t fake_clock(void *ctx)
{
    return *(int64_t *)ctx;
}

static void handler(const struct mini_http_request *req, struct mini_http_reply *rep, void *ctx)
{
    struct script *s = ctx;
    if (strcmp(req->path, "/ok") == 0) {
        rep->body = "{\"ok\":true}";
        rep->headers = "Content-Type: application/json\r\n";
    } else if (strcmp(req->path, "/slow") == 0) {
        rep->delay_ms = 5000;
        rep->body = "late";
    } else if (strcmp(req->path, "/flaky") == 0) {
        if (s->flaky_left > 0) {
            s->flaky_left--;
            rep->status = 503;
        } else {
            rep->body = "recovered";
        }
    } else if (strcmp(req->path, "/busy") == 0) {
        rep->status = 503;
        rep->headers = "Retry-After: 7\r\n";
    } else if (strcmp(req->path, "/fail") == 0) {
        rep->status = 500;
    } else if (strcmp(req->path, "/big") == 0) {
        rep->body_len = 4096;
    } else if (strcmp(req->path, "/exact") == 0) {
        rep->body_len = 1024;
    } else if (strcmp(req->path, "/big-stream") == 0) {
        rep->body_len = 4096;
        rep->no_content_length = 1;
    } else if (strcmp(req->path, "/close") == 0) {
        rep->close_without_reply = 1;
    } else if (strcmp(req->path, "/echo") == 0) {
        snprintf(s->method, sizeof s->method, "%s", req->method);
        s->request_id[0] = s->traceparent[0] = s->custom[0] = s->content_type[0] = '\0';
        mini_http_header(req, "X-Request-Id", s->request_id, sizeof s->request_id);
        mini_http_header(req, "traceparent", s->traceparent, sizeof s->traceparent);
        mini_http_header(req, "X-Custom", s->custom, sizeof s->custom);
        mini_http_header(req, "Content-Type", s->content_type, sizeof s->content_type);
        size_t n = req->body_len < sizeof s->body - 1 ? req->body_len : sizeof s->body - 1;
        memcpy(s->body, req->body, n);
        s->body[n] = '\0';
        rep->status = 201;
    } else {
        rep->status = 404;
    }
}

static int group_setup(void **state)
{
    (void)state;
    cm_log_init("test_http_client", CM_LOG_ERROR);
    devnull = open("/dev/null", O_WRONLY);
    cm_log_set_fd(devnull);
    srv = mini_http_server_start(handler, &sc);
    assert_non_null(srv);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", mini_http_server_port(srv));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mini_http_server_stop(srv);
    cm_log_set_fd(1);
    close(devnull);
    return 0;
}

static int use_curl; /* base_cfg's transport */

static int reset(void **state)
{
    (void)state;
    use_curl = 0;
    memset(&sc, 0, sizeof sc);
    cm_metrics_reset();
    cm_log_set_context(NULL, NULL);
    fake_ms = 1000000;
    return 0;
}

static int reset_curl(void **state)
{
    reset(state);
    use_curl = 1;
    return 0;
}

static struct cm_http_client_config base_cfg(const char *name)
{
    struct cm_http_client_config c = {
        .name = name,
        .base_url = base,
        .timeout_ms = 2000,
        .connect_timeout_ms = 2000, /* generous: valgrind and loaded CI machines are slow */
        .backoff_base_ms = 1,
        .backoff_max_ms = 5,
        .breaker = {.clock = fake_clock, .clock_ctx = &fake_ms},
        .use_libcurl = use_curl,
    };
    return c;
}

static struct cm_http_client *client(const struct cm_http_client_config *cfg)
{
    struct cm_http_client *c = cm_http_client_new(cfg);
    assert_non_null(c);
    return c;
}

static double requests_metric(const char *upstream, const char *code)
{
    struct cm_metric *m = cm_metric_counter(
        "http_client_requests_total",
        "Outgoing HTTP requests by upstream and status code; code is timeout, error or open "
        "for non-HTTP outcomes.",
        "upstream,code");
    double v = 0;
    if (!m || cm_metric_value(m, &v, upstream, code) < 0)
        return 0;
    return v;
}

static void test_get_ok(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("ok");
    struct cm_http_client *c = client(&cfg);
    struct cm_http_response r;
    assert_int_equal(cm_http_client_get(c, "/ok", &r), 0);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"ok\":true}");
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.attempts, 1);
    cm_http_response_release(&r);
    /* a 404 is a response too (no retry, breaker counts it healthy) */
    assert_int_equal(cm_http_client_get(c, "/nope", &r), 0);
    assert_int_equal(r.status, 404);
    cm_http_response_release(&r);
    assert_true(requests_metric("ok", "200") == 1);
    assert_true(requests_metric("ok", "404") == 1);
    cm_http_client_free(c);
}

static void test_connection_reused(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("reuse");
    struct cm_http_client *c = client(&cfg);
    struct cm_http_response r;
    int before = mini_http_server_connections(srv);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cm_http_client_get(c, "/ok", &r), 0);
        cm_http_response_release(&r);
    }
    assert_int_equal(mini_http_server_connections(srv) - before, 1);
    cm_http_client_free(c);
}

static void test_timeout_honoured(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("slow");
    cfg.timeout_ms = 200;
    cfg.max_retries = CM_HTTP_CLIENT_NO_RETRY;
    struct cm_http_client *c = client(&cfg);
    struct cm_http_response r;
    assert_int_equal(cm_http_client_get(c, "/slow", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_TIMEOUT);
    assert_int_equal(r.status, 0);
    assert_true(r.elapsed_ms >= 150);
    assert_true(r.elapsed_ms < 1500);
    cm_http_response_release(&r);
    assert_true(requests_metric("slow", "timeout") == 1);

    /* per-call override, shorter still */
    struct cm_http_request req = {.method = "GET", .path = "/slow", .timeout_ms = 50};
    assert_int_equal(cm_http_client_do(c, &req, &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_TIMEOUT);
    assert_true(r.elapsed_ms < 1000);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

static void test_deadline_bounds_retries(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("deadline");
    cfg.timeout_ms = 100;
    cfg.deadline_ms = 250;
    cfg.max_retries = 5;
    cfg.breaker_off = 1;
    struct cm_http_client *c = client(&cfg);
    struct cm_http_response r;
    assert_int_equal(cm_http_client_get(c, "/slow", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_TIMEOUT);
    assert_true(r.attempts >= 1 && r.attempts <= 3); /* 2-3 unless the machine stalls */
    assert_true(r.elapsed_ms < 1000);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

static void test_retry_503_then_ok(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("flaky");
    cfg.max_retries = 3;
    struct cm_http_client *c = client(&cfg);
    sc.flaky_left = 2;
    int before = mini_http_server_requests(srv);
    struct cm_http_response r;
    assert_int_equal(cm_http_client_get(c, "/flaky", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "recovered");
    assert_int_equal(r.attempts, 3);
    assert_int_equal(mini_http_server_requests(srv) - before, 3);
    assert_true(requests_metric("flaky", "503") == 2);
    assert_true(requests_metric("flaky", "200") == 1);
    cm_http_response_release(&r);

    /* retries exhausted: the last 503 is returned */
    sc.flaky_left = 10;
    assert_int_equal(cm_http_client_get(c, "/flaky", &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 4);
    cm_http_response_release(&r);

    /* Retry-After longer than the deadline allows: answer now, header kept */
    struct cm_http_request req = {.method = "GET", .path = "/busy", .deadline_ms = 1000};
    assert_int_equal(cm_http_client_do(c, &req, &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.retry_after, "7");
    assert_true(r.elapsed_ms < 900);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

static void test_no_retry_for_post(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("post");
    cfg.max_retries = 3;
    struct cm_http_client *c = client(&cfg);
    sc.flaky_left = 2;
    int before = mini_http_server_requests(srv);
    struct cm_http_request req = {.method = "POST", .path = "/flaky", .body = "{}", .body_len = 2};
    struct cm_http_response r;
    assert_int_equal(cm_http_client_do(c, &req, &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(mini_http_server_requests(srv) - before, 1);
    cm_http_response_release(&r);

    /* marked idempotent (idempotency key): retried */
    const char *hdrs[] = {"Idempotency-Key: order-7", NULL};
    req.headers = hdrs;
    req.idempotent = 1;
    assert_int_equal(cm_http_client_do(c, &req, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

static void test_breaker_opens_and_fails_fast(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("breaker");
    cfg.max_retries = CM_HTTP_CLIENT_NO_RETRY;
    cfg.breaker.consecutive_failures = 3;
    cfg.breaker.open_ms = 10000;
    struct cm_http_client *c = client(&cfg);
    struct cm_http_response r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cm_http_client_get(c, "/fail", &r), 0);
        assert_int_equal(r.status, 500);
        cm_http_response_release(&r);
    }
    assert_int_equal(cm_breaker_get_state(cm_http_client_breaker(c)), CM_BREAKER_OPEN);
    int before = mini_http_server_requests(srv);
    assert_int_equal(cm_http_client_get(c, "/ok", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_OPEN);
    assert_int_equal(r.attempts, 0);
    assert_true(r.elapsed_ms < 100);
    cm_http_response_release(&r);
    assert_int_equal(mini_http_server_requests(srv), before); /* nothing sent */
    assert_true(requests_metric("breaker", "open") == 1);

    /* after open_ms (fake clock) a probe goes through and closes it */
    fake_ms += 10000;
    assert_int_equal(cm_http_client_get(c, "/ok", &r), 0);
    assert_int_equal(r.status, 200);
    cm_http_response_release(&r);
    assert_int_equal(cm_breaker_get_state(cm_http_client_breaker(c)), CM_BREAKER_CLOSED);
    cm_http_client_free(c);
}

static void test_headers_propagated(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("hdr");
    struct cm_http_client *c = client(&cfg);
    const char *hdrs[] = {"X-Custom: yes", NULL};
    struct cm_http_request req = {
        .method = "PUT",
        .path = "/echo",
        .body = "{\"a\":1}",
        .body_len = 7,
        .headers = hdrs,
        .request_id = "req-123",
        .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    };
    struct cm_http_response r;
    assert_int_equal(cm_http_client_do(c, &req, &r), 0);
    assert_int_equal(r.status, 201);
    cm_http_response_release(&r);
    assert_string_equal(sc.method, "PUT");
    assert_string_equal(sc.request_id, "req-123");
    assert_string_equal(sc.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_string_equal(sc.custom, "yes");
    assert_string_equal(sc.content_type, "application/json");
    assert_string_equal(sc.body, "{\"a\":1}");

    /* from the log context: a bare trace id gets a fresh span id */
    cm_log_set_context("ctx-rid", "4bf92f3577b34da6a3ce929d0e0e4736");
    struct cm_http_request req2 = {.method = "DELETE", .path = "/echo"};
    assert_int_equal(cm_http_client_do(c, &req2, &r), 0);
    cm_http_response_release(&r);
    assert_string_equal(sc.method, "DELETE");
    assert_string_equal(sc.request_id, "ctx-rid");
    assert_int_equal(strlen(sc.traceparent), 55);
    assert_memory_equal(sc.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    assert_string_equal(sc.traceparent + 52, "-01");
    cm_log_set_context(NULL, NULL);

    /* no context, no caller values: neither header is invented */
    struct cm_http_request req3 = {.method = "POST", .path = "/echo"};
    assert_int_equal(cm_http_client_do(c, &req3, &r), 0);
    cm_http_response_release(&r);
    assert_string_equal(sc.method, "POST");
    assert_string_equal(sc.request_id, "");
    assert_string_equal(sc.traceparent, "");
    assert_string_equal(sc.body, "");

    /* HEAD: a status, no body */
    struct cm_http_request head = {.method = "HEAD", .path = "/ok"};
    assert_int_equal(cm_http_client_do(c, &head, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

static void test_too_large(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("big");
    cfg.max_body = 1024;
    struct cm_http_client *c = client(&cfg);
    struct cm_http_response r;
    assert_int_equal(cm_http_client_get(c, "/big", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_TOO_LARGE);
    assert_int_equal(r.body.len, 0);
    assert_int_equal(r.attempts, 1);
    cm_http_response_release(&r);
    assert_int_equal(cm_http_client_get(c, "/big-stream", &r), -1); /* no Content-Length */
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_TOO_LARGE);
    cm_http_response_release(&r);
    assert_int_equal(cm_http_client_get(c, "/exact", &r), 0); /* exactly the cap */
    assert_int_equal(r.body.len, 1024);
    cm_http_response_release(&r);
    assert_true(requests_metric("big", "error") == 2);
    cm_http_client_free(c);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* nothing listens there now */
    return ntohs(a.sin_port);
}

static void test_connect_error_and_close(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", free_port());
    struct cm_http_client_config cfg = base_cfg("down");
    cfg.base_url = url;
    cfg.max_retries = 2;
    cfg.breaker_off = 1;
    struct cm_http_client *c = client(&cfg);
    struct cm_http_response r;
    assert_int_equal(cm_http_client_get(c, "/ok", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_CONNECT_ERROR);
    assert_int_equal(r.attempts, 3);
    cm_http_response_release(&r);
    assert_true(requests_metric("down", "error") == 3);
    cm_http_client_free(c);

    /* server closes without answering: a connection error, retried for GET */
    cfg = base_cfg("close");
    cfg.max_retries = 1;
    c = client(&cfg);
    int before = mini_http_server_requests(srv);
    assert_int_equal(cm_http_client_get(c, "/close", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_CONNECT_ERROR);
    assert_int_equal(r.attempts, 2);
    assert_true(mini_http_server_requests(srv) - before >= 2);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("bad");
    struct cm_http_client *c = client(&cfg);
    int before = mini_http_server_requests(srv);
    struct cm_http_response r;
    const char *crlf_hdr[] = {"X-Evil: a\r\nX-Injected: b", NULL};
    const char *no_colon[] = {"NoColon", NULL};
    struct cm_http_request bad[] = {
        {.method = "GET", .path = "ok"},
        {.method = "GET", .path = NULL},
        {.method = "GET", .path = "/ok\r\nX: y"},
        {.method = "GET", .path = "/o k"},
        {.method = "get", .path = "/ok"},
        {.method = "", .path = "/ok"},
        {.method = "G\nET", .path = "/ok"},
        {.method = "GET", .path = "/ok", .headers = crlf_hdr},
        {.method = "GET", .path = "/ok", .headers = no_colon},
        {.method = "GET", .path = "/ok", .request_id = "a\nb"},
        {.method = "GET", .path = "/ok", .traceparent = "x\r\n"},
        {.method = "POST", .path = "/ok", .body = NULL, .body_len = 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cm_http_client_do(c, &bad[i], &r) != -1 || r.outcome != CM_HTTP_CLIENT_ERROR)
            fail_msg("bad request %zu accepted", i);
        cm_http_response_release(&r);
    }
    assert_int_equal(mini_http_server_requests(srv), before);
    assert_int_equal(cm_http_client_do(c, NULL, &r), -1);
    cm_http_response_release(&r);
    assert_int_equal(cm_http_client_do(c, &bad[0], NULL), -1);
    cm_http_client_free(c);

    struct cm_http_client_config bc[8];
    for (int i = 0; i < 8; i++)
        bc[i] = base_cfg("cfg");
    bc[0].name = NULL;
    bc[1].base_url = "ftp://x";
    bc[2].base_url = NULL;
    bc[3].timeout_ms = -1;
    bc[4].max_retries = -2;
    bc[5].breaker.failure_rate_pct = 200;
    bc[6].backoff_base_ms = INT64_MAX / 2; /* would overflow the exponential backoff */
    bc[7].pool_size = -1;
    for (int i = 0; i < 8; i++)
        assert_null(cm_http_client_new(&bc[i]));
    assert_null(cm_http_client_new(NULL));
    assert_string_equal(cm_http_client_outcome_name(CM_HTTP_CLIENT_OPEN), "open");
}

struct worker {
    struct cm_http_client *c;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25; i++) {
        struct cm_http_response r;
        if (cm_http_client_get(w->c, "/ok", &r) == 0 && r.status == 200)
            w->ok++;
        cm_http_response_release(&r);
    }
    return NULL;
}

static void test_threads_share_client(void **state)
{
    (void)state;
    struct cm_http_client_config cfg = base_cfg("threads");
    cfg.pool_size = 2; /* fewer handles than threads: some are created and dropped */
    struct cm_http_client *c = client(&cfg);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].c = c;
        w[i].ok = 0;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 25);
    }
    assert_true(requests_metric("threads", "200") == 100);
    cm_http_client_free(c);
}

int main(void)
{
/* Every case runs on the built-in transport, then again through libcurl
 * (what https:// upstreams use): both must behave the same. */
#define BOTH(f)                                                                                    \
    {#f, f, reset, NULL, NULL},                                                                    \
    {                                                                                              \
        "curl_" #f, f, reset_curl, NULL, NULL                                                      \
    }
    const struct CMUnitTest tests[] = {
        BOTH(test_get_ok),
        BOTH(test_connection_reused),
        BOTH(test_timeout_honoured),
        BOTH(test_deadline_bounds_retries),
        BOTH(test_retry_503_then_ok),
        BOTH(test_no_retry_for_post),
        BOTH(test_breaker_opens_and_fails_fast),
        BOTH(test_headers_propagated),
        BOTH(test_too_large),
        BOTH(test_connect_error_and_close),
        BOTH(test_bad_input),
        BOTH(test_threads_share_client),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
