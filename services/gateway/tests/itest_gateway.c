/*
 * The real gateway binary against the fixture's PostgreSQL and Redis, with
 * gateway-echo as its upstream (it echoes the method, path, query, headers
 * and body it received), a garbage-speaking TCP upstream, and a closed
 * port. Covers accounts and tokens, token security, identity forwarding,
 * rate limits (Redis and the local fallback), body limits, upstream
 * failures (502, breaker 503, 504) and blocked users.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "common/jwt.h"
#include "common/redis.h"
#include "harness.h"
#include "common/banned.h"

#define SECRET "itest-secret-0123456789abcdef-0123456789"
#define PASSWORD "correct-horse-battery"

static int gw_port, echo_port, garbage_port;
static pid_t gw_pid, echo_pid;
static char env_routes[1200], env_port[32], env_echo[64], env_down[64], env_garbage[64];
static char env_db[512], env_redis[512];
static int garbage_fd = -1;
static pthread_t garbage_thread;

/* ---- an upstream that answers nonsense */

static void *garbage_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(garbage_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[4096];
        if (read(c, buf, sizeof buf) > 0) {
            static const char junk[] = "this is not HTTP at all\r\n\r\n";
            if (write(c, junk, sizeof junk - 1) < 0)
                perror("garbage write");
        }
        close(c);
    }
}

static int start_garbage(void)
{
    garbage_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(garbage_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(garbage_fd, 16) < 0 ||
        getsockname(garbage_fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    garbage_port = ntohs(a.sin_port);
    return pthread_create(&garbage_thread, NULL, garbage_loop, NULL) == 0 ? 0 : -1;
}

static void write_routes(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(
        f,
        "{\"upstreams\":{"
        " \"echo\":{\"env\":\"ECHO_URL\"},"
        " \"slow\":{\"env\":\"ECHO_URL\"},"
        " \"down\":{\"env\":\"DOWN_URL\",\"breaker\":{\"consecutive_failures\":3,\"open_ms\":60000}"
        "},"
        " \"garbage\":{\"env\":\"GARBAGE_URL\",\"breaker\":{\"consecutive_failures\":100}}},"
        "\"rate_limits\":{"
        " \"default\":{\"user\":{\"rate\":1000,\"burst\":2000},\"ip\":{\"rate\":1000,\"burst\":"
        "2000}},"
        " \"tight\":{\"user\":{\"rate\":2,\"burst\":3},\"ip\":{\"rate\":1000,\"burst\":2000}},"
        " \"leased\":{\"user\":{\"rate\":0.001,\"burst\":10},\"lease\":4},"
        " \"leasedblock\":{\"user\":{\"rate\":1000,\"burst\":2000},\"lease\":10},"
        " \"auth\":{\"ip\":{\"rate\":1000,\"burst\":2000}}},"
        "\"routes\":["
        " {\"prefix\":\"/v1/echo\",\"upstream\":\"echo\",\"timeout_ms\":3000},"
        " {\"prefix\":\"/v1/orders\",\"upstream\":\"echo\",\"block_check\":true},"
        " {\"prefix\":\"/v1/tight\",\"upstream\":\"echo\",\"rate_limit\":\"tight\"},"
        " {\"prefix\":\"/v1/stream\",\"upstream\":\"echo\",\"rewrite\":\"/"
        "events\",\"stream\":true},"
        " {\"prefix\":\"/v1/leased\",\"upstream\":\"echo\",\"rate_limit\":\"leased\"},"
        " {\"prefix\":\"/v1/leasedorders\",\"upstream\":\"echo\",\"rate_limit\":\"leasedblock\","
        "  \"block_check\":true},"
        " {\"prefix\":\"/v1/down\",\"upstream\":\"down\",\"timeout_ms\":1000},"
        " {\"prefix\":\"/v1/garbage\",\"upstream\":\"garbage\",\"timeout_ms\":1000},"
        " {\"prefix\":\"/v1/slow\",\"upstream\":\"slow\",\"rewrite\":\"/slow\",\"timeout_ms\":300},"
        " {\"prefix\":\"/api/products\",\"upstream\":\"echo\",\"rewrite\":\"/catalog/products\","
        "  \"auth\":\"public_read\"}]}\n");
    fclose(f);
}

static pid_t start_gateway(int port, const char *redis_url, const char *const *extra,
                           const char *log)
{
    char p[32], r[512];
    snprintf(p, sizeof p, "PORT=%d", port);
    snprintf(r, sizeof r, "REDIS_URL=%s", redis_url);
    const char *env[32] = {p,
                           env_db,
                           r,
                           env_routes,
                           env_echo,
                           env_down,
                           env_garbage,
                           "JWT_SECRET=" SECRET,
                           "JWT_ALG=HS256",
                           "JWT_ISSUER=exchange-lab",
                           "JWT_AUDIENCE=exchange-lab",
                           "GATEWAY_PWHASH=fast",
                           "MAX_BODY_BYTES=65536",
                           "HTTP_THREADS=8",
                           "LOG_LEVEL=info",
                           "ADMIN_TOKEN=itest-admin"};
    size_t n = 16;
    for (const char *const *e = extra; e && *e && n < 31; e++)
        env[n++] = *e;
    env[n] = NULL;
    return spawn_service_args("gateway", log, NULL, env);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    char path[1024];
    snprintf(path, sizeof path, "%s/routes.json", need_env("TEST_TMPDIR"));
    write_routes(path);
    snprintf(env_routes, sizeof env_routes, "GATEWAY_ROUTES_FILE=%s", path);
    snprintf(env_db, sizeof env_db, "DATABASE_URL=%s", need_env("TEST_DATABASE_URL"));
    snprintf(env_redis, sizeof env_redis, "%s", need_env("TEST_REDIS_URL"));
    if (start_garbage() < 0)
        return -1;
    echo_port = free_port();
    snprintf(env_port, sizeof env_port, "%d", echo_port);
    const char *args[] = {env_port, "8", NULL};
    echo_pid = spawn_service_args("gateway-echo", "echo", args, NULL);
    if (wait_http(echo_pid, echo_port, "/ping", "echo", 10000) < 0)
        return -1;
    snprintf(env_echo, sizeof env_echo, "ECHO_URL=http://127.0.0.1:%d", echo_port);
    snprintf(env_down, sizeof env_down, "DOWN_URL=http://127.0.0.1:%d", free_port());
    snprintf(env_garbage, sizeof env_garbage, "GARBAGE_URL=http://127.0.0.1:%d", garbage_port);
    gw_port = free_port();
    gw_pid = start_gateway(gw_port, env_redis, NULL, "gateway");
    return wait_http(gw_pid, gw_port, "/readyz", "gateway", 20000);
}

static int teardown(void **state)
{
    (void)state;
    int rc = stop_service(gw_pid);
    stop_service(echo_pid);
    if (garbage_fd >= 0)
        shutdown(garbage_fd, SHUT_RDWR);
    return rc == 0 ? 0 : -1; /* a clean drain on SIGTERM */
}

/* ---- helpers */

static long post(const char *path, const char *body, struct http_resp *r)
{
    assert_int_equal(http_do(gw_port, "POST", path, NULL, body, r), 0);
    return r->status;
}

static cJSON *register_user(const char *email)
{
    char body[512];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PASSWORD "\"}", email);
    struct http_resp r;
    if (post("/v1/auth/register", body, &r) != 201)
        fail_msg("register %s: %ld %s", email, r.status, r.body);
    cJSON *j = http_json(&r);
    http_free(&r);
    return j;
}

/* Logs in; fills access and refresh (each >= 1024 bytes). */
static void login(const char *email, char *access, char *refresh)
{
    char body[512];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PASSWORD "\"}", email);
    struct http_resp r;
    if (post("/v1/auth/login", body, &r) != 200)
        fail_msg("login %s: %ld %s", email, r.status, r.body);
    cJSON *j = http_json(&r);
    snprintf(access, 1024, "%s", cJSON_GetObjectItemCaseSensitive(j, "access_token")->valuestring);
    snprintf(refresh, 1024, "%s",
             cJSON_GetObjectItemCaseSensitive(j, "refresh_token")->valuestring);
    cJSON_Delete(j);
    http_free(&r);
}

static void new_user(const char *tag, char *uid, char *access)
{
    char email[128], refresh[1024];
    snprintf(email, sizeof email, "%s-%u@example.com", tag, randombytes_uniform(1000000000));
    cJSON *u = register_user(email);
    snprintf(uid, 32, "%s", cJSON_GetObjectItemCaseSensitive(u, "id")->valuestring);
    cJSON_Delete(u);
    login(email, access, refresh);
}

static long get_as(const char *method, const char *path, const char *token,
                   const char *const *extra, const char *body, struct http_resp *r)
{
    char auth[1100];
    const char *h[16];
    int n = 0;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h[n++] = auth;
    }
    for (const char *const *e = extra; e && *e && n < 15; e++)
        h[n++] = *e;
    h[n] = NULL;
    assert_int_equal(http_do(gw_port, method, path, h, body, r), 0);
    return r->status;
}

static const char *echo_header(cJSON *echo, const char *name)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(echo, "headers"), name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- accounts */

static void register_validates_and_refuses_duplicates(void **state)
{
    (void)state;
    char email[128], body[512];
    snprintf(email, sizeof email, "Reg-%u@Example.com", randombytes_uniform(1000000000));
    cJSON *u = register_user(email);
    const char *id = cJSON_GetObjectItemCaseSensitive(u, "id")->valuestring;
    assert_true(strspn(id, "0123456789") == strlen(id) && strtol(id, NULL, 10) >= 1000);
    char lower[128];
    for (size_t i = 0; i <= strlen(email); i++)
        lower[i] = (char)((email[i] >= 'A' && email[i] <= 'Z') ? email[i] + 32 : email[i]);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(u, "email")->valuestring, lower);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(u, "created_at"));
    assert_null(cJSON_GetObjectItemCaseSensitive(u, "password_hash"));
    cJSON_Delete(u);

    struct http_resp r;
    /* the same address in other case is the same account */
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PASSWORD "\"}", lower);
    assert_int_equal(post("/v1/auth/register", body, &r), 409);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "conflict");
    cJSON_Delete(j);
    http_free(&r);

    static const char *const bad[] = {
        "{\"email\":\"not-an-email\",\"password\":\"" PASSWORD "\"}",
        "{\"email\":\"a@example.com\",\"password\":\"short\"}",
        "{\"email\":\"a@example.com\"}",
        "{\"email\":\"a@example.com\",\"password\":\"" PASSWORD "\",\"role\":\"admin\"}",
        "{\"email\":\"a@example.com\",\"password\":12345678901234}",
        "[]",
        "{not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (post("/v1/auth/register", bad[i], &r) != 400)
            fail_msg("%s: %ld %s", bad[i], r.status, r.body);
        http_free(&r);
    }
}

static void sql_looking_email_is_literal(void **state)
{
    (void)state;
    char email[128];
    snprintf(email, sizeof email, "o'neil+%u@example.com", randombytes_uniform(1000000000));
    cJSON *u = register_user(email);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(u, "email")->valuestring, email);
    cJSON_Delete(u);
    char a[1024], rt[1024];
    login(email, a, rt);
}

static void login_refresh_rotation_reuse_logout(void **state)
{
    (void)state;
    char email[128], body[1200], access[1024], refresh[1024];
    snprintf(email, sizeof email, "rot-%u@example.com", randombytes_uniform(1000000000));
    cJSON_Delete(register_user(email));

    struct http_resp r;
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"wrong-password-123\"}", email);
    assert_int_equal(post("/v1/auth/login", body, &r), 401);
    http_free(&r);
    assert_int_equal(post("/v1/auth/login",
                          "{\"email\":\"nobody@example.com\",\"password\":\"" PASSWORD "\"}", &r),
                     401);
    http_free(&r);

    login(email, access, refresh);
    assert_true(strlen(refresh) >= 43);
    /* rotation: a new pair; the old refresh token is spent */
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", refresh);
    assert_int_equal(post("/v1/auth/refresh", body, &r), 200);
    cJSON *j = http_json(&r);
    char next[1024];
    snprintf(next, sizeof next, "%s",
             cJSON_GetObjectItemCaseSensitive(j, "refresh_token")->valuestring);
    assert_string_not_equal(next, refresh);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "token_type")->valuestring, "Bearer");
    const char *acc2 = cJSON_GetObjectItemCaseSensitive(j, "access_token")->valuestring;
    struct http_resp e;
    assert_int_equal(get_as("GET", "/v1/echo", acc2, NULL, NULL, &e), 200);
    http_free(&e);
    cJSON_Delete(j);
    http_free(&r);

    /* reuse of the spent token: 401, and the whole family dies */
    assert_int_equal(post("/v1/auth/refresh", body, &r), 401);
    http_free(&r);
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", next);
    assert_int_equal(post("/v1/auth/refresh", body, &r), 401);
    http_free(&r);

    /* logout revokes; it is idempotent */
    login(email, access, refresh);
    snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", refresh);
    assert_int_equal(post("/v1/auth/logout", body, &r), 204);
    http_free(&r);
    assert_int_equal(post("/v1/auth/logout", body, &r), 204);
    http_free(&r);
    assert_int_equal(post("/v1/auth/refresh", body, &r), 401);
    http_free(&r);
    assert_int_equal(post("/v1/auth/refresh", "{\"refresh_token\":\"made-up\"}", &r), 401);
    http_free(&r);
}

/* ---- token security */

static int64_t an_hour_ago(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL) - 3600;
}

static char *b64url(const char *s)
{
    size_t n = sodium_base64_ENCODED_LEN(strlen(s), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(n);
    sodium_bin2base64(out, n, (const unsigned char *)s, strlen(s),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static void expect_401(const char *token, const char *what)
{
    struct http_resp r;
    long st = get_as("GET", "/v1/echo", token, NULL, NULL, &r);
    char www[256] = "";
    resp_header(&r, "WWW-Authenticate", www, sizeof www);
    if (st != 401 || strncmp(www, "Bearer", 6) != 0)
        fail_msg("%s: status %ld, WWW-Authenticate \"%s\"", what, st, www);
    if (token && !strstr(www, "error=\"invalid_token\""))
        fail_msg("%s: WWW-Authenticate \"%s\" lacks invalid_token", what, www);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "unauthorized");
    cJSON_Delete(j);
    http_free(&r);
}

static void bad_tokens_are_401(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("tok", uid, access);
    const char *roles[] = {"user"};

    expect_401(NULL, "no token");

    struct cm_jwt_signer_config old = {.alg = CM_JWT_HS256,
                                       .key = (const unsigned char *)SECRET,
                                       .key_len = strlen(SECRET),
                                       .issuer = "exchange-lab",
                                       .audience = "exchange-lab",
                                       .now = an_hour_ago};
    char *expired = cm_jwt_issue(&old, uid, roles, 1, 60, NULL);
    expect_401(expired, "expired");
    free(expired);

    /* the genuine token is verified (and cached) first: a copy with other
     * bytes must still be refused */
    struct http_resp ok;
    assert_int_equal(get_as("GET", "/v1/echo", access, NULL, NULL, &ok), 200);
    http_free(&ok);
    char tampered[1024];
    snprintf(tampered, sizeof tampered, "%s", access);
    char *dot = strchr(tampered, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A'; /* payload changed, signature kept */
    expect_401(tampered, "tampered");
    snprintf(tampered, sizeof tampered, "%s", access);
    char *last = tampered + strlen(tampered) - 2;
    *last = *last == 'A' ? 'B' : 'A'; /* signature changed */
    expect_401(tampered, "tampered signature");

    /* alg none with a payload that claims to be an admin */
    char payload[256], none[1024];
    snprintf(payload, sizeof payload,
             "{\"sub\":\"%s\",\"roles\":[\"admin\"],\"exp\":%lld,\"iss\":\"exchange-lab\","
             "\"aud\":\"exchange-lab\"}",
             uid, (long long)time(NULL) + 600);
    char *h = b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}"), *p = b64url(payload);
    snprintf(none, sizeof none, "%s.%s.", h, p);
    expect_401(none, "alg none");
    free(h);
    free(p);

    struct cm_jwt_signer_config other = old;
    other.key = (const unsigned char *)"another-secret-of-enough-length-0123456789";
    other.key_len = strlen((const char *)other.key);
    other.now = NULL;
    char *forged = cm_jwt_issue(&other, uid, roles, 1, 600, NULL);
    expect_401(forged, "other key");
    free(forged);

    expect_401("not.a.jwt", "garbage");
    struct http_resp r;
    const char *basic[] = {"Authorization: Basic YTpi", NULL};
    assert_int_equal(http_do(gw_port, "GET", "/v1/echo", basic, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    http_free(&r);

    assert_int_equal(get_as("GET", "/v1/echo", access, NULL, NULL, &r), 200);
    http_free(&r);
    assert_true(metric(gw_port, "gateway_auth_failures_total{reason=\"expired\"}") >= 1);
    assert_true(metric(gw_port, "gateway_auth_failures_total{reason=\"missing\"}") >= 1);
}

/* ---- forwarding */

static void identity_is_verified_not_spoofed(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("spoof", uid, access);
    const char *extra[] = {"X-User-Id: 1",
                           "X-User-Roles: admin",
                           "x-internal-secret: yes",
                           "X-Forwarded-For: 6.6.6.6",
                           "X-Request-Id: itest-req-42",
                           "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                           "Idempotency-Key: k-1",
                           NULL};
    struct http_resp r;
    assert_int_equal(
        get_as("GET", "/v1/echo/a%20b/c?market=BTC-USDT&q=x%26y&flag", access, extra, NULL, &r),
        200);
    cJSON *j = http_json(&r);
    assert_string_equal(echo_header(j, "x-user-id"), uid);
    assert_string_equal(echo_header(j, "x-user-roles"), "user");
    assert_null(echo_header(j, "x-internal-secret"));
    assert_null(echo_header(j, "authorization"));
    assert_string_equal(echo_header(j, "x-forwarded-for"), "127.0.0.1");
    assert_string_equal(echo_header(j, "x-request-id"), "itest-req-42");
    assert_non_null(strstr(echo_header(j, "traceparent"), "0af7651916cd43dd8448eb211c80319c"));
    assert_string_equal(echo_header(j, "idempotency-key"), "k-1");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "path")->valuestring, "/v1/echo/a b/c");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "query");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(q, "market")->valuestring, "BTC-USDT");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(q, "q")->valuestring, "x&y");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(q, "flag"));
    char rid[128];
    assert_int_equal(resp_header(&r, "X-Request-Id", rid, sizeof rid), 0);
    assert_string_equal(rid, "itest-req-42");
    assert_int_equal(resp_header(&r, "X-RateLimit-Limit", rid, sizeof rid), 0);
    cJSON_Delete(j);
    http_free(&r);

    /* method and body pass through; the upstream's status comes back */
    assert_int_equal(get_as("POST", "/v1/echo/x", access, NULL, "{\"n\":\"1.5\"}", &r), 201);
    j = http_json(&r);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "body")->valuestring,
                        "{\"n\":\"1.5\"}");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "method")->valuestring, "POST");
    cJSON_Delete(j);
    http_free(&r);
    assert_int_equal(get_as("DELETE", "/v1/echo/x", access, NULL, NULL, &r), 200);
    http_free(&r);
}

static void public_reads_and_rewrite(void **state)
{
    (void)state;
    struct http_resp r;
    const char *spoof[] = {"X-User-Id: 1", NULL};
    assert_int_equal(get_as("GET", "/api/products/7?limit=2", NULL, spoof, NULL, &r), 200);
    cJSON *j = http_json(&r);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "path")->valuestring,
                        "/catalog/products/7");
    assert_null(echo_header(j, "x-user-id"));
    cJSON_Delete(j);
    http_free(&r);
    /* writes need a token */
    assert_int_equal(get_as("POST", "/api/products", NULL, NULL, "{}", &r), 401);
    http_free(&r);
    /* unknown prefixes are 404, auth routes are the gateway's own */
    char uid[32], access[1024];
    new_user("pub", uid, access);
    assert_int_equal(get_as("GET", "/v1/nothing-here", access, NULL, NULL, &r), 404);
    http_free(&r);
    assert_int_equal(get_as("GET", "/.well-known/jwks.json", NULL, NULL, NULL, &r), 200);
    assert_string_equal(r.body, "{\"keys\":[]}");
    http_free(&r);
}

/* ---- rate limits */

static void burst_is_429_then_recovers(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("burst", uid, access);
    struct http_resp r;
    int ok = 0;
    long st = 0;
    for (int i = 0; i < 10 && st != 429; i++) {
        st = get_as("GET", "/v1/tight", access, NULL, NULL, &r);
        if (st == 200)
            ok++;
        if (st != 429)
            http_free(&r);
    }
    assert_int_equal(st, 429);
    assert_true(ok >= 3 && ok <= 4); /* burst 3 (+1 if a refill landed) */
    char v[64];
    assert_int_equal(resp_header(&r, "Retry-After", v, sizeof v), 0);
    assert_true(strtol(v, NULL, 10) >= 1);
    assert_int_equal(resp_header(&r, "X-RateLimit-Limit", v, sizeof v), 0);
    assert_string_equal(v, "3");
    assert_int_equal(resp_header(&r, "X-RateLimit-Remaining", v, sizeof v), 0);
    assert_string_equal(v, "0");
    assert_int_equal(resp_header(&r, "X-RateLimit-Reset", v, sizeof v), 0);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "rate_limited");
    cJSON_Delete(j);
    http_free(&r);
    /* 2 tokens/s: a request gets through again within a second or so */
    int64_t end = now_ms() + 3000;
    do {
        st = get_as("GET", "/v1/tight", access, NULL, NULL, &r);
        http_free(&r);
        if (st == 200)
            break;
        usleep(100000);
    } while (now_ms() < end);
    assert_int_equal(st, 200);
    assert_true(metric(gw_port, "gateway_ratelimit_rejections_total{scope=\"user\"}") >= 1);
    assert_true(metric(gw_port, "gateway_ratelimit_fallback") == 0);
}

/* Leased tokens are spent locally but never exceed the shared bucket:
 * burst 10 with leases of 4 lets exactly 10 through (4 + 4 + 2). */
static void leases_never_exceed_the_bucket(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("lease", uid, access);
    struct http_resp r;
    int ok = 0;
    long st = 0, last_remaining = 1000;
    for (int i = 0; i < 15 && st != 429; i++) {
        st = get_as("GET", "/v1/leased", access, NULL, NULL, &r);
        if (st == 200) {
            ok++;
            char v[32];
            assert_int_equal(resp_header(&r, "X-RateLimit-Remaining", v, sizeof v), 0);
            long rem = strtol(v, NULL, 10);
            assert_true(rem <= last_remaining);
            last_remaining = rem;
        }
        http_free(&r);
    }
    assert_int_equal(st, 429);
    assert_int_equal(ok, 10);
}

static void redis_down_falls_back_to_local_limits(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("fallback", uid, access);
    int port = free_port();
    char redis[64];
    snprintf(redis, sizeof redis, "redis://127.0.0.1:%d", free_port());
    pid_t pid = start_gateway(port, redis, NULL, "gateway-noredis");
    assert_int_equal(wait_http(pid, port, "/readyz", "gateway-noredis", 20000), 0);
    char auth[1100];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", access);
    const char *h[] = {auth, NULL};
    long st = 0;
    int ok = 0;
    for (int i = 0; i < 10 && st != 429; i++) {
        struct http_resp r;
        assert_int_equal(http_do(port, "GET", "/v1/tight", h, NULL, &r), 0);
        st = r.status;
        ok += st == 200;
        http_free(&r);
    }
    assert_int_equal(st, 429);
    assert_true(ok >= 3 && ok <= 4);
    assert_true(metric(port, "gateway_ratelimit_fallback") == 1);
    /* auth still works without Redis */
    struct http_resp r;
    assert_int_equal(http_do(port, "GET", "/v1/echo", h, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_free(&r);
    assert_int_equal(stop_service(pid), 0);
}

/* ---- limits and upstream failures */

static void oversized_body_is_413(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("big", uid, access);
    size_t n = 100 * 1024;
    char *body = malloc(n + 1);
    memset(body, 'x', n);
    body[0] = '"';
    body[n - 1] = '"';
    body[n] = '\0';
    struct http_resp r;
    assert_int_equal(get_as("POST", "/v1/echo", access, NULL, body, &r), 413);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "payload_too_large");
    cJSON_Delete(j);
    http_free(&r);
    free(body);
}

static void upstream_down_502_then_breaker_503(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("down", uid, access);
    struct http_resp r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(get_as("GET", "/v1/down", access, NULL, NULL, &r), 502);
        cJSON *j = http_json(&r);
        assert_string_equal(error_code(j), "upstream_error");
        cJSON_Delete(j);
        http_free(&r);
    }
    assert_int_equal(get_as("GET", "/v1/down", access, NULL, NULL, &r), 503);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "service_unavailable");
    cJSON_Delete(j);
    char v[32];
    assert_int_equal(resp_header(&r, "Retry-After", v, sizeof v), 0);
    http_free(&r);
    assert_true(metric(gw_port, "circuit_breaker_state{upstream=\"down\"}") == 1);
    /* other upstreams are unaffected */
    assert_int_equal(get_as("GET", "/v1/echo", access, NULL, NULL, &r), 200);
    http_free(&r);
}

/* The upstream's end-to-end response headers reach the client; its own
 * X-RateLimit-* replace the gateway's; hop-by-hop ones and the ones the
 * gateway owns do not pass. */
static void upstream_response_headers_relayed(void **state)
{
    (void)state;
    char uid[32], access[1024], v[128];
    new_user("relay", uid, access);
    struct http_resp r;
    assert_int_equal(get_as("GET", "/v1/echo/headers", access, NULL, NULL, &r), 201);
    assert_int_equal(resp_header(&r, "Location", v, sizeof v), 0);
    assert_string_equal(v, "/v1/orders/42");
    assert_int_equal(resp_header(&r, "X-Upstream", v, sizeof v), 0);
    assert_string_equal(v, "yes");
    assert_int_equal(resp_header(&r, "X-RateLimit-Limit", v, sizeof v), 0);
    assert_string_equal(v, "7");
    assert_int_equal(resp_header(&r, "X-RateLimit-Remaining", v, sizeof v), 0);
    assert_string_equal(v, "6");
    assert_int_equal(resp_header(&r, "Content-Type", v, sizeof v), 0);
    assert_string_equal(v, "application/json");
    assert_int_equal(resp_header(&r, "Keep-Alive", v, sizeof v), -1);
    assert_int_equal(resp_header(&r, "Server", v, sizeof v), -1);
    assert_int_equal(resp_header(&r, "X-Hop", v, sizeof v), -1);
    assert_int_equal(resp_header(&r, "X-Request-Id", v, sizeof v), 0); /* the gateway's */
    http_free(&r);
    /* Without upstream limits the gateway's own are sent. */
    assert_int_equal(get_as("GET", "/v1/echo", access, NULL, NULL, &r), 200);
    assert_int_equal(resp_header(&r, "X-RateLimit-Limit", v, sizeof v), 0);
    assert_string_equal(v, "2000");
    assert_int_equal(resp_header(&r, "X-Echo", v, sizeof v), 0);
    http_free(&r);
}

static void garbage_upstream_is_502(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("garbage", uid, access);
    struct http_resp r;
    assert_int_equal(get_as("GET", "/v1/garbage", access, NULL, NULL, &r), 502);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "upstream_error");
    cJSON_Delete(j);
    http_free(&r);
}

static void slow_upstream_is_504_within_timeout(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("slow", uid, access);
    struct http_resp r;
    assert_int_equal(get_as("GET", "/v1/slow?ms=3000", access, NULL, NULL, &r), 504);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "upstream_timeout");
    cJSON_Delete(j);
    assert_true(r.ms >= 250 && r.ms < 1500);
    http_free(&r);
    assert_int_equal(get_as("GET", "/v1/slow?ms=10", access, NULL, NULL, &r), 200);
    http_free(&r);
}

static void blocked_user_is_403_on_trading_writes(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("blocked", uid, access);
    struct cm_redis_config rc = {.url = env_redis};
    char err[128], key[64];
    struct cm_redis *redis = cm_redis_open(&rc, err, sizeof err);
    assert_non_null(redis);
    snprintf(key, sizeof key, "risk:blocked:%s", uid);
    assert_int_equal(cm_redis_set(redis, key, "velocity", 8, 60000), 0);
    struct http_resp r;
    assert_int_equal(get_as("POST", "/v1/orders", access, NULL, "{}", &r), 403);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "account_blocked");
    cJSON_Delete(j);
    http_free(&r);
    assert_int_equal(get_as("GET", "/v1/orders", access, NULL, NULL, &r), 200); /* reads stay */
    http_free(&r);
    assert_int_equal(get_as("DELETE", "/v1/orders/5", access, NULL, NULL, &r), 200); /* cancels */
    http_free(&r);
    assert_int_equal(get_as("POST", "/v1/echo", access, NULL, "{}", &r), 201); /* not trading */
    http_free(&r);
    assert_int_equal(cm_redis_del(redis, key), 1);
    assert_int_equal(get_as("POST", "/v1/orders", access, NULL, "{}", &r), 201);
    http_free(&r);
    cm_redis_close(redis);
}

/* A route with leases and a block check: tokens come from the lease, yet
 * a block set in the middle of a lease refuses the very next write. */
static void blocks_apply_while_tokens_are_leased(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("leaseblock", uid, access);
    struct http_resp r;
    assert_int_equal(get_as("POST", "/v1/leasedorders", access, NULL, "{}", &r), 201);
    http_free(&r); /* leased 10, spent 1 */
    struct cm_redis_config rc = {.url = env_redis};
    char err[128], key[64];
    struct cm_redis *redis = cm_redis_open(&rc, err, sizeof err);
    assert_non_null(redis);
    snprintf(key, sizeof key, "risk:blocked:%s", uid);
    assert_int_equal(cm_redis_set(redis, key, "velocity", 8, 60000), 0);
    assert_int_equal(get_as("POST", "/v1/leasedorders", access, NULL, "{}", &r), 403);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "account_blocked");
    cJSON_Delete(j);
    http_free(&r);
    assert_int_equal(cm_redis_del(redis, key), 1);
    assert_int_equal(get_as("POST", "/v1/leasedorders", access, NULL, "{}", &r), 201);
    char v[32];
    assert_int_equal(resp_header(&r, "X-RateLimit-Limit", v, sizeof v), 0);
    assert_string_equal(v, "2000");
    http_free(&r);
    cm_redis_close(redis);
}

static void event_streams_are_relayed(void **state)
{
    (void)state;
    char uid[32], access[1024];
    new_user("sse", uid, access);
    const char *sse[] = {"Accept: text/event-stream", NULL};
    struct http_resp r;
    assert_int_equal(get_as("GET", "/v1/stream?n=3", access, sse, NULL, &r), 200);
    char ct[64];
    assert_int_equal(resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    assert_string_equal(ct, "text/event-stream");
    assert_string_equal(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    http_free(&r);
    /* without a token it never reaches the upstream */
    assert_int_equal(get_as("GET", "/v1/stream?n=3", NULL, sse, NULL, &r), 401);
    http_free(&r);
    /* a stream route asked for JSON is an ordinary proxied request */
    assert_int_equal(get_as("GET", "/v1/stream/x", access, NULL, NULL, &r), 200);
    cJSON *j = http_json(&r);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "path")->valuestring, "/events/x");
    cJSON_Delete(j);
    http_free(&r);
    /* a non-stream answer on the stream path comes back whole */
    assert_int_equal(get_as("GET", "/v1/stream/x", access, sse, NULL, &r), 200);
    assert_non_null(strstr(r.body, "\"path\":\"/events/x\""));
    http_free(&r);
}

/* Production signing: ES256 with a private key file, the public key in
 * the JWKS, and an HS256 token refused (no algorithm confusion). */
static void es256_tokens_and_jwks(void **state)
{
    (void)state;
    char keyfile[1024], env_key[1100];
    snprintf(keyfile, sizeof keyfile, "%s/es256.pem", need_env("TEST_TMPDIR"));
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    FILE *f = fopen(keyfile, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(k);
    snprintf(env_key, sizeof env_key, "JWT_PRIVATE_KEY_FILE=%s", keyfile);

    char uid[32], hs_token[1024], email[128], refresh[1024];
    snprintf(email, sizeof email, "es-%u@example.com", randombytes_uniform(1000000000));
    cJSON_Delete(register_user(email));
    login(email, hs_token, refresh);

    int port = free_port();
    const char *extra[] = {"JWT_ALG=ES256", env_key, "JWT_SECRET=", NULL};
    pid_t pid = start_gateway(port, env_redis, extra, "gateway-es256");
    assert_int_equal(wait_http(pid, port, "/readyz", "gateway-es256", 20000), 0);

    struct http_resp r;
    assert_int_equal(http_do(port, "GET", "/.well-known/jwks.json", NULL, NULL, &r), 0);
    cJSON *jwks = http_json(&r);
    http_free(&r);
    const cJSON *key = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(jwks, "keys"), 0);
    assert_non_null(key);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(key, "kty")->valuestring, "EC");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(key, "alg")->valuestring, "ES256");
    const char *kid = cJSON_GetObjectItemCaseSensitive(key, "kid")->valuestring;

    char body[512];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PASSWORD "\"}", email);
    assert_int_equal(http_do(port, "POST", "/v1/auth/login", NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    cJSON *j = http_json(&r);
    http_free(&r);
    char es[1024], hdr[256];
    snprintf(es, sizeof es, "%s", cJSON_GetObjectItemCaseSensitive(j, "access_token")->valuestring);
    cJSON_Delete(j);
    /* the header names ES256 and the JWKS key */
    unsigned char raw[256];
    size_t rawlen = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof raw - 1, es, strcspn(es, "."), NULL, &rawlen,
                                       NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    raw[rawlen] = '\0';
    snprintf(hdr, sizeof hdr, "%s", (char *)raw);
    assert_non_null(strstr(hdr, "\"ES256\""));
    assert_non_null(strstr(hdr, kid));
    cJSON_Delete(jwks);

    char auth[1100];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", es);
    const char *h[] = {auth, NULL};
    assert_int_equal(http_do(port, "GET", "/v1/echo", h, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_free(&r);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", hs_token);
    assert_int_equal(http_do(port, "GET", "/v1/echo", h, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    http_free(&r);
    (void)uid;
    assert_int_equal(stop_service(pid), 0);
}

static void bad_config_exits_2(void **state)
{
    (void)state;
    const char *no_db[] = {"DATABASE_URL=", NULL};
    pid_t pid = start_gateway(free_port(), env_redis, no_db, "gateway-nodb");
    assert_int_equal(wait_exit(pid, 10000), 2);
    const char *no_up[] = {"ECHO_URL=", NULL};
    pid = start_gateway(free_port(), env_redis, no_up, "gateway-noup");
    assert_int_equal(wait_exit(pid, 10000), 2);
    const char *bad_routes[] = {"GATEWAY_ROUTES_FILE=/nonexistent.json", NULL};
    pid = start_gateway(free_port(), env_redis, bad_routes, "gateway-noroutes");
    assert_int_equal(wait_exit(pid, 10000), 2);
    const char *short_secret[] = {"JWT_SECRET=short", NULL};
    pid = start_gateway(free_port(), env_redis, short_secret, "gateway-secret");
    assert_int_equal(wait_exit(pid, 10000), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(register_validates_and_refuses_duplicates),
        cmocka_unit_test(sql_looking_email_is_literal),
        cmocka_unit_test(login_refresh_rotation_reuse_logout),
        cmocka_unit_test(bad_tokens_are_401),
        cmocka_unit_test(identity_is_verified_not_spoofed),
        cmocka_unit_test(public_reads_and_rewrite),
        cmocka_unit_test(burst_is_429_then_recovers),
        cmocka_unit_test(leases_never_exceed_the_bucket),
        cmocka_unit_test(redis_down_falls_back_to_local_limits),
        cmocka_unit_test(oversized_body_is_413),
        cmocka_unit_test(upstream_down_502_then_breaker_503),
        cmocka_unit_test(upstream_response_headers_relayed),
        cmocka_unit_test(garbage_upstream_is_502),
        cmocka_unit_test(slow_upstream_is_504_within_timeout),
        cmocka_unit_test(blocked_user_is_403_on_trading_writes),
        cmocka_unit_test(blocks_apply_while_tokens_are_leased),
        cmocka_unit_test(event_streams_are_relayed),
        cmocka_unit_test(es256_tokens_and_jwks),
        cmocka_unit_test(bad_config_exits_2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
