/* Route table compilation and matching (no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "../src/http_internal.h"
#include "common/banned.h"

static void h(struct cm_http_req *r)
{
    (void)r;
}

static const struct cm_http_route table[] = {
    {"GET", "/v1/orders", h, 0, NULL},
    {"POST", "/v1/orders", h, 0, NULL},
    {"GET", "/v1/orders/{id}", h, 0, NULL},
    {"DELETE", "/v1/orders/{id}", h, 0, NULL},
    {"GET", "/v1/orders/open", h, 0, NULL},
    {"GET", "/v1/markets/{m}/trades/{tid}", h, 0, NULL},
    {"GET", "/static/*", h, 0, NULL},
    {"GET", "/static/special", h, 0, NULL},
    {"GET", "/", h, 0, NULL},
};

static struct router rt;

static int setup(void **state)
{
    (void)state;
    router_init(&rt);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        assert_int_equal(router_add(&rt, &table[i]), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    router_release(&rt);
    return 0;
}

static const char *param(const struct route_match *m, const char *name, char *buf, size_t n)
{
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].name_len == strlen(name) &&
            memcmp(m->params[i].name, name, m->params[i].name_len) == 0) {
            snprintf(buf, n, "%.*s", (int)m->params[i].len, m->params[i].value);
            return buf;
        }
    return NULL;
}

static void test_literal_and_params(void **state)
{
    (void)state;
    struct route_match m;
    char b[64];
    assert_int_equal(router_match(&rt, "GET", "/v1/orders", &m), 0);
    assert_ptr_equal(m.route->route, &table[0]);
    assert_int_equal(router_match(&rt, "POST", "/v1/orders", &m), 0);
    assert_ptr_equal(m.route->route, &table[1]);
    assert_int_equal(router_match(&rt, "GET", "/v1/orders/abc-1", &m), 0);
    assert_ptr_equal(m.route->route, &table[2]);
    assert_string_equal(param(&m, "id", b, sizeof b), "abc-1");
    assert_int_equal(router_match(&rt, "GET", "/v1/markets/BTC-USDT/trades/99", &m), 0);
    assert_string_equal(param(&m, "m", b, sizeof b), "BTC-USDT");
    assert_string_equal(param(&m, "tid", b, sizeof b), "99");
    assert_null(param(&m, "id", b, sizeof b));
    assert_int_equal(router_match(&rt, "GET", "/", &m), 0);
    assert_ptr_equal(m.route->route, &table[8]);
}

static void test_literal_beats_param(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(&rt, "GET", "/v1/orders/open", &m), 0);
    assert_ptr_equal(m.route->route, &table[4]);
    assert_int_equal(m.nparams, 0);
    /* DELETE only exists on the param route. */
    assert_int_equal(router_match(&rt, "DELETE", "/v1/orders/open", &m), 0);
    assert_ptr_equal(m.route->route, &table[3]);
}

static void test_wildcard(void **state)
{
    (void)state;
    struct route_match m;
    char b[64];
    assert_int_equal(router_match(&rt, "GET", "/static/css/site.css", &m), 0);
    assert_ptr_equal(m.route->route, &table[6]);
    assert_string_equal(param(&m, "*", b, sizeof b), "css/site.css");
    assert_int_equal(router_match(&rt, "GET", "/static/special", &m), 0);
    assert_ptr_equal(m.route->route, &table[7]);
}

static void test_no_match_and_allow(void **state)
{
    (void)state;
    struct route_match m;
    static const char *const misses[] = {"/v1/order", "/v1/orders/", "/v1/orders/1/2", "",
                                         "v1/orders", "/v1//orders", "/v1/orders//"};
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        assert_int_equal(router_match(&rt, "GET", misses[i], &m), -1);
        assert_false(m.path_known);
    }
    assert_int_equal(router_match(&rt, "PATCH", "/v1/orders/1", &m), -1);
    assert_true(m.path_known);
    assert_string_equal(m.allow, "GET, HEAD, DELETE");
    assert_int_equal(router_match(&rt, "PUT", "/v1/orders", &m), -1);
    assert_string_equal(m.allow, "GET, HEAD, POST");
    assert_int_equal(router_match(&rt, "HEAD", "/v1/orders", &m), 0);
}

static void test_bad_patterns(void **state)
{
    (void)state;
    static const char *const bad[] = {NULL,
                                      "",
                                      "x",
                                      "/a/",
                                      "/a//b",
                                      "/{",
                                      "/{}",
                                      "/a{b}",
                                      "/{a}b",
                                      "/{a{b}}",
                                      "/*/x",
                                      "/a}",
                                      "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17",
                                      "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"};
    struct router r2;
    router_init(&r2);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cm_http_route route = {"GET", bad[i], h, 0, NULL};
        assert_int_equal(router_add(&r2, &route), -1);
    }
    struct cm_http_route no_handler = {"GET", "/x", NULL, 0, NULL};
    assert_int_equal(router_add(&r2, &no_handler), -1);
    struct cm_http_route no_method = {NULL, "/x", h, 0, NULL};
    assert_int_equal(router_add(&r2, &no_method), -1);
    assert_int_equal(router_add(&r2, NULL), -1);
    router_release(&r2);
}

static void test_many_routes_grow(void **state)
{
    (void)state;
    static char patterns[40][32];
    static struct cm_http_route many[40];
    struct router r2;
    router_init(&r2);
    for (int i = 0; i < 40; i++) {
        snprintf(patterns[i], sizeof patterns[i], "/r%d/{x}", i);
        many[i] = (struct cm_http_route){"GET", patterns[i], h, 0, NULL};
        assert_int_equal(router_add(&r2, &many[i]), 0);
    }
    struct route_match m;
    assert_int_equal(router_match(&r2, "GET", "/r39/q", &m), 0);
    assert_ptr_equal(m.route->route, &many[39]);
    router_release(&r2);
}

int main(void)
{
    cm_log_init("test_http_router", CM_LOG_ERROR);
    cm_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literal_and_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literal_beats_param, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildcard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_match_and_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_routes_grow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
