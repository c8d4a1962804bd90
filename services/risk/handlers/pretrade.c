/*
 * POST /v1/pretrade (proto/openapi/risk.yaml): allow or deny an order from
 * memory. A deny is a 200 with the rule and the reason; a blocked user is
 * denied with rule_id "account_blocked" (trading-api answers 403).
 */
#include <string.h>
#include <time.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "common/metrics.h"
#include "../risk.h"
#include "common/banned.h"

static const char *const allowed_fields[] = {"user_id", "order_id", "market",   "side",
                                             "type",    "price",    "quantity", "quote_amount"};

static int known_field(const char *name)
{
    for (size_t i = 0; i < sizeof allowed_fields / sizeof *allowed_fields; i++)
        if (strcmp(name, allowed_fields[i]) == 0)
            return 1;
    return 0;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* 1 set, 0 absent, -1 bad. */
static int amount(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    return cm_decimal_from_json(it, RISK_SCALE, 0, out) == 0 && *out > 0 ? 1 : -1;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

void handle_pretrade(struct cm_http_req *r)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cJSON *b = cm_http_req_json(r);
    if (!b)
        return;
    if (!cJSON_IsObject(b)) {
        cm_http_reply_error(r, 400, "invalid_request", "the body must be a JSON object");
        return;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, b)
    {
        if (!known_field(it->string)) {
            cm_http_reply_error(r, 400, "invalid_request", "unknown field %s", it->string);
            return;
        }
    }
    struct risk_order o = {0};
    const char *market = str(b, "market"), *side = str(b, "side"), *type = str(b, "type");
    if (risk_parse_user(str(b, "user_id"), &o.user_id) < 0) {
        cm_http_reply_error(r, 400, "invalid_request", "user_id must be a string of digits");
        return;
    }
    if (!market || strlen(market) > 25 || !strchr(market, '-')) {
        cm_http_reply_error(r, 400, "invalid_request", "market must be like BTC-USDT");
        return;
    }
    if (!side || (strcmp(side, "buy") != 0 && strcmp(side, "sell") != 0)) {
        cm_http_reply_error(r, 400, "invalid_request", "side must be buy or sell");
        return;
    }
    if (!type || (strcmp(type, "limit") != 0 && strcmp(type, "market") != 0)) {
        cm_http_reply_error(r, 400, "invalid_request", "type must be limit or market");
        return;
    }
    int hp = amount(b, "price", &o.price), hq = amount(b, "quantity", &o.qty),
        hb = amount(b, "quote_amount", &o.quote);
    if (hp < 0 || hq < 0 || hb < 0) {
        cm_http_reply_error(r, 400, "invalid_request",
                            "price, quantity and quote_amount must be positive decimal strings "
                            "with at most 8 decimals");
        return;
    }
    o.market = market;
    o.side_buy = side[0] == 'b';
    o.is_market = type[0] == 'm';
    o.has_price = hp;
    o.has_qty = hq;
    o.has_quote = hb;
    if (!o.is_market && !hp) {
        cm_http_reply_error(r, 400, "invalid_request", "a limit order needs a price");
        return;
    }

    struct risk_decision d;
    int64_t now = risk_now_ms();
    pthread_rwlock_rdlock(&risk_lock);
    risk_engine_pretrade(risk_engine, &o, now, &d);
    pthread_rwlock_unlock(&risk_lock);

    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "decision", d.deny ? "deny" : "allow");
    if (d.deny || d.simulated) {
        cJSON_AddStringToObject(out, "rule_id", d.rule_id);
        cJSON_AddStringToObject(out, "reason", d.reason);
    }
    if (d.simulated && !d.deny)
        cJSON_AddBoolToObject(out, "simulated", 1);
    if (d.deny && !d.blocked)
        cm_counter_add(risk_m.rule_hits, 1, d.rule_id, "reject");
    else if (d.simulated && !d.deny)
        cm_counter_add(risk_m.rule_hits, 1, d.rule_id, "would_block");
    cm_counter_add(risk_m.decisions, 1, d.deny ? "reject" : "allow");
    cm_histogram_observe(risk_m.decision_time, seconds_since(&t0));
    cm_http_reply_json(r, 200, out);
}
