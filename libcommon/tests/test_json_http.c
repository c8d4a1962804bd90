/* JSON request/response helpers and the error envelope, end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "support/http_test_client.h"
#include "common/banned.h"

static void h_error(struct cm_http_req *r)
{
    cm_http_reply_error(r, 422, "insufficient_funds", "need %d more \"%s\"", 5, "USDT\n");
}

static void h_twice(struct cm_http_req *r)
{
    assert_int_equal(cm_http_reply_json_str(r, 200, "{\"first\":true}"), 0);
    assert_int_equal(cm_http_reply_json_str(r, 500, "{\"second\":true}"), -1);
    assert_int_equal(cm_http_reply_error(r, 500, "x", "y"), -1);
    assert_int_equal(cm_http_reply_json(r, 500, cJSON_CreateObject()), -1);
    assert_int_equal(cm_http_set_header(r, "X-Late", "1"), -1);
}

static void h_headers(struct cm_http_req *r)
{
    assert_int_equal(cm_http_set_header(r, "X-Bad", "a\r\nInjected: 1"), -1);
    assert_int_equal(cm_http_set_header(r, "X:Bad", "v"), -1);
    assert_int_equal(cm_http_set_header(r, NULL, "v"), -1);
    assert_int_equal(cm_http_set_header(r, "X-Good", "v"), 0);
    const char *ua = cm_http_req_header(r, "x-custom");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "custom", ua ? ua : "(none)");
    cJSON_AddBoolToObject(o, "no_query", cm_http_req_query(r, "nope") == NULL);
    size_t len = 99;
    cJSON_AddStringToObject(o, "body", cm_http_req_body(r, &len));
    cJSON_AddNumberToObject(o, "len", (double)len);
    cm_http_reply_json(r, 200, o);
}

static void h_json_twice(struct cm_http_req *r)
{
    cJSON *a = cm_http_req_json(r);
    if (!a)
        return;
    assert_ptr_equal(cm_http_req_json(r), a); /* parsed once, owned by the request */
    cm_http_reply_json(r, 200, cJSON_CreateString(cJSON_IsObject(a) ? "object" : "other"));
}

static void h_static(struct cm_http_req *r)
{
    static const char body[] = "plain";
    cm_http_reply_static(r, 202, NULL, body, sizeof body - 1);
}

static const struct cm_http_route routes[] = {
    {"GET", "/error", h_error, 0, NULL},     {"GET", "/twice", h_twice, 0, NULL},
    {"GET", "/headers", h_headers, 0, NULL}, {"POST", "/json", h_json_twice, CM_ROUTE_BODY, NULL},
    {"GET", "/static", h_static, 0, NULL},
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
    cfg.threads = 1;
    srv = cm_http_server_new(&cfg, routes, sizeof routes / sizeof routes[0]);
    assert_non_null(srv);
    assert_int_equal(cm_http_server_start(srv), 0);
    port = cm_http_server_port(srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_http_server_free(srv);
    return 0;
}

static void test_error_envelope_exact(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/error", "X-Request-Id: rid-1\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"insufficient_funds\","
                                "\"message\":\"need 5 more \\\"USDT\\n\\\"\","
                                "\"request_id\":\"rid-1\"}}");
    char ct[64];
    assert_string_equal(tc_header(&r, "Content-Type", ct, sizeof ct), "application/json");
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    cJSON_Delete(j);
    tc_resp_free(&r);
}

static void test_single_reply(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/twice", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"first\":true}");
    char v[16];
    assert_null(tc_header(&r, "X-Late", v, sizeof v));
    tc_resp_free(&r);
}

static void test_headers_and_empty_body(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/headers", "X-Custom: hi there\r\n", NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "{\"custom\":\"hi there\",\"no_query\":true,\"body\":\"\",\"len\":0}");
    char v[16];
    assert_string_equal(tc_header(&r, "X-Good", v, sizeof v), "v");
    assert_null(tc_header(&r, "Injected", v, sizeof v));
    tc_resp_free(&r);
}

static void test_json_parsed_once_and_bad(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "POST", "/json", NULL, " {\"a\":1}\n", 9, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "\"object\"");
    tc_resp_free(&r);
    static const char *const bad[] = {"{", "[1,]", "nul", "{\"a\":1} x", "\"unterminated"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tc_request(port, "POST", "/json", NULL, bad[i], strlen(bad[i]), &r), 0);
        assert_int_equal(r.status, 400);
        cJSON *j = cJSON_Parse(r.body);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code")->valuestring,
            "invalid_json");
        cJSON_Delete(j);
        tc_resp_free(&r);
    }
    /* Empty body on a JSON route. */
    assert_int_equal(tc_request(port, "POST", "/json", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "invalid_json"));
    tc_resp_free(&r);
}

static void test_default_cap_one_mib(void **state)
{
    (void)state;
    /* A JSON string of exactly 1 MiB passes the default cap; one more byte does not. */
    size_t n = 1024 * 1024;
    char *body = malloc(n + 2);
    assert_non_null(body);
    memset(body, 'a', n + 1);
    body[0] = '"';
    body[n - 1] = '"';
    struct tc_resp r;
    assert_int_equal(tc_request(port, "POST", "/json", NULL, body, n, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "\"other\"");
    tc_resp_free(&r);
    body[n - 1] = 'a';
    body[n] = '"';
    assert_int_equal(tc_request(port, "POST", "/json", NULL, body, n + 1, &r), 0);
    assert_int_equal(r.status, 413);
    tc_resp_free(&r);
    free(body);
}

static void test_static_reply(void **state)
{
    (void)state;
    struct tc_resp r;
    assert_int_equal(tc_request(port, "GET", "/static", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "plain");
    char ct[64];
    assert_string_equal(tc_header(&r, "Content-Type", ct, sizeof ct), "application/octet-stream");
    tc_resp_free(&r);
}

int main(void)
{
    cm_log_init("test_json_http", CM_LOG_ERROR);
    cm_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_error_envelope_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_and_empty_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_parsed_once_and_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_cap_one_mib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_reply, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cm_metrics_reset();
    return rc;
}
