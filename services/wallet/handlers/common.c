/* Shared handler helpers: identity, amounts, strict bodies, JSON replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "../wallet.h"
#include "common/banned.h"

/*
 * The gateway verified the JWT and passes X-User-Id; only it can reach
 * the /v1 routes (NetworkPolicy + Istio AuthorizationPolicy in Kubernetes,
 * loopback in the lab), so the header is trusted.
 */
const char *require_user(struct cm_http_req *r)
{
    const char *u = cm_http_req_header(r, "X-User-Id");
    if (!u || !*u) {
        cm_http_reply_error(r, 401, "unauthorized", "authentication required");
        return NULL;
    }
    if (!valid_user_id(u)) {
        cm_http_reply_error(r, 401, "unauthorized", "malformed user identity");
        return NULL;
    }
    return u;
}

const char *fmt_amount(int64_t v, int scale, char *out, size_t outlen)
{
    if (cm_decimal_format(v, scale, out, outlen) < 0)
        snprintf(out, outlen, "0");
    return out;
}

int only_fields(struct cm_http_req *r, const cJSON *body, const char *const *allowed)
{
    if (!cJSON_IsObject(body)) {
        cm_http_reply_error(r, 400, "invalid_request", "the body must be a JSON object");
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, body)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (it->string && strcmp(it->string, *a) == 0)
                ok = 1;
        if (!ok) {
            cm_http_reply_error(r, 400, "invalid_request", "unknown field \"%.64s\"",
                                it->string ? it->string : "");
            return -1;
        }
    }
    return 0;
}
