/* Routes file parsing, its errors, prefix matching and rewrites. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../gateway.h"
#include "common/banned.h"

#define BASE_UP "\"upstreams\":{\"a\":{\"env\":\"A_URL\"},\"c\":{\"env\":\"C_URL\"}},"
#define BASE_RL                                                                                    \
    "\"rate_limits\":{\"default\":{\"ip\":{\"rate\":10,\"burst\":20}},\"auth\":{\"ip\":{\"rate\":" \
    "1,\"burst\":5}}},"

static const char good[] =
    "{" BASE_UP BASE_RL "\"routes\":["
    "{\"prefix\":\"/v1/orders\",\"upstream\":\"a\",\"timeout_ms\":250,\"block_check\":true},"
    "{\"prefix\":\"/v1/orders/special\",\"upstream\":\"c\",\"auth\":\"public\"},"
    "{\"prefix\":\"/api/products\",\"upstream\":\"c\",\"rewrite\":\"/catalog/products\","
    "\"auth\":\"public_read\",\"rate_limit\":\"auth\"}]}";

static void parses_good(void **state)
{
    (void)state;
    struct gw_routes rt;
    char err[256] = "";
    assert_int_equal(gw_routes_parse(good, &rt, err, sizeof err), 0);
    assert_int_equal(rt.nupstreams, 2);
    assert_int_equal(rt.nroutes, 3);
    assert_int_equal(rt.routes[0].timeout_ms, 250);
    assert_int_equal(rt.routes[0].auth, GW_AUTH_REQUIRED);
    assert_true(rt.routes[0].block_check);
    assert_int_equal(rt.routes[1].timeout_ms, 5000);
    assert_int_equal(rt.routes[2].auth, GW_AUTH_PUBLIC_READ);
    assert_string_equal(rt.classes[rt.routes[2].rl_class].name, "auth");
    assert_string_equal(rt.classes[rt.auth_class].name, "auth");
    assert_int_equal(rt.upstreams[0].consecutive_failures, 5);
}

static void matches_longest_prefix_on_segments(void **state)
{
    (void)state;
    struct gw_routes rt;
    char err[256];
    assert_int_equal(gw_routes_parse(good, &rt, err, sizeof err), 0);
    static const struct {
        const char *path;
        const char *prefix; /* NULL: no match */
    } cases[] = {
        {"/v1/orders", "/v1/orders"},
        {"/v1/orders/42", "/v1/orders"},
        {"/v1/orders/special", "/v1/orders/special"},
        {"/v1/orders/special/1", "/v1/orders/special"},
        {"/v1/orders/specialx", "/v1/orders"},
        {"/v1/ordersx", NULL},
        {"/v1/order", NULL},
        {"/api/products/7", "/api/products"},
        {"/", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct gw_route *r = gw_routes_match(&rt, cases[i].path);
        if (!cases[i].prefix)
            assert_null(r);
        else {
            assert_non_null(r);
            assert_string_equal(r->prefix, cases[i].prefix);
        }
    }
}

static void rewrites(void **state)
{
    (void)state;
    struct gw_routes rt;
    char err[256], out[64];
    assert_int_equal(gw_routes_parse(good, &rt, err, sizeof err), 0);
    const struct gw_route *r = gw_routes_match(&rt, "/api/products/7");
    assert_int_equal(gw_routes_rewrite(r, "/api/products/7", out, sizeof out), 0);
    assert_string_equal(out, "/catalog/products/7");
    assert_int_equal(gw_routes_rewrite(r, "/api/products", out, sizeof out), 0);
    assert_string_equal(out, "/catalog/products");
    r = gw_routes_match(&rt, "/v1/orders/1");
    assert_int_equal(gw_routes_rewrite(r, "/v1/orders/1", out, sizeof out), 0);
    assert_string_equal(out, "/v1/orders/1");
    char tiny[8];
    assert_int_equal(gw_routes_rewrite(r, "/v1/orders/1", tiny, sizeof tiny), -1);
}

static void rejects_bad_documents(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *needle; /* expected in the error */
    } cases[] = {
        {"", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"{\"upstreams\":{}}", "upstreams must be a non-empty object"},
        {"{" BASE_UP BASE_RL "\"routes\":[]}", "routes must be a non-empty array"},
        {"{" BASE_UP BASE_RL "\"routes\":[{\"prefix\":\"/v1/x/\",\"upstream\":\"a\"}]}", "prefix"},
        {"{" BASE_UP BASE_RL "\"routes\":[{\"prefix\":\"v1\",\"upstream\":\"a\"}]}", "prefix"},
        {"{" BASE_UP BASE_RL "\"routes\":[{\"prefix\":\"/v1/*\",\"upstream\":\"a\"}]}", "prefix"},
        {"{" BASE_UP BASE_RL "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"zz\"}]}",
         "upstream"},
        {"{" BASE_UP BASE_RL
         "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\",\"timeout_ms\":0}]}",
         "timeout_ms"},
        {"{" BASE_UP BASE_RL
         "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\",\"timeout_ms\":1.5}]}",
         "timeout_ms"},
        {"{" BASE_UP BASE_RL
         "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\",\"auth\":\"maybe\"}]}",
         "auth"},
        {"{" BASE_UP BASE_RL
         "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\",\"rate_limit\":\"nope\"}]}",
         "nope"},
        {"{" BASE_UP BASE_RL
         "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\",\"timout_ms\":5}]}",
         "unknown member \"timout_ms\""},
        {"{" BASE_UP BASE_RL "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\"},"
         "{\"prefix\":\"/v1/x\",\"upstream\":\"c\"}]}",
         "duplicate prefix"},
        {"{" BASE_UP BASE_RL
         "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\",\"block_check\":1}]}",
         "block_check"},
        {"{" BASE_UP BASE_RL
         "\"routes\":[{\"prefix\":\"/v1/x\",\"upstream\":\"a\",\"stream\":\"yes\"}]}",
         "stream"},
        {"{\"upstreams\":{\"a\":{\"env\":\"lower\"}}," BASE_RL "\"routes\":[]}", "env"},
        {"{\"upstreams\":{\"a\":{\"env\":\"A\",\"breaker\":{\"open_ms\":-1}}}," BASE_RL
         "\"routes\":[]}",
         "open_ms"},
        {"{" BASE_UP "\"rate_limits\":{\"default\":{\"ip\":{\"rate\":0,\"burst\":1}},\"auth\":{}},"
         "\"routes\":[]}",
         "rate"},
        {"{" BASE_UP
         "\"rate_limits\":{\"default\":{\"ip\":{\"rate\":1,\"burst\":0.5}}},\"routes\":[]}",
         "burst"},
        {"{" BASE_UP "\"rate_limits\":{\"default\":{}},\"routes\":[]}",
         "needs \"user\" and/or \"ip\""},
        {"{" BASE_UP "\"rate_limits\":{\"auth\":{\"ip\":{\"rate\":1,\"burst\":1}}},\"routes\":[]}",
         "default"},
        {"{" BASE_UP
         "\"rate_limits\":{\"default\":{\"ip\":{\"rate\":1,\"burst\":1}}},\"routes\":[]}",
         "auth_rate_limit"},
        {"{\"extra\":1}", "unknown member \"extra\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_routes rt;
        char err[256] = "";
        int rc = gw_routes_parse(cases[i].doc, &rt, err, sizeof err);
        if (rc != -1 || !strstr(err, cases[i].needle))
            fail_msg("case %zu: rc %d, err \"%s\", wanted \"%s\"", i, rc, err, cases[i].needle);
    }
}

static void resolves_env(void **state)
{
    (void)state;
    struct gw_routes rt;
    char err[256];
    assert_int_equal(gw_routes_parse(good, &rt, err, sizeof err), 0);
    unsetenv("A_URL");
    setenv("C_URL", "http://127.0.0.1:1", 1);
    assert_int_equal(gw_routes_resolve(&rt, err, sizeof err), -1);
    assert_non_null(strstr(err, "A_URL is required"));
    setenv("A_URL", "ftp://x", 1);
    assert_int_equal(gw_routes_resolve(&rt, err, sizeof err), -1);
    setenv("A_URL", "http://127.0.0.1:2", 1);
    assert_int_equal(gw_routes_resolve(&rt, err, sizeof err), 0);
    assert_string_equal(rt.upstreams[0].url, "http://127.0.0.1:2");
}

/* The shipped file parses and routes what the contract says. */
static void shipped_routes_file(void **state)
{
    (void)state;
    struct gw_routes rt;
    char err[320] = "";
    if (gw_routes_load("services/gateway/routes.json", &rt, err, sizeof err) < 0)
        fail_msg("%s", err);
    static const struct {
        const char *path, *upstream, *upath;
        enum gw_auth auth;
    } cases[] = {
        {"/v1/orders/1", "trading-api", "/v1/orders/1", GW_AUTH_REQUIRED},
        {"/v1/markets/BTC-USDT/book", "trading-api", "/v1/markets/BTC-USDT/book", GW_AUTH_REQUIRED},
        {"/v1/balances", "wallet", "/v1/balances", GW_AUTH_REQUIRED},
        {"/v1/ledger", "wallet", "/v1/ledger", GW_AUTH_REQUIRED},
        {"/v1/deposits", "wallet", "/v1/deposits", GW_AUTH_REQUIRED},
        {"/v1/withdrawals/9", "wallet", "/v1/withdrawals/9", GW_AUTH_REQUIRED},
        {"/api/products/3", "catalog", "/catalog/products/3", GW_AUTH_PUBLIC_READ},
        {"/api/orders/user/1", "order", "/orders/user/1", GW_AUTH_REQUIRED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct gw_route *r = gw_routes_match(&rt, cases[i].path);
        assert_non_null(r);
        assert_string_equal(rt.upstreams[r->upstream].name, cases[i].upstream);
        char out[256];
        assert_int_equal(gw_routes_rewrite(r, cases[i].path, out, sizeof out), 0);
        assert_string_equal(out, cases[i].upath);
        assert_int_equal(r->auth, cases[i].auth);
    }
    assert_true(gw_routes_match(&rt, "/v1/orders")->block_check);
    assert_true(gw_routes_match(&rt, "/v1/withdrawals")->block_check);
    assert_false(gw_routes_match(&rt, "/v1/balances")->block_check);
    assert_true(gw_routes_match(&rt, "/v1/markets/BTC-USDT/stream")->stream);
    assert_false(gw_routes_match(&rt, "/v1/orders")->stream);
    assert_null(gw_routes_match(&rt, "/v1/auth/login"));
}

/* The bench variant keeps the lab's routes, only the limits differ. */
static void bench_routes_file(void **state)
{
    (void)state;
    struct gw_routes lab, bench;
    char err[320] = "";
    if (gw_routes_load("services/gateway/routes.json", &lab, err, sizeof err) < 0 ||
        gw_routes_load("bench/gateway/routes-unlimited.json", &bench, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(lab.nroutes, bench.nroutes);
    for (int i = 0; i < lab.nroutes; i++) {
        assert_string_equal(lab.routes[i].prefix, bench.routes[i].prefix);
        assert_string_equal(lab.upstreams[lab.routes[i].upstream].env,
                            bench.upstreams[bench.routes[i].upstream].env);
        assert_int_equal(lab.routes[i].auth, bench.routes[i].auth);
    }
}

static void load_errors(void **state)
{
    (void)state;
    struct gw_routes rt;
    char err[320];
    assert_int_equal(gw_routes_load("/nonexistent/routes.json", &rt, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/routes.json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_good),       cmocka_unit_test(matches_longest_prefix_on_segments),
        cmocka_unit_test(rewrites),          cmocka_unit_test(rejects_bad_documents),
        cmocka_unit_test(resolves_env),      cmocka_unit_test(shipped_routes_file),
        cmocka_unit_test(bench_routes_file), cmocka_unit_test(load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
