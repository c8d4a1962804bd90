/*
 * /v1/orders: place (validate -> block check -> reserve the idempotency
 * key -> risk -> wallet hold -> order + outbox in one transaction), read,
 * list, cancel, cancel all; /internal/orders/{id} for the wallet's
 * reconciliation of stranded holds.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "../trading.h"
#include "common/banned.h"

static void count(const char *result)
{
    cm_counter_add(trading_m.orders, 1, result);
}

static void reply_order(struct cm_http_req *r, int status, const struct order_row *o)
{
    if (status == 202) {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/orders/%" PRIu64, o->id);
        cm_http_set_header(r, "Location", loc);
    }
    cm_http_reply_json(r, status, order_json(o));
}

static void reply_stored(struct cm_http_req *r, int status, uint64_t id, const char *user)
{
    struct order_row o;
    int rc = store_order_get(id, user, &o);
    if (rc == ST_OK)
        reply_order(r, status, &o);
    else
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
}

static void test_crash(const char *point)
{
    if (strcmp(trading_cfg.test_crash, point) == 0) {
        cm_warn("trading-api: TRADING_TEST_CRASH=%s: killing myself", point);
        raise(SIGKILL);
    }
}

/* Maps an upstream failure to the client's status (fail-closed). */
static void reply_upstream(struct cm_http_req *r, int up, const char *who)
{
    if (up == UP_TIMEOUT)
        cm_http_reply_error(r, 504, "upstream_timeout", "%s did not answer in time", who);
    else if (up == UP_REJECTED)
        cm_http_reply_error(r, 502, "upstream_error", "%s gave an unexpected answer", who);
    else
        cm_http_reply_error(r, 503, "service_unavailable", "%s is unavailable", who);
}

void h_order_place(struct cm_http_req *r)
{
    const char *user = require_user(r);
    if (!user)
        return;
    cJSON *body = cm_http_req_json(r);
    if (!body)
        return;
    struct order_req o;
    struct vproblem p;
    if (order_validate(body, trading_markets, trading_nmarkets, &o, &p) < 0) {
        count("invalid");
        reply_problem(r, &p, "%s: %s", p.field[0] ? p.field : "body", p.problem);
        return;
    }
    if (store_user_blocked(user)) {
        count("rejected_risk");
        cm_http_reply_error(r, 403, "account_blocked", "account blocked by risk");
        return;
    }

    char fp[256], old_fp[256] = "";
    uint64_t id = 0;
    order_fingerprint(&o, fp, sizeof fp);
    int rc = store_reserve(user, o.client_order_id, fp, &id, old_fp, sizeof old_fp);
    if (rc == ST_ERR) {
        count("error");
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    if (rc == ST_EXISTS) {
        if (strcmp(fp, old_fp) != 0) {
            count("duplicate");
            cm_http_reply_error(r, 409, "idempotency_conflict",
                                "client_order_id %s was used for a different order",
                                o.client_order_id);
            return;
        }
        struct order_row existing;
        int g = store_order_get(id, user, &existing);
        if (g == ST_OK) {
            count("duplicate");
            reply_order(r, 200, &existing);
            return;
        }
        if (g == ST_ERR) {
            count("error");
            cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
            return;
        }
        /* Reserved but not placed: a twin in flight or an attempt that
         * did not finish. Go on with the same id: every step is
         * idempotent by it. */
    }

    char rule[64] = "", reason[256] = "";
    int up = risk_pretrade(user, id, &o, rule, sizeof rule, reason, sizeof reason);
    if (up == UP_DENIED || up == UP_BLOCKED) {
        store_unreserve(user, o.client_order_id, id);
        count("rejected_risk");
        if (up == UP_BLOCKED) {
            cm_http_reply_error(r, 403, "account_blocked", "account blocked by risk rule %s", rule);
            return;
        }
        struct vproblem d = {.status = 422, .code = "unprocessable"};
        snprintf(d.field, sizeof d.field, "rule_id");
        snprintf(d.problem, sizeof d.problem, "%s", rule);
        reply_problem(r, &d, "denied by risk rule %s: %s", rule, reason);
        return;
    }
    if (up != UP_OK) {
        if (trading_cfg.risk_fail_mode == FAIL_OPEN && up != UP_REJECTED) {
            cm_warn("trading-api: risk unavailable, RISK_FAIL_MODE=open lets order %" PRIu64
                    " through",
                    id);
        } else {
            count("error");
            reply_upstream(r, up, "risk");
            return;
        }
    }

    const char *asset;
    int scale;
    int64_t amount;
    order_hold(&o, &asset, &scale, &amount); /* checked by order_validate */
    char msg[256];
    up = wallet_hold(user, id, asset, scale, amount, msg, sizeof msg);
    if (up == UP_INSUFFICIENT) {
        store_unreserve(user, o.client_order_id, id);
        count("rejected_funds");
        cm_http_reply_error(r, 422, "insufficient_funds", "%s",
                            msg[0] ? msg : "not enough funds available");
        return;
    }
    if (up == UP_CONFLICT) {
        count("error");
        cm_http_reply_error(r, 409, "conflict", "the wallet has another hold %" PRIu64, id);
        return;
    }
    if (up != UP_OK) {
        /* The hold may exist: the reservation stays, so a retry with the
         * same client_order_id continues with the same order id, and the
         * wallet's reconciliation releases it if nobody retries. */
        count("error");
        reply_upstream(r, up, "wallet");
        return;
    }
    test_crash("after_hold");

    struct order_row placed;
    rc = store_place(&o, user, id, fp, &placed);
    if (rc == ST_OK) {
        test_crash("after_commit");
        relay_kick();
        count("accepted");
        reply_order(r, 202, &placed);
    } else if (rc == ST_EXISTS) {
        count("duplicate");
        reply_stored(r, 200, id, user);
    } else if (rc == ST_ABANDONED) {
        count("error");
        cm_http_reply_error(r, 409, "conflict",
                            "this attempt was abandoned (hold reconciled); retry the request");
    } else {
        count("error");
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
}

static int order_id_param(struct cm_http_req *r, uint64_t *id)
{
    /* Ids come from a bigint sequence: past INT64_MAX nothing exists. */
    if (parse_uint_id(cm_http_req_param(r, "id"), id) < 0 || *id > INT64_MAX) {
        cm_http_reply_error(r, 404, "not_found", "order not found");
        return -1;
    }
    return 0;
}

void h_order_get(struct cm_http_req *r)
{
    const char *user = require_user(r);
    uint64_t id;
    if (!user || order_id_param(r, &id) < 0)
        return;
    struct order_row o;
    int rc = store_order_get(id, user, &o);
    if (rc == ST_OK)
        reply_order(r, 200, &o);
    else if (rc == ST_NONE)
        cm_http_reply_error(r, 404, "not_found", "order not found");
    else
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
}

void h_order_cancel(struct cm_http_req *r)
{
    const char *user = require_user(r);
    uint64_t id;
    if (!user || order_id_param(r, &id) < 0)
        return;
    struct order_row o;
    int rc = store_cancel(id, user, &o);
    if (rc == ST_OK) {
        relay_kick();
        cm_http_reply_json(r, 202, order_json(&o));
    } else if (rc == ST_NONE) {
        cm_http_reply_error(r, 404, "not_found", "order not found");
    } else if (rc == ST_CONFLICT) {
        cm_http_reply_error(r, 409, "conflict", "order is already %s", o.status);
    } else {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
}

static int valid_status(const char *s)
{
    static const char *const ok[] = {"pending",  "open",      "partially_filled",
                                     "filled",   "cancelled", "expired",
                                     "rejected", "active",    "closed"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(s, ok[i]) == 0)
            return 1;
    return 0;
}

void h_orders_list(struct cm_http_req *r)
{
    const char *user = require_user(r);
    if (!user)
        return;
    const char *market = cm_http_req_query(r, "market");
    const char *status = cm_http_req_query(r, "status");
    const char *cursor = cm_http_req_query(r, "cursor");
    const char *lim = cm_http_req_query(r, "limit");
    uint64_t before = 0;
    long limit = 50;
    char *end = NULL;
    if (market && !market_find(trading_markets, trading_nmarkets, market)) {
        cm_http_reply_error(r, 400, "invalid_request", "unknown market");
        return;
    }
    if (status && !valid_status(status)) {
        cm_http_reply_error(r, 400, "invalid_request", "unknown status");
        return;
    }
    if (cursor && parse_uint_id(cursor, &before) < 0) {
        cm_http_reply_error(r, 400, "invalid_request", "malformed cursor");
        return;
    }
    if (lim && ((limit = strtol(lim, &end, 10)) < 1 || limit > 500 || *end)) {
        cm_http_reply_error(r, 400, "invalid_request", "limit must be 1..500");
        return;
    }
    struct order_row *rows = NULL;
    size_t n = 0;
    if (store_orders_list(user, market, status, before, (int)limit, &rows, &n) != ST_OK) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(j, "items");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(items, order_json(&rows[i]));
    if (n == (size_t)limit) {
        char c[24];
        snprintf(c, sizeof c, "%" PRIu64, rows[n - 1].id);
        cJSON_AddStringToObject(j, "next_cursor", c);
    } else {
        cJSON_AddNullToObject(j, "next_cursor");
    }
    free(rows);
    cm_http_reply_json(r, 200, j);
}

void h_orders_cancel_all(struct cm_http_req *r)
{
    const char *user = require_user(r);
    if (!user)
        return;
    const char *market = cm_http_req_query(r, "market");
    if (!market || !*market) {
        cm_http_reply_error(r, 400, "invalid_request", "market is required");
        return;
    }
    if (!market_find(trading_markets, trading_nmarkets, market)) {
        cm_http_reply_error(r, 404, "not_found", "unknown market");
        return;
    }
    long open_orders = 0;
    if (store_cancel_all(market, user, &open_orders) != ST_OK) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    relay_kick();
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "market", market);
    cJSON_AddNumberToObject(j, "open_orders", (double)open_orders);
    cm_http_reply_json(r, 202, j);
}

void h_internal_order(struct cm_http_req *r)
{
    uint64_t id;
    if (order_id_param(r, &id) < 0)
        return;
    struct order_row o;
    int rc = store_internal_order(id, &o);
    if (rc == ST_OK) {
        cJSON *j = order_json(&o);
        cJSON_AddStringToObject(j, "user_id", o.user_id);
        cm_http_reply_json(r, 200, j);
    } else if (rc == ST_NONE) {
        cm_http_reply_error(r, 404, "not_found", "no such order (it will never exist)");
    } else {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
}
