/*
 * catalog against real PostgreSQL and Redis (the integration fixture): the
 * binary from TEST_BIN_DIR on an ephemeral port, spoken to over HTTP.
 * CRUD with validation errors, the category tree, search escaping, paging,
 * cache invalidation and hits, Redis down, stock reservations.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "common/banned.h"

static int port;
static pid_t pid;
static char migrations[1024];

static const char *const ADMIN[] = {"X-User-Id: 1", "X-User-Roles: user,admin", NULL};
static const char *const USER[] = {"X-User-Id: 2", "X-User-Roles: user", NULL};

static pid_t start(int p, const char *redis_url, const char *log)
{
    char port_s[32], db[512], redis[256], mig[1100];
    snprintf(port_s, sizeof port_s, "PORT=%d", p);
    snprintf(db, sizeof db, "DATABASE_URL=%s", need_env("TEST_DATABASE_URL"));
    snprintf(redis, sizeof redis, "REDIS_URL=%s", redis_url);
    snprintf(mig, sizeof mig, "MIGRATIONS_DIR=%s", migrations);
    const char *env[] = {port_s,          db,  redis, mig, "LOG_LEVEL=warn", "CACHE_TTL=60s",
                         "ADMIN_TOKEN=t", NULL};
    return spawn_service("catalog", log, env);
}

static int setup(void **state)
{
    (void)state;
    char cwd[900];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(migrations, sizeof migrations, "%s/services/catalog/migrations", cwd);
    port = free_port();
    pid = start(port, need_env("TEST_REDIS_URL"), "catalog");
    if (pid < 0 || wait_service(pid, port, "catalog", 20000) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return stop_service(pid) == 0 ? 0 : -1;
}

/* A request whose status must be `status`; the JSON body (caller frees). */
static cJSON *call(const char *method, const char *path, const char *const *h, const char *body,
                   long status)
{
    struct http_resp r;
    if (http_do(port, method, path, h, body, &r) < 0)
        fail_msg("%s %s: no response", method, path);
    if (r.status != status)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, status, r.body);
    cJSON *j = http_json(&r);
    http_free(&r);
    return j;
}

static void expect_error(const char *method, const char *path, const char *const *h,
                         const char *body, long status, const char *code)
{
    cJSON *j = call(method, path, h, body, status);
    if (strcmp(error_code(j), code) != 0)
        fail_msg("%s %s: code \"%s\", want \"%s\"", method, path, error_code(j), code);
    cJSON_Delete(j);
}

static int64_t num(const cJSON *j, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
    if (!cJSON_IsNumber(v))
        fail_msg("field %s missing", field);
    return (int64_t)v->valuedouble;
}

/* An id field: must be a string of digits (the API's UintId). */
static int64_t sid(const cJSON *j, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
    if (!cJSON_IsString(v) || v->valuestring[0] < '1' || v->valuestring[0] > '9')
        fail_msg("field %s is not an id string", field);
    return strtoll(v->valuestring, NULL, 10);
}

static const char *str(const cJSON *j, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
    if (!cJSON_IsString(v))
        fail_msg("field %s missing", field);
    return v->valuestring;
}

static int64_t create_product(const char *body)
{
    cJSON *j = call("POST", "/catalog/products", ADMIN, body, 201);
    int64_t id = sid(j, "id");
    cJSON_Delete(j);
    return id;
}

static void test_config_errors_exit_2(void **state)
{
    (void)state;
    const char *env[] = {"DATABASE_URL=", "PORT=0", NULL};
    pid_t p = spawn_service("catalog", "catalog-noconfig", env);
    assert_int_equal(wait_exit(p, 10000), 2);
    const char *env2[] = {"PORT=80a", NULL};
    p = spawn_service("catalog", "catalog-badport", env2);
    assert_int_equal(wait_exit(p, 10000), 2);
}

static void test_crud_and_validation(void **state)
{
    (void)state;
    const char *good = "{\"name\":\"Mug\",\"price\":\"12.50\",\"stock\":3}";
    expect_error("POST", "/catalog/products", NULL, good, 401, "unauthorized");
    expect_error("POST", "/catalog/products", USER, good, 403, "forbidden");
    expect_error("POST", "/catalog/products", ADMIN, "{\"name\":", 400, "invalid_json");
    expect_error("POST", "/catalog/products", ADMIN, "[1]", 422, "validation_failed");
    expect_error("POST", "/catalog/products", ADMIN, "{\"name\":\"Mug\",\"price\":12.5}", 422,
                 "validation_failed");
    expect_error("POST", "/catalog/products", ADMIN, "{\"name\":\"Mug\",\"price\":\"12.505\"}", 422,
                 "validation_failed");
    expect_error("POST", "/catalog/products", ADMIN, "{\"name\":\"\",\"price\":\"1.00\"}", 422,
                 "validation_failed");
    expect_error("POST", "/catalog/products", ADMIN,
                 "{\"name\":\"Mug\",\"price\":\"1.00\",\"stock\":-1}", 422, "validation_failed");
    expect_error("POST", "/catalog/products", ADMIN,
                 "{\"name\":\"Mug\",\"price\":\"1.00\",\"category_id\":999999}", 422,
                 "validation_failed");
    /* the server caps bodies (MAX_BODY_BYTES, 64 KiB by default) */
    char *big = malloc(200000);
    memset(big, ' ', 199999);
    big[0] = '{';
    big[199998] = '}';
    big[199999] = '\0';
    expect_error("POST", "/catalog/products", ADMIN, big, 413, "payload_too_large");
    free(big);

    int64_t id = create_product(good);
    char path[64];
    snprintf(path, sizeof path, "/catalog/products/%lld", (long long)id);
    cJSON *p = call("GET", path, NULL, NULL, 200);
    assert_string_equal(str(p, "name"), "Mug");
    assert_string_equal(str(p, "price"), "12.50");
    assert_string_equal(str(p, "currency"), "USD");
    assert_int_equal(num(p, "stock"), 3);
    assert_int_equal(sid(p, "id"), id);
    cJSON_Delete(p);

    expect_error("PUT", path, USER, "{\"price\":\"1.00\"}", 403, "forbidden");
    expect_error("PUT", path, ADMIN, "{}", 422, "validation_failed");
    expect_error("PUT", path, ADMIN, "{\"prise\":\"1.00\"}", 422, "validation_failed");
    expect_error("PUT", "/catalog/products/999999", ADMIN, "{\"price\":\"1.00\"}", 404,
                 "not_found");
    p = call("PUT", path, ADMIN, "{\"name\":\"Big Mug\",\"price\":\"13.00\"}", 200);
    assert_string_equal(str(p, "name"), "Big Mug");
    assert_string_equal(str(p, "price"), "13.00");
    assert_int_equal(num(p, "stock"), 3); /* untouched */
    cJSON_Delete(p);

    expect_error("GET", "/catalog/products/abc", NULL, NULL, 422, "validation_failed");
    expect_error("GET", "/catalog/products/0", NULL, NULL, 422, "validation_failed");
    expect_error("GET", "/catalog/products/99999999999999999999", NULL, NULL, 422,
                 "validation_failed");
    expect_error("DELETE", path, USER, NULL, 403, "forbidden");
    cJSON_Delete(call("DELETE", path, ADMIN, NULL, 204));
    expect_error("GET", path, NULL, NULL, 404, "not_found");
    expect_error("DELETE", path, ADMIN, NULL, 404, "not_found");
}

static void test_categories_search_paging(void **state)
{
    (void)state;
    expect_error("POST", "/catalog/categories", USER, "{\"name\":\"Home\"}", 403, "forbidden");
    cJSON *c = call("POST", "/catalog/categories", ADMIN, "{\"name\":\"Home\"}", 201);
    int64_t home = sid(c, "id");
    cJSON_Delete(c);
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"Kitchen\",\"parent_id\":\"%lld\"}", (long long)home);
    c = call("POST", "/catalog/categories", ADMIN, body, 201);
    int64_t kitchen = sid(c, "id");
    assert_int_equal(sid(c, "parent_id"), home);
    cJSON_Delete(c);
    expect_error("POST", "/catalog/categories", ADMIN, body, 409, "conflict");
    expect_error("POST", "/catalog/categories", ADMIN, "{\"name\":\"X\",\"parent_id\":424242}", 422,
                 "validation_failed");

    snprintf(body, sizeof body,
             "{\"name\":\"50%% off_pan\",\"price\":\"9.99\",\"stock\":5,\"category_id\":\"%lld\"}",
             (long long)kitchen);
    int64_t pan = create_product(body);
    snprintf(body, sizeof body,
             "{\"name\":\"500 coffee\",\"price\":\"4.00\",\"stock\":5,\"category_id\":%lld}",
             (long long)home);
    create_product(body);
    create_product("{\"name\":\"Uncategorised\",\"price\":\"1.00\"}");

    /* the category filter takes subcategories */
    char path[256];
    snprintf(path, sizeof path, "/catalog/products?category=%lld", (long long)home);
    c = call("GET", path, NULL, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "items")), 2);
    cJSON_Delete(c);
    snprintf(path, sizeof path, "/catalog/products?category=%lld", (long long)kitchen);
    c = call("GET", path, NULL, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "items")), 1);
    cJSON_Delete(c);

    /* % and _ in the search are literal */
    c = call("GET", "/catalog/products?q=50%25", NULL, NULL, 200);
    cJSON *items = cJSON_GetObjectItem(c, "items");
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_int_equal(sid(cJSON_GetArrayItem(items, 0), "id"), pan);
    cJSON_Delete(c);
    c = call("GET", "/catalog/products?q=f_p", NULL, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "items")), 1);
    cJSON_Delete(c);
    c = call("GET", "/catalog/products?q=COFFEE", NULL, NULL, 200); /* ILIKE */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "items")), 1);
    cJSON_Delete(c);

    /* paging: limit + cursor walk everything exactly once */
    int seen = 0;
    char cursor[32] = "";
    for (int page = 0; page < 10; page++) {
        snprintf(path, sizeof path, "/catalog/products?limit=2%s%s", *cursor ? "&cursor=" : "",
                 cursor);
        c = call("GET", path, NULL, NULL, 200);
        seen += cJSON_GetArraySize(cJSON_GetObjectItem(c, "items"));
        const cJSON *next = cJSON_GetObjectItem(c, "next_cursor");
        int more = cJSON_IsString(next);
        if (more)
            snprintf(cursor, sizeof cursor, "%s", next->valuestring);
        cJSON_Delete(c);
        if (!more)
            break;
    }
    assert_int_equal(seen, 3);
    expect_error("GET", "/catalog/products?limit=0", NULL, NULL, 422, "validation_failed");
    expect_error("GET", "/catalog/products?limit=501", NULL, NULL, 422, "validation_failed");
    expect_error("GET", "/catalog/products?cursor=x", NULL, NULL, 422, "validation_failed");
    c = call("GET", "/catalog/categories", NULL, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "categories")), 2);
    cJSON_Delete(c);

    /* by id: read, rename, no cycles, delete only when unused */
    snprintf(path, sizeof path, "/catalog/categories/%lld", (long long)kitchen);
    c = call("GET", path, NULL, NULL, 200);
    assert_string_equal(str(c, "name"), "Kitchen");
    cJSON_Delete(c);
    expect_error("GET", "/catalog/categories/424242", NULL, NULL, 404, "not_found");
    snprintf(body, sizeof body, "{\"name\":\"Cooking\",\"parent_id\":\"%lld\"}", (long long)home);
    expect_error("PUT", path, USER, body, 403, "forbidden");
    c = call("PUT", path, ADMIN, body, 200);
    assert_string_equal(str(c, "name"), "Cooking");
    cJSON_Delete(c);
    char home_path[64];
    snprintf(home_path, sizeof home_path, "/catalog/categories/%lld", (long long)home);
    snprintf(body, sizeof body, "{\"name\":\"Home\",\"parent_id\":\"%lld\"}", (long long)kitchen);
    expect_error("PUT", home_path, ADMIN, body, 422, "validation_failed"); /* below itself */
    snprintf(body, sizeof body, "{\"name\":\"Home\",\"parent_id\":\"%lld\"}", (long long)home);
    expect_error("PUT", home_path, ADMIN, body, 422, "validation_failed"); /* itself */
    expect_error("DELETE", home_path, ADMIN, NULL, 409, "conflict");       /* has a child */
    expect_error("DELETE", path, ADMIN, NULL, 409, "conflict");            /* has a product */
    c = call("POST", "/catalog/categories", ADMIN, "{\"name\":\"Empty\"}", 201);
    snprintf(path, sizeof path, "/catalog/categories/%lld", (long long)sid(c, "id"));
    cJSON_Delete(c);
    cJSON_Delete(call("DELETE", path, ADMIN, NULL, 204));
    expect_error("DELETE", path, ADMIN, NULL, 404, "not_found");
}

static double cache(const char *result)
{
    char series[96];
    snprintf(series, sizeof series, "catalog_cache_requests_total{result=\"%s\"}", result);
    return metric(port, series);
}

static void test_cache_invalidation(void **state)
{
    (void)state;
    int64_t id = create_product("{\"name\":\"Cached\",\"price\":\"2.00\",\"stock\":1}");
    char path[64];
    snprintf(path, sizeof path, "/catalog/products/%lld", (long long)id);
    double miss0 = cache("miss"), hit0 = cache("hit");
    cJSON_Delete(call("GET", path, NULL, NULL, 200)); /* miss: loads and caches */
    assert_true(cache("miss") == miss0 + 1);
    cJSON *p = call("GET", path, NULL, NULL, 200); /* hit */
    assert_true(cache("hit") == hit0 + 1);
    assert_string_equal(str(p, "price"), "2.00");
    cJSON_Delete(p);

    double inv0 = metric(port, "catalog_cache_invalidations_total");
    cJSON_Delete(call("PUT", path, ADMIN, "{\"price\":\"3.50\"}", 200));
    assert_true(metric(port, "catalog_cache_invalidations_total") == inv0 + 1);
    p = call("GET", path, NULL, NULL, 200); /* the update is visible at once */
    assert_string_equal(str(p, "price"), "3.50");
    cJSON_Delete(p);
    double hit1 = cache("hit");
    p = call("GET", path, NULL, NULL, 200); /* and cached again */
    assert_string_equal(str(p, "price"), "3.50");
    assert_true(cache("hit") == hit1 + 1);
    cJSON_Delete(p);

    /* stock changes through reservations invalidate too */
    char body[128];
    snprintf(body, sizeof body,
             "{\"order_id\":\"777\",\"items\":[{\"product_id\":\"%lld\",\"quantity\":1}]}",
             (long long)id);
    cJSON_Delete(call("POST", "/internal/stock/reserve", NULL, body, 200));
    p = call("GET", path, NULL, NULL, 200);
    assert_int_equal(num(p, "stock"), 0);
    cJSON_Delete(p);

    /* a deleted product is not served from the cache */
    cJSON_Delete(call("DELETE", path, ADMIN, NULL, 204));
    expect_error("GET", path, NULL, NULL, 404, "not_found");
    assert_true(cache("error") == 0);
}

struct reader {
    const char *path;
    long status;
};

static void *read_product(void *arg)
{
    struct reader *rd = arg;
    struct http_resp r;
    if (http_do(port, "GET", rd->path, NULL, NULL, &r) == 0) {
        rd->status = r.status;
        http_free(&r);
    }
    return NULL;
}

static void test_stampede_one_load(void **state)
{
    (void)state;
    enum { N = 16 };
    int64_t id = create_product("{\"name\":\"Hot\",\"price\":\"1.00\",\"stock\":1}");
    char path[64];
    snprintf(path, sizeof path, "/catalog/products/%lld", (long long)id);
    for (int round = 0; round < 3; round++) {
        /* a write empties the cache; then N readers miss at once */
        cJSON_Delete(call("PUT", path, ADMIN, "{\"stock\":2}", 200));
        double loads0 = metric(port, "catalog_product_loads_total");
        pthread_t t[N];
        struct reader rd[N];
        for (int i = 0; i < N; i++) {
            rd[i] = (struct reader){path, 0};
            pthread_create(&t[i], NULL, read_product, &rd[i]);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(rd[i].status, 200);
        }
        double loads = metric(port, "catalog_product_loads_total") - loads0;
        if (loads != 1)
            fail_msg("round %d: %d concurrent misses loaded PostgreSQL %.0f times", round, N,
                     loads);
    }
}

static void test_stock_reservations(void **state)
{
    (void)state;
    int64_t a = create_product("{\"name\":\"A\",\"price\":\"1.25\",\"stock\":5}");
    int64_t b = create_product("{\"name\":\"B\",\"price\":\"0.10\",\"stock\":1}");
    char body[256], path[64];
    snprintf(body, sizeof body,
             "{\"order_id\":1001,\"items\":[{\"product_id\":%lld,\"quantity\":2},"
             "{\"product_id\":%lld,\"quantity\":1}]}",
             (long long)a, (long long)b);
    cJSON *r = call("POST", "/internal/stock/reserve", NULL, body, 200);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "replayed")));
    cJSON_Delete(r);
    r = call("POST", "/internal/stock/reserve", NULL, body, 200); /* retry: same answer */
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "replayed")));
    assert_string_equal(str(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "items"), 0), "unit_price"),
                        "1.25");
    cJSON_Delete(r);

    /* all or nothing: B is gone, so A is not touched either */
    snprintf(body, sizeof body,
             "{\"order_id\":1002,\"items\":[{\"product_id\":%lld,\"quantity\":1},"
             "{\"product_id\":%lld,\"quantity\":1}]}",
             (long long)a, (long long)b);
    r = call("POST", "/internal/stock/reserve", NULL, body, 409);
    assert_string_equal(error_code(r), "out_of_stock");
    const cJSON *d =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "details"), 0);
    assert_string_equal(str(d, "field"), "items/1/product_id"); /* B, second in the request */
    assert_string_equal(str(d, "problem"), "out of stock: 0 available");
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/catalog/products/%lld", (long long)a);
    r = call("GET", path, NULL, NULL, 200);
    assert_int_equal(num(r, "stock"), 3);
    cJSON_Delete(r);
    snprintf(body, sizeof body,
             "{\"order_id\":1003,\"items\":[{\"product_id\":424242,\"quantity\":1}]}");
    expect_error("POST", "/internal/stock/reserve", NULL, body, 422, "validation_failed");
    expect_error("POST", "/internal/stock/reserve", NULL, "{\"order_id\":1}", 422,
                 "validation_failed");

    /* release returns the stock once */
    r = call("POST", "/internal/stock/release", NULL, "{\"order_id\":1001}", 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "released_now")));
    cJSON_Delete(r);
    r = call("POST", "/internal/stock/release", NULL, "{\"order_id\":1001}", 200);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "released_now")));
    cJSON_Delete(r);
    r = call("GET", path, NULL, NULL, 200);
    assert_int_equal(num(r, "stock"), 5);
    cJSON_Delete(r);
    expect_error("POST", "/internal/stock/release", NULL, "{\"order_id\":5555}", 404, "not_found");
    /* a released reservation is not silently re-made */
    snprintf(body, sizeof body,
             "{\"order_id\":1001,\"items\":[{\"product_id\":%lld,\"quantity\":2}]}", (long long)a);
    expect_error("POST", "/internal/stock/reserve", NULL, body, 409, "conflict");
}

/* A private redis-server (the fixture's is shared): started, stopped,
 * started again on the same port. */
static pid_t start_redis(int rport)
{
    char port_s[16], dir[1024], log[1100];
    snprintf(port_s, sizeof port_s, "%d", rport);
    snprintf(dir, sizeof dir, "%s", need_env("TEST_TMPDIR"));
    snprintf(log, sizeof log, "%s/redis-private.log", dir);
    pid_t p = fork();
    if (p == 0) {
        execlp("redis-server", "redis-server", "--port", port_s, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--dir", dir, "--logfile", log, (char *)NULL);
        _exit(127);
    }
    char ping[128];
    snprintf(ping, sizeof ping, "redis-cli -p %d ping >/dev/null 2>&1", rport);
    int64_t end = now_ms() + 10000;
    while (system(ping) != 0 && now_ms() < end)
        usleep(20000);
    return p;
}

/* Redis restarts under a running catalog (empty, as without persistence):
 * connections from before fail once; the read behind them must neither
 * error nor fall back for long: the next read is a hit again. */
static void test_redis_restart(void **state)
{
    (void)state;
    int rport = free_port();
    pid_t rpid = start_redis(rport);
    char redis[64];
    snprintf(redis, sizeof redis, "redis://127.0.0.1:%d", rport);
    int p2 = free_port();
    pid_t pid2 = start(p2, redis, "catalog-redis-restart");
    assert_int_equal(wait_service(pid2, p2, "catalog-redis-restart", 20000), 0);
    int saved = port;
    port = p2;
    int64_t id = create_product("{\"name\":\"Restart\",\"price\":\"5.00\",\"stock\":1}");
    char path[64];
    snprintf(path, sizeof path, "/catalog/products/%lld", (long long)id);
    /* HTTP_THREADS workers each keep a connection: warm them all */
    for (int i = 0; i < 16; i++)
        cJSON_Delete(call("GET", path, NULL, NULL, 200));
    assert_true(cache("hit") >= 1);

    kill(rpid, SIGTERM);
    assert_true(wait_exit(rpid, 10000) >= 0);
    rpid = start_redis(rport);
    double err0 = cache("error");
    for (int i = 0; i < 16; i++) {
        cJSON *p = call("GET", path, NULL, NULL, 200);
        assert_string_equal(str(p, "price"), "5.00");
        cJSON_Delete(p);
    }
    assert_true(cache("error") == err0); /* stale connections were replaced at once */
    double hit0 = cache("hit");
    cJSON_Delete(call("GET", path, NULL, NULL, 200));
    assert_true(cache("hit") == hit0 + 1);
    port = saved;
    assert_int_equal(stop_service(pid2), 0);
    kill(rpid, SIGTERM);
    wait_exit(rpid, 10000);
}

static void test_redis_down(void **state)
{
    (void)state;
    /* A second instance on the same database whose Redis is a closed port. */
    char redis[64];
    snprintf(redis, sizeof redis, "redis://127.0.0.1:%d", free_port());
    int p2 = free_port();
    pid_t pid2 = start(p2, redis, "catalog-noredis");
    assert_int_equal(wait_service(pid2, p2, "catalog-noredis", 20000), 0);
    int saved = port;
    port = p2;
    int64_t id = create_product("{\"name\":\"NoRedis\",\"price\":\"7.00\",\"stock\":2}");
    char path[64];
    snprintf(path, sizeof path, "/catalog/products/%lld", (long long)id);
    for (int i = 0; i < 3; i++) {
        cJSON *p = call("GET", path, NULL, NULL, 200);
        assert_string_equal(str(p, "price"), "7.00");
        cJSON_Delete(p);
    }
    cJSON_Delete(call("PUT", path, ADMIN, "{\"price\":\"8.00\"}", 200));
    cJSON *p = call("GET", path, NULL, NULL, 200);
    assert_string_equal(str(p, "price"), "8.00");
    cJSON_Delete(p);
    expect_error("GET", "/catalog/products/999999", NULL, NULL, 404, "not_found");
    assert_true(cache("error") >= 4);
    assert_true(cache("hit") == 0);
    port = saved;
    assert_int_equal(stop_service(pid2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors_exit_2),
        cmocka_unit_test(test_crud_and_validation),
        cmocka_unit_test(test_categories_search_paging),
        cmocka_unit_test(test_cache_invalidation),
        cmocka_unit_test(test_stampede_one_load),
        cmocka_unit_test(test_stock_reservations),
        cmocka_unit_test(test_redis_down),
        cmocka_unit_test(test_redis_restart),
    };
    return cmocka_run_group_tests_name("catalog", tests, setup, teardown);
}
