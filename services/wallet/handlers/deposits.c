/* /v1/deposits (chain mock, lab) and the admin credit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_http.h"
#include "../store.h"
#include "common/banned.h"

static void reply_deposit(struct cm_http_req *r, int status, const char *id)
{
    char *json = NULL;
    int rc = store_deposit_json(id, NULL, &json);
    if (rc == STORE_OK) {
        if (status == 201) {
            char loc[128];
            snprintf(loc, sizeof loc, "/v1/deposits/%s", id);
            cm_http_set_header(r, "Location", loc);
        }
        cm_http_reply_json_str(r, status, json);
    } else if (rc == STORE_NONE) {
        cm_http_reply_error(r, 404, "not_found", "no such deposit");
    } else {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
    free(json);
}

void h_deposit_create(struct cm_http_req *r)
{
    static const char *const fields[] = {"asset", "amount", "tx_hash", NULL};
    const char *user = require_user(r);
    if (!user)
        return;
    const char *key = cm_http_req_header(r, "Idempotency-Key");
    if (key && !valid_idempotency_key(key)) {
        cm_http_reply_error(r, 400, "invalid_request",
                            "Idempotency-Key must be 1 to %d visible ASCII characters",
                            IDEMPOTENCY_KEY_MAX);
        return;
    }
    cJSON *body = cm_http_req_json(r);
    if (!body || only_fields(r, body, fields) < 0)
        return;
    const cJSON *asset = cJSON_GetObjectItemCaseSensitive(body, "asset");
    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(body, "tx_hash");
    if (!cJSON_IsString(asset) || (tx && !cJSON_IsString(tx))) {
        cm_http_reply_error(r, 400, "invalid_request", "asset (and tx_hash) must be strings");
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
    if (tx && !valid_tx_hash(tx->valuestring)) {
        cm_http_reply_error(r, 422, "validation_failed", "tx_hash must be 0x and 64 hex digits");
        return;
    }
    char w[48], st[6];
    int rc = -1;
    for (int attempt = 0; attempt < 3 && rc < 0; attempt++) {
        rc = store_create_deposit(user, key, a->code, amount, tx ? tx->valuestring : NULL,
                                  (int)wallet_cfg.deposit_confirmations, w, sizeof w, st);
        if (rc < 0 && strcmp(st, "23505") != 0)
            break;
    }
    if (rc < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    if (strncmp(w, "created:", 8) == 0) {
        events_wake();
        reply_deposit(r, 201, w + 8);
    } else if (strncmp(w, "exists:", 7) == 0) {
        reply_deposit(r, 200, w + 7);
    } else {
        cm_http_reply_error(r, 409, "idempotency_conflict",
                            "Idempotency-Key or tx_hash already used with a different deposit");
    }
}

void h_deposits_list(struct cm_http_req *r)
{
    const char *user = require_user(r);
    if (!user)
        return;
    int64_t before;
    int limit;
    if (page_args(r, &before, &limit) < 0)
        return;
    char *json = NULL;
    int rc = store_deposits_json(user, before, limit, &json);
    if (rc == STORE_OK)
        cm_http_reply_json_str(r, 200, json);
    else
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    free(json);
}

void h_deposit_credit(struct cm_http_req *r)
{
    const char *id = cm_http_req_param(r, "id");
    if (!valid_opaque_id(id)) {
        cm_http_reply_error(r, 404, "not_found", "no such deposit");
        return;
    }
    char w[32];
    if (store_credit_deposit(id, w, sizeof w) < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    if (strcmp(w, "not_found") == 0) {
        cm_http_reply_error(r, 404, "not_found", "no such deposit");
        return;
    }
    events_wake();
    reply_deposit(r, 200, id);
}
