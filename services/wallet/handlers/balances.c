/* /v1/balances and /v1/ledger: the caller's own money only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/json_http.h"
#include "../store.h"
#include "common/banned.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 500

static void reply_doc(struct cm_http_req *r, int rc, char *json)
{
    if (rc == STORE_OK)
        cm_http_reply_json_str(r, 200, json);
    else
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    free(json);
}

int page_args(struct cm_http_req *r, int64_t *before, int *limit)
{
    const char *c = cm_http_req_query(r, "cursor"), *l = cm_http_req_query(r, "limit");
    int64_t v;
    *before = 0;
    *limit = LIMIT_DEFAULT;
    if (c) {
        if (cm_parse_int64(c, &v) < 0 || v < 1) {
            cm_http_reply_error(r, 400, "bad_request", "invalid cursor");
            return -1;
        }
        *before = v;
    }
    if (l) {
        if (cm_parse_int64(l, &v) < 0 || v < 1 || v > LIMIT_MAX) {
            cm_http_reply_error(r, 400, "bad_request", "limit must be 1..%d", LIMIT_MAX);
            return -1;
        }
        *limit = (int)v;
    }
    return 0;
}

void h_balances(struct cm_http_req *r)
{
    const char *user = require_user(r);
    if (!user)
        return;
    char *json = NULL;
    int rc = store_balances_json(user, &json);
    reply_doc(r, rc, json);
}

void h_ledger(struct cm_http_req *r)
{
    const char *user = require_user(r);
    if (!user)
        return;
    const char *asset = cm_http_req_query(r, "asset");
    if (asset && !asset_find(asset)) {
        cm_http_reply_error(r, 400, "bad_request", "unknown asset");
        return;
    }
    int64_t before;
    int limit;
    if (page_args(r, &before, &limit) < 0)
        return;
    char *json = NULL;
    int rc = store_ledger_json(user, asset, before, limit, &json);
    reply_doc(r, rc, json);
}
