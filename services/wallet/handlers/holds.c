/* /internal/holds: place (idempotent by hold id), read, release. Called by
 * trading-api only; the gateway does not route /internal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/decimal.h"
#include "common/json_http.h"
#include "common/metrics.h"
#include "../store.h"
#include "common/banned.h"

static void reply_hold(struct cm_http_req *r, int status, const char *id)
{
    char *json = NULL;
    int rc = store_hold_json(id, &json);
    if (rc == STORE_OK)
        cm_http_reply_json_str(r, status, json);
    else if (rc == STORE_NONE)
        cm_http_reply_error(r, 404, "not_found", "no such hold");
    else
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    free(json);
}

/* The Hold document (proto/openapi/wallet.yaml), rendered here from what
 * the placement returned: no second query on the hot path. */
static void reply_new_hold(struct cm_http_req *r, int status, const char *hold, const char *user,
                           const struct wallet_asset *a, const char *amount_text, int64_t remaining,
                           const char *state, const char *purpose, const char *ref,
                           const char *created_at)
{
    char rem[CM_DECIMAL_STR_MAX];
    struct cm_buf b;
    cm_buf_init(&b, 4096);
    int rc = cm_buf_puts(&b, "{\"hold_id\":\"");
    rc |= cm_buf_json_escape(&b, hold);
    rc |= cm_buf_printf(&b, "\",\"user_id\":\"%s\",\"asset\":\"%s\",\"amount\":\"%s\",", user,
                        a->code, amount_text);
    rc |= cm_buf_printf(&b, "\"remaining\":\"%s\",\"status\":\"%s\",\"purpose\":\"%s\",",
                        fmt_amount(remaining, a->scale, rem, sizeof rem), state, purpose);
    rc |= cm_buf_puts(&b, "\"ref_id\":\"");
    rc |= cm_buf_json_escape(&b, ref);
    rc |= cm_buf_puts(&b, "\",\"created_at\":\"");
    rc |= cm_buf_json_escape(&b, created_at);
    rc |= cm_buf_puts(&b, "\"}");
    if (rc)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, status, b.data);
    cm_buf_release(&b);
}

static const char *str_member(const cJSON *body, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

void h_hold_place(struct cm_http_req *r)
{
    static const char *const fields[] = {"hold_id", "user_id", "asset", "amount",
                                         "purpose", "ref_id",  NULL};
    cJSON *body = cm_http_req_json(r);
    if (!body || only_fields(r, body, fields) < 0)
        return;
    const char *hold = str_member(body, "hold_id"), *user = str_member(body, "user_id");
    const char *code = str_member(body, "asset");
    const char *purpose = str_member(body, "purpose"), *ref = str_member(body, "ref_id");
    if (!hold || !user || !code || !cJSON_GetObjectItemCaseSensitive(body, "amount")) {
        cm_http_reply_error(r, 400, "invalid_request",
                            "hold_id, user_id, asset and amount are required strings");
        return;
    }
    if (!valid_opaque_id(hold) || !valid_user_id(user) || (ref && !valid_opaque_id(ref))) {
        cm_http_reply_error(r, 422, "validation_failed", "malformed hold_id, user_id or ref_id");
        return;
    }
    if (!purpose)
        purpose = "order";
    if (strcmp(purpose, "order") != 0 && strcmp(purpose, "withdrawal") != 0) {
        cm_http_reply_error(r, 422, "validation_failed", "purpose must be order or withdrawal");
        return;
    }
    const struct wallet_asset *a = asset_find(code);
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
    char w[160], st[6], amount_text[CM_DECIMAL_STR_MAX];
    fmt_amount(amount, a->scale, amount_text, sizeof amount_text);
    if (!ref)
        ref = hold;
    int rc = -1;
    for (int attempt = 0; attempt < 3 && rc < 0; attempt++) {
        rc = store_place_hold(hold, user, a->code, amount, amount_text, purpose, ref, w, sizeof w,
                              st);
        if (rc < 0 && strcmp(st, "23505") != 0)
            break; /* only a concurrent duplicate is worth a retry */
    }
    if (rc < 0) {
        cm_counter_add(wallet_m.holds, 1, "error");
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    /* "created|ts" or "exists|remaining|status|ts" */
    char *f[4] = {w, NULL, NULL, NULL};
    int nf = 1;
    for (char *c = w; *c && nf < 4; c++)
        if (*c == '|') {
            *c = '\0';
            f[nf++] = c + 1;
        }
    if (strcmp(f[0], "created") == 0 && nf == 2) {
        /* hold.placed leaves with the relay's next poll: waking it per hold
         * would cost a relay transaction per request at 2,000 holds/s. */
        cm_counter_add(wallet_m.holds, 1, "placed");
        reply_new_hold(r, 201, hold, user, a, amount_text, amount, "active", purpose, ref, f[1]);
    } else if (strcmp(f[0], "exists") == 0 && nf == 4) {
        cm_counter_add(wallet_m.holds, 1, "duplicate");
        reply_new_hold(r, 200, hold, user, a, amount_text, strtoll(f[1], NULL, 10),
                       strcmp(f[2], "released") == 0 ? "released" : "active", purpose, ref, f[3]);
    } else if (strcmp(f[0], "conflict") == 0) {
        cm_counter_add(wallet_m.holds, 1, "duplicate");
        cm_http_reply_error(r, 409, "idempotency_conflict",
                            "hold %s exists with a different content", hold);
    } else {
        cm_counter_add(wallet_m.holds, 1, "insufficient_funds");
        cm_http_reply_error(r, 422, "insufficient_funds", "not enough %s available", a->code);
    }
}

void h_hold_get(struct cm_http_req *r)
{
    const char *id = cm_http_req_param(r, "id");
    if (!valid_opaque_id(id)) {
        cm_http_reply_error(r, 404, "not_found", "no such hold");
        return;
    }
    reply_hold(r, 200, id);
}

void h_hold_release(struct cm_http_req *r)
{
    const char *id = cm_http_req_param(r, "id");
    if (!valid_opaque_id(id)) {
        cm_http_reply_error(r, 404, "not_found", "no such hold");
        return;
    }
    char w[32];
    if (store_release_hold(id, "manual", w, sizeof w) < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    if (strcmp(w, "not_found") == 0) {
        cm_http_reply_error(r, 404, "not_found", "no such hold");
        return;
    }
    events_wake();
    reply_hold(r, 200, id);
}
