/*
 * trading_standin: small stand-ins for trading-api's upstreams (risk,
 * wallet, matching) for its integration tests, which need to make them
 * deny, block, fail or be slow on demand. bench/trading.sh runs the real
 * services instead:
 *
 *   POST /v1/pretrade          risk: {"decision":"allow"} (or deny, per mode)
 *   POST /internal/holds       wallet: 201 first time per hold_id, 200 after
 *   DELETE /internal/holds/{id}
 *   GET  /v1/books/{market}    matching: a fixed one-level book
 *   PUT  /control              {"risk":"allow|deny|block|fail|slow",
 *                               "wallet":"ok|insufficient|fail|slow",
 *                               "matching":"ok|fail", "slow_ms":N}
 *   GET  /control              counters: pretrade_calls, hold_calls,
 *                              holds (distinct hold ids), releases
 *
 * Usage: trading_standin [PORT] (or STANDIN_PORT; 0 = ephemeral; the bound
 * port is printed on stdout as "port N").
 *   GET /internal/holds/{id}   200 if the hold was placed, else 404
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/faults.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/banned.h"

#define MAX_HOLDS 400000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char risk_mode[16] = "allow", wallet_mode[16] = "ok", matching_mode[16] = "ok";
static long slow_ms = 2000;
static long pretrade_calls, hold_calls, releases;
static char **holds;
static size_t nholds;

static void mode(char *out, const char *in)
{
    snprintf(out, 16, "%s", in);
}

/* Slow modes are latency faults of the server: they park the connection,
 * not the worker thread, so other requests are not delayed behind them.
 * Called with mu held. */
static void apply_slow(void)
{
    cm_faults_clear_type("latency");
    const char *routes[2] = {strcmp(risk_mode, "slow") == 0 ? "/v1/pretrade" : NULL,
                             strcmp(wallet_mode, "slow") == 0 ? "/internal/holds" : NULL};
    for (int i = 0; i < 2; i++) {
        if (!routes[i])
            continue;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "type", "latency");
        cJSON_AddStringToObject(f, "route", routes[i]);
        cJSON_AddNumberToObject(f, "ms", (double)slow_ms);
        char err[128];
        if (cm_faults_add(f, err, sizeof err) < 0)
            cm_error("standin: %s", err);
        cJSON_Delete(f);
    }
}

static void snooze(const char *m)
{
    (void)m;
}

static void h_pretrade(struct cm_http_req *r)
{
    char m[16];
    pthread_mutex_lock(&mu);
    pretrade_calls++;
    mode(m, risk_mode);
    pthread_mutex_unlock(&mu);
    snooze(m);
    if (strcmp(m, "fail") == 0)
        cm_http_reply_error(r, 503, "unavailable", "risk stand-in told to fail");
    else if (strcmp(m, "deny") == 0)
        cm_http_reply_json_str(r, 200,
                               "{\"decision\":\"deny\",\"rule_id\":\"max_order_notional\","
                               "\"reason\":\"notional too large\"}");
    else if (strcmp(m, "block") == 0)
        cm_http_reply_json_str(r, 200,
                               "{\"decision\":\"deny\",\"rule_id\":\"account_blocked\","
                               "\"reason\":\"blocked\"}");
    else
        cm_http_reply_json_str(r, 200, "{\"decision\":\"allow\"}");
}

static void h_hold(struct cm_http_req *r)
{
    cJSON *b = cm_http_req_json(r);
    if (!b)
        return;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "hold_id");
    if (!cJSON_IsString(id)) {
        cm_http_reply_error(r, 400, "invalid_request", "hold_id");
        return;
    }
    char m[16];
    pthread_mutex_lock(&mu);
    hold_calls++;
    mode(m, wallet_mode);
    pthread_mutex_unlock(&mu);
    snooze(m);
    if (strcmp(m, "fail") == 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "wallet stand-in told to fail");
        return;
    }
    if (strcmp(m, "insufficient") == 0) {
        cm_http_reply_error(r, 422, "insufficient_funds", "not enough USDT available");
        return;
    }
    int found = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = nholds; i-- > 0 && !found;)
        found = strcmp(holds[i], id->valuestring) == 0;
    if (!found && nholds < MAX_HOLDS)
        holds[nholds++] = strdup(id->valuestring);
    pthread_mutex_unlock(&mu);
    char *s = cJSON_PrintUnformatted(b);
    cm_http_reply_json_str(r, found ? 200 : 201, s ? s : "{}");
    free(s);
}

static void h_hold_get(struct cm_http_req *r)
{
    const char *id = cm_http_req_param(r, "id");
    int found = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = nholds; i-- > 0 && !found;)
        found = strcmp(holds[i], id) == 0;
    pthread_mutex_unlock(&mu);
    if (found)
        cm_http_reply_json_str(r, 200, "{\"status\":\"active\"}");
    else
        cm_http_reply_error(r, 404, "not_found", "no such hold");
}

static void h_release(struct cm_http_req *r)
{
    pthread_mutex_lock(&mu);
    releases++;
    pthread_mutex_unlock(&mu);
    cm_http_reply_json_str(r, 200, "{\"status\":\"released\"}");
}

static void h_book(struct cm_http_req *r)
{
    char m[16];
    pthread_mutex_lock(&mu);
    mode(m, matching_mode);
    pthread_mutex_unlock(&mu);
    if (strcmp(m, "fail") == 0) {
        cm_http_reply_error(r, 503, "unavailable", "matching stand-in told to fail");
        return;
    }
    char body[512];
    snprintf(body, sizeof body,
             "{\"market\":\"%s\",\"seq\":7,\"ts\":\"2026-11-21T12:00:00.000000Z\","
             "\"bids\":[{\"price\":\"29999.000000\",\"quantity\":\"0.50000000\",\"orders\":1}],"
             "\"asks\":[{\"price\":\"30001.000000\",\"quantity\":\"0.25000000\",\"orders\":1}]}",
             cm_http_req_param(r, "market"));
    cm_http_reply_json_str(r, 200, body);
}

static void h_control_put(struct cm_http_req *r)
{
    cJSON *b = cm_http_req_json(r);
    if (!b)
        return;
    const cJSON *it;
    pthread_mutex_lock(&mu);
    if (cJSON_IsString(it = cJSON_GetObjectItemCaseSensitive(b, "risk")))
        mode(risk_mode, it->valuestring);
    if (cJSON_IsString(it = cJSON_GetObjectItemCaseSensitive(b, "wallet")))
        mode(wallet_mode, it->valuestring);
    if (cJSON_IsString(it = cJSON_GetObjectItemCaseSensitive(b, "matching")))
        mode(matching_mode, it->valuestring);
    if (cJSON_IsNumber(it = cJSON_GetObjectItemCaseSensitive(b, "slow_ms")))
        slow_ms = (long)it->valuedouble;
    apply_slow();
    pthread_mutex_unlock(&mu);
    cm_http_reply_json_str(r, 200, "{}");
}

static void h_control_get(struct cm_http_req *r)
{
    char body[256];
    pthread_mutex_lock(&mu);
    snprintf(body, sizeof body,
             "{\"pretrade_calls\":%ld,\"hold_calls\":%ld,\"holds\":%zu,\"releases\":%ld}",
             pretrade_calls, hold_calls, nholds, releases);
    pthread_mutex_unlock(&mu);
    cm_http_reply_json_str(r, 200, body);
}

static const struct cm_http_route routes[] = {
    {"POST", "/v1/pretrade", h_pretrade, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL},
    {"POST", "/internal/holds", h_hold, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL},
    {"GET", "/internal/holds/{id}", h_hold_get, CM_ROUTE_NO_LOG, NULL},
    {"DELETE", "/internal/holds/{id}", h_release, CM_ROUTE_NO_LOG, NULL},
    {"GET", "/v1/books/{market}", h_book, CM_ROUTE_NO_LOG, NULL},
    {"PUT", "/control", h_control_put, CM_ROUTE_BODY, NULL},
    {"GET", "/control", h_control_get, 0, NULL},
};

int main(int argc, char **argv)
{
    cm_log_init("trading-standin", CM_LOG_WARN);
    holds = calloc(MAX_HOLDS, sizeof *holds);
    struct cm_http_config c;
    cm_http_config_init(&c);
    c.service = "trading-standin";
    c.bind_addr = "127.0.0.1";
    const char *port = argc > 1 ? argv[1] : getenv("STANDIN_PORT");
    c.port = port ? (int)strtol(port, NULL, 10) : 0;
    c.threads = 16; /* slow modes sleep in handlers */
    struct cm_http_server *s = cm_http_server_new(&c, routes, sizeof routes / sizeof routes[0]);
    if (!holds || !s || cm_http_server_start(s) < 0)
        return 1;
    printf("port %d\n", cm_http_server_port(s));
    fflush(stdout);
    int rc = cm_http_server_run_until_signal(s);
    cm_http_server_free(s);
    return rc == 0 ? 0 : 1;
}
