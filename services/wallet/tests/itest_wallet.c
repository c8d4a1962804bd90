/*
 * wallet integration test: the real wallet and wallet-signer binaries
 * against the fixture's PostgreSQL, Redis and devkafka.
 *
 * Covers bad input (nothing changes), idempotency of holds, deposits and
 * withdrawals, concurrent holds that must not overdraw, settlement of
 * trades produced to Kafka (fees, duplicates, end events releasing the
 * rest), the withdrawal pipeline (signer, approval, failure releasing the
 * hold), the signer's strict socket protocol and key isolation, and the
 * conservation test: a seeded random stream of deposits, holds, trades,
 * cancels and withdrawals from concurrent clients while the wallet is
 * SIGKILLed and restarted, checked at the end by SQL alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/http_server.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/kafka.h"
#include "harness.h"
#include "common/banned.h"

#define ADMIN "wallet-itest-admin"
#define KEK "4f1c2a7b9e0d3c5a8b6f1e2d4c7a9b0e3f5d2c1a8b7e6f4d3c2b1a0f9e8d7c6b"

static struct {
    int port;
    pid_t wallet, signer;
    PGconn *db;
    struct cm_kafka_producer *kp;
    char trades[64], orders[64], events[64], group[64], stream[64];
    char sock[512], keyfile[512];
    int64_t seq[2]; /* per market */
    int ntrade_ids;
    char (*trade_ids)[48];
} g;

/* ---- helpers */

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

static int64_t q_int(const char *sql)
{
    PGresult *r = PQexec(g.db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(g.db));
    }
    int64_t v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

static void q_exec(const char *sql)
{
    PGresult *r = PQexec(g.db, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(g.db));
    PQclear(r);
}

/* Polls a SQL count until it reaches want or timeout_ms passes. */
static int64_t wait_q(const char *sql, int64_t want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms, v;
    while ((v = q_int(sql)) != want && now_ms() < end)
        sleep_ms(50);
    return v;
}

static pid_t start_wallet2(const char *extra, const char *extra2)
{
    char port[32], db[512], redis[256], kafka[256], sock[600], trades[96], orders[96], events[96],
        group[96], stream[96], extra_kv[256], extra_kv2[256];
    snprintf(port, sizeof port, "PORT=%d", g.port);
    snprintf(db, sizeof db, "DATABASE_URL=%s", need_env("TEST_DATABASE_URL"));
    snprintf(redis, sizeof redis, "REDIS_URL=%s", need_env("TEST_REDIS_URL"));
    snprintf(kafka, sizeof kafka, "KAFKA_BROKERS=%s", need_env("TEST_KAFKA_BROKERS"));
    snprintf(sock, sizeof sock, "SIGNER_SOCKET=%s", g.sock);
    snprintf(trades, sizeof trades, "WALLET_TRADES_TOPIC=%s", g.trades);
    snprintf(orders, sizeof orders, "WALLET_ORDERS_TOPIC=%s", g.orders);
    snprintf(events, sizeof events, "WALLET_EVENTS_TOPIC=%s", g.events);
    snprintf(group, sizeof group, "WALLET_CONSUMER_GROUP=%s", g.group);
    snprintf(stream, sizeof stream, "WITHDRAW_STREAM=%s", g.stream);
    snprintf(extra_kv, sizeof extra_kv, "%s", extra ? extra : "HOLD_RECONCILE_AFTER=1h");
    snprintf(extra_kv2, sizeof extra_kv2, "%s", extra2 ? extra2 : "LOG_LEVEL=info");
    const char *env[] = {port,
                         db,
                         redis,
                         kafka,
                         sock,
                         trades,
                         orders,
                         events,
                         group,
                         stream,
                         "ADMIN_TOKEN=" ADMIN,
                         "SIGNER_KEK=" KEK, /* the lab hands it to everyone: must be wiped */
                         "SIGNER_KEY_FILE=",
                         "TRADING_API_URL=",
                         "DEPOSIT_TICK=100ms",
                         "DEPOSIT_CONFIRMATIONS=2",
                         "WITHDRAW_CLAIM_IDLE=1s",
                         "WITHDRAW_APPROVAL_ABOVE_BTC=1",
                         "WITHDRAW_DAILY_LIMIT_ETH=5",
                         "LOG_LEVEL=info",
                         "HOLD_RECONCILE_INTERVAL=300ms",
                         extra_kv,
                         extra_kv2,
                         NULL};
    pid_t pid = spawn_service("wallet", "wallet", env);
    assert_true(pid > 0);
    if (wait_ready(g.port, 20000) < 0)
        fail_msg("wallet did not become ready (see %s/wallet.log)", need_env("TEST_TMPDIR"));
    return pid;
}

static pid_t start_wallet(const char *extra)
{
    return start_wallet2(extra, NULL);
}

static void kill_wallet(void)
{
    kill(g.wallet, SIGKILL);
    wait_exit(g.wallet, 5000);
    g.wallet = 0;
}

/* HTTP with the caller's identity; returns the status (0 on transport
 * error); *json (may be NULL) gets the parsed body. */
static long call(const char *method, const char *path, const char *user, const char *key,
                 const char *body, cJSON **json)
{
    char hu[64], hk[200];
    const char *headers[4] = {NULL, NULL, NULL, NULL};
    int n = 0;
    if (user) {
        snprintf(hu, sizeof hu, "X-User-Id: %s", user);
        headers[n++] = hu;
    }
    if (key) {
        snprintf(hk, sizeof hk, "Idempotency-Key: %s", key);
        headers[n++] = hk;
    }
    if (strncmp(path, "/admin", 6) == 0)
        headers[n++] = "X-Admin-Token: " ADMIN;
    struct http_resp resp;
    if (json)
        *json = NULL;
    if (http_do(g.port, method, path, headers, body, &resp) < 0)
        return 0;
    long st = resp.status;
    if (json)
        *json = http_json(&resp);
    http_free(&resp);
    return st;
}

static const char *jstr(const cJSON *j, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(it) ? it->valuestring : "";
}

/* Retries a request until an HTTP answer arrives (the wallet may be
 * restarting): idempotent requests only. */
static long call_retry(const char *method, const char *path, const char *user, const char *key,
                       const char *body, cJSON **json)
{
    int64_t end = now_ms() + 30000;
    long st;
    while ((st = call(method, path, user, key, body, json)) == 0 || st == 503) {
        if (json && *json) {
            cJSON_Delete(*json);
            *json = NULL;
        }
        if (now_ms() > end)
            break;
        sleep_ms(100);
    }
    return st;
}

static void produce(const char *topic, const char *market, const char *json)
{
    struct cm_kafka_out m = {.topic = topic,
                             .partition = CM_KAFKA_PARTITION_ANY,
                             .key = market,
                             .key_len = strlen(market),
                             .value = json,
                             .value_len = strlen(json)};
    assert_int_equal(cm_kafka_produce_wait(g.kp, &m, 1, 10000), 1);
}

static int mkt_index(const char *market)
{
    return strcmp(market, "BTC-USDT") == 0 ? 0 : 1;
}

/* Builds a trade (next seq of the market) into out; returns its id in id. */
static void trade_json(char *out, size_t n, char *id, size_t idn, const char *market,
                       const char *qty, const char *quote, int taker_buys, const char *taker_order,
                       const char *taker_user, const char *maker_order, const char *maker_user)
{
    int64_t seq = ++g.seq[mkt_index(market)];
    snprintf(id, idn, "%s:%lld", market, (long long)seq);
    snprintf(out, n,
             "{\"type\":\"trade\",\"version\":1,\"id\":\"%s\",\"ts\":\"2026-11-21T12:00:00.000Z\","
             "\"market\":\"%s\",\"seq\":%lld,\"price\":\"30000.000000\",\"quantity\":\"%s\","
             "\"quote_amount\":\"%s\",\"taker_side\":\"%s\",\"taker_order_id\":\"%s\","
             "\"taker_user_id\":\"%s\",\"maker_order_id\":\"%s\",\"maker_user_id\":\"%s\"}",
             id, market, (long long)seq, qty, quote, taker_buys ? "buy" : "sell", taker_order,
             taker_user, maker_order, maker_user);
}

static void order_end(char *id, size_t idn, const char *market, const char *type, const char *order,
                      const char *user, int buy, const char *fq, const char *fquote)
{
    int64_t seq = ++g.seq[mkt_index(market)];
    snprintf(id, idn, "%s:%lld", market, (long long)seq);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"type\":\"%s\",\"version\":1,\"id\":\"%s\",\"ts\":\"2026-11-21T12:00:00.000Z\","
             "\"market\":\"%s\",\"seq\":%lld,\"order_id\":\"%s\",\"user_id\":\"%s\","
             "\"side\":\"%s\",\"filled_quantity\":\"%s\",\"filled_quote\":\"%s\","
             "\"reason\":\"user_cancel\"}",
             type, id, market, (long long)seq, order, user, buy ? "buy" : "sell", fq, fquote);
    produce(g.orders, market, json);
}

static void deposit_now(const char *user, const char *asset, const char *amount, const char *key)
{
    char body[256], path[128], k[96];
    snprintf(body, sizeof body, "{\"asset\":\"%s\",\"amount\":\"%s\"}", asset, amount);
    snprintf(k, sizeof k, "%s-%s", key, asset); /* one key per deposit */
    cJSON *j;
    long st = call_retry("POST", "/v1/deposits", user, k, body, &j);
    assert_true(st == 201 || st == 200);
    snprintf(path, sizeof path, "/admin/deposits/%s/credit", jstr(j, "id"));
    cJSON_Delete(j);
    assert_int_equal(call_retry("POST", path, NULL, NULL, NULL, NULL), 200);
}

static void allow(const char *user, const char *asset, const char *address)
{
    char body[256];
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"asset\":\"%s\",\"address\":\"%s\"}", user,
             asset, address);
    assert_int_equal(call_retry("POST", "/admin/addresses", NULL, NULL, body, NULL), 201);
}

/* ---- setup */

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    g.port = free_port();
    const char *tmp = need_env("TEST_TMPDIR");
    snprintf(g.sock, sizeof g.sock, "%s/signer.sock", tmp);
    snprintf(g.keyfile, sizeof g.keyfile, "%s/signer.keys", tmp);
    int r = (int)(getpid() % 100000);
    snprintf(g.trades, sizeof g.trades, "wallet-itest.trades.%d", r);
    snprintf(g.orders, sizeof g.orders, "wallet-itest.orders.%d", r);
    snprintf(g.events, sizeof g.events, "wallet-itest.events.%d", r);
    snprintf(g.group, sizeof g.group, "wallet-itest-%d", r);
    snprintf(g.stream, sizeof g.stream, "wallet-itest:withdrawals:%d", r);
    g.db = PQconnectdb(need_env("TEST_DATABASE_URL"));
    if (PQstatus(g.db) != CONNECTION_OK)
        return -1;
    struct cm_kafka_config kc = {.brokers = need_env("TEST_KAFKA_BROKERS"), .props = "linger.ms=1"};
    char err[256];
    g.kp = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!g.kp)
        return -1;
    /* Topics appear on first produce; the wallet skips these markers. */
    produce(g.trades, "init", "{\"type\":\"init\"}");
    produce(g.orders, "init", "{\"type\":\"init\"}");

    char sockenv[600], keyenv[600];
    snprintf(sockenv, sizeof sockenv, "SIGNER_SOCKET=%s", g.sock);
    snprintf(keyenv, sizeof keyenv, "SIGNER_KEY_FILE=%s", g.keyfile);
    const char *senv[] = {sockenv, keyenv, "SIGNER_KEK=" KEK, NULL};
    g.signer = spawn_service("wallet-signer", "signer", senv);
    int64_t end = now_ms() + 10000;
    while (access(g.sock, F_OK) != 0 && now_ms() < end)
        sleep_ms(20);
    if (access(g.sock, F_OK) != 0)
        return -1;
    g.wallet = start_wallet(NULL);
    g.trade_ids = calloc(4096, sizeof *g.trade_ids);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g.wallet > 0)
        stop_service(g.wallet);
    if (g.signer > 0)
        stop_service(g.signer);
    cm_kafka_producer_close(g.kp, 2000);
    PQfinish(g.db);
    free(g.trade_ids);
    return 0;
}

/* ---- tests */

static void test_config_errors(void **state)
{
    (void)state;
    const char *env[] = {"DATABASE_URL=", "PORT=99999", NULL};
    pid_t pid = spawn_service("wallet", "wallet-badconfig", env);
    assert_int_equal(wait_exit(pid, 5000), 2);
    const char *senv[] = {"SIGNER_SOCKET=/tmp/x.sock", "SIGNER_KEY_FILE=/tmp/x", "SIGNER_KEK=zz",
                          NULL};
    pid = spawn_service("wallet-signer", "signer-badconfig", senv);
    assert_int_equal(wait_exit(pid, 5000), 2);
}

static void test_bad_input(void **state)
{
    (void)state;
    int64_t before = q_int("SELECT (SELECT count(*) FROM deposits) + (SELECT count(*) FROM"
                           " withdrawals) + (SELECT count(*) FROM holds) + (SELECT count(*) FROM"
                           " journal_entries) + (SELECT count(*) FROM outbox)");
    cJSON *j;
    assert_int_equal(call("GET", "/v1/balances", NULL, NULL, NULL, &j), 401);
    assert_string_equal(error_code(j), "unauthorized");
    cJSON_Delete(j);
    assert_int_equal(call("GET", "/v1/balances", "abc", NULL, NULL, NULL), 401);
    static const struct {
        const char *path, *key, *body;
        long status;
        const char *code;
    } cases[] = {
        {"/v1/deposits", "b1", "{\"asset\":\"BTC\",\"amount\":\"0\"}", 422, "validation_failed"},
        {"/v1/deposits", "b2", "{\"asset\":\"BTC\",\"amount\":\"-1\"}", 422, "validation_failed"},
        {"/v1/deposits", "b3", "{\"asset\":\"BTC\",\"amount\":\"0.000000001\"}", 422,
         "validation_failed"},
        {"/v1/deposits", "b4", "{\"asset\":\"USDT\",\"amount\":\"1.0000001\"}", 422,
         "validation_failed"},
        {"/v1/deposits", "b5", "{\"asset\":\"DOGE\",\"amount\":\"1\"}", 422, "validation_failed"},
        {"/v1/deposits", "b6", "{\"asset\":\"BTC\",\"amount\":1}", 422, "validation_failed"},
        {"/v1/deposits", "b7", "{\"asset\":\"BTC\",\"amount\":\"1e3\"}", 422, "validation_failed"},
        {"/v1/deposits", "b8", "{\"asset\":\"BTC\",\"amount\":\"99999999999999999999\"}", 422,
         "validation_failed"},
        {"/v1/deposits", "b9", "{\"asset\":\"BTC\",\"amount\":\"1\",\"user_id\":\"2\"}", 400,
         "invalid_request"},
        {"/v1/deposits", "b10", "{\"asset\":\"BTC\",\"amount\":\"1\",\"tx_hash\":\"0x12\"}", 422,
         "validation_failed"},
        {"/v1/deposits", "b11", "not json", 400, "invalid_json"},
        {"/v1/deposits", "b12", "{\"asset\":\"BTC\",\"amount\":\"10000000.00000001\"}", 422,
         "validation_failed"},
        {"/v1/withdrawals", NULL,
         "{\"asset\":\"BTC\",\"amount\":\"1\",\"address\":"
         "\"tb1qexampleaddress0001\"}",
         400, "invalid_request"},
        {"/v1/withdrawals", "w1",
         "{\"asset\":\"BTC\",\"amount\":\"0\",\"address\":"
         "\"tb1qexampleaddress0001\"}",
         422, "validation_failed"},
        {"/v1/withdrawals", "w2", "{\"asset\":\"BTC\",\"amount\":\"0.1\",\"address\":\"nope\"}",
         422, "validation_failed"},
        {"/v1/withdrawals", "w3",
         "{\"asset\":\"ETH\",\"amount\":\"0.1\",\"address\":\"tb1qexampleaddress0001\"}", 422,
         "validation_failed"},
        {"/v1/withdrawals", "w4",
         "{\"asset\":\"XRP\",\"amount\":\"0.1\",\"address\":\"tb1qexampleaddress0001\"}", 422,
         "validation_failed"},
        {"/v1/withdrawals", "w5",
         "{\"asset\":\"BTC\",\"amount\":\"0.1\",\"address\":\"tb1qnotallowlisted01\"}", 403,
         "forbidden"},
        {"/internal/holds", NULL,
         "{\"hold_id\":\"x1\",\"user_id\":\"1\",\"asset\":\"BTC\","
         "\"amount\":\"-5\"}",
         422, "validation_failed"},
        {"/internal/holds", NULL,
         "{\"hold_id\":\"x2\",\"user_id\":\"1\",\"asset\":\"ZZZ\","
         "\"amount\":\"5\"}",
         422, "validation_failed"},
        {"/internal/holds", NULL,
         "{\"hold_id\":\"x3\",\"user_id\":\"one\",\"asset\":\"BTC\","
         "\"amount\":\"5\"}",
         422, "validation_failed"},
        {"/internal/holds", NULL, "{\"hold_id\":\"x4\",\"asset\":\"BTC\",\"amount\":\"5\"}", 400,
         "invalid_request"},
        {"/internal/holds", NULL,
         "{\"hold_id\":\"x5\",\"user_id\":\"1\",\"asset\":\"BTC\","
         "\"amount\":\"5\"}",
         422, "insufficient_funds"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long st = call("POST", cases[i].path, "1", cases[i].key, cases[i].body, &j);
        if (st != cases[i].status || strcmp(error_code(j), cases[i].code) != 0)
            fail_msg("case %zu (%s %s): got %ld %s, want %ld %s", i, cases[i].path, cases[i].body,
                     st, error_code(j), cases[i].status, cases[i].code);
        cJSON_Delete(j);
    }
    assert_int_equal(call("GET", "/v1/ledger?asset=DOGE", "1", NULL, NULL, NULL), 400);
    assert_int_equal(call("GET", "/v1/ledger?cursor=abc", "1", NULL, NULL, NULL), 400);
    assert_int_equal(call("GET", "/v1/deposits?limit=0", "1", NULL, NULL, NULL), 400);
    assert_int_equal(call("GET", "/v1/withdrawals/wd_999", "1", NULL, NULL, NULL), 404);
    assert_int_equal(call("DELETE", "/internal/holds/nope", NULL, NULL, NULL, NULL), 404);
    assert_int_equal(call("POST", "/admin/deposits/dep_999/credit", NULL, NULL, NULL, NULL), 404);
    int64_t after = q_int("SELECT (SELECT count(*) FROM deposits) + (SELECT count(*) FROM"
                          " withdrawals) + (SELECT count(*) FROM holds) + (SELECT count(*) FROM"
                          " journal_entries) + (SELECT count(*) FROM outbox)");
    assert_int_equal(before, after); /* nothing changed */
}

static void test_deposits(void **state)
{
    (void)state;
    cJSON *a, *b;
    const char *body = "{\"asset\":\"USDT\",\"amount\":\"1000\"}";
    assert_int_equal(call("POST", "/v1/deposits", "1", "dep-a", body, &a), 201);
    assert_string_equal(jstr(a, "status"), "pending");
    assert_string_equal(jstr(a, "amount"), "1000.000000");
    assert_int_equal(call("POST", "/v1/deposits", "1", "dep-a", body, &b), 200);
    assert_string_equal(jstr(a, "id"), jstr(b, "id"));
    cJSON_Delete(b);
    assert_int_equal(
        call("POST", "/v1/deposits", "1", "dep-a", "{\"asset\":\"USDT\",\"amount\":\"1001\"}", &b),
        409);
    assert_string_equal(error_code(b), "idempotency_conflict");
    cJSON_Delete(b);
    /* The same key of another user is another deposit. */
    assert_int_equal(call("POST", "/v1/deposits", "2", "dep-a", body, &b), 201);
    assert_string_not_equal(jstr(a, "id"), jstr(b, "id"));
    cJSON_Delete(b);
    /* A tx hash is one transfer. */
    const char *tx = "{\"asset\":\"BTC\",\"amount\":\"1\",\"tx_hash\":\"0x"
                     "1111111111111111111111111111111111111111111111111111111111111111\"}";
    assert_int_equal(call("POST", "/v1/deposits", "1", NULL, tx, NULL), 201);
    assert_int_equal(call("POST", "/v1/deposits", "1", NULL, tx, NULL), 200);
    assert_int_equal(call("POST", "/v1/deposits", "2", NULL, tx, &b), 409);
    cJSON_Delete(b);
    /* The ticker confirms and credits after 2 confirmations. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM deposits WHERE id = '%s' AND status = 'credited'",
             jstr(a, "id"));
    assert_int_equal(wait_q(sql, 1, 10000), 1);
    cJSON_Delete(a);
    cJSON *l;
    assert_int_equal(call("GET", "/v1/deposits?limit=1", "1", NULL, NULL, &l), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 1);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(l, "next_cursor")));
    cJSON_Delete(l);
    assert_int_equal(wait_q("SELECT count(*) FROM deposits WHERE user_id = '1' AND status <>"
                            " 'credited'",
                            0, 10000),
                     0);
    assert_int_equal(call("GET", "/v1/balances", "1", NULL, NULL, &l), 200);
    char *txt = cJSON_PrintUnformatted(l);
    assert_non_null(strstr(txt, "\"asset\":\"USDT\",\"available\":\"1000.000000\""));
    assert_non_null(strstr(txt, "\"asset\":\"BTC\",\"available\":\"1.00000000\""));
    free(txt);
    cJSON_Delete(l);
    /* Events: pending, confirmed, credited per deposit in the outbox. */
    assert_true(q_int("SELECT count(*) FROM outbox WHERE payload::jsonb->>'type' ="
                      " 'deposit.credited'") >= 2);
}

struct hold_race {
    int idx;
    long status;
};

static void *hold_racer(void *arg)
{
    struct hold_race *h = arg;
    char body[256];
    snprintf(body, sizeof body,
             "{\"hold_id\":\"race-%d\",\"user_id\":\"3\",\"asset\":\"USDT\",\"amount\":\"10\"}",
             h->idx);
    h->status = call("POST", "/internal/holds", NULL, NULL, body, NULL);
    return NULL;
}

static void test_holds(void **state)
{
    (void)state;
    deposit_now("3", "USDT", "35", "h-dep");
    cJSON *j;
    const char *hb = "{\"hold_id\":\"h-1\",\"user_id\":\"3\",\"asset\":\"USDT\",\"amount\":\"5\","
                     "\"purpose\":\"order\",\"ref_id\":\"h-1\"}";
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL, hb, &j), 201);
    assert_string_equal(jstr(j, "remaining"), "5.000000");
    assert_string_equal(jstr(j, "status"), "active");
    cJSON_Delete(j);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL, hb, NULL), 200);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"h-1\",\"user_id\":\"3\",\"asset\":\"USDT\",\"amount\":"
                          "\"6\"}",
                          &j),
                     409);
    assert_string_equal(error_code(j), "idempotency_conflict");
    cJSON_Delete(j);
    /* 30 USDT left: of 8 concurrent holds of 10 exactly 3 succeed. */
    struct hold_race r[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        r[i].idx = i;
        pthread_create(&t[i], NULL, hold_racer, &r[i]);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ok += r[i].status == 201;
        refused += r[i].status == 422;
    }
    assert_int_equal(ok, 3);
    assert_int_equal(refused, 5);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '3' AND asset = 'USDT'"),
                     0);
    assert_int_equal(q_int("SELECT held FROM accounts WHERE owner = '3' AND asset = 'USDT'"),
                     35000000);
    assert_int_equal(call("DELETE", "/internal/holds/h-1", NULL, NULL, NULL, &j), 200);
    assert_string_equal(jstr(j, "status"), "released");
    assert_string_equal(jstr(j, "remaining"), "0.000000");
    cJSON_Delete(j);
    assert_int_equal(call("DELETE", "/internal/holds/h-1", NULL, NULL, NULL, NULL), 200);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '3' AND asset = 'USDT'"),
                     5000000);
    for (int i = 0; i < 8; i++) {
        char path[64];
        snprintf(path, sizeof path, "/internal/holds/race-%d", i);
        call("DELETE", path, NULL, NULL, NULL, NULL);
    }
    assert_int_equal(q_int("SELECT held FROM accounts WHERE owner = '3' AND asset = 'USDT'"), 0);
}

/* hold.placed carries exactly the bytes it always had (consumers parse
 * them; migration 011 renders them without json_build_object). */
static void test_hold_placed_event(void **state)
{
    (void)state;
    assert_int_equal(
        q_int(
            "SELECT count(*) FROM outbox WHERE payload LIKE '{\"type\":\"hold.placed\"%'"
            " AND payload LIKE '%\"h-1\"%' AND payload = '{\"type\":\"hold.placed\",\"version\":1,"
            "\"id\":\"wal-' || id || '\",\"ts\":\"' || (payload::json->>'ts') || '\","
            "\"user_id\":\"3\",\"hold_id\" : \"h-1\", \"asset\" : \"USDT\", \"amount\" :"
            " \"5.000000\", \"purpose\" : \"order\", \"ref_id\" : \"h-1\"}'"
            " AND payload::json->>'ts' ~ '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z$'"),
        1);
}

static void test_settlement(void **state)
{
    (void)state;
    /* user 5 buys 0.1 BTC at 30000 from user 6 (maker): 3000 USDT. */
    deposit_now("5", "USDT", "5000", "s-dep-u");
    deposit_now("6", "BTC", "1", "s-dep");
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"9001\",\"user_id\":\"5\",\"asset\":\"USDT\",\"amount\":"
                          "\"3100\"}",
                          NULL),
                     201);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"9002\",\"user_id\":\"6\",\"asset\":\"BTC\",\"amount\":"
                          "\"0.2\"}",
                          NULL),
                     201);
    char json[1024], id1[48], id2[48], eid[48];
    trade_json(json, sizeof json, id1, sizeof id1, "BTC-USDT", "0.06000000", "1800.000000", 1,
               "9001", "5", "9002", "6");
    produce(g.trades, "BTC-USDT", json);
    produce(g.trades, "BTC-USDT", json); /* a duplicate delivery */
    trade_json(json, sizeof json, id2, sizeof id2, "BTC-USDT", "0.04000000", "1200.000000", 1,
               "9001", "5", "9002", "6");
    produce(g.trades, "BTC-USDT", json);
    /* The buyer's order ends filled (its end event may overtake trades). */
    order_end(eid, sizeof eid, "BTC-USDT", "order.filled", "9001", "5", 1, "0.10000000",
              "3000.000000");
    assert_int_equal(wait_q("SELECT count(*) FROM holds WHERE hold_id = '9001' AND status ="
                            " 'released'",
                            1, 20000),
                     1);
    /* Fees: taker (buyer) 20 bps of 0.1 BTC = 0.0002 BTC; maker (seller)
     * 10 bps of 3000 USDT = 3 USDT. */
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '5' AND asset = 'BTC'"),
                     10000000 - 20000);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '5' AND asset = 'USDT'"),
                     2000000000);
    assert_int_equal(q_int("SELECT held FROM accounts WHERE owner = '5' AND asset = 'USDT'"), 0);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '6' AND asset = 'USDT'"),
                     3000000000 - 3000000);
    assert_int_equal(q_int("SELECT held FROM accounts WHERE owner = '6' AND asset = 'BTC'"),
                     10000000);
    assert_int_equal(q_int("SELECT count(*) FROM journal_entries WHERE kind = 'trade' AND ref_id"
                           " LIKE 'BTC-USDT:%'"),
                     2);
    /* The seller's order is cancelled with 0.1 filled: 0.1 BTC back. */
    order_end(eid, sizeof eid, "BTC-USDT", "order.cancelled", "9002", "6", 0, "0.10000000",
              "3000.000000");
    assert_int_equal(
        wait_q("SELECT held FROM accounts WHERE owner = '6' AND asset = 'BTC'", 0, 10000), 0);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '6' AND asset = 'BTC'"),
                     90000000);
    cJSON *l;
    assert_int_equal(call("GET", "/v1/ledger?asset=BTC", "5", NULL, NULL, &l), 200);
    char *txt = cJSON_PrintUnformatted(l);
    assert_non_null(strstr(txt, "\"kind\":\"trade\""));
    free(txt);
    cJSON_Delete(l);
    /* A trade against a hold that does not exist is rejected, not applied. */
    trade_json(json, sizeof json, id1, sizeof id1, "BTC-USDT", "0.01000000", "300.000000", 1,
               "7777", "5", "7778", "6");
    produce(g.trades, "BTC-USDT", json);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM processed_events WHERE event_id = '%s' AND outcome = 'rejected'",
             id1);
    assert_int_equal(wait_q(sql, 1, 10000), 1);
    q_exec("SELECT 1");
}

static void test_withdrawals(void **state)
{
    (void)state;
    deposit_now("7", "BTC", "5", "wd-dep-btc");
    deposit_now("7", "ETH", "10", "wd-dep-eth");
    allow("7", "BTC", "tb1qexampleaddress0001");
    allow("7", "BTC", "tb1qfailfailfail0001");
    allow("7", "ETH", "0x52908400098527886e0f7030069857d2e4169ee7");
    const char *body =
        "{\"asset\":\"BTC\",\"amount\":\"0.5\",\"address\":\"tb1qexampleaddress0001\"}";
    cJSON *a, *b;
    assert_int_equal(call("POST", "/v1/withdrawals", "7", "wd-a", body, &a), 202);
    assert_string_equal(jstr(a, "fee"), "0.00010000");
    assert_int_equal(call("POST", "/v1/withdrawals", "7", "wd-a", body, &b), 200);
    assert_string_equal(jstr(a, "id"), jstr(b, "id"));
    cJSON_Delete(b);
    assert_int_equal(call("POST", "/v1/withdrawals", "7", "wd-a",
                          "{\"asset\":\"BTC\",\"amount\":\"0.6\",\"address\":"
                          "\"tb1qexampleaddress0001\"}",
                          &b),
                     409);
    assert_string_equal(error_code(b), "idempotency_conflict");
    cJSON_Delete(b);
    char path[128], sql[256];
    snprintf(path, sizeof path, "/v1/withdrawals/%s", jstr(a, "id"));
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM withdrawals WHERE id = '%s' AND status ="
             " 'completed'",
             jstr(a, "id"));
    assert_int_equal(wait_q(sql, 1, 15000), 1);
    assert_int_equal(call("GET", path, "7", NULL, NULL, &b), 200);
    assert_string_equal(jstr(b, "status"), "completed");
    assert_int_equal((int)strlen(jstr(b, "tx_hash")), 66);
    cJSON_Delete(b);
    /* Another user's withdrawal does not exist for them. */
    assert_int_equal(call("GET", path, "8", NULL, NULL, &b), 404);
    cJSON_Delete(b);
    cJSON_Delete(a);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '7' AND asset = 'BTC'"),
                     500000000 - 50000000 - 10000);
    assert_int_equal(q_int("SELECT count(*) FROM chain_txs"), 1);

    /* Above the approval threshold (1 BTC): waits for an admin. */
    body = "{\"asset\":\"BTC\",\"amount\":\"2\",\"address\":\"tb1qexampleaddress0001\"}";
    assert_int_equal(call("POST", "/v1/withdrawals", "7", "wd-big", body, &a), 202);
    assert_string_equal(jstr(a, "status"), "pending_approval");
    snprintf(path, sizeof path, "/admin/withdrawals/%s/approve", jstr(a, "id"));
    assert_int_equal(call("POST", path, NULL, NULL, NULL, NULL), 200);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM withdrawals WHERE id = '%s' AND status ="
             " 'completed'",
             jstr(a, "id"));
    assert_int_equal(wait_q(sql, 1, 15000), 1);
    assert_int_equal(call("POST", path, NULL, NULL, NULL, NULL), 200); /* idempotent */
    cJSON_Delete(a);

    /* The chain mock refuses: failed, hold released. */
    int64_t avail = q_int("SELECT available FROM accounts WHERE owner = '7' AND asset = 'BTC'");
    body = "{\"asset\":\"BTC\",\"amount\":\"0.1\",\"address\":\"tb1qfailfailfail0001\"}";
    assert_int_equal(call("POST", "/v1/withdrawals", "7", "wd-fail", body, &a), 202);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM withdrawals WHERE id = '%s' AND status ="
             " 'failed' AND failure_reason = 'broadcast_failed'",
             jstr(a, "id"));
    assert_int_equal(wait_q(sql, 1, 15000), 1);
    cJSON_Delete(a);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '7' AND asset = 'BTC'"),
                     avail);
    assert_int_equal(q_int("SELECT held FROM accounts WHERE owner = '7' AND asset = 'BTC'"), 0);

    /* Daily limit ETH 5: 4 then 2 is refused, nothing held. */
    body = "{\"asset\":\"ETH\",\"amount\":\"4\",\"address\":"
           "\"0x52908400098527886e0f7030069857d2e4169ee7\"}";
    assert_int_equal(call("POST", "/v1/withdrawals", "7", "eth-1", body, NULL), 202);
    body = "{\"asset\":\"ETH\",\"amount\":\"2\",\"address\":"
           "\"0x52908400098527886e0f7030069857d2e4169ee7\"}";
    assert_int_equal(call("POST", "/v1/withdrawals", "7", "eth-2", body, &b), 422);
    assert_string_equal(error_code(b), "unprocessable");
    cJSON_Delete(b);
    /* Too much: insufficient funds (amount + fee). */
    body = "{\"asset\":\"BTC\",\"amount\":\"0.9\",\"address\":\"tb1qexampleaddress0001\"}";
    deposit_now("9", "BTC", "0.9", "wd9");
    allow("9", "BTC", "tb1qexampleaddress0001");
    assert_int_equal(call("POST", "/v1/withdrawals", "9", "w9", body, &b), 422);
    assert_string_equal(error_code(b), "insufficient_funds");
    cJSON_Delete(b);
    /* Every state change is an event. */
    assert_true(q_int("SELECT count(DISTINCT payload::jsonb->>'type') FROM outbox WHERE"
                      " payload::jsonb->>'type' LIKE 'withdrawal.%'") >= 7);
}

/* ---- the signer */

static int signer_exchange(const char *req, size_t len, char *out, size_t outlen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, g.sock, strlen(g.sock) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t got = 0;
    ssize_t n;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got < outlen - 1 && (n = recv(fd, out + got, outlen - 1 - got, 0)) > 0) {
        got += (size_t)n;
        if (memchr(out, '\n', got))
            break;
    }
    out[got] = '\0';
    close(fd);
    return 0;
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            char *more = realloc(buf, cap + 1);
            if (!more) {
                free(buf);
                fclose(f);
                return 0;
            }
            buf = more;
        }
    }
    fclose(f);
    buf[len] = '\0';
    int found = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static void test_signer(void **state)
{
    (void)state;
    char out[2048];
    const char *good = "{\"withdrawal_id\":\"wd_t1\",\"asset\":\"BTC\",\"address\":"
                       "\"tb1qexampleaddress0001\",\"amount\":\"0.01000000\"}\n";
    assert_int_equal(signer_exchange(good, strlen(good), out, sizeof out), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_int_equal((int)strlen(jstr(j, "signature")), 128);
    assert_int_equal((int)strlen(jstr(j, "public_key")), 64);
    /* The signature verifies with the public key over the documented message. */
    unsigned char sig[64], pk[32];
    sodium_hex2bin(sig, 64, jstr(j, "signature"), 128, NULL, NULL, NULL);
    sodium_hex2bin(pk, 32, jstr(j, "public_key"), 64, NULL, NULL, NULL);
    const char *msg = "exlab-withdrawal-v1\nwd_t1\nBTC\ntb1qexampleaddress0001\n0.01000000";
    assert_int_equal(crypto_sign_verify_detached(sig, (const unsigned char *)msg, strlen(msg), pk),
                     0);
    cJSON_Delete(j);

    static const char *const bad[] = {
        "hello\n",
        "{}\n",
        "{\"withdrawal_id\":\"wd_t1\",\"asset\":\"BTC\",\"address\":\"tb1qexampleaddress0001\","
        "\"amount\":\"0.01\",\"private_key\":\"1\"}\n",
        "{\"withdrawal_id\":\"wd_t1\",\"asset\":\"BTC\",\"address\":\"tb1q exampleaddress\","
        "\"amount\":\"0.01\"}\n",
        "{\"withdrawal_id\":\"wd_t1\",\"asset\":\"BTC\",\"address\":\"tb1qexampleaddress0001\","
        "\"amount\":\"-1\"}\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(signer_exchange(bad[i], strlen(bad[i]), out, sizeof out), 0);
        assert_non_null(strstr(out, "\"error\""));
        assert_null(strstr(out, "signature"));
    }
    char *big = malloc(8192);
    memset(big, 'a', 8191);
    big[8191] = '\n';
    assert_int_equal(signer_exchange(big, 8192, out, sizeof out), 0);
    assert_non_null(strstr(out, "request_too_large"));
    free(big);
    assert_int_equal(signer_exchange("PING\n", 5, out, sizeof out), 0);
    assert_string_equal(out, "PONG\n");

    /* The key: decrypt the key file with the KEK (the test knows it), then
     * look for the seed and the secret key in every log, and in the
     * wallet's memory. */
    unsigned char file[8 + 24 + 16 + 32 + 1], kek[32], seed[32], pk2[32], sk[64];
    int fd = open(g.keyfile, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, file, sizeof file), 80);
    close(fd);
    sodium_hex2bin(kek, 32, KEK, 64, NULL, NULL, NULL);
    assert_int_equal(crypto_secretbox_open_easy(seed, file + 32, 48, file + 8, kek), 0);
    crypto_sign_seed_keypair(pk2, sk, seed);
    assert_memory_equal(pk, pk2, 32);
    char seed_hex[65], sk_hex[129];
    sodium_bin2hex(seed_hex, sizeof seed_hex, seed, 32);
    sodium_bin2hex(sk_hex, sizeof sk_hex, sk, 64);
    assert_null(memmem(file, 80, seed, 32)); /* encrypted at rest */
    const char *tmp = need_env("TEST_TMPDIR");
    DIR *d = opendir(tmp);
    struct dirent *e;
    int logs = 0;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".log"))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
        assert_false(file_contains(p, seed_hex));
        assert_false(file_contains(p, sk_hex));
        assert_false(file_contains(p, KEK));
        logs++;
    }
    closedir(d);
    assert_true(logs >= 2);
    char p[1024];
    snprintf(p, sizeof p, "%s/signer.log", tmp);
    assert_true(file_contains(p, "\"audit\":\"signature\""));
    assert_true(file_contains(p, "\"withdrawal_id\":\"wd_t1\""));

    /* The wallet: no signing code linked, no libsodium mapped, no key file
     * open, no KEK left in its environment, no key bytes in its memory. */
    snprintf(p, sizeof p, "%s/wallet", need_env("TEST_BIN_DIR"));
    assert_false(file_contains(p, "crypto_sign_detached"));
    assert_false(file_contains(p, "crypto_secretbox_open"));
    snprintf(p, sizeof p, "/proc/%d/maps", (int)g.wallet);
    assert_false(file_contains(p, "libsodium"));
    snprintf(p, sizeof p, "/proc/%d/environ", (int)g.wallet);
    assert_false(file_contains(p, KEK));
    snprintf(p, sizeof p, "/proc/%d/fd", (int)g.wallet);
    d = opendir(p);
    while (d && (e = readdir(d))) {
        char link[1400], target[1024];
        snprintf(link, sizeof link, "%s/%s", p, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            assert_null(strstr(target, "signer.keys"));
        }
    }
    if (d)
        closedir(d);
    /* Scan the wallet's readable private memory for the seed (we are its
     * parent, so /proc/pid/mem is readable under ptrace_scope 1). */
    snprintf(p, sizeof p, "/proc/%d/maps", (int)g.wallet);
    FILE *maps = fopen(p, "r");
    snprintf(p, sizeof p, "/proc/%d/mem", (int)g.wallet);
    int mem = open(p, O_RDONLY);
    long scanned = 0;
    if (maps && mem >= 0) {
        char line[512];
        while (fgets(line, sizeof line, maps)) {
            unsigned long lo, hi;
            char perms[8];
            if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
                hi - lo > (256ul << 20))
                continue;
            unsigned char *buf = malloc(hi - lo);
            ssize_t n = pread(mem, buf, hi - lo, (off_t)lo);
            if (n > 0) {
                scanned += n;
                assert_null(memmem(buf, (size_t)n, seed, 32));
                assert_null(memmem(buf, (size_t)n, sk, 64));
            }
            free(buf);
        }
    }
    if (maps)
        fclose(maps);
    if (mem >= 0)
        close(mem);
    if (scanned == 0)
        print_message("# wallet memory not readable here (ptrace policy); scan skipped\n");
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
}

/* ---- the outbox relay */

static void place_and_release(const char *user, const char *hold)
{
    char body[256], path[128];
    snprintf(body, sizeof body,
             "{\"hold_id\":\"%s\",\"user_id\":\"%s\",\"asset\":\"USDT\",\"amount\":\"1\"}", hold,
             user);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL, body, NULL), 201);
    snprintf(path, sizeof path, "/internal/holds/%s", hold);
    assert_int_equal(call("DELETE", path, NULL, NULL, NULL, NULL), 200); /* wakes the relay */
}

/* A row whose id was drawn before rows that are sent, but that commits
 * after them, is still published: the relay's low-water mark (migration
 * 009) does not pass ids of transactions still running. A relay polling
 * from "the last id it sent" would skip it. */
static void test_outbox_late_commit(void **state)
{
    (void)state;
    deposit_now("41", "USDT", "10", "late-dep");
    PGconn *late = PQconnectdb(need_env("TEST_DATABASE_URL"));
    assert_int_equal(PQstatus(late), CONNECTION_OK);
    PGresult *r = PQexec(late, "BEGIN");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQexec(late, "SELECT wallet_emit_json('test.late', '41', '{\"n\":1}'),"
                     " currval('outbox_id_seq')");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int64_t late_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    /* Newer rows, sent in several relay rounds while the early one is
     * uncommitted. */
    char sql[256], hold[32];
    for (int round = 0; round < 3; round++) {
        snprintf(hold, sizeof hold, "late-%d", round);
        place_and_release("41", hold);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM outbox WHERE id > %lld AND sent_at IS NULL"
                 " AND payload LIKE '%%\"late-%d\"%%'",
                 (long long)late_id, round);
        assert_int_equal(wait_q(sql, 0, 10000), 0);
    }
    assert_true(q_int("SELECT count(*) FROM outbox WHERE id > 0 AND sent_at IS NOT NULL AND"
                      " payload LIKE '%\"late-2\"%'") == 2); /* placed and released */
    r = PQexec(late, "COMMIT");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(late);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE id = %lld AND sent_at IS NOT NULL",
             (long long)late_id);
    assert_int_equal(wait_q(sql, 1, 10000), 1);
    /* And the relay goes on past it. */
    place_and_release("41", "late-after");
    assert_int_equal(wait_q("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND"
                            " payload LIKE '%\"late-after\"%'",
                            0, 10000),
                     0);
}

/* ---- order events in batches */

/* One holds fixture per prefix (owner 4201 for "a", 4202 for "b"); the
 * events below exercise every case of a batch. */
static const char *const batch_setup =
    "INSERT INTO accounts (owner, asset, available, held) VALUES ('@O', 'USDT', 0, 700);"
    "INSERT INTO holds (hold_id, user_id, asset, amount, remaining, consumed, expected, status,"
    " purpose, ref_id, seen, end_reason) VALUES"
    " ('@-h1', '@O', 'USDT', 100, 70, 30, NULL, 'active', 'order', 'x', false, NULL),"
    " ('@-h2', '@O', 'USDT', 100, 80, 20, NULL, 'active', 'order', 'x', false, NULL),"
    " ('@-h3', '@O', 'USDT', 100, 100, 0, NULL, 'active', 'order', 'x', true, NULL),"
    " ('@-h4', '@O', 'USDT', 100, 100, 0, NULL, 'active', 'order', 'x', true, NULL),"
    " ('@-h5', '@O', 'USDT', 100, 90, 10, NULL, 'active', 'order', 'x', true, NULL),"
    " ('@-h6', '@O', 'USDT', 100, 60, 40, 40, 'closing', 'order', 'x', true, 'order_filled'),"
    " ('@-h7', '@O', 'USDT', 100, 100, 0, NULL, 'active', 'order', 'x', false, NULL),"
    " ('@-h9', '@O', 'USDT', 100, 100, 0, NULL, 'active', 'order', 'x', false, NULL);"
    /* h4's end event was processed by an earlier batch (redelivery). */
    "INSERT INTO processed_events (event_id, kind) VALUES ('@:e4', 'order.filled');";

/* id, type, order, expected, reason: accepted then filled of one order
 * (h1), accepted then cancelled before its trades (h2), one end event twice
 * (h3), a redelivered one (h4), two end events of one order (h5), an
 * accepted alone (h7), a rejected place (h9, first: releases follow the
 * events' order, not the holds'). h6 is closing and completed by this
 * batch's trades. */
static const char *const batch_events[][5] = {
    {"e9", "order.rejected", "h9", "0", "order_rejected"},
    {"e1a", "order.accepted", "h1", "0", NULL},
    {"e1b", "order.filled", "h1", "30", "order_filled"},
    {"e2a", "order.accepted", "h2", "0", NULL},
    {"e2b", "order.cancelled", "h2", "50", "order_cancelled"},
    {"e3", "order.filled", "h3", "0", "order_filled"},
    {"e3", "order.filled", "h3", "0", "order_filled"},
    {"e4", "order.filled", "h4", "0", "order_filled"},
    {"e5a", "order.cancelled", "h5", "10", "order_cancelled"},
    {"e5b", "order.expired", "h5", "0", "order_expired"},
    {"e7", "order.accepted", "h7", "0", NULL},
};

static void batch_sql(struct cm_buf *b, const char *text, const char *pfx, const char *owner)
{
    for (const char *c = text; *c; c++) {
        if (c[0] == '@' && c[1] == 'O') {
            cm_buf_puts(b, owner);
            c++;
        } else if (c[0] == '@') {
            cm_buf_puts(b, pfx);
        } else {
            cm_buf_printf(b, "%c", *c);
        }
    }
}

static char *one_text(const char *sql)
{
    PGresult *r = PQexec(g.db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(g.db));
    char *v = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* wallet_order_events (one statement per batch) against wallet_order_event
 * called per event, on two copies of the same holds, in one transaction
 * rolled back at the end: same holds, same balances, same hold.released
 * events in the same order; accepted events leave no processed_events row. */
static void test_order_events_batch_sql(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b, 0);
    cm_buf_puts(&b, "BEGIN;");
    batch_sql(&b, batch_setup, "a", "4201");
    batch_sql(&b, batch_setup, "b", "4202");
    /* a: one by one, as before migration 010. */
    size_t ne = sizeof batch_events / sizeof batch_events[0];
    for (size_t i = 0; i < ne; i++)
        cm_buf_printf(&b, "SELECT wallet_order_event('a:%s', '%s', 'a-%s', %s, %s%s%s);",
                      batch_events[i][0], batch_events[i][1], batch_events[i][2],
                      batch_events[i][3], batch_events[i][4] ? "'" : "",
                      batch_events[i][4] ? batch_events[i][4] : "NULL",
                      batch_events[i][4] ? "'" : "");
    cm_buf_puts(&b, "SELECT wallet_release_closed(ARRAY['a-h6', 'a-h2']);");
    q_exec(b.data);
    /* b: the batch. */
    cm_buf_reset(&b);
    cm_buf_puts(&b, "SELECT wallet_order_events(ARRAY[");
    for (size_t i = 0; i < ne; i++)
        cm_buf_printf(&b, "%s'b:%s'", i ? "," : "", batch_events[i][0]);
    cm_buf_puts(&b, "], ARRAY[");
    for (size_t i = 0; i < ne; i++)
        cm_buf_printf(&b, "%s'%s'", i ? "," : "", batch_events[i][1]);
    cm_buf_puts(&b, "], ARRAY[");
    for (size_t i = 0; i < ne; i++)
        cm_buf_printf(&b, "%s'b-%s'", i ? "," : "", batch_events[i][2]);
    cm_buf_puts(&b, "], ARRAY[");
    for (size_t i = 0; i < ne; i++)
        cm_buf_printf(&b, "%s%s", i ? "," : "", batch_events[i][3]);
    cm_buf_puts(&b, "]::bigint[], ARRAY[");
    for (size_t i = 0; i < ne; i++)
        cm_buf_printf(&b, "%s%s%s%s", i ? "," : "", batch_events[i][4] ? "'" : "",
                      batch_events[i][4] ? batch_events[i][4] : "NULL",
                      batch_events[i][4] ? "'" : "");
    cm_buf_puts(&b, "]::text[], ARRAY['b-h6', 'b-h2'])");
    /* h9, h1, h3, h5 by their end events, then h6 by its trades. */
    assert_int_equal(q_int(b.data), 5);
    cm_buf_release(&b);

    assert_int_equal(
        q_int("SELECT count(*) FROM"
              " (SELECT substr(hold_id, 3) AS k, status, remaining, consumed, expected,"
              "         end_reason, seen FROM holds WHERE hold_id LIKE 'a-h%') a"
              " FULL JOIN"
              " (SELECT substr(hold_id, 3) AS k, status, remaining, consumed, expected,"
              "         end_reason, seen FROM holds WHERE hold_id LIKE 'b-h%') b USING (k)"
              " WHERE (a.status, a.remaining, a.consumed, a.expected, a.end_reason, a.seen)"
              "   IS DISTINCT FROM (b.status, b.remaining, b.consumed, b.expected, b.end_reason,"
              "                     b.seen)"),
        0);
    assert_int_equal(q_int("SELECT count(*) FROM holds WHERE hold_id LIKE 'b-h%' AND NOT seen"), 0);
    assert_int_equal(
        q_int("SELECT count(*) FROM holds WHERE hold_id = 'b-h5' AND end_reason = 'order_cancelled'"
              " AND status = 'released'"),
        1);
    assert_int_equal(q_int("SELECT count(*) FROM holds WHERE hold_id = 'b-h2' AND status ="
                           " 'closing' AND expected = 50"),
                     1);
    assert_int_equal(q_int("SELECT count(*) FROM accounts a, accounts b WHERE a.owner = '4201' AND"
                           " b.owner = '4202' AND (a.available, a.held) IS DISTINCT FROM"
                           " (b.available, b.held)"),
                     0);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '4202'"), 420);
    char *ra = one_text("SELECT string_agg(substr(payload::json->>'hold_id', 3) || ':' ||"
                        " (payload::json->>'amount') || ':' || (payload::json->>'reason'), ','"
                        " ORDER BY id) FROM outbox WHERE key = '4201'");
    char *rb = one_text("SELECT string_agg(substr(payload::json->>'hold_id', 3) || ':' ||"
                        " (payload::json->>'amount') || ':' || (payload::json->>'reason'), ','"
                        " ORDER BY id) FROM outbox WHERE key = '4202'");
    /* And the whole events, byte for byte but for id, ts and user. */
#define NORM(owner)                                                                                \
    "SELECT string_agg(regexp_replace(payload, '\"id\":\"wal-[0-9]+\",\"ts\":\"[^\"]*\","          \
    "\"user_id\":\"420[12]\",\"hold_id\" : \"[ab]-', ''), '|' ORDER BY id) FROM outbox"            \
    " WHERE key = '" owner "'"
    char *fa = one_text(NORM("4201"));
    char *fb = one_text(NORM("4202"));
#undef NORM
    assert_string_equal(fa, fb);
    assert_non_null(strstr(fb, "{\"type\":\"hold.released\",\"version\":1,h9\", \"asset\" :"
                               " \"USDT\", \"amount\" : \"0.000100\", \"reason\" :"
                               " \"order_rejected\"}"));
    free(fa);
    free(fb);
    assert_string_equal(ra, rb);
    assert_string_equal(rb, "h9:0.000100:order_rejected,h1:0.000070:order_filled,"
                            "h3:0.000100:order_filled,h5:0.000090:order_cancelled,"
                            "h6:0.000060:order_filled");
    free(ra);
    free(rb);
    /* Terminal events recorded once each; accepted ones not at all. */
    char *pa = one_text("SELECT string_agg(substr(event_id, 3), ',' ORDER BY event_id) FROM"
                        " processed_events WHERE event_id LIKE 'a:%' AND kind NOT IN"
                        " ('order.accepted', 'order.partially_filled')");
    char *pb = one_text("SELECT string_agg(substr(event_id, 3), ',' ORDER BY event_id) FROM"
                        " processed_events WHERE event_id LIKE 'b:%'");
    assert_string_equal(pa, pb);
    assert_string_equal(pb, "e1b,e2b,e3,e4,e5a,e5b,e9");
    assert_int_equal(q_int("SELECT count(*) FROM processed_events WHERE event_id LIKE 'a:%'"), 10);
    free(pa);
    free(pb);
    q_exec("ROLLBACK");
}

/* An order event with a given id, produced copies times (a redelivery). */
static void order_event_copies(const char *id, const char *type, const char *order,
                               const char *user, int buy, const char *fq, const char *fquote,
                               int copies)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"type\":\"%s\",\"version\":1,\"id\":\"%s\",\"ts\":\"2026-11-21T12:00:00.000Z\","
             "\"market\":\"BTC-USDT\",\"seq\":%s,\"order_id\":\"%s\",\"user_id\":\"%s\","
             "\"side\":\"%s\",\"filled_quantity\":\"%s\",\"filled_quote\":\"%s\"}",
             type, id, strchr(id, ':') + 1, order, user, buy ? "buy" : "sell", fq, fquote);
    for (int i = 0; i < copies; i++)
        produce(g.orders, "BTC-USDT", json);
}

static void next_id(char *id, size_t n)
{
    snprintf(id, n, "BTC-USDT:%lld", (long long)++g.seq[0]);
}

/* What a redelivery must not change (sentinel users 44/45, their holds
 * and the fee account excluded). */
static char *settled_state(void)
{
    return one_text(
        "SELECT md5(coalesce((SELECT string_agg(concat_ws('|', hold_id, status, remaining,"
        " consumed, expected, end_reason, seen), ',' ORDER BY hold_id) FROM holds"
        " WHERE user_id NOT IN ('44', '45')), '')"
        " || coalesce((SELECT string_agg(concat_ws('|', owner, asset, available, held), ','"
        " ORDER BY owner, asset) FROM accounts WHERE owner NOT IN ('44', '45', 'sys:fees')), '')"
        " || (SELECT count(*) FROM outbox))");
}

/* Through Kafka, while the wallet is down so that the events arrive
 * together on restart (one batch, or a few): an order accepted then filled,
 * a duplicated trade and a duplicated end event. Then every event of both
 * topics redelivered (a new consumer group after a kill) changes nothing. */
static void test_settlement_batch(void **state)
{
    (void)state;
    deposit_now("42", "USDT", "1000", "sb-dep");
    deposit_now("43", "BTC", "1", "sb-dep");
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"9101\",\"user_id\":\"42\",\"asset\":\"USDT\",\"amount\":"
                          "\"400\"}",
                          NULL),
                     201);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"9102\",\"user_id\":\"43\",\"asset\":\"BTC\",\"amount\":"
                          "\"0.02\"}",
                          NULL),
                     201);
    kill_wallet();
    char acc1[48], acc2[48], tid[48], fill[48], cancel[48], json[1024];
    next_id(acc1, sizeof acc1);
    order_event_copies(acc1, "order.accepted", "9101", "42", 1, "0", "0", 1);
    next_id(acc2, sizeof acc2);
    order_event_copies(acc2, "order.accepted", "9102", "43", 0, "0", "0", 1);
    trade_json(json, sizeof json, tid, sizeof tid, "BTC-USDT", "0.01000000", "300.000000", 1,
               "9101", "42", "9102", "43");
    produce(g.trades, "BTC-USDT", json);
    produce(g.trades, "BTC-USDT", json);
    next_id(fill, sizeof fill);
    order_event_copies(fill, "order.filled", "9101", "42", 1, "0.01000000", "300.000000", 2);
    next_id(cancel, sizeof cancel);
    order_event_copies(cancel, "order.cancelled", "9102", "43", 0, "0.01000000", "300.000000", 1);
    g.wallet = start_wallet(NULL);
    assert_int_equal(wait_q("SELECT count(*) FROM holds WHERE hold_id IN ('9101', '9102') AND"
                            " status = 'released'",
                            2, 20000),
                     2);
    /* 42 paid 300 USDT (100 of the hold back), got 0.01 BTC minus the
     * taker fee (20 bps); 43 the reverse, maker fee 10 bps of 300 USDT. */
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '42' AND asset = 'USDT'"),
                     700000000);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '42' AND asset = 'BTC'"),
                     998000);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '43' AND asset = 'BTC'"),
                     99000000);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '43' AND asset = 'USDT'"),
                     299700000);
    assert_int_equal(q_int("SELECT coalesce(sum(held), 0) FROM accounts WHERE owner IN ('42',"
                           " '43')"),
                     0);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM journal_entries WHERE ref_id = '%s') * 100"
             " + (SELECT count(*) FROM processed_events WHERE event_id IN ('%s', '%s')) * 10"
             " + (SELECT count(*) FROM processed_events WHERE event_id IN ('%s', '%s'))",
             tid, fill, cancel, acc1, acc2);
    assert_int_equal(q_int(sql), 120); /* accepted events leave no row */
    assert_int_equal(q_int("SELECT count(*) FROM outbox WHERE payload::json->>'type' ="
                           " 'hold.released' AND payload::json->>'hold_id' IN ('9101', '9102')"),
                     2);
    assert_int_equal(q_int("SELECT count(*) FROM holds WHERE hold_id IN ('9101', '9102') AND"
                           " seen"),
                     2);

    /* Redelivery of everything ever produced. */
    deposit_now("44", "USDT", "100", "sb-sentinel");
    deposit_now("45", "BTC", "0.1", "sb-sentinel");
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"9103\",\"user_id\":\"44\",\"asset\":\"USDT\",\"amount\":"
                          "\"30\"}",
                          NULL),
                     201);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"9104\",\"user_id\":\"45\",\"asset\":\"BTC\",\"amount\":"
                          "\"0.001\"}",
                          NULL),
                     201);
    int64_t entries = q_int("SELECT count(*) FROM journal_entries");
    int64_t processed = q_int("SELECT count(*) FROM processed_events");
    char *before = settled_state();
    kill_wallet();
    size_t gl = strlen(g.group);
    snprintf(g.group + gl, sizeof g.group - gl, "-again");
    g.wallet = start_wallet(NULL);
    /* Sentinels at the end of both topics. */
    char sacc[48], stid[48];
    next_id(sacc, sizeof sacc);
    order_event_copies(sacc, "order.accepted", "9103", "44", 1, "0", "0", 1);
    trade_json(json, sizeof json, stid, sizeof stid, "BTC-USDT", "0.00100000", "30.000000", 1,
               "9103", "44", "9104", "45");
    produce(g.trades, "BTC-USDT", json);
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM processed_events WHERE event_id = '%s')"
             " + (SELECT count(*) FROM holds WHERE hold_id = '9103' AND seen)",
             stid);
    assert_int_equal(wait_q(sql, 2, 30000), 2);
    char *after = settled_state();
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(q_int("SELECT count(*) FROM journal_entries"), entries + 1);
    assert_int_equal(q_int("SELECT count(*) FROM processed_events"), processed + 1);
}

/* ---- conservation under SIGKILL */

#define NUSERS 4
#define MAX_ORDERS 512

struct order {
    char id[24];
    int user; /* index */
    int buy;
    int market; /* 0 BTC-USDT, 1 ETH-USDT */
    int64_t hold, remaining;
    int64_t filled_base, filled_quote;
    int open;
};

static struct {
    struct order orders[MAX_ORDERS];
    int norders;
    pthread_mutex_t mu;
    unsigned seed;
    int next_order;
    int withdrawals;
} cv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *cuser(int i)
{
    static const char *const ids[NUSERS] = {"21", "22", "23", "24"};
    return ids[i];
}

struct client_arg {
    int user;
    unsigned seed;
    int round;
};

/* One user's client: a few holds (orders) and a withdrawal, retried
 * through restarts with the same ids and keys. */
static void *client(void *arg)
{
    struct client_arg *a = arg;
    for (int k = 0; k < 5; k++) {
        pthread_mutex_lock(&cv.mu);
        if (cv.norders >= MAX_ORDERS) {
            pthread_mutex_unlock(&cv.mu);
            break;
        }
        int oid = ++cv.next_order;
        pthread_mutex_unlock(&cv.mu);
        struct order o = {.user = a->user,
                          .buy = (int)(rand_r(&a->seed) % 2),
                          .market = (int)(rand_r(&a->seed) % 2),
                          .open = 1};
        snprintf(o.id, sizeof o.id, "%d", 500000 + oid);
        /* qty 0.001..0.05 base at price 30000: buy holds qty*price USDT */
        int64_t qty = 100000 * (1 + (int64_t)(rand_r(&a->seed) % 50));
        o.hold = o.buy ? qty * 30000 / 100 : qty; /* USDT 6 decimals: qty(1e-8)*3e4*1e6/1e8 */
        char body[256];
        snprintf(body, sizeof body,
                 "{\"hold_id\":\"%s\",\"user_id\":\"%s\",\"asset\":\"%s\",\"amount\":\"%s%lld\"}",
                 o.id, cuser(a->user), o.buy ? "USDT" : (o.market ? "ETH" : "BTC"), "",
                 (long long)0);
        char amount[40];
        if (o.buy)
            snprintf(amount, sizeof amount, "%lld.%06lld", (long long)(o.hold / 1000000),
                     (long long)(o.hold % 1000000));
        else
            snprintf(amount, sizeof amount, "%lld.%08lld", (long long)(o.hold / 100000000),
                     (long long)(o.hold % 100000000));
        snprintf(body, sizeof body,
                 "{\"hold_id\":\"%s\",\"user_id\":\"%s\",\"asset\":\"%s\",\"amount\":\"%s\"}", o.id,
                 cuser(a->user), o.buy ? "USDT" : (o.market ? "ETH" : "BTC"), amount);
        long st = call_retry("POST", "/internal/holds", NULL, NULL, body, NULL);
        if (st == 201 || st == 200) {
            o.remaining = o.hold;
            pthread_mutex_lock(&cv.mu);
            cv.orders[cv.norders++] = o;
            pthread_mutex_unlock(&cv.mu);
        }
    }
    char key[64], body[256];
    snprintf(key, sizeof key, "cw-%d-%d", a->user, a->round);
    int fail = rand_r(&a->seed) % 4 == 0;
    snprintf(body, sizeof body, "{\"asset\":\"BTC\",\"amount\":\"0.0%d\",\"address\":\"%s\"}",
             1 + (int)(rand_r(&a->seed) % 9), fail ? "tb1qfailfailfail0001" : "tb1qconserve00001");
    long st = call_retry("POST", "/v1/withdrawals", cuser(a->user), key, body, NULL);
    if (st == 202 || st == 200) {
        pthread_mutex_lock(&cv.mu);
        cv.withdrawals++;
        pthread_mutex_unlock(&cv.mu);
    }
    return NULL;
}

static void fmt_units(char *out, size_t n, int64_t v, int scale)
{
    int64_t p = scale == 8 ? 100000000 : 1000000;
    snprintf(out, n, "%lld.%0*lld", (long long)(v / p), scale, (long long)(v % p));
}

static void record_trade(const char *id)
{
    if (g.ntrade_ids < 4096)
        snprintf(g.trade_ids[g.ntrade_ids++], 48, "%s", id);
}

/* Matches open buys with open sells of the same market and produces the
 * trades (some twice). */
static void make_trades(unsigned *seed)
{
    for (int i = 0; i < cv.norders; i++) {
        struct order *b = &cv.orders[i];
        if (!b->open || !b->buy)
            continue;
        for (int k = 0; k < cv.norders; k++) {
            struct order *s = &cv.orders[k];
            if (!s->open || s->buy || s->market != b->market || s->remaining == 0)
                continue;
            /* qty in 1e-8 units, multiples of 0.001 so the quote is exact */
            int64_t max_qty = s->remaining;
            int64_t by_quote = b->remaining * 100 / 30000;
            if (by_quote < max_qty)
                max_qty = by_quote;
            max_qty -= max_qty % 100000;
            if (max_qty <= 0)
                continue;
            int64_t qty = 100000 * (1 + (int64_t)(rand_r(seed) % (uint64_t)(max_qty / 100000)));
            int64_t quote = qty * 30000 / 100;
            char q1[40], q2[40], json[1024], id[48];
            fmt_units(q1, sizeof q1, qty, 8);
            fmt_units(q2, sizeof q2, quote, 6);
            int taker_buys = (int)(rand_r(seed) % 2);
            const char *mk = b->market ? "ETH-USDT" : "BTC-USDT";
            if (taker_buys)
                trade_json(json, sizeof json, id, sizeof id, mk, q1, q2, 1, b->id, cuser(b->user),
                           s->id, cuser(s->user));
            else
                trade_json(json, sizeof json, id, sizeof id, mk, q1, q2, 0, s->id, cuser(s->user),
                           b->id, cuser(b->user));
            produce(g.trades, mk, json);
            if (rand_r(seed) % 5 == 0)
                produce(g.trades, mk, json);
            record_trade(id);
            b->remaining -= quote;
            b->filled_base += qty;
            b->filled_quote += quote;
            s->remaining -= qty;
            s->filled_base += qty;
            s->filled_quote += quote;
            break;
        }
    }
}

static void end_order(struct order *o, unsigned *seed)
{
    char fq[40], fquote[40], id[48];
    fmt_units(fq, sizeof fq, o->filled_base, 8);
    fmt_units(fquote, sizeof fquote, o->filled_quote, 6);
    const char *type = o->remaining == 0  ? "order.filled"
                       : rand_r(seed) % 2 ? "order.cancelled"
                                          : "order.expired";
    order_end(id, sizeof id, o->market ? "ETH-USDT" : "BTC-USDT", type, o->id, cuser(o->user),
              o->buy, fq, fquote);
    o->open = 0;
}

static void test_conservation(void **state)
{
    (void)state;
    unsigned seed = 20261122;
    const char *s = getenv("WALLET_ITEST_SEED");
    if (s)
        seed = (unsigned)strtoul(s, NULL, 10);
    print_message("# conservation seed %u (WALLET_ITEST_SEED)\n", seed);
    for (int u = 0; u < NUSERS; u++) {
        char key[32];
        snprintf(key, sizeof key, "cd-%d", u);
        deposit_now(cuser(u), "USDT", "20000", key);
        deposit_now(cuser(u), "BTC", "2", key);
        deposit_now(cuser(u), "ETH", "20", key);
        allow(cuser(u), "BTC", "tb1qconserve00001");
        allow(cuser(u), "BTC", "tb1qfailfailfail0001");
    }
    /* Pending deposits that the ticker credits during the storm. */
    for (int u = 0; u < NUSERS; u++) {
        char key[32];
        snprintf(key, sizeof key, "cp-%d", u);
        assert_int_equal(call_retry("POST", "/v1/deposits", cuser(u), key,
                                    "{\"asset\":\"USDT\",\"amount\":\"123.456789\"}", NULL),
                         201);
    }
    int kills = 0;
    for (int round = 0; round < 5; round++) {
        pthread_t t[NUSERS];
        struct client_arg a[NUSERS];
        for (int u = 0; u < NUSERS; u++) {
            a[u] = (struct client_arg){u, seed + (unsigned)(round * 31 + u), round};
            pthread_create(&t[u], NULL, client, &a[u]);
        }
        int kill_now = round == 1 || round == 3;
        if (kill_now) {
            sleep_ms(20 + (int)(rand_r(&seed) % 80));
            kill_wallet();
            kills++;
            g.wallet = start_wallet(NULL);
        }
        for (int u = 0; u < NUSERS; u++)
            pthread_join(t[u], NULL);
        make_trades(&seed);
        /* end some orders */
        for (int i = 0; i < cv.norders; i++)
            if (cv.orders[i].open && rand_r(&seed) % 3 == 0)
                end_order(&cv.orders[i], &seed);
        if (round == 2) { /* a kill while settling */
            sleep_ms((int)(rand_r(&seed) % 300));
            kill_wallet();
            kills++;
            g.wallet = start_wallet(NULL);
        }
    }
    for (int i = 0; i < cv.norders; i++)
        if (cv.orders[i].open)
            end_order(&cv.orders[i], &seed);
    print_message("# %d orders, %d trades, %d withdrawals, %d kills\n", cv.norders, g.ntrade_ids,
                  cv.withdrawals, kills);

    /* Wait for the end: every trade processed, every hold released,
     * every withdrawal final, every deposit credited. */
    struct cm_buf ids;
    cm_buf_init(&ids, 0);
    cm_buf_puts(&ids, "SELECT count(*) FROM processed_events WHERE event_id IN (");
    for (int i = 0; i < g.ntrade_ids; i++)
        cm_buf_printf(&ids, "%s'%s'", i ? "," : "", g.trade_ids[i]);
    cm_buf_puts(&ids, g.ntrade_ids ? ")" : "'')");
    assert_int_equal(wait_q(ids.data, g.ntrade_ids, 40000), g.ntrade_ids);
    cm_buf_release(&ids);
    assert_int_equal(wait_q("SELECT count(*) FROM holds WHERE status <> 'released' AND"
                            " (purpose = 'withdrawal' OR hold_id LIKE '5_____')",
                            0, 30000),
                     0);
    assert_int_equal(wait_q("SELECT count(*) FROM withdrawals WHERE status NOT IN ('completed',"
                            " 'failed', 'pending_approval')",
                            0, 30000),
                     0);
    assert_int_equal(wait_q("SELECT count(*) FROM deposits WHERE status <> 'credited'", 0, 10000),
                     0);

    /* The checks, by SQL only. */
    /* 1. Per asset: balances (users + fees) + completed withdrawals ==
     *    credited deposits. */
    assert_int_equal(
        q_int("SELECT count(*) FROM assets s WHERE"
              " (SELECT coalesce(sum(available + held), 0) FROM accounts"
              "   WHERE asset = s.code AND kind IN ('user', 'fees', 'withdrawals_clearing'))"
              " + 0 <> (SELECT coalesce(sum(amount), 0) FROM deposits"
              "   WHERE asset = s.code AND status = 'credited')"),
        0);
    assert_int_equal(q_int("SELECT count(*) FROM assets s WHERE"
                           " (SELECT coalesce(sum(available + held), 0) FROM accounts"
                           "   WHERE asset = s.code AND kind IN ('user', 'fees'))"
                           " + (SELECT coalesce(sum(amount), 0) FROM withdrawals"
                           "   WHERE asset = s.code AND status = 'completed')"
                           " <> (SELECT coalesce(sum(amount), 0) FROM deposits"
                           "   WHERE asset = s.code AND status = 'credited')"),
                     0);
    /* 2. No negative balance. */
    assert_int_equal(q_int("SELECT count(*) FROM accounts WHERE kind <> 'deposits_clearing' AND"
                           " (available < 0 OR held < 0)"),
                     0);
    /* 3. Every journal entry balanced, with postings; every account equal
     *    to its postings. */
    assert_int_equal(q_int("SELECT count(*) FROM (SELECT entry_id, asset FROM postings GROUP BY"
                           " 1, 2 HAVING sum(amount) <> 0) x"),
                     0);
    assert_int_equal(q_int("SELECT count(*) FROM journal_entries e WHERE (SELECT count(*) FROM"
                           " postings p WHERE p.entry_id = e.id) < 2"),
                     0);
    /* Holds are not journal entries (they move between buckets of one
     * account): the journal explains each account's total, the holds
     * table its held bucket. */
    assert_int_equal(q_int("SELECT count(*) FROM accounts a WHERE available + held <>"
                           " (SELECT coalesce(sum(amount), 0) FROM postings p"
                           "  WHERE p.account_id = a.id)"),
                     0);
    assert_int_equal(q_int("SELECT count(*) FROM accounts a WHERE held <> (SELECT"
                           " coalesce(sum(remaining), 0) FROM holds h WHERE h.user_id = a.owner"
                           " AND h.asset = a.asset AND h.status <> 'released')"),
                     0);
    /* 4. No trade settled twice, none rejected, all settled. */
    assert_int_equal(q_int("SELECT count(*) FROM (SELECT ref_id FROM journal_entries WHERE kind ="
                           " 'trade' GROUP BY ref_id HAVING count(*) > 1) x"),
                     0);
    assert_int_equal(q_int("SELECT count(*) FROM processed_events WHERE outcome = 'rejected' AND"
                           " event_id NOT LIKE 'BTC-USDT:%' AND event_id NOT LIKE 'ETH-USDT:%'"),
                     0);
    /* 5. Nothing left held for the storm's users; fees were charged. */
    assert_int_equal(q_int("SELECT coalesce(sum(held), 0) FROM accounts WHERE owner IN ('21',"
                           " '22', '23', '24')"),
                     0);
    assert_true(q_int("SELECT count(*) FROM accounts WHERE kind = 'fees' AND available > 0") >= 2);
}

/* Runs the statements as one transaction; the SQLSTATE it ended with ("" when
 * it committed). */
static void tx_state(const char *sql, char state[6])
{
    char buf[2048];
    snprintf(buf, sizeof buf, "BEGIN; %s; COMMIT", sql);
    PGresult *r = PQexec(g.db, buf);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, 6, "%s", PQresultStatus(r) == PGRES_COMMAND_OK ? "" : st ? st : "?");
    PQclear(r);
    if (PQtransactionStatus(g.db) != PQTRANS_IDLE) /* a statement before COMMIT failed */
        PQclear(PQexec(g.db, "ROLLBACK"));
}

#define ENTRY(ref) "INSERT INTO journal_entries (kind, ref_id) VALUES ('adjustment', '" ref "')"
#define POST(asset, acct_asset, amounts)                                                           \
    "INSERT INTO postings (entry_id, account_id, asset, bucket, amount)"                           \
    " SELECT currval('journal_entries_id_seq'), a.id, '" asset "', 'available', v"                 \
    " FROM accounts a, (VALUES " amounts ") v (v) WHERE a.owner = 'sys:fees'"                      \
    " AND a.asset = '" acct_asset "'"

/* The ledger's rules are the database's, whoever writes (docs/wallet.md,
 * "Ledger and invariants"): each case is refused by PostgreSQL itself and
 * leaves nothing behind; a balanced entry commits. */
static void test_ledger_constraints(void **state)
{
    (void)state;
    static const struct {
        const char *name, *sql;
    } bad[] = {
        {"unbalanced", ENTRY("lc-1") "; " POST("BTC", "BTC", "(5), (-4)")},
        {"no postings", ENTRY("lc-2")},
        {"one posting", ENTRY("lc-3") "; " POST("BTC", "BTC", "(0), (5)")},
        {"posting asset differs from its account's",
         ENTRY("lc-4") "; " POST("USDT", "BTC", "(5), (-5)")},
        {"posting on an entry of an earlier transaction",
         "INSERT INTO postings (entry_id, account_id, asset, bucket, amount) SELECT"
         " (SELECT min(id) FROM journal_entries), a.id, 'BTC', 'available', v FROM accounts a,"
         " (VALUES (5), (-5)) v (v) WHERE a.owner = 'sys:fees' AND a.asset = 'BTC'"},
        {"entry claiming another transaction", "INSERT INTO journal_entries (kind, ref_id, "
                                               "created_xid) VALUES ('adjustment', 'lc-6', 1)"},
        {"second entry after an early constraint check",
         ENTRY("lc-7") "; " POST("BTC", "BTC",
                                 "(5), (-5)") "; SET CONSTRAINTS ALL IMMEDIATE;"
                                              " SET CONSTRAINTS ALL DEFERRED; " ENTRY("lc-7b")},
        {"unbalanced among many balanced",
         "INSERT INTO journal_entries (kind, ref_id) SELECT 'adjustment', 'lc-8-' || g FROM"
         " generate_series(1, 50) g; INSERT INTO postings (entry_id, account_id, asset, bucket,"
         " amount) SELECT e.id, a.id, 'BTC', 'available', CASE WHEN e.ref_id = 'lc-8-17' AND v > 0"
         " THEN v + 1 ELSE v END FROM journal_entries e, accounts a, (VALUES (5), (-5)) v (v)"
         " WHERE e.ref_id LIKE 'lc-8-%' AND a.owner = 'sys:fees' AND a.asset = 'BTC'"},
        {"account asset changed", "UPDATE accounts SET asset = 'ETH' WHERE owner = 'sys:fees' AND"
                                  " asset = 'BTC'"},
        {"account removed", "DELETE FROM accounts WHERE owner = 'sys:fees' AND asset = 'ETH'"},
        {"journal rewritten", "UPDATE journal_entries SET ref_id = ref_id"},
    };
    int64_t entries = q_int("SELECT count(*) FROM journal_entries");
    int64_t postings = q_int("SELECT count(*) FROM postings");
    char st[6];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tx_state(bad[i].sql, st);
        if (strcmp(st, "23514") != 0)
            fail_msg("%s: sqlstate '%s', want 23514", bad[i].name, st);
    }
    assert_int_equal(q_int("SELECT count(*) FROM journal_entries"), entries);
    assert_int_equal(q_int("SELECT count(*) FROM postings"), postings);
    tx_state(ENTRY("lc-ok") "; " POST("BTC", "BTC", "(5), (-5)"), st);
    assert_string_equal(st, "");
    assert_int_equal(q_int("SELECT count(*) FROM journal_entries"), entries + 1);
    assert_int_equal(q_int("SELECT count(*) FROM journal_tx_checks"), 0);
}

/* A stand-in for trading-api's GET /internal/orders/{id}: "live-*" orders
 * exist (200), everything else will never exist (404). */
static void fake_order(struct cm_http_req *r)
{
    const char *id = cm_http_req_param(r, "id");
    if (id && strncmp(id, "live-", 5) == 0)
        cm_http_reply_json_str(r, 200, "{\"status\":\"open\"}");
    else
        cm_http_reply_error(r, 404, "not_found", "no such order (it will never exist)");
}

static void test_reconcile_with_trading_api(void **state)
{
    (void)state;
    static const struct cm_http_route routes[] = {
        {"GET", "/internal/orders/{id}", fake_order, 0, NULL},
    };
    cm_log_init("wallet-itest", CM_LOG_ERROR); /* keep stdout TAP */
    struct cm_http_config hc;
    cm_http_config_init(&hc);
    hc.service = "fake-trading-api";
    hc.bind_addr = "127.0.0.1";
    hc.port = 0;
    hc.threads = 1;
    hc.builtin_routes = 0;
    struct cm_http_server *srv = cm_http_server_new(&hc, routes, 1);
    assert_non_null(srv);
    assert_int_equal(cm_http_server_start(srv), 0);
    char url[96];
    snprintf(url, sizeof url, "TRADING_API_URL=http://127.0.0.1:%d", cm_http_server_port(srv));
    kill_wallet();
    g.wallet = start_wallet2("HOLD_RECONCILE_AFTER=1s", url);
    deposit_now("31", "USDT", "10", "rc");
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"gone-1\",\"user_id\":\"31\",\"asset\":\"USDT\","
                          "\"amount\":\"3\"}",
                          NULL),
                     201);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"live-1\",\"user_id\":\"31\",\"asset\":\"USDT\","
                          "\"amount\":\"4\"}",
                          NULL),
                     201);
    /* 404: released; 200: kept, and not asked about again. */
    assert_int_equal(wait_q("SELECT count(*) FROM holds WHERE hold_id = 'gone-1' AND status ="
                            " 'released' AND end_reason = 'reconciled'",
                            1, 10000),
                     1);
    assert_int_equal(
        wait_q("SELECT count(*) FROM holds WHERE hold_id = 'live-1' AND seen", 1, 10000), 1);
    assert_int_equal(q_int("SELECT count(*) FROM holds WHERE hold_id = 'live-1' AND status ="
                           " 'active'"),
                     1);
    cm_http_server_free(srv);

    /* trading-api unreachable: the hold is kept (asked again later). */
    snprintf(url, sizeof url, "TRADING_API_URL=http://127.0.0.1:%d", free_port());
    kill_wallet();
    g.wallet = start_wallet2("HOLD_RECONCILE_AFTER=1s", url);
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"dark-1\",\"user_id\":\"31\",\"asset\":\"USDT\","
                          "\"amount\":\"2\"}",
                          NULL),
                     201);
    int64_t end = now_ms() + 15000;
    double errors = 0;
    while (now_ms() < end &&
           (errors = metric(g.port, "http_client_requests_total{upstream=\"trading-api\","
                                    "code=\"error\"}")) < 2)
        sleep_ms(100);
    assert_true(errors >= 2); /* asked twice, failed twice */
    assert_int_equal(q_int("SELECT count(*) FROM holds WHERE hold_id = 'dark-1' AND status ="
                           " 'active'"),
                     1);
}

static void test_reconcile(void **state)
{
    (void)state;
    /* A hold whose order never reached matching is released after
     * HOLD_RECONCILE_AFTER (no TRADING_API_URL here: unknown = stranded). */
    kill_wallet();
    g.wallet = start_wallet("HOLD_RECONCILE_AFTER=1s");
    deposit_now("30", "USDT", "10", "rc");
    assert_int_equal(call("POST", "/internal/holds", NULL, NULL,
                          "{\"hold_id\":\"stranded-1\",\"user_id\":\"30\",\"asset\":\"USDT\","
                          "\"amount\":\"7\"}",
                          NULL),
                     201);
    assert_int_equal(wait_q("SELECT count(*) FROM holds WHERE hold_id = 'stranded-1' AND status ="
                            " 'released' AND end_reason = 'reconciled'",
                            1, 10000),
                     1);
    assert_int_equal(q_int("SELECT available FROM accounts WHERE owner = '30' AND asset = 'USDT'"),
                     10000000);
}

int main(void)
{
    /* One test per line. */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_deposits),
        cmocka_unit_test(test_holds),
        cmocka_unit_test(test_hold_placed_event),
        cmocka_unit_test(test_settlement),
        cmocka_unit_test(test_outbox_late_commit),
        cmocka_unit_test(test_order_events_batch_sql),
        cmocka_unit_test(test_settlement_batch),
        cmocka_unit_test(test_ledger_constraints),
        cmocka_unit_test(test_withdrawals),
        cmocka_unit_test(test_signer),
        cmocka_unit_test(test_conservation),
        cmocka_unit_test(test_reconcile_with_trading_api),
        cmocka_unit_test(test_reconcile),
    };
    /* clang-format on */
    /* WALLET_ITEST_ONLY=test_outbox_* runs some (while working on them). */
    if (getenv("WALLET_ITEST_ONLY"))
        cmocka_set_test_filter(getenv("WALLET_ITEST_ONLY"));
    return cmocka_run_group_tests_name("wallet", tests, setup, teardown);
}
