/* /v1/withdrawals, the admin approval and the admin allow-list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_http.h"
#include "common/metrics.h"
#include "../store.h"
#include "common/banned.h"

static void reply_withdrawal(struct cm_http_req *r, int status, const char *id, const char *user)
{
    char *json = NULL;
    int rc = store_withdrawal_json(id, user, &json);
    if (rc == STORE_OK) {
        if (status == 202) {
            char loc[128];
            snprintf(loc, sizeof loc, "/v1/withdrawals/%s", id);
            cm_http_set_header(r, "Location", loc);
        }
        cm_http_reply_json_str(r, status, json);
    } else if (rc == STORE_NONE) {
        cm_http_reply_error(r, 404, "not_found", "no such withdrawal");
    } else {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
    free(json);
}

void h_withdrawal_create(struct cm_http_req *r)
{
    static const char *const fields[] = {"asset", "amount", "address", NULL};
    const char *user = require_user(r);
    if (!user)
        return;
    const char *key = cm_http_req_header(r, "Idempotency-Key");
    if (!key || !valid_idempotency_key(key)) {
        cm_http_reply_error(r, 400, "invalid_request",
                            "the Idempotency-Key header is required (1 to %d visible ASCII"
                            " characters)",
                            IDEMPOTENCY_KEY_MAX);
        return;
    }
    cJSON *body = cm_http_req_json(r);
    if (!body || only_fields(r, body, fields) < 0)
        return;
    const cJSON *asset = cJSON_GetObjectItemCaseSensitive(body, "asset");
    const cJSON *addr = cJSON_GetObjectItemCaseSensitive(body, "address");
    if (!cJSON_IsString(asset) || !cJSON_IsString(addr)) {
        cm_http_reply_error(r, 400, "invalid_request", "asset and address must be strings");
        return;
    }
    const struct wallet_asset *a = asset_find(asset->valuestring);
    if (!a) {
        cm_http_reply_error(r, 422, "validation_failed", "unknown asset");
        return;
    }
    int64_t amount;
    char err[96];
    if (amount_from_json(cJSON_GetObjectItemCaseSensitive(body, "amount"), a->scale, &amount, err,
                         sizeof err) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "%s", err);
        return;
    }
    if (!valid_address(a, addr->valuestring)) {
        cm_http_reply_error(r, 422, "validation_failed", "not a valid %s address", a->code);
        return;
    }
    char w[48], st[6];
    int rc = -1;
    for (int attempt = 0; attempt < 3 && rc < 0; attempt++) {
        rc = store_request_withdrawal(user, key, a, amount, addr->valuestring, w, sizeof w, st);
        if (rc < 0 && strcmp(st, "23505") != 0)
            break;
    }
    if (rc < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    } else if (strncmp(w, "created:", 8) == 0) {
        const char *id = w + 8;
        events_wake();
        if (amount > a->approval_threshold)
            cm_counter_add(wallet_m.withdrawals, 1, "pending_approval");
        else
            withdraw_enqueue(id); /* on failure the sweeper queues it later */
        reply_withdrawal(r, 202, id, user);
    } else if (strncmp(w, "exists:", 7) == 0) {
        reply_withdrawal(r, 200, w + 7, user);
    } else if (strcmp(w, "conflict") == 0) {
        cm_http_reply_error(r, 409, "idempotency_conflict",
                            "Idempotency-Key was already used with a different withdrawal");
    } else if (strcmp(w, "address_not_allowed") == 0) {
        cm_counter_add(wallet_m.withdrawals, 1, "rejected");
        cm_http_reply_error(r, 403, "forbidden", "the address is not on your %s allow-list",
                            a->code);
    } else if (strcmp(w, "daily_limit") == 0) {
        cm_counter_add(wallet_m.withdrawals, 1, "rejected");
        cm_http_reply_error(r, 422, "unprocessable", "the daily %s withdrawal limit is reached",
                            a->code);
    } else {
        cm_counter_add(wallet_m.withdrawals, 1, "rejected");
        cm_http_reply_error(r, 422, "insufficient_funds",
                            "not enough %s available for the amount and the network fee", a->code);
    }
}

void h_withdrawal_get(struct cm_http_req *r)
{
    const char *user = require_user(r);
    if (!user)
        return;
    const char *id = cm_http_req_param(r, "id");
    if (!valid_opaque_id(id)) {
        cm_http_reply_error(r, 404, "not_found", "no such withdrawal");
        return;
    }
    reply_withdrawal(r, 200, id, user);
}

void h_withdrawal_approve(struct cm_http_req *r)
{
    const char *id = cm_http_req_param(r, "id");
    if (!valid_opaque_id(id)) {
        cm_http_reply_error(r, 404, "not_found", "no such withdrawal");
        return;
    }
    char w[32];
    if (store_approve_withdrawal(id, w, sizeof w) < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    if (strcmp(w, "not_found") == 0) {
        cm_http_reply_error(r, 404, "not_found", "no such withdrawal");
        return;
    }
    if (strcmp(w, "conflict") == 0) {
        cm_http_reply_error(r, 409, "conflict", "the withdrawal is not waiting for approval");
        return;
    }
    if (strcmp(w, "approved") == 0) {
        events_wake();
        withdraw_enqueue(id);
    }
    reply_withdrawal(r, 200, id, NULL);
}

void h_address_add(struct cm_http_req *r)
{
    static const char *const fields[] = {"user_id", "asset", "address", NULL};
    cJSON *body = cm_http_req_json(r);
    if (!body || only_fields(r, body, fields) < 0)
        return;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "user_id");
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(body, "asset");
    const cJSON *ad = cJSON_GetObjectItemCaseSensitive(body, "address");
    if (!cJSON_IsString(u) || !cJSON_IsString(as) || !cJSON_IsString(ad)) {
        cm_http_reply_error(r, 400, "invalid_request", "user_id, asset and address are required");
        return;
    }
    const struct wallet_asset *a = asset_find(as->valuestring);
    if (!valid_user_id(u->valuestring) || !a || !valid_address(a, ad->valuestring)) {
        cm_http_reply_error(r, 422, "validation_failed", "bad user_id, asset or address");
        return;
    }
    if (store_address_add(u->valuestring, a->code, ad->valuestring) < 0) {
        /* ON CONFLICT DO NOTHING returns no row: already allow-listed. */
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "user_id", u->valuestring);
    cJSON_AddStringToObject(out, "asset", a->code);
    cJSON_AddStringToObject(out, "address", ad->valuestring);
    cm_http_reply_json(r, 201, out);
}
