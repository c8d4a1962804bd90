/*
 * trading-api integration test: the real binary (TEST_BIN_DIR) against the
 * fixture's PostgreSQL, Redis and devkafka, with trading_standin playing
 * risk, wallet and matching (controlled over its /control route).
 *
 * Kafka: this test uses its own topic names (ta<pid>.commands/.events/
 * .trades) and two group joins (the service's and the test's commands
 * reader) that overlap. Crash tests run instances without the consumer
 * (CONSUMER_ENABLED=false) so a killed member never delays a rejoin.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "common/kafka.h"
#include "common/log.h"
#include "../trading.h"
#include "harness.h"
#include "common/banned.h"

/* rules.c is linked for markets_parse. */
struct market trading_markets[MAX_MARKETS];
size_t trading_nmarkets;

static int port, standin_port;
static pid_t svc = -1, standin = -1;
static char topic_cmd[64], topic_ev[64], topic_tr[64];
static char env_port[32], env_db[512], env_redis[256], env_kafka[256], env_risk[64], env_wallet[64],
    env_matching[64], env_tcmd[96], env_tev[96], env_ttr[96], env_group[64];
static struct cm_kafka_producer *producer;
static struct cm_kafka_consumer *cmd_reader;

/* Every command read so far (value strings), for counting. */
#define MAX_CMDS 4096
static char *cmds[MAX_CMDS];
static size_t ncmds;

/* ---- helpers ----------------------------------------------------------- */

static const char *base_env[24];

static void build_env(void)
{
    snprintf(env_port, sizeof env_port, "PORT=%d", port);
    snprintf(env_db, sizeof env_db, "DATABASE_URL=%s", need_env("TEST_DATABASE_URL"));
    snprintf(env_redis, sizeof env_redis, "REDIS_URL=%s", need_env("TEST_REDIS_URL"));
    snprintf(env_kafka, sizeof env_kafka, "KAFKA_BROKERS=%s", need_env("TEST_KAFKA_BROKERS"));
    snprintf(env_risk, sizeof env_risk, "RISK_URL=http://127.0.0.1:%d", standin_port);
    snprintf(env_wallet, sizeof env_wallet, "WALLET_URL=http://127.0.0.1:%d", standin_port);
    snprintf(env_matching, sizeof env_matching, "MATCHING_URL=http://127.0.0.1:%d", standin_port);
    snprintf(env_tcmd, sizeof env_tcmd, "COMMANDS_TOPIC=%s", topic_cmd);
    snprintf(env_tev, sizeof env_tev, "EVENTS_TOPIC=%s", topic_ev);
    snprintf(env_ttr, sizeof env_ttr, "TRADES_TOPIC=%s", topic_tr);
    snprintf(env_group, sizeof env_group, "KAFKA_GROUP=ta%d", (int)getpid());
    const char *e[] = {env_port,
                       env_db,
                       env_redis,
                       env_kafka,
                       "KAFKA_PROPS=session.timeout.ms=6000;heartbeat.interval.ms=500",
                       env_risk,
                       env_wallet,
                       env_matching,
                       env_tcmd,
                       env_tev,
                       env_ttr,
                       env_group,
                       "WALLET_TIMEOUT=300ms",
                       "RISK_TIMEOUT=200ms",
                       "BREAKER_OPEN=1s",
                       "LOG_LEVEL=warn",
                       NULL};
    memcpy(base_env, e, sizeof e);
}

/* Starts trading-api with base_env plus extra (NULL-terminated). */
static pid_t start_svc(const char *log, const char *const *extra)
{
    const char *env[40];
    size_t n = 0;
    for (size_t i = 0; base_env[i]; i++)
        env[n++] = base_env[i];
    for (size_t i = 0; extra && extra[i]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    pid_t pid = spawn_service("trading-api", log, env);
    assert_true(pid > 0);
    assert_int_equal(wait_service(pid, port, log, 15000), 0);
    return pid;
}

static int control(const char *json)
{
    struct http_resp r;
    if (http_do(standin_port, "PUT", "/control", NULL, json, &r) < 0)
        return -1;
    int ok = r.status == 200 ? 0 : -1;
    http_free(&r);
    return ok;
}

static long standin_stat(const char *name)
{
    struct http_resp r;
    assert_int_equal(http_do(standin_port, "GET", "/control", NULL, NULL, &r), 0);
    cJSON *j = http_json(&r);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    long out = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(j);
    http_free(&r);
    return out;
}

/* One request as user (NULL: no X-User-Id). */
static int req(const char *user, const char *method, const char *path, const char *body,
               struct http_resp *r)
{
    char h[64];
    const char *hs[] = {h, NULL};
    snprintf(h, sizeof h, "X-User-Id: %s", user ? user : "");
    return http_do(port, method, path, user ? hs : NULL, body, r);
}

static char *order_body(const char *coid, const char *market, const char *side, const char *price,
                        const char *qty)
{
    static __thread char b[512];
    snprintf(b, sizeof b,
             "{\"market\":\"%s\",\"side\":\"%s\",\"type\":\"limit\",\"price\":\"%s\","
             "\"quantity\":\"%s\",\"time_in_force\":\"GTC\",\"client_order_id\":\"%s\"}",
             market, side, price, qty, coid);
    return b;
}

/* POST an order; returns the status and copies the id (if any). */
static long place(const char *user, const char *body, char *id, size_t idsz, char *code,
                  size_t codesz)
{
    struct http_resp r;
    if (req(user, "POST", "/v1/orders", body, &r) < 0)
        return -1;
    cJSON *j = http_json(&r);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (id)
        snprintf(id, idsz, "%s", cJSON_IsString(v) ? v->valuestring : "");
    if (code)
        snprintf(code, codesz, "%s", error_code(j));
    long st = r.status;
    cJSON_Delete(j);
    http_free(&r);
    return st;
}

static cJSON *get_json(const char *user, const char *path, long *status)
{
    struct http_resp r;
    assert_int_equal(req(user, "GET", path, NULL, &r), 0);
    *status = r.status;
    cJSON *j = http_json(&r);
    http_free(&r);
    return j;
}

static const char *jstr(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int keep_cmd(void *ctx, const struct cm_kafka_msg *m)
{
    (void)ctx;
    if (ncmds < MAX_CMDS) {
        char *v = malloc(m->value_len + 1);
        memcpy(v, m->value, m->value_len);
        v[m->value_len] = 0;
        cmds[ncmds++] = v;
    }
    return 0;
}

/* Commands containing needle (e.g. "\"order_id\":\"1001\"" and type). */
static int count_cmds(const char *type, const char *order_id)
{
    char t[64], o[64];
    snprintf(t, sizeof t, "\"type\":\"%s\"", type);
    snprintf(o, sizeof o, "\"order_id\":\"%s\"", order_id);
    int n = 0;
    for (size_t i = 0; i < ncmds; i++)
        n += strstr(cmds[i], t) && strstr(cmds[i], o);
    return n;
}

/* Polls the commands topic until count_cmds(type, id) >= want or the
 * deadline; returns the count. */
static int wait_cmds(const char *type, const char *order_id, int want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (count_cmds(type, order_id) < want && now_ms() < end)
        cm_kafka_consumer_poll(cmd_reader, 100, keep_cmd, NULL);
    return count_cmds(type, order_id);
}

/* Reads whatever else arrives for quiet_ms (to see duplicates). */
static void drain_cmds(int quiet_ms)
{
    int64_t end = now_ms() + quiet_ms;
    while (now_ms() < end)
        cm_kafka_consumer_poll(cmd_reader, 50, keep_cmd, NULL);
}

static void produce(const char *topic, const char *market, const char *json)
{
    struct cm_kafka_out m = {.topic = topic,
                             .key = market,
                             .key_len = strlen(market),
                             .value = json,
                             .value_len = strlen(json)};
    assert_int_equal(cm_kafka_produce_wait(producer, &m, 1, 10000), 1);
}

static int have_node_validator(void)
{
    struct stat st;
    return stat("tests/contract/node_modules/ajv", &st) == 0 &&
           system("node --version >/dev/null 2>&1") == 0;
}

/* Pipes one event to the contract validator: 0 valid, -1 invalid, 1 skipped. */
static int validate_event(const char *topic, const char *json)
{
    if (!have_node_validator())
        return 1;
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/event.jsonl", need_env("TEST_TMPDIR"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", json);
    fclose(f);
    snprintf(cmd, sizeof cmd, "node tests/contract/validate-event.mjs --topic %s %s >&2", topic,
             path);
    return system(cmd) == 0 ? 0 : -1;
}

static PGconn *db(void)
{
    PGconn *c = PQconnectdb(need_env("TEST_DATABASE_URL"));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static long db_count(const char *sql)
{
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

/* ---- setup ------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    cm_log_init("itest-trading", CM_LOG_WARN);
    snprintf(topic_cmd, sizeof topic_cmd, "ta%d.commands", (int)getpid());
    snprintf(topic_ev, sizeof topic_ev, "ta%d.events", (int)getpid());
    snprintf(topic_tr, sizeof topic_tr, "ta%d.trades", (int)getpid());
    char err[256];
    struct cm_kafka_config kc = {.brokers = need_env("TEST_KAFKA_BROKERS"),
                                 .client_id = "itest-trading",
                                 .props = "session.timeout.ms=6000;heartbeat.interval.ms=500"};
    producer = cm_kafka_producer_open(&kc, err, sizeof err);
    assert_non_null(producer);
    /* Create the topics (a producer makes them on first use); these
     * unreadable events also prove the consumer skips junk. */
    produce(topic_cmd, "BTC-USDT", "{\"type\":\"hello\"}");
    produce(topic_ev, "BTC-USDT", "not json");
    produce(topic_tr, "BTC-USDT", "{\"type\":\"trade\",\"market\":\"BTC-USDT\"}");
    static const char *ct[2];
    ct[0] = topic_cmd;
    struct cm_kafka_consumer_config cc = {
        .kafka = kc, .group_id = "itest-cmd-reader", .topics = ct};
    cmd_reader = cm_kafka_consumer_open(&cc, err, sizeof err);
    assert_non_null(cmd_reader);

    standin_port = free_port();
    char sp[32];
    snprintf(sp, sizeof sp, "STANDIN_PORT=%d", standin_port);
    const char *senv[] = {sp, NULL};
    standin = spawn_service("../bench/trading_standin", "standin", senv);
    assert_true(standin > 0);
    int64_t end = now_ms() + 5000;
    while (control("{}") < 0 && now_ms() < end)
        usleep(20000);
    assert_int_equal(control("{}"), 0);

    port = free_port();
    build_env();
    svc = start_svc("trading-api", NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (svc > 0)
        stop_service(svc);
    if (standin > 0)
        stop_service(standin);
    /* Run alone (TRADING_ITEST_FILTER), no test polled the commands
     * reader: serve its group join first, or closing it can hang. */
    drain_cmds(300);
    cm_kafka_consumer_close(cmd_reader);
    cm_kafka_producer_close(producer, 2000);
    for (size_t i = 0; i < ncmds; i++)
        free(cmds[i]);
    return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_markets_match_file(void **state)
{
    (void)state;
    FILE *f = fopen("services/trading-api/markets.json", "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    assert_true(n > 0);
    struct market ms[MAX_MARKETS];
    char err[128];
    int k = markets_parse(buf, ms, MAX_MARKETS, err, sizeof err);
    free(buf);
    assert_true(k >= 2);
    long st;
    cJSON *j = get_json("1", "/v1/markets", &st);
    assert_int_equal(st, 200);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "markets");
    assert_int_equal(cJSON_GetArraySize(arr), k);
    for (int i = 0; i < k; i++) {
        cJSON *want = market_json(&ms[i]);
        const cJSON *got = cJSON_GetArrayItem(arr, i);
        if (!cJSON_Compare(want, got, 1))
            fail_msg("market %s differs from markets.json", ms[i].symbol);
        cJSON_Delete(want);
    }
    cJSON_Delete(j);
}

static char first_id[32];

static void test_place_publishes_command(void **state)
{
    (void)state;
    char code[64];
    struct http_resp r;
    assert_int_equal(req("42", "POST", "/v1/orders",
                         order_body("first-1", "BTC-USDT", "buy", "30000.00", "0.0015"), &r),
                     0);
    assert_int_equal(r.status, 202);
    cJSON *j = http_json(&r);
    snprintf(first_id, sizeof first_id, "%s", jstr(j, "id"));
    assert_string_equal(jstr(j, "status"), "pending");
    assert_string_equal(jstr(j, "price"), "30000.000000");
    assert_string_equal(jstr(j, "quantity"), "0.00150000");
    cJSON_Delete(j);
    http_free(&r);
    assert_int_equal(wait_cmds("order.place", first_id, 1, 15000), 1);
    for (size_t i = 0; i < ncmds; i++) {
        char o[64];
        snprintf(o, sizeof o, "\"order_id\":\"%s\"", first_id);
        if (!strstr(cmds[i], o))
            continue;
        assert_non_null(strstr(cmds[i], "\"market\":\"BTC-USDT\""));
        assert_non_null(strstr(cmds[i], "\"price\":\"30000.000000\""));
        int v = validate_event("exchange.orders.commands", cmds[i]);
        if (v == 1)
            printf("# SKIP contract check of order.place: node or tests/contract/node_modules "
                   "missing (npm ci --prefix tests/contract)\n");
        else
            assert_int_equal(v, 0);
    }
    /* No user: 401. */
    assert_int_equal(
        place(NULL, order_body("x", "BTC-USDT", "buy", "1", "1"), NULL, 0, code, sizeof code), 401);
    assert_string_equal(code, "unauthorized");
    /* The hold of a buy limit: price * qty quote. */
    assert_int_equal(standin_stat("holds"), 1);
}

static void test_idempotent_sequential(void **state)
{
    (void)state;
    char id[32], code[64];
    const char *b = order_body("first-1", "BTC-USDT", "buy", "30000.00", "0.0015");
    assert_int_equal(place("42", b, id, sizeof id, NULL, 0), 200);
    assert_string_equal(id, first_id);
    /* Same key, other content: 409. */
    assert_int_equal(place("42", order_body("first-1", "BTC-USDT", "buy", "30000.00", "0.002"),
                           NULL, 0, code, sizeof code),
                     409);
    assert_string_equal(code, "idempotency_conflict");
    /* The same key for another user is another order. */
    assert_int_equal(place("43", b, id, sizeof id, NULL, 0), 202);
    assert_string_not_equal(id, first_id);
    assert_int_equal(standin_stat("holds"), 2);
}

struct twin {
    long status;
    char id[32];
};

static void *twin_run(void *arg)
{
    struct twin *t = arg;
    t->status = place("44", order_body("twin-1", "ETH-USDT", "sell", "2000.00", "0.5"), t->id,
                      sizeof t->id, NULL, 0);
    return NULL;
}

static void test_idempotent_concurrent(void **state)
{
    (void)state;
    long holds0 = standin_stat("holds");
    struct twin t[8];
    pthread_t th[8];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, twin_run, &t[i]);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    int accepted = 0;
    for (int i = 0; i < 8; i++) {
        assert_true(t[i].status == 202 || t[i].status == 200);
        accepted += t[i].status == 202;
        assert_string_equal(t[i].id, t[0].id);
    }
    assert_int_equal(accepted, 1);
    assert_int_equal(db_count("SELECT count(*) FROM orders WHERE user_id = '44'"), 1);
    assert_int_equal(standin_stat("holds"), holds0 + 1);
    assert_int_equal(wait_cmds("order.place", t[0].id, 1, 10000), 1);
}

static void test_validation_errors(void **state)
{
    (void)state;
    struct http_resp r;
    assert_int_equal(
        req("42", "POST", "/v1/orders", order_body("v-1", "BTC-USDT", "buy", "30000.005", "1"), &r),
        0);
    assert_int_equal(r.status, 422);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "validation_failed");
    const cJSON *d = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "details"),
        0);
    assert_string_equal(jstr(d, "field"), "price");
    assert_string_equal(jstr(d, "problem"), "not_multiple_of_tick");
    cJSON_Delete(j);
    http_free(&r);
    char code[64];
    assert_int_equal(place("42",
                           "{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\","
                           "\"price\":30000,\"quantity\":\"1\",\"client_order_id\":\"v-2\"}",
                           NULL, 0, code, sizeof code),
                     400);
    assert_string_equal(code, "invalid_request");
    assert_int_equal(place("42", "{not json", NULL, 0, code, sizeof code), 400);
    assert_string_equal(code, "invalid_json");
}

static void test_sql_injection_literal(void **state)
{
    (void)state;
    char id[32], code[64], path[64];
    assert_int_equal(place("42",
                           order_body("x--DROP.TABLE:orders", "BTC-USDT", "sell", "31000", "0.001"),
                           id, sizeof id, NULL, 0),
                     202);
    snprintf(path, sizeof path, "/v1/orders/%s", id);
    long st;
    cJSON *j = get_json("42", path, &st);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(j, "client_order_id"), "x--DROP.TABLE:orders");
    cJSON_Delete(j);
    /* Quotes are outside the contract's client_order_id pattern: refused. */
    assert_int_equal(
        place("42",
              "{\"market\":\"BTC-USDT\",\"side\":\"buy\",\"type\":\"limit\",\"price\":"
              "\"1\",\"quantity\":\"1\",\"client_order_id\":\"'; DROP TABLE orders;--\"}",
              NULL, 0, code, sizeof code),
        422);
    assert_true(db_count("SELECT count(*) FROM orders") >= 3);
}

static void test_risk_deny_and_blocks(void **state)
{
    (void)state;
    char code[64];
    long n0 = db_count("SELECT count(*) FROM orders");
    assert_int_equal(control("{\"risk\":\"deny\"}"), 0);
    struct http_resp r;
    assert_int_equal(req("42", "POST", "/v1/orders",
                         order_body("deny-1", "BTC-USDT", "buy", "30000", "0.01"), &r),
                     0);
    assert_int_equal(r.status, 422);
    cJSON *j = http_json(&r);
    assert_string_equal(error_code(j), "unprocessable");
    assert_non_null(strstr(r.body, "max_order_notional"));
    cJSON_Delete(j);
    http_free(&r);
    assert_int_equal(control("{\"risk\":\"block\"}"), 0);
    assert_int_equal(place("42", order_body("deny-2", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0,
                           code, sizeof code),
                     403);
    assert_string_equal(code, "account_blocked");
    assert_int_equal(control("{\"risk\":\"allow\"}"), 0);
    /* The key of a refused order is free again. */
    assert_int_equal(
        place("42", order_body("deny-1", "BTC-USDT", "buy", "30000", "0.02"), NULL, 0, NULL, 0),
        202);
    /* Redis block key (risk sets it with a TTL). */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "redis-cli -u %s SET risk:blocked:45 1 EX 60 >/dev/null",
             need_env("TEST_REDIS_URL"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(place("45", order_body("blk-1", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0,
                           code, sizeof code),
                     403);
    assert_string_equal(code, "account_blocked");
    assert_int_equal(db_count("SELECT count(*) FROM orders"), n0 + 1);
}

static void test_wallet_insufficient_and_slow(void **state)
{
    (void)state;
    char code[64];
    long n0 = db_count("SELECT count(*) FROM orders");
    assert_int_equal(control("{\"wallet\":\"insufficient\"}"), 0);
    assert_int_equal(place("42", order_body("poor-1", "BTC-USDT", "buy", "30000", "1"), NULL, 0,
                           code, sizeof code),
                     422);
    assert_string_equal(code, "insufficient_funds");
    assert_int_equal(db_count("SELECT count(*) FROM orders"), n0);
    /* Slow wallet: 504 within the 300 ms timeout (+ slack), no order. */
    assert_int_equal(control("{\"wallet\":\"slow\",\"slow_ms\":2000}"), 0);
    int64_t t0 = now_ms();
    assert_int_equal(place("42", order_body("slow-1", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0,
                           code, sizeof code),
                     504);
    int64_t took = now_ms() - t0;
    assert_string_equal(code, "upstream_timeout");
    assert_true(took < 1500);
    assert_int_equal(control("{\"wallet\":\"ok\"}"), 0);
    assert_int_equal(db_count("SELECT count(*) FROM orders"), n0);
    /* A retry of the timed-out order continues with the same order id. */
    assert_int_equal(
        place("42", order_body("slow-1", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0, NULL, 0),
        202);
}

static void test_other_user_and_cancel(void **state)
{
    (void)state;
    char path[64], code[64];
    snprintf(path, sizeof path, "/v1/orders/%s", first_id);
    long st;
    cJSON *j = get_json("43", path, &st);
    assert_int_equal(st, 404);
    cJSON_Delete(j);
    struct http_resp r;
    assert_int_equal(req("43", "DELETE", path, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    http_free(&r);
    assert_int_equal(req("42", "DELETE", path, NULL, &r), 0);
    assert_int_equal(r.status, 202);
    http_free(&r);
    assert_int_equal(wait_cmds("order.cancel", first_id, 1, 10000), 1);
    assert_int_equal(req("42", "DELETE", "/v1/orders?market=ETH-USDT", NULL, &r), 0);
    assert_int_equal(r.status, 202);
    http_free(&r);
    assert_int_equal(req("42", "DELETE", "/v1/orders?market=NOPE-USDT", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    http_free(&r);
    /* Listing: only the caller's, newest first, paged. */
    j = get_json("42", "/v1/orders?market=BTC-USDT&limit=2", &st);
    assert_int_equal(st, 200);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
    assert_true(cJSON_IsString(nc));
    cJSON_Delete(j);
    j = get_json("43", "/v1/orders?status=active", &st);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "items")), 1);
    cJSON_Delete(j);
    (void)code;
}

static void trade_json(char *ev, size_t n, int seq, const char *ts, int seq2, const char *price,
                       const char *qty, const char *quote, const char *taker, const char *maker)
{
    (void)seq2;
    snprintf(ev, n,
             "{\"type\":\"trade\",\"version\":1,\"id\":\"ETH-USDT:%d\",\"ts\":\"%s\","
             "\"market\":\"ETH-USDT\",\"seq\":%d,\"price\":\"%s\",\"quantity\":\"%s\","
             "\"quote_amount\":\"%s\",\"taker_side\":\"sell\",\"taker_order_id\":\"%s\","
             "\"taker_user_id\":\"47\",\"maker_order_id\":\"%s\",\"maker_user_id\":\"46\"}",
             seq, ts, seq, price, qty, quote, taker, maker);
}

/* A raw SSE client: connects and sends the request; fd or -1. */
static int sse_open(const char *path, const char *extra)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char rq[256];
    int n = snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: x\r\nX-User-Id: 42\r\n%s\r\n", path,
                     extra ? extra : "");
    if (write(fd, rq, (size_t)n) != n)
        return -1;
    return fd;
}

/* Reads into buf until needle appears or the deadline. 0 / -1. */
static int sse_wait(int fd, char *buf, size_t cap, size_t *len, const char *needle, int ms)
{
    int64_t end = now_ms() + ms;
    while (now_ms() < end) {
        if (strstr(buf, needle))
            return 0;
        ssize_t k = read(fd, buf + *len, cap - 1 - *len);
        if (k > 0) {
            *len += (size_t)k;
            buf[*len] = 0;
        }
    }
    return strstr(buf, needle) ? 0 : -1;
}

static void test_read_model(void **state)
{
    (void)state;
    char id[32], maker[32], path[96], ev[1024];
    assert_int_equal(place("46", order_body("rm-1", "ETH-USDT", "buy", "2000.00", "0.3"), id,
                           sizeof id, NULL, 0),
                     202);
    assert_int_equal(place("47", order_body("rm-2", "ETH-USDT", "sell", "2000.00", "0.1"), maker,
                           sizeof maker, NULL, 0),
                     202);
    int sse = sse_open("/v1/markets/ETH-USDT/stream", NULL);
    assert_true(sse >= 0);
    static char sbuf[65536];
    size_t slen = 0;
    sbuf[0] = 0;
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "200 OK", 5000), 0);

    const char *ts = "2026-11-21T12:00:30.000000Z";
    snprintf(ev, sizeof ev,
             "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"ETH-USDT:1\",\"ts\":\"%s\","
             "\"market\":\"ETH-USDT\",\"seq\":1,\"order_id\":\"%s\",\"user_id\":\"46\","
             "\"side\":\"buy\",\"order_type\":\"limit\",\"price\":\"2000.000000\","
             "\"quantity\":\"0.30000000\",\"time_in_force\":\"GTC\",\"post_only\":false}",
             ts, id);
    assert_int_equal(validate_event("exchange.orders.events", ev) == -1, 0);
    produce(topic_ev, "ETH-USDT", ev);
    snprintf(path, sizeof path, "/v1/orders/%s", id);
    int64_t end = now_ms() + 20000; /* the service's group join comes first */
    long st;
    cJSON *j = NULL;
    do {
        cJSON_Delete(j);
        j = get_json("46", path, &st);
        if (strcmp(jstr(j, "status"), "open") == 0)
            break;
        usleep(50000);
    } while (now_ms() < end);
    assert_string_equal(jstr(j, "status"), "open");
    cJSON_Delete(j);

    /* Two trades then the fill events (seq shared by both topics). */
    trade_json(ev, sizeof ev, 2, "2026-11-21T12:00:30.000000Z", 2, "2000.000000", "0.10000000",
               "200.000000", maker, id);
    produce(topic_tr, "ETH-USDT", ev);
    snprintf(ev, sizeof ev,
             "{\"type\":\"order.partially_filled\",\"version\":1,\"id\":\"ETH-USDT:3\","
             "\"ts\":\"%s\",\"market\":\"ETH-USDT\",\"seq\":3,\"order_id\":\"%s\","
             "\"user_id\":\"46\",\"side\":\"buy\",\"price\":\"2000.000000\","
             "\"filled_quantity\":\"0.10000000\",\"filled_quote\":\"200.000000\","
             "\"remaining_quantity\":\"0.20000000\"}",
             ts, id);
    produce(topic_ev, "ETH-USDT", ev);
    trade_json(ev, sizeof ev, 4, "2026-11-21T12:01:10.000000Z", 4, "2000.010000", "0.20000000",
               "400.002000", maker, id);
    produce(topic_tr, "ETH-USDT", ev);
    snprintf(ev, sizeof ev,
             "{\"type\":\"order.filled\",\"version\":1,\"id\":\"ETH-USDT:5\","
             "\"ts\":\"%s\",\"market\":\"ETH-USDT\",\"seq\":5,\"order_id\":\"%s\","
             "\"user_id\":\"46\",\"side\":\"buy\",\"price\":\"2000.000000\","
             "\"filled_quantity\":\"0.30000000\",\"filled_quote\":\"600.002000\","
             "\"remaining_quantity\":\"0.00000000\"}",
             ts, id);
    assert_int_equal(validate_event("exchange.orders.events", ev) == -1, 0);
    produce(topic_ev, "ETH-USDT", ev);
    /* A duplicate of seq 3 (redelivery) must not move the order back. */
    snprintf(ev, sizeof ev,
             "{\"type\":\"order.partially_filled\",\"version\":1,\"id\":\"ETH-USDT:3\","
             "\"ts\":\"%s\",\"market\":\"ETH-USDT\",\"seq\":3,\"order_id\":\"%s\","
             "\"user_id\":\"46\",\"side\":\"buy\",\"price\":\"2000.000000\","
             "\"filled_quantity\":\"0.10000000\",\"filled_quote\":\"200.000000\","
             "\"remaining_quantity\":\"0.20000000\"}",
             ts, id);
    produce(topic_ev, "ETH-USDT", ev);
    trade_json(ev, sizeof ev, 2, "2026-11-21T12:00:30.000000Z", 2, "2000.000000", "0.10000000",
               "200.000000", maker, id);
    produce(topic_tr, "ETH-USDT", ev);
    /* A marker after the duplicates: once it is applied, they were seen. */
    snprintf(ev, sizeof ev,
             "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"ETH-USDT:6\",\"ts\":\"%s\","
             "\"market\":\"ETH-USDT\",\"seq\":6,\"order_id\":\"%s\",\"user_id\":\"47\","
             "\"side\":\"sell\",\"order_type\":\"limit\",\"price\":\"2000.000000\","
             "\"quantity\":\"0.10000000\",\"time_in_force\":\"GTC\",\"post_only\":false}",
             ts, maker);
    produce(topic_ev, "ETH-USDT", ev);
    snprintf(path, sizeof path, "/v1/orders/%s", maker);
    end = now_ms() + 10000;
    j = NULL;
    do {
        cJSON_Delete(j);
        j = get_json("47", path, &st);
        if (strcmp(jstr(j, "status"), "open") == 0)
            break;
        usleep(50000);
    } while (now_ms() < end);
    assert_string_equal(jstr(j, "status"), "open");
    cJSON_Delete(j);

    snprintf(path, sizeof path, "/v1/orders/%s", id);
    j = get_json("46", path, &st);
    assert_string_equal(jstr(j, "status"), "filled");
    assert_string_equal(jstr(j, "filled_quantity"), "0.30000000");
    assert_string_equal(jstr(j, "filled_quote"), "600.002000");
    /* 600.002 / 0.3 = 2000.006666.. -> half-even at 6 decimals */
    assert_string_equal(jstr(j, "average_price"), "2000.006667");
    cJSON_Delete(j);

    j = get_json("46", "/v1/markets/ETH-USDT/trades", &st);
    assert_int_equal(st, 200);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    assert_string_equal(jstr(cJSON_GetArrayItem(items, 0), "id"), "ETH-USDT:4");
    assert_string_equal(jstr(cJSON_GetArrayItem(items, 0), "quote_amount"), "400.002000");
    cJSON_Delete(j);

    j = get_json("46",
                 "/v1/markets/ETH-USDT/candles?interval=1m&from=2026-11-21T12:00:00Z"
                 "&to=2026-11-21T13:00:00Z",
                 &st);
    assert_int_equal(st, 200);
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(j, "candles");
    assert_int_equal(cJSON_GetArraySize(cs), 2);
    const cJSON *c0 = cJSON_GetArrayItem(cs, 0), *c1 = cJSON_GetArrayItem(cs, 1);
    assert_string_equal(jstr(c0, "open_time"), "2026-11-21T12:00:00.000Z");
    assert_string_equal(jstr(c0, "open"), "2000.000000");
    assert_string_equal(jstr(c0, "volume"), "0.10000000");
    assert_string_equal(jstr(c1, "open_time"), "2026-11-21T12:01:00.000Z");
    assert_string_equal(jstr(c1, "high"), "2000.010000");
    assert_string_equal(jstr(c1, "quote_volume"), "400.002000");
    cJSON_Delete(j);
    j = get_json("46",
                 "/v1/markets/ETH-USDT/candles?interval=1h&from=2026-11-21T12:00:00Z"
                 "&to=2026-11-21T13:00:00Z",
                 &st);
    cs = cJSON_GetObjectItemCaseSensitive(j, "candles");
    assert_int_equal(cJSON_GetArraySize(cs), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(cs, 0), "volume"), "0.30000000");
    assert_string_equal(jstr(cJSON_GetArrayItem(cs, 0), "low"), "2000.000000");
    cJSON_Delete(j);

    /* The stream saw the trades (and the stand-in's top of book). */
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "id: 4", 5000), 0);
    assert_non_null(strstr(sbuf, "event: trade"));
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "event: top", 5000), 0);
    close(sse);
    /* Resume after seq 2: the trade with seq 4 is replayed at once. */
    sse = sse_open("/v1/markets/ETH-USDT/stream", "Last-Event-ID: 2\r\n");
    assert_true(sse >= 0);
    slen = 0;
    sbuf[0] = 0;
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "id: 4", 5000), 0);
    assert_null(strstr(sbuf, "id: 2\n"));
    close(sse);

    /* Book and ticker from the matching stand-in; matching down -> 503. */
    j = get_json("46", "/v1/markets/ETH-USDT/ticker", &st);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(j, "best_bid_price"), "29999.000000");
    cJSON_Delete(j);
    assert_int_equal(control("{\"matching\":\"fail\"}"), 0);
    j = get_json("46", "/v1/markets/ETH-USDT/book?depth=5", &st);
    assert_int_equal(st, 503);
    cJSON_Delete(j);
    assert_int_equal(control("{\"matching\":\"ok\"}"), 0);
}

/* ---- read model batches -------------------------------------------------
 *
 * The consumer applies what one poll brings as one batch (events.c). To
 * put chosen messages into one batch, a test holds a lock on applied_seq
 * while a trigger message's batch waits for it; the messages produced
 * meanwhile are fetched in the background and drained into the next batch
 * once the lock goes. The batch counters prove how they were grouped. */

static void order_ev(char *buf, size_t n, const char *type, const char *market, int seq,
                     const char *order_id, const char *fq, const char *fqt, const char *extra)
{
    char fills[160] = "";
    if (fq)
        snprintf(fills, sizeof fills, ",\"filled_quantity\":\"%s\",\"filled_quote\":\"%s\"", fq,
                 fqt);
    snprintf(
        buf, n,
        "{\"type\":\"%s\",\"version\":1,\"id\":\"%s:%d\",\"ts\":\"2026-11-21T13:00:00.000000Z\","
        "\"market\":\"%s\",\"seq\":%d,\"order_id\":\"%s\",\"user_id\":\"52\"%s%s%s}",
        type, market, seq, market, seq, order_id, fills, extra ? "," : "", extra ? extra : "");
}

static void trade_ev(char *buf, size_t n, const char *market, int seq, const char *price,
                     const char *qty, const char *quote, const char *taker, const char *maker)
{
    snprintf(buf, n,
             "{\"type\":\"trade\",\"version\":1,\"id\":\"%s:%d\",\"ts\":\"2026-11-21T13:00:%02d."
             "000000Z\",\"market\":\"%s\",\"seq\":%d,\"price\":\"%s\",\"quantity\":\"%s\","
             "\"quote_amount\":\"%s\",\"taker_side\":\"sell\",\"taker_order_id\":\"%s\","
             "\"taker_user_id\":\"53\",\"maker_order_id\":\"%s\",\"maker_user_id\":\"52\"}",
             market, seq, seq % 60, market, seq, price, qty, quote, taker, maker);
}

/* Messages to produce together: (topic, market, json). */
struct outmsg {
    const char *topic, *market;
    char json[640];
};

static void produce_all(const struct outmsg *ms, size_t n)
{
    struct cm_kafka_out *o = calloc(n, sizeof *o);
    assert_non_null(o);
    for (size_t i = 0; i < n; i++) {
        o[i].topic = ms[i].topic;
        o[i].key = ms[i].market;
        o[i].key_len = strlen(ms[i].market);
        o[i].value = ms[i].json;
        o[i].value_len = strlen(ms[i].json);
    }
    assert_int_equal(cm_kafka_produce_wait(producer, o, n, 10000), n);
    free(o);
}

static long db_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = PQgetisnull(r, 0, 0) ? -1 : strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

/* Holds a lock that makes the read model's statement wait (released by
 * PQfinish at the end of the transaction). */
static PGconn *lock_applied_seq(void)
{
    PGconn *c = db();
    PGresult *r = PQexec(c, "BEGIN; LOCK TABLE applied_seq IN SHARE ROW EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

/* Waits until a trading-api statement waits for a lock. */
static void wait_consumer_blocked(void)
{
    PGconn *c = db();
    int64_t end = now_ms() + 15000;
    long n = 0;
    while ((n = db_scalar(c, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                             "'trading-api' AND wait_event_type = 'Lock'")) < 1 &&
           now_ms() < end)
        usleep(20000);
    PQfinish(c);
    assert_true(n >= 1);
}

/* Polls GET /v1/orders/{id} as user until status; returns the order. */
static cJSON *wait_order(const char *user, const char *id, const char *status, int ms)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/orders/%s", id);
    int64_t end = now_ms() + ms;
    long st;
    cJSON *j = NULL;
    do {
        cJSON_Delete(j);
        j = get_json(user, path, &st);
        if (strcmp(jstr(j, "status"), status) == 0)
            break;
        usleep(30000);
    } while (now_ms() < end);
    return j;
}

static void expect_order(const char *user, const char *id, const char *status, const char *fq,
                         const char *fqt)
{
    cJSON *j = wait_order(user, id, status, 20000);
    assert_string_equal(jstr(j, "status"), status);
    assert_string_equal(jstr(j, "filled_quantity"), fq);
    assert_string_equal(jstr(j, "filled_quote"), fqt);
    cJSON_Delete(j);
}

static int count_in(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static double batches(void)
{
    return metric(port, "trading_read_model_batches_total");
}

static double batched_messages(void)
{
    return metric(port, "trading_read_model_messages_total");
}

/* Several events of one order in one batch, the two topics interleaved
 * out of seq order, duplicates inside the batch and in a later one: the
 * same end state as one event at a time. */
static void test_read_model_batch(void **state)
{
    (void)state;
    char x[32], y[32], z[32], w[32], v[32];
    assert_int_equal(
        place("52", order_body("b-x", "ETH-USDT", "buy", "2000", "0.3"), x, sizeof x, NULL, 0),
        202);
    assert_int_equal(
        place("53", order_body("b-y", "ETH-USDT", "sell", "2000", "0.3"), y, sizeof y, NULL, 0),
        202);
    assert_int_equal(
        place("52", order_body("b-z", "ETH-USDT", "buy", "1999", "0.2"), z, sizeof z, NULL, 0),
        202);
    assert_int_equal(
        place("52", order_body("b-w", "ETH-USDT", "buy", "1998", "0.1"), w, sizeof w, NULL, 0),
        202);
    assert_int_equal(
        place("52", order_body("b-v", "ETH-USDT", "buy", "1997", "0.1"), v, sizeof v, NULL, 0),
        202);
    int sse = sse_open("/v1/markets/ETH-USDT/stream", NULL);
    assert_true(sse >= 0);
    static char sbuf[65536];
    size_t slen = 0;
    sbuf[0] = 0;
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "200 OK", 5000), 0);

    static struct outmsg m[32];
    size_t n = 0;
    const char *E = topic_ev, *T = topic_tr, *M = "ETH-USDT";
#define EV(type, seq, id, fq, fqt, extra)                                                          \
    (m[n].topic = E, m[n].market = M,                                                              \
     order_ev(m[n].json, sizeof m[n].json, type, M, seq, id, fq, fqt, extra), n++)
#define TR(seq, price, qty, quote)                                                                 \
    (m[n].topic = T, m[n].market = M,                                                              \
     trade_ev(m[n].json, sizeof m[n].json, M, seq, price, qty, quote, y, x), n++)
    /* Each topic in seq order, the trades ahead of the events before them. */
    TR(110, "2000.000000", "0.10000000", "200.000000");
    TR(114, "2000.010000", "0.20000000", "400.002000");
    EV("order.accepted", 100, x, NULL, NULL, NULL);
    EV("order.accepted", 101, y, NULL, NULL, NULL);
    EV("order.accepted", 101, y, NULL, NULL, NULL); /* duplicate inside the batch */
    EV("order.partially_filled", 111, x, "0.10000000", "200.000000", NULL);
    EV("order.partially_filled", 112, y, "0.10000000", "200.000000", NULL);
    EV("order.partially_filled", 111, x, "0.10000000", "200.000000", NULL); /* late duplicate */
    TR(110, "2000.000000", "0.10000000", "200.000000");                     /* duplicate trade */
    EV("order.filled", 115, x, "0.30000000", "600.002000", NULL);
    EV("order.filled", 116, y, "0.30000000", "600.002000", NULL);
    /* z: a fill straight from pending, then a late "accepted" (stays). */
    EV("order.partially_filled", 120, z, "0.10000000", "199.900000", NULL);
    EV("order.accepted", 121, z, NULL, NULL, NULL);
    /* w: cancelled (reason quoted for the array literal), then a fill
     * event after the terminal one that must not count. */
    EV("order.accepted", 130, w, NULL, NULL, NULL);
    EV("order.cancelled", 131, w, NULL, NULL, "\"reason\":\"a\\\"b\\\\c,{}\"");
    EV("order.filled", 132, w, "0.10000000", "199.800000", NULL);
    size_t bulk = n;

    /* The trigger: its batch (a seq-only event of the other market) waits
     * for the lock while the bulk is fetched behind it. */
    double b0 = batches(), m0 = batched_messages();
    PGconn *lock = lock_applied_seq();
    struct outmsg trig = {.topic = E, .market = "BTC-USDT"};
    order_ev(trig.json, sizeof trig.json, "order.rejected", "BTC-USDT", 1, "1", NULL, NULL,
             "\"command\":\"cancel\",\"reason\":\"unknown_order\"");
    produce_all(&trig, 1);
    wait_consumer_blocked();
    produce_all(m, bulk);
    usleep(300000); /* the fetch behind the waiting batch (checked below) */
    PQfinish(lock);

    expect_order("52", x, "filled", "0.30000000", "600.002000");
    expect_order("53", y, "filled", "0.30000000", "600.002000");
    expect_order("52", z, "partially_filled", "0.10000000", "199.900000");
    expect_order("52", w, "cancelled", "0.00000000", "0.000000");
    char path[64];
    snprintf(path, sizeof path, "/v1/orders/%s", w);
    long st;
    cJSON *j = get_json("52", path, &st);
    assert_string_equal(jstr(j, "end_reason"), "a\"b\\c,{}");
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/v1/orders/%s", x);
    j = get_json("52", path, &st);
    assert_string_equal(jstr(j, "average_price"), "2000.006667");
    cJSON_Delete(j);
    /* The trigger, then the whole bulk in one batch (one transaction). */
    assert_true(batches() - b0 == 2.0);
    assert_true(batched_messages() - m0 == (double)(bulk + 1));
    assert_int_equal(
        db_count("SELECT count(*) FROM trades WHERE market = 'ETH-USDT' AND seq IN (110, 114)"), 2);

    /* The same events again in later batches change nothing; a marker
     * order and trade show they were seen. */
    n = 0;
    EV("order.partially_filled", 111, x, "0.10000000", "200.000000", NULL);
    EV("order.accepted", 101, y, NULL, NULL, NULL);
    EV("order.accepted", 121, z, NULL, NULL, NULL);
    EV("order.partially_filled", 120, z, "0.05000000", "99.950000", NULL);
    TR(110, "2000.000000", "0.10000000", "200.000000");
    TR(114, "2000.010000", "0.20000000", "400.002000");
    produce_all(m, n);
    n = 0;
    EV("order.accepted", 140, v, NULL, NULL, NULL);
    TR(141, "1997.000000", "0.01000000", "19.970000");
    produce_all(m, n);
#undef EV
#undef TR
    expect_order("52", v, "open", "0.00000000", "0.000000");
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "id: 141\n", 10000), 0);
    expect_order("52", x, "filled", "0.30000000", "600.002000");
    expect_order("52", z, "partially_filled", "0.10000000", "199.900000");
    assert_int_equal(
        db_count("SELECT count(*) FROM trades WHERE market = 'ETH-USDT' AND seq >= 100"), 3);
    /* Every applied trade went to the stream once, in seq order. */
    assert_int_equal(count_in(sbuf, "id: 110\n"), 1);
    assert_int_equal(count_in(sbuf, "id: 114\n"), 1);
    assert_int_equal(count_in(sbuf, "id: 141\n"), 1);
    assert_true(strstr(sbuf, "id: 110\n") < strstr(sbuf, "id: 114\n"));
    close(sse);
}

static char db_name[128];

/* Cuts trading-api off its database (its connections killed, new ones
 * refused) or lets it back. */
static void db_outage(int on)
{
    if (!db_name[0]) {
        PGconn *c = db();
        snprintf(db_name, sizeof db_name, "%s", PQdb(c));
        PQfinish(c);
    }
    PGconn *a = PQconnectdb(need_env("TEST_PG_ADMIN_URL"));
    assert_int_equal(PQstatus(a), CONNECTION_OK);
    char sql[512];
    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS %s", db_name,
             on ? "false" : "true");
    PGresult *r = PQexec(a, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    if (on) {
        const char *p[] = {db_name};
        r = PQexecParams(a,
                         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = $1 AND application_name = 'trading-api'",
                         1, NULL, p, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
    }
    PQfinish(a);
}

static double consumed(void)
{
    char s[160];
    double t = 0;
    snprintf(s, sizeof s, "kafka_consumed_total{topic=\"%s\"}", topic_ev);
    double v = metric(port, s);
    t += v > 0 ? v : 0;
    snprintf(s, sizeof s, "kafka_consumed_total{topic=\"%s\"}", topic_tr);
    v = metric(port, s);
    return t + (v > 0 ? v : 0);
}

/* Waits until the consumer has taken a message more than at c0 into its
 * batch. With the database down the batch cannot be applied, and the
 * consumer retries it without polling: messages fetched later (the other
 * topic's, say) wait for the next batch. Each message matters to the
 * checks that follow, so whichever went into the stuck batch is tested. */
static void wait_consumed(double c0)
{
    int64_t end = now_ms() + 15000;
    while (consumed() - c0 < 1 && now_ms() < end)
        usleep(20000);
    assert_true(consumed() - c0 >= 1);
}

/* A database outage in the middle: the batch taken meanwhile is applied
 * once the database is back, exactly once; and when the process stops
 * during the outage, the batch's offsets are not committed, so the next
 * process applies it. */
static void test_read_model_db_outage(void **state)
{
    (void)state;
    char p[32], q[32], r[32];
    assert_int_equal(
        place("54", order_body("o-p", "BTC-USDT", "buy", "30000", "0.01"), p, sizeof p, NULL, 0),
        202);
    assert_int_equal(
        place("55", order_body("o-q", "BTC-USDT", "sell", "30000", "0.01"), q, sizeof q, NULL, 0),
        202);
    assert_int_equal(
        place("54", order_body("o-r", "BTC-USDT", "buy", "29000", "0.02"), r, sizeof r, NULL, 0),
        202);
    int sse = sse_open("/v1/markets/BTC-USDT/stream", NULL);
    assert_true(sse >= 0);
    static char sbuf[65536];
    size_t slen = 0;
    sbuf[0] = 0;
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "200 OK", 5000), 0);

    static struct outmsg m[16];
    size_t n = 0;
    const char *E = topic_ev, *T = topic_tr, *M = "BTC-USDT";
#define EV(type, seq, id, fq, fqt)                                                                 \
    (m[n].topic = E, m[n].market = M,                                                              \
     order_ev(m[n].json, sizeof m[n].json, type, M, seq, id, fq, fqt, NULL), n++)
#define TR(seq, taker, maker)                                                                      \
    (m[n].topic = T, m[n].market = M,                                                              \
     trade_ev(m[n].json, sizeof m[n].json, M, seq, "30000.000000", "0.01000000", "300.000000",     \
              taker, maker),                                                                       \
     n++)
    EV("order.accepted", 10, p, NULL, NULL);
    EV("order.accepted", 11, q, NULL, NULL);
    TR(12, q, p);
    EV("order.filled", 13, p, "0.01000000", "300.000000");
    EV("order.filled", 14, q, "0.01000000", "300.000000");
    EV("order.filled", 13, p, "0.01000000", "300.000000"); /* duplicate */

    double b0 = batches(), c0 = consumed();
    db_outage(1);
    produce_all(m, n);
    wait_consumed(c0);
    usleep(300000);               /* a few failed attempts */
    assert_true(batches() == b0); /* nothing could be applied */
    db_outage(0);
    expect_order("54", p, "filled", "0.01000000", "300.000000");
    expect_order("55", q, "filled", "0.01000000", "300.000000");
    assert_int_equal(sse_wait(sse, sbuf, sizeof sbuf, &slen, "id: 12\n", 10000), 0);
    assert_int_equal(db_count("SELECT count(*) FROM trades WHERE market = 'BTC-USDT'"), 1);
    close(sse);

    /* Stopped while the database is down: the batch is not committed. */
    n = 0;
    EV("order.accepted", 20, r, NULL, NULL);
    TR(21, q, r);
    EV("order.partially_filled", 22, r, "0.01000000", "300.000000");
    EV("order.accepted", 11, q, NULL, NULL); /* duplicate of the batch before */
    c0 = consumed();
    db_outage(1);
    produce_all(m, n);
    wait_consumed(c0);
#undef EV
#undef TR
    assert_int_equal(stop_service(svc), 0); /* a clean exit, not killed */
    svc = -1;
    db_outage(0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orders WHERE id = %s AND status = 'pending'",
             r);
    assert_int_equal(db_count(sql), 1); /* nothing of it applied */
    svc = start_svc("after-outage", NULL);
    expect_order("54", r, "partially_filled", "0.01000000", "300.000000");
    expect_order("54", p, "filled", "0.01000000", "300.000000");
    assert_int_equal(db_count("SELECT count(*) FROM trades WHERE market = 'BTC-USDT'"), 2);
    assert_int_equal(db_count("SELECT seq FROM applied_seq WHERE market = 'BTC-USDT' "
                              "AND stream = 'events'"),
                     22);
}

/* ---- read model cost: a micro-measurement, printed ----------------------
 *
 * Pairs of orders (inserted directly) go through accepted, accepted,
 * trade, filled, filled: 5 messages per pair through devkafka into the
 * real binary. Once all are applied it prints the batches, the write
 * transactions (xids), the CPU time of trading-api and of PostgreSQL
 * (its trading-api backends, and every process of the cluster), and, when
 * the cluster preloads pg_stat_statements, the read model's statements.
 * Run alone with TRADING_ITEST_FILTER=test_read_model_cost (any binary:
 * TEST_BIN_DIR). */

/* utime + stime of a process in ms (0 when gone). */
static long cpu_ms(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after "pid (comm)": state is field 3, utime 14, stime 15 */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* CPU ms of the cluster's processes: trading-api's backends, or all. */
static long pg_cpu_ms(PGconn *c, int trading_only)
{
    PGresult *r = PQexec(c, trading_only ? "SELECT pid FROM pg_stat_activity WHERE "
                                           "application_name = 'trading-api'"
                                         : "SELECT pid FROM pg_stat_activity WHERE "
                                           "pid <> pg_backend_pid()");
    long ms = 0;
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        ms += cpu_ms(strtol(PQgetvalue(r, i, 0), NULL, 10));
    PQclear(r);
    return ms;
}

/* pair_us 0: everything at once; else a pair every pair_us: the first
 * order's acceptance, half-way the second's with the trade and both fills
 * (one matching command), as matching emits them. accepted_only: only the
 * two acceptances, half-way apart (orders that rest on the book). */
static void cost_phase(const char *name, struct cm_kafka_producer *prod, long id0, int pairs,
                       int first_seq, int pair_us, int accepted_only)
{
    PGconn *c = db();
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO orders (id, user_id, client_order_id, market, side, type, "
             "time_in_force, price, quantity) SELECT g, '60', 'cost-' || g, 'BTC-USDT', "
             "CASE WHEN g %% 2 = 0 THEN 'buy' ELSE 'sell' END, 'limit', 'GTC', 30000000000, "
             "100000 FROM generate_series(%ld, %ld) g",
             id0, id0 + 2L * pairs - 1);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    size_t per = accepted_only ? 2 : 5, n = (size_t)pairs * per;
    struct outmsg *m = calloc(n, sizeof *m);
    struct cm_kafka_out *o = calloc(n, sizeof *o);
    assert_true(m && o);
    int seq = first_seq;
    for (int k = 0; k < pairs; k++) {
        char a[24], b2[24];
        snprintf(a, sizeof a, "%ld", id0 + 2L * k);
        snprintf(b2, sizeof b2, "%ld", id0 + 2L * k + 1);
        struct outmsg *x = &m[per * k];
        x[0].topic = x[1].topic = topic_ev;
        order_ev(x[0].json, sizeof x[0].json, "order.accepted", "BTC-USDT", seq, a, NULL, NULL,
                 NULL);
        order_ev(x[1].json, sizeof x[1].json, "order.accepted", "BTC-USDT", seq + 1, b2, NULL, NULL,
                 NULL);
        seq += 5;
        if (accepted_only)
            continue;
        x[2].topic = topic_tr;
        x[3].topic = x[4].topic = topic_ev;
        trade_ev(x[2].json, sizeof x[2].json, "BTC-USDT", seq + 2 - 5, "30000.000000", "0.00100000",
                 "30.000000", b2, a);
        order_ev(x[3].json, sizeof x[3].json, "order.filled", "BTC-USDT", seq + 3 - 5, a,
                 "0.00100000", "30.000000", NULL);
        order_ev(x[4].json, sizeof x[4].json, "order.filled", "BTC-USDT", seq + 4 - 5, b2,
                 "0.00100000", "30.000000", NULL);
    }
    for (size_t i = 0; i < n; i++) {
        m[i].market = "BTC-USDT";
        o[i].topic = m[i].topic;
        o[i].key = m[i].market;
        o[i].key_len = strlen(m[i].market);
        o[i].value = m[i].json;
        o[i].value_len = strlen(m[i].json);
    }
    PQclear(PQexec(c, "SELECT pg_stat_statements_reset()")); /* when loaded */
    long xid0 = db_scalar(c, "SELECT pg_current_xact_id()::text::bigint");
    long svc0 = cpu_ms(svc), pgt0 = pg_cpu_ms(c, 1), pga0 = pg_cpu_ms(c, 0);
    double b0 = batches();
    int64_t t0 = now_ms();
    if (pair_us == 0) {
        assert_int_equal(cm_kafka_produce_wait(prod, o, n, 30000), n);
    } else {
        /* On schedule: x[0], half a pair later the rest of the pair. */
        struct timespec next;
        clock_gettime(CLOCK_MONOTONIC, &next);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(cm_kafka_produce(prod, &o[i], NULL, NULL), 0);
            if (i + 1 < n && (i + 1) % per != 0 && (i + 1) % per != 1)
                continue; /* the rest of the pair goes together */
            next.tv_nsec += pair_us * 500L;
            while (next.tv_nsec >= 1000000000L) {
                next.tv_nsec -= 1000000000L;
                next.tv_sec++;
            }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        }
        assert_int_equal(cm_kafka_producer_flush(prod, 30000), 0);
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM applied_seq WHERE market = 'BTC-USDT' AND "
             "((stream = 'events' AND seq >= %d) OR (stream = 'trades' AND seq >= %d))",
             accepted_only ? seq - 4 : seq - 1, accepted_only ? 0 : seq - 3);
    int64_t end = now_ms() + 60000;
    while (db_scalar(c, sql) < 2 && now_ms() < end)
        usleep(5000);
    int64_t took = now_ms() - t0;
    long svc1 = cpu_ms(svc), pgt1 = pg_cpu_ms(c, 1), pga1 = pg_cpu_ms(c, 0);
    long xid1 = db_scalar(c, "SELECT pg_current_xact_id()::text::bigint");
    double nb = batches() - b0;
    printf("# read model cost (%s): %d orders, %zu messages applied in %lld ms: %.0f batches, "
           "%ld write transactions; CPU ms: trading-api %ld, PostgreSQL %ld (trading-api's "
           "backends %ld)\n",
           name, 2 * pairs, n, (long long)took, nb, xid1 - xid0 - 1, svc1 - svc0, pga1 - pga0,
           pgt1 - pgt0);
    r = PQexec(c, "SELECT calls, round(total_exec_time::numeric, 1), rows, left(regexp_replace("
                  "query, '\\s+', ' ', 'g'), 60) FROM pg_stat_statements WHERE query NOT LIKE "
                  "'%pg_stat%' AND query NOT LIKE '%pg_current_xact_id%' "
                  "ORDER BY total_exec_time DESC LIMIT 4");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        printf("#   pg_stat_statements: calls %s, exec %s ms, rows %s: %s\n", PQgetvalue(r, i, 0),
               PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    PQclear(r);
    fflush(stdout);
    assert_int_equal(db_scalar(c, sql), 2);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM orders WHERE id BETWEEN %ld AND %ld AND status = '%s' "
             "AND filled_quantity = %d",
             id0, id0 + 2L * pairs - 1, accepted_only ? "open" : "filled",
             accepted_only ? 0 : 100000);
    assert_int_equal(db_scalar(c, sql), 2 * pairs);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM trades WHERE market = 'BTC-USDT' AND seq BETWEEN %d AND %d",
             first_seq, seq);
    assert_int_equal(db_scalar(c, sql), accepted_only ? 0 : pairs);
    /* Batched: far fewer transactions than messages (TRADING_ITEST_MEASURE
     * skips this, to measure a binary from before the batches). */
    if (!getenv("TRADING_ITEST_MEASURE"))
        assert_true(nb >= 1 && nb * 2 <= (double)n + (accepted_only ? n : 0));
    PQfinish(c);
    free(m);
    free(o);
}

static void test_read_model_cost(void **state)
{
    (void)state;
    char err[256];
    struct cm_kafka_config kc = {.brokers = need_env("TEST_KAFKA_BROKERS"),
                                 .client_id = "itest-trading-cost",
                                 .props = "linger.ms=0"};
    struct cm_kafka_producer *prod = cm_kafka_producer_open(&kc, err, sizeof err);
    assert_non_null(prod);
    const char *topics[] = {topic_ev, topic_tr, NULL};
    cm_kafka_producer_prepare(prod, topics, 5000);
    /* Run alone, the service's group join comes first: wait it out. */
    char ev[512];
    order_ev(ev, sizeof ev, "order.rejected", "BTC-USDT", 999, "1", NULL, NULL,
             "\"command\":\"cancel\"");
    produce(topic_ev, "BTC-USDT", ev);
    int64_t end = now_ms() + 20000;
    while (db_count("SELECT count(*) FROM applied_seq WHERE market = 'BTC-USDT' AND "
                    "stream = 'events' AND seq >= 999") < 1 &&
           now_ms() < end)
        usleep(20000);
    /* A backlog at once (after a restart or an outage)... */
    cost_phase("backlog", prod, 900000000L, 500, 1000, 0, 0);
    /* ...1,000 orders/s, a crossing pair every 2 ms... */
    cost_phase("1000 orders/s, crossing", prod, 900100000L, 500, 100000, 2000, 0);
    /* ...and 1,000 orders/s that rest on the book: one event each. */
    cost_phase("1000 orders/s, resting", prod, 900200000L, 500, 200000, 2000, 1);
    cm_kafka_producer_close(prod, 5000);
}

/* Whatever happened, later tests get their database and a service. */
static int outage_teardown(void **state)
{
    (void)state;
    db_outage(0);
    if (svc < 0)
        svc = start_svc("after-outage-teardown", NULL);
    return 0;
}

static void test_risk_down_breaker(void **state)
{
    (void)state;
    char code[64], b[64];
    assert_int_equal(control("{\"risk\":\"fail\"}"), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(b, sizeof b, "down-%d", i);
        assert_int_equal(place("42", order_body(b, "BTC-USDT", "buy", "30000", "0.01"), NULL, 0,
                               code, sizeof code),
                         503);
        assert_string_equal(code, "service_unavailable");
    }
    assert_true(metric(port, "circuit_breaker_state{upstream=\"risk\"}") == 1.0);
    long calls = standin_stat("pretrade_calls");
    assert_int_equal(place("42", order_body("down-9", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0,
                           code, sizeof code),
                     503);
    assert_int_equal(standin_stat("pretrade_calls"), calls); /* failed fast */
    assert_true(metric(port, "http_client_requests_total{upstream=\"risk\",code=\"open\"}") >= 1);
    assert_int_equal(control("{\"risk\":\"allow\"}"), 0);
    /* BREAKER_OPEN=1s: it half-opens and closes on the next success. */
    int64_t end = now_ms() + 5000;
    long st = 0;
    while (now_ms() < end &&
           (st = place("42", order_body("down-9", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0,
                       NULL, 0)) != 202)
        usleep(100000);
    assert_int_equal(st, 202);
}

static void test_crash_after_commit(void **state)
{
    (void)state;
    stop_service(svc); /* a clean leave of the consumer group */
    svc = -1;
    const char *crash[] = {"TRADING_TEST_CRASH=after_commit", "CONSUMER_ENABLED=false", NULL};
    pid_t p = start_svc("crash-commit", crash);
    char code[64];
    long st = place("48", order_body("crash-1", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0, code,
                    sizeof code);
    assert_true(st < 0 || st >= 500); /* the connection died with the process */
    assert_int_equal(wait_exit(p, 5000), 128 + SIGKILL);
    /* Committed but never relayed. */
    assert_int_equal(db_count("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 1);
    PGconn *c = db();
    PGresult *r = PQexec(c, "SELECT id FROM orders WHERE user_id = '48'");
    assert_int_equal(PQntuples(r), 1);
    char id[32];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    const char *noc[] = {"CONSUMER_ENABLED=false", NULL};
    svc = start_svc("after-crash", noc);
    assert_int_equal(wait_cmds("order.place", id, 1, 10000), 1);
    /* A retry of the client is answered from the order, not placed again. */
    char id2[32];
    assert_int_equal(place("48", order_body("crash-1", "BTC-USDT", "buy", "30000", "0.01"), id2,
                           sizeof id2, NULL, 0),
                     200);
    assert_string_equal(id, id2);
    drain_cmds(300);
    assert_int_equal(count_cmds("order.place", id), 1);
}

static void test_crash_after_hold(void **state)
{
    (void)state;
    stop_service(svc);
    const char *crash[] = {"TRADING_TEST_CRASH=after_hold", "CONSUMER_ENABLED=false", NULL};
    pid_t p = start_svc("crash-hold", crash);
    long st =
        place("49", order_body("hold-1", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0, NULL, 0);
    assert_true(st < 0 || st >= 500);
    assert_int_equal(wait_exit(p, 5000), 128 + SIGKILL);
    PGconn *c = db();
    PGresult *r = PQexec(c, "SELECT order_id FROM order_requests WHERE user_id = '49'");
    assert_int_equal(PQntuples(r), 1);
    char id[32], path[64];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    const char *noc[] = {"CONSUMER_ENABLED=false", NULL};
    svc = start_svc("after-hold", noc);
    /* The hold exists, the order does not: the wallet asks and learns it
     * never will, so it may release the hold. */
    snprintf(path, sizeof path, "/internal/holds/%s", id);
    struct http_resp hr;
    assert_int_equal(http_do(standin_port, "GET", path, NULL, NULL, &hr), 0);
    assert_int_equal(hr.status, 200);
    http_free(&hr);
    snprintf(path, sizeof path, "/internal/orders/%s", id);
    assert_int_equal(http_do(port, "GET", path, NULL, NULL, &hr), 0);
    assert_int_equal(hr.status, 404);
    http_free(&hr);
    /* A retry by the client gets a new order id (the old hold is gone). */
    char id2[32];
    assert_int_equal(place("49", order_body("hold-1", "BTC-USDT", "buy", "30000", "0.01"), id2,
                           sizeof id2, NULL, 0),
                     202);
    assert_string_not_equal(id, id2);
    snprintf(path, sizeof path, "/internal/orders/%s", id2);
    assert_int_equal(http_do(port, "GET", path, NULL, NULL, &hr), 0);
    assert_int_equal(hr.status, 200);
    http_free(&hr);
    assert_int_equal(wait_cmds("order.place", id2, 1, 10000), 1);
    assert_int_equal(count_cmds("order.place", id), 0);
}

static void test_crash_after_publish(void **state)
{
    (void)state;
    stop_service(svc);
    const char *crash[] = {"TRADING_TEST_CRASH=after_publish", "CONSUMER_ENABLED=false", NULL};
    pid_t p = start_svc("crash-publish", crash);
    char id[32] = "";
    /* The relay may kill the process before the 202 is written. */
    long st =
        place("51", order_body("pub-1", "BTC-USDT", "buy", "30000", "0.01"), NULL, 0, NULL, 0);
    assert_true(st == 202 || st < 0);
    PGconn *c = db();
    PGresult *r = PQexec(c, "SELECT id FROM orders WHERE user_id = '51'");
    assert_int_equal(PQntuples(r), 1);
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    assert_int_equal(wait_exit(p, 5000), 128 + SIGKILL);
    /* On Kafka, yet unmarked in the outbox. */
    assert_int_equal(wait_cmds("order.place", id, 1, 10000), 1);
    assert_int_equal(db_count("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 1);
    const char *noc[] = {"CONSUMER_ENABLED=false", NULL};
    svc = start_svc("after-publish", noc);
    int64_t end = now_ms() + 15000;
    while (db_count("SELECT count(*) FROM outbox WHERE published_at IS NULL") > 0 && now_ms() < end)
        usleep(50000);
    assert_int_equal(db_count("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
    drain_cmds(500);
    assert_int_equal(count_cmds("order.place", id), 1); /* found, not produced again */
}

#define BURST 60
static char burst_ids[BURST][32];
static long burst_status[BURST];

static void *burst_run(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = k; i < BURST; i += 4) {
        char coid[32];
        snprintf(coid, sizeof coid, "burst-%d", i);
        burst_status[i] = place("50", order_body(coid, "ETH-USDT", "sell", "2100", "0.01"),
                                burst_ids[i], sizeof burst_ids[i], NULL, 0);
    }
    return NULL;
}

static void test_kill_during_burst(void **state)
{
    (void)state;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, burst_run, (void *)(intptr_t)i);
    /* Kill it once a third of the burst was accepted. */
    int64_t end = now_ms() + 10000;
    while (db_count("SELECT count(*) FROM orders WHERE user_id = '50'") < BURST / 3 &&
           now_ms() < end)
        usleep(2000);
    kill(svc, SIGKILL);
    wait_exit(svc, 5000);
    svc = -1;
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    const char *noc[] = {"CONSUMER_ENABLED=false", NULL};
    svc = start_svc("after-burst", noc);
    /* Every order in the database (accepted or committed just before the
     * kill) is published, and has its hold. */
    PGconn *c = db();
    PGresult *r = PQexec(c, "SELECT id FROM orders WHERE user_id = '50' ORDER BY id");
    int n = PQntuples(r);
    assert_true(n >= BURST / 3);
    int accepted = 0, dup = 0;
    for (int i = 0; i < BURST; i++)
        accepted += burst_status[i] == 202;
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(r, i, 0);
        assert_int_equal(wait_cmds("order.place", id, 1, 10000) >= 1, 1);
        char path[64];
        snprintf(path, sizeof path, "/internal/holds/%s", id);
        struct http_resp hr;
        assert_int_equal(http_do(standin_port, "GET", path, NULL, NULL, &hr), 0);
        assert_int_equal(hr.status, 200);
        http_free(&hr);
    }
    drain_cmds(500);
    for (int i = 0; i < n; i++)
        dup += count_cmds("order.place", PQgetvalue(r, i, 0)) - 1;
    /* Every 202 the clients saw is among them. */
    for (int i = 0; i < BURST; i++) {
        if (burst_status[i] != 202)
            continue;
        int found = 0;
        for (int k = 0; k < n && !found; k++)
            found = strcmp(PQgetvalue(r, k, 0), burst_ids[i]) == 0;
        assert_true(found);
    }
    PQclear(r);
    PQfinish(c);
    /* A kill between the broker's ack and the mark leaves rows that are
     * on Kafka but unmarked; the relay finds them in the topic instead of
     * producing them again (relay.c), so every order is there once. */
    printf("# burst: %d accepted before the kill, %d orders stored, %d published twice\n", accepted,
           n, dup);
    assert_int_equal(dup, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markets_match_file),
        cmocka_unit_test(test_place_publishes_command),
        cmocka_unit_test(test_idempotent_sequential),
        cmocka_unit_test(test_idempotent_concurrent),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_sql_injection_literal),
        cmocka_unit_test(test_risk_deny_and_blocks),
        cmocka_unit_test(test_wallet_insufficient_and_slow),
        cmocka_unit_test(test_other_user_and_cancel),
        cmocka_unit_test(test_read_model),
        cmocka_unit_test(test_read_model_batch),
        cmocka_unit_test_teardown(test_read_model_db_outage, outage_teardown),
        cmocka_unit_test(test_read_model_cost),
        cmocka_unit_test(test_risk_down_breaker),
        cmocka_unit_test(test_crash_after_commit),
        cmocka_unit_test(test_crash_after_hold),
        cmocka_unit_test(test_crash_after_publish),
        cmocka_unit_test(test_kill_during_burst),
    };
    /* TRADING_ITEST_FILTER: run only the tests matching a pattern. */
    if (getenv("TRADING_ITEST_FILTER"))
        cmocka_set_test_filter(getenv("TRADING_ITEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
