/*
 * Calls to other services, each through its own libcommon HTTP client
 * (timeouts, circuit breaker, metrics http_client_requests_total{upstream}):
 *   risk     POST /v1/pretrade       tight timeout, no retry, breaker
 *   wallet   POST /internal/holds    idempotent by hold id, so retried
 *   matching GET  /v1/books/{market} for the book and the ticker
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/http_client.h"
#include "common/log.h"
#include "trading.h"
#include "common/banned.h"

static struct cm_http_client *risk, *wallet, *matching;

static struct cm_http_client *client(const char *name, const char *url, int64_t timeout_ms,
                                     int retries)
{
    struct cm_http_client_config c = {0};
    c.name = name;
    c.base_url = url;
    c.timeout_ms = timeout_ms;
    c.deadline_ms = timeout_ms * (retries + 1);
    c.connect_timeout_ms = timeout_ms < 1000 ? timeout_ms : 1000;
    c.max_retries = retries ? retries : CM_HTTP_CLIENT_NO_RETRY;
    c.backoff_base_ms = 10;
    c.backoff_max_ms = 50;
    c.pool_size = 32;
    c.breaker.consecutive_failures = 5;
    c.breaker.window = 20;
    c.breaker.failure_rate_pct = 50;
    c.breaker.min_calls = 10;
    c.breaker.open_ms = trading_cfg.breaker_open_ms;
    return cm_http_client_new(&c);
}

int upstream_open(void)
{
    risk = client("risk", trading_cfg.risk_url, trading_cfg.risk_timeout_ms, 0);
    wallet = client("wallet", trading_cfg.wallet_url, trading_cfg.wallet_timeout_ms, 0);
    matching = client("matching", trading_cfg.matching_url, trading_cfg.matching_timeout_ms, 0);
    return risk && wallet && matching ? 0 : -1;
}

void upstream_close(void)
{
    cm_http_client_free(risk);
    cm_http_client_free(wallet);
    cm_http_client_free(matching);
    risk = wallet = matching = NULL;
}

static void add_dec(cJSON *o, const char *name, int64_t v, int scale)
{
    char buf[CM_DECIMAL_STR_MAX];
    cm_decimal_format(v, scale, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

static int failure(const struct cm_http_response *resp)
{
    if (resp->outcome == CM_HTTP_CLIENT_TIMEOUT)
        return UP_TIMEOUT;
    return UP_UNAVAILABLE;
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int risk_pretrade(const char *user, uint64_t order_id, const struct order_req *o, char *rule,
                  size_t rulesz, char *reason, size_t reasonsz)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, order_id);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "user_id", user);
    cJSON_AddStringToObject(b, "order_id", id);
    cJSON_AddStringToObject(b, "market", o->m->symbol);
    cJSON_AddStringToObject(b, "side", side_name(o->side));
    cJSON_AddStringToObject(b, "type", type_name(o->type));
    if (o->has_price)
        add_dec(b, "price", o->price, o->m->quote_scale);
    if (o->has_qty)
        add_dec(b, "quantity", o->qty, o->m->base_scale);
    if (o->has_quote)
        add_dec(b, "quote_amount", o->quote, o->m->quote_scale);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (!body)
        return UP_UNAVAILABLE;
    struct cm_http_request req = {
        .method = "POST", .path = "/v1/pretrade", .body = body, .body_len = strlen(body)};
    struct cm_http_response resp;
    int rc = cm_http_client_do(risk, &req, &resp);
    free(body);
    int out;
    if (rc < 0) {
        out = failure(&resp);
    } else if (resp.status != 200) {
        out = resp.status >= 500 ? UP_UNAVAILABLE : UP_REJECTED;
    } else {
        cJSON *d = cJSON_Parse(resp.body.data ? resp.body.data : "");
        const char *decision = json_str(d, "decision");
        if (decision && strcmp(decision, "allow") == 0) {
            out = UP_OK;
        } else if (decision && strcmp(decision, "deny") == 0) {
            const char *rid = json_str(d, "rule_id"), *why = json_str(d, "reason");
            snprintf(rule, rulesz, "%s", rid ? rid : "unknown");
            snprintf(reason, reasonsz, "%s", why ? why : "denied by risk");
            out = (rid && (strcmp(rid, "account_blocked") == 0 || strcmp(rid, "blocked") == 0))
                      ? UP_BLOCKED
                      : UP_DENIED;
        } else {
            out = UP_REJECTED; /* an answer we cannot read: a bad upstream */
        }
        cJSON_Delete(d);
    }
    cm_http_response_release(&resp);
    return out;
}

int wallet_hold(const char *user, uint64_t order_id, const char *asset, int scale, int64_t amount,
                char *msg, size_t msgsz)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, order_id);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "hold_id", id);
    cJSON_AddStringToObject(b, "user_id", user);
    cJSON_AddStringToObject(b, "asset", asset);
    add_dec(b, "amount", amount, scale);
    cJSON_AddStringToObject(b, "purpose", "order");
    cJSON_AddStringToObject(b, "ref_id", id);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (!body)
        return UP_UNAVAILABLE;
    /* The hold is idempotent by hold_id: a retry after a lost answer
     * cannot hold twice. Within the one timeout budget, no retry though:
     * the client's 504 must come within WALLET_TIMEOUT. */
    struct cm_http_request req = {.method = "POST",
                                  .path = "/internal/holds",
                                  .body = body,
                                  .body_len = strlen(body),
                                  .idempotent = 1};
    struct cm_http_response resp;
    int rc = cm_http_client_do(wallet, &req, &resp);
    free(body);
    int out;
    msg[0] = 0;
    if (rc < 0) {
        out = failure(&resp);
    } else if (resp.status == 200 || resp.status == 201) {
        out = UP_OK;
    } else {
        cJSON *d = cJSON_Parse(resp.body.data ? resp.body.data : "");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(d, "error");
        const char *code = json_str(e, "code"), *m = json_str(e, "message");
        snprintf(msg, msgsz, "%s", m ? m : "");
        if (resp.status == 422 && code && strcmp(code, "insufficient_funds") == 0)
            out = UP_INSUFFICIENT;
        else if (resp.status == 409)
            out = UP_CONFLICT;
        else if (resp.status == 504)
            out = UP_TIMEOUT;
        else if (resp.status >= 500)
            out = UP_UNAVAILABLE;
        else
            out = UP_REJECTED;
        cJSON_Delete(d);
    }
    cm_http_response_release(&resp);
    return out;
}

int matching_book(const char *market, int depth, char **body, int64_t timeout_ms)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/books/%s?depth=%d", market, depth);
    struct cm_http_request req = {
        .method = "GET", .path = path, .timeout_ms = timeout_ms, .deadline_ms = timeout_ms};
    struct cm_http_response resp;
    int rc = cm_http_client_do(matching, &req, &resp);
    int out;
    *body = NULL;
    if (rc < 0)
        out = failure(&resp);
    else if (resp.status == 200)
        out = UP_OK;
    else if (resp.status == 404)
        out = UP_REJECTED;
    else
        out = UP_UNAVAILABLE;
    if (out == UP_OK) {
        size_t len;
        *body = cm_buf_detach(&resp.body, &len);
        if (!*body)
            out = UP_UNAVAILABLE;
    }
    cm_http_response_release(&resp);
    return out;
}
