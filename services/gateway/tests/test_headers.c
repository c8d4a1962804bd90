/* What is forwarded upstream: the header filter and URL encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "../gateway.h"
#include "common/banned.h"

static void strips_identity_and_hop_by_hop(void **state)
{
    (void)state;
    static const char *const dropped[] = {
        "X-User-Id",
        "x-user-id",
        "X-USER-ROLES",
        "X-User-Anything",
        "X-Internal-Token",
        "X-Forwarded-For",
        "x-forwarded-host",
        "X-Admin-Token",
        "Authorization",
        "Cookie",
        "Connection",
        "keep-alive",
        "Transfer-Encoding",
        "TE",
        "Upgrade",
        "Host",
        "Content-Length",
        "Expect",
        "Proxy-Authorization",
        "X-Request-Id",
        "traceparent",
        "X-Real-IP",
        "Forwarded",
        "Accept-Encoding",
        "Content-Type",
        "",
        "Bad Name",
        "a:b",
    };
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (gw_header_forwardable(dropped[i]))
            fail_msg("%s should be dropped", dropped[i]);
    assert_false(gw_header_forwardable(NULL));
}

static void keeps_ordinary_headers(void **state)
{
    (void)state;
    static const char *const kept[] = {"Accept",        "Idempotency-Key",  "User-Agent",
                                       "If-None-Match", "X-Client-Version", "Last-Event-ID",
                                       "X-Userid"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (!gw_header_forwardable(kept[i]))
            fail_msg("%s should be kept", kept[i]);
}

static void response_headers_filtered(void **state)
{
    (void)state;
    static const char *const kept[] = {
        "Location", "X-RateLimit-Limit", "Retry-After", "Set-Cookie", "Cache-Control",
        "ETag",     "Content-Encoding",  "Link"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (!gw_response_header_forwardable(kept[i], NULL))
            fail_msg("%s should be relayed", kept[i]);
    static const char *const dropped[] = {
        "Connection", "keep-alive",         "Transfer-Encoding", "TE",           "Trailer",
        "Upgrade",    "Proxy-Authenticate", "Content-Length",    "Content-Type", "Date",
        "Server",     "X-Request-Id",       "traceparent",       "Bad Name",     "",
    };
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (gw_response_header_forwardable(dropped[i], NULL))
            fail_msg("%s should not be relayed", dropped[i]);
    assert_false(gw_response_header_forwardable(NULL, NULL));
    /* names the upstream's Connection header lists are hop-by-hop too */
    assert_false(gw_response_header_forwardable("X-Hop", "close, x-hop"));
    assert_false(gw_response_header_forwardable("X-Hop", " X-Hop "));
    assert_true(gw_response_header_forwardable("X-Hop", "X-Hopper, close"));
    assert_true(gw_response_header_forwardable("X-Hop", ""));
}

static void encodes_path_and_query(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b, 4096);
    assert_int_equal(gw_path_append(&b, "/v1/markets/BTC-USDT/book"), 0);
    assert_int_equal(gw_query_append(&b, "depth", "10"), 0);
    assert_int_equal(gw_query_append(&b, "q", "a b&c=d"), 0);
    assert_int_equal(gw_query_append(&b, "flag", NULL), 0);
    assert_string_equal(b.data, "/v1/markets/BTC-USDT/book?depth=10&q=a%20b%26c%3Dd&flag");
    cm_buf_reset(&b);
    assert_int_equal(gw_path_append(&b, "/a b/\xc3\xa9?#"), 0);
    assert_string_equal(b.data, "/a%20b/%C3%A9%3F%23");
    cm_buf_release(&b);
}

static void query_respects_cap(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b, 16);
    assert_int_equal(gw_path_append(&b, "/x"), 0);
    assert_int_equal(gw_query_append(&b, "key", "a-very-long-value"), -1);
    cm_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strips_identity_and_hop_by_hop),
        cmocka_unit_test(keeps_ordinary_headers),
        cmocka_unit_test(response_headers_filtered),
        cmocka_unit_test(encodes_path_and_query),
        cmocka_unit_test(query_respects_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
