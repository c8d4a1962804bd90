/* Wire-level tests for common/http_client.h: a raw loopback server answers
 * each request with canned bytes (chunked bodies, interim 1xx heads,
 * close-delimited bodies, garbage, an idle connection it closes), and the
 * response headers are checked on both transports (built-in and libcurl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

#include "common/banned.h"

/* ---- the raw server: one connection at a time, one script per request ---- */

struct raw_server {
    int lfd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    const char *answer; /* bytes sent for every request head read */
    int close_after;    /* 1: close the connection after answering */
    int connections;
    int requests;
    char last_head[4096];
    int stop;
};

static struct raw_server rs;

/* Reads one request head (and a Content-Length body) from fd; -1 at EOF. */
static int read_request(int fd, char *head, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, head + n, 1, 0);
        if (r <= 0)
            return -1;
        n++;
        head[n] = '\0';
        if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    const char *cl = strcasestr(head, "\r\nContent-Length:");
    long body = 0;
    if (cl)
        body = strtol(cl + 17, NULL, 10);
    char sink[256];
    while (body > 0) {
        ssize_t r = recv(fd, sink, body < (long)sizeof sink ? (size_t)body : sizeof sink, 0);
        if (r <= 0)
            return -1;
        body -= r;
    }
    return 0;
}

static void *raw_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(rs.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&rs.lock);
        int stop = rs.stop;
        rs.connections++;
        pthread_mutex_unlock(&rs.lock);
        if (stop) {
            close(fd);
            return NULL;
        }
        char head[4096];
        while (read_request(fd, head, sizeof head) == 0) {
            pthread_mutex_lock(&rs.lock);
            rs.requests++;
            snprintf(rs.last_head, sizeof rs.last_head, "%s", head);
            const char *ans = rs.answer;
            int close_after = rs.close_after;
            pthread_mutex_unlock(&rs.lock);
            size_t len = strlen(ans);
            if (send(fd, ans, len, MSG_NOSIGNAL) != (ssize_t)len || close_after)
                break;
        }
        close(fd);
    }
}

static void script(const char *answer, int close_after)
{
    pthread_mutex_lock(&rs.lock);
    rs.answer = answer;
    rs.close_after = close_after;
    pthread_mutex_unlock(&rs.lock);
}

static int counter(const int *v)
{
    pthread_mutex_lock(&rs.lock);
    int n = *v;
    pthread_mutex_unlock(&rs.lock);
    return n;
}

static char base[64];
static int devnull = -1;

static int group_setup(void **state)
{
    (void)state;
    cm_log_init("test_http_client_wire", CM_LOG_ERROR);
    devnull = open("/dev/null", O_WRONLY);
    cm_log_set_fd(devnull);
    pthread_mutex_init(&rs.lock, NULL);
    rs.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (rs.lfd < 0 || bind(rs.lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(rs.lfd, 16) != 0 || getsockname(rs.lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    rs.port = ntohs(a.sin_port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", rs.port);
    return pthread_create(&rs.thread, NULL, raw_main, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    pthread_mutex_lock(&rs.lock);
    rs.stop = 1;
    pthread_mutex_unlock(&rs.lock);
    /* wake accept() */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rs.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        shutdown(rs.lfd, SHUT_RDWR);
    pthread_join(rs.thread, NULL);
    close(fd);
    close(rs.lfd);
    pthread_mutex_destroy(&rs.lock);
    cm_log_set_fd(1);
    close(devnull);
    return 0;
}

static int reset(void **state)
{
    (void)state;
    cm_metrics_reset();
    script("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
    return 0;
}

static struct cm_http_client *client(int use_libcurl)
{
    struct cm_http_client_config cfg = {
        .name = use_libcurl ? "wire-curl" : "wire",
        .base_url = base,
        .timeout_ms = 2000,
        .connect_timeout_ms = 2000,
        .max_retries = CM_HTTP_CLIENT_NO_RETRY,
        .breaker_off = 1,
        .use_libcurl = use_libcurl,
    };
    struct cm_http_client *c = cm_http_client_new(&cfg);
    assert_non_null(c);
    return c;
}

struct collected {
    char text[1024];
    int n;
};

static int collect(void *ctx, const char *name, const char *value)
{
    struct collected *c = ctx;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, "%s=%s;", name, value);
    c->n++;
    return 0;
}

/* The upstream's headers reach the caller, in order, on both transports. */
static void test_response_headers(void **state)
{
    (void)state;
    script("HTTP/1.1 201 Created\r\n"
           "Location: /v1/orders/42\r\n"
           "X-RateLimit-Limit: 100\r\n"
           "x-ratelimit-remaining:   99  \r\n"
           "Content-Type: application/json\r\n"
           "Retry-After: 3\r\n"
           "Content-Length: 7\r\n"
           "\r\n"
           "{\"a\":1}",
           0);
    for (int curl = 0; curl <= 1; curl++) {
        struct cm_http_client *c = client(curl);
        struct cm_http_response r;
        assert_int_equal(cm_http_client_get(c, "/h", &r), 0);
        assert_int_equal(r.status, 201);
        assert_string_equal(r.body.data, "{\"a\":1}");
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(r.retry_after, "3");
        assert_string_equal(cm_http_response_header(&r, "location"), "/v1/orders/42");
        assert_string_equal(cm_http_response_header(&r, "X-RateLimit-Remaining"), "99");
        assert_null(cm_http_response_header(&r, "X-Missing"));
        struct collected col = {.text = "", .n = 0};
        assert_int_equal(cm_http_response_foreach_header(&r, collect, &col), 6);
        assert_string_equal(col.text, "Location=/v1/orders/42;X-RateLimit-Limit=100;"
                                      "x-ratelimit-remaining=99;Content-Type=application/json;"
                                      "Retry-After=3;Content-Length=7;");
        cm_http_response_release(&r);
        assert_null(cm_http_response_header(&r, "Location")); /* released */
        cm_http_client_free(c);
    }
}

/* Chunked bodies (extensions, trailers) and interim 1xx heads. */
static void test_chunked_and_interim(void **state)
{
    (void)state;
    struct cm_http_client *c = client(0);
    struct cm_http_response r;
    script("HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Final: yes\r\n\r\n"
           "5;ext=1\r\nhello\r\n"
           "1\r\n \r\n"
           "A\r\n0123456789\r\n"
           "0\r\nX-Trailer: dropped\r\n\r\n",
           0);
    int conns = counter(&rs.connections);
    for (int i = 0; i < 2; i++) { /* and the connection stays usable */
        assert_int_equal(cm_http_client_get(c, "/chunked", &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, 16);
        assert_string_equal(r.body.data, "hello 0123456789");
        assert_null(cm_http_response_header(&r, "X-Interim"));
        assert_string_equal(cm_http_response_header(&r, "X-Final"), "yes");
        cm_http_response_release(&r);
    }
    assert_int_equal(counter(&rs.connections) - conns, 1);

    /* A bad chunk size is a bad answer, not a body. */
    script("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 0);
    assert_int_equal(cm_http_client_get(c, "/badchunk", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_ERROR);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

/* HTTP/1.0 and Connection: close answers are read to the end and their
 * connection is not reused; 204 and HEAD have no body. */
static void test_close_delimited_and_no_body(void **state)
{
    (void)state;
    struct cm_http_client *c = client(0);
    struct cm_http_response r;
    script("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", 1);
    int conns = counter(&rs.connections);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cm_http_client_get(c, "/old", &r), 0);
        assert_string_equal(r.body.data, "until close");
        cm_http_response_release(&r);
    }
    assert_int_equal(counter(&rs.connections) - conns, 2);

    script("HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", 0);
    assert_int_equal(cm_http_client_get(c, "/none", &r), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body.len, 0);
    cm_http_response_release(&r);
    script("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 0);
    struct cm_http_request head = {.method = "HEAD", .path = "/h"};
    assert_int_equal(cm_http_client_do(c, &head, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

/* Not HTTP: an error (a gateway's 502), never a response. */
static void test_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
    };
    struct cm_http_client *c = client(0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        script(bad[i], 1);
        struct cm_http_response r;
        if (cm_http_client_get(c, "/x", &r) != -1 || r.outcome != CM_HTTP_CLIENT_ERROR)
            fail_msg("answer %zu accepted (outcome %s)", i, cm_http_client_outcome_name(r.outcome));
        cm_http_response_release(&r);
    }
    /* A head that never ends within the limit. */
    static char huge[80 * 1024];
    memcpy(huge, "HTTP/1.1 200 OK\r\n", 17);
    for (size_t i = 17; i + 1 < sizeof huge; i += 16)
        memcpy(huge + i, "X-Pad: aaaaaaa\r\n", i + 16 < sizeof huge ? 16 : sizeof huge - 1 - i);
    huge[sizeof huge - 1] = '\0';
    script(huge, 1);
    struct cm_http_response r;
    assert_int_equal(cm_http_client_get(c, "/huge", &r), -1);
    assert_int_equal(r.outcome, CM_HTTP_CLIENT_ERROR);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

/* The upstream closes a pooled connection while it is idle: the next
 * request goes out on a fresh one, once, and is not a failed attempt. */
static void test_stale_pooled_connection(void **state)
{
    (void)state;
    struct cm_http_client *c = client(0);
    struct cm_http_response r;
    /* Answers keep-alive but closes: the client pools a dead connection. */
    script("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1);
    int reqs = counter(&rs.requests);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cm_http_client_get(c, "/ok", &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.attempts, 1);
        cm_http_response_release(&r);
    }
    assert_int_equal(counter(&rs.requests) - reqs, 3);
    /* And a POST too (as libcurl does: nothing reached the upstream). */
    struct cm_http_request post = {.method = "POST", .path = "/p", .body = "{}", .body_len = 2};
    assert_int_equal(cm_http_client_do(c, &post, &r), 0);
    assert_int_equal(r.attempts, 1);
    cm_http_response_release(&r);
    cm_http_client_free(c);
}

/* What goes on the wire: request line, Host, framing, caller headers
 * (framing ones dropped, empty ones skipped), the base URL's path. */
static void test_request_head(void **state)
{
    (void)state;
    char url[96];
    snprintf(url, sizeof url, "%s/prefix/", base);
    struct cm_http_client_config cfg = {
        .name = "head", .base_url = url, .max_retries = CM_HTTP_CLIENT_NO_RETRY, .breaker_off = 1};
    struct cm_http_client *c = cm_http_client_new(&cfg);
    assert_non_null(c);
    const char *hdrs[] = {"X-Custom: yes", "Content-Length: 999", "Host: evil",
                          "X-Empty:",      "Accept: text/plain",  NULL};
    struct cm_http_request req = {.method = "PATCH",
                                  .path = "/a?b=1",
                                  .body = "xyz",
                                  .body_len = 3,
                                  .content_type = "text/plain",
                                  .headers = hdrs,
                                  .request_id = "rid-1"};
    struct cm_http_response r;
    assert_int_equal(cm_http_client_do(c, &req, &r), 0);
    cm_http_response_release(&r);
    char head[4096];
    pthread_mutex_lock(&rs.lock);
    snprintf(head, sizeof head, "%s", rs.last_head);
    pthread_mutex_unlock(&rs.lock);
    char want[512];
    snprintf(want, sizeof want,
             "PATCH /prefix/a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Request-Id: rid-1\r\n"
             "Content-Type: text/plain\r\nContent-Length: 3\r\nX-Custom: yes\r\n"
             "Accept: text/plain\r\n\r\n",
             rs.port);
    assert_string_equal(head, want);
    cm_http_client_free(c);

    /* Base URLs the built-in transport cannot use are refused at creation. */
    static const char *const bad[] = {"http://",     "http://:80", "http://h:0", "http://h:99999",
                                      "http://h:8x", "http://u@h", "http://[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.base_url = bad[i];
        if (cm_http_client_new(&cfg))
            fail_msg("base_url %s accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_response_headers, reset),
        cmocka_unit_test_setup(test_chunked_and_interim, reset),
        cmocka_unit_test_setup(test_close_delimited_and_no_body, reset),
        cmocka_unit_test_setup(test_garbage, reset),
        cmocka_unit_test_setup(test_stale_pooled_connection, reset),
        cmocka_unit_test_setup(test_request_head, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
