/* Helpers every catalog handler uses: identity checks and rendering. */
#include <stdio.h>
#include <string.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "../catalog.h"
#include "common/banned.h"

/*
 * The gateway verifies the JWT and passes the identity as X-User-Id and
 * X-User-Roles; nothing else can reach this service (NetworkPolicy and
 * Istio AuthorizationPolicy in Kubernetes, loopback in the lab), so the
 * headers are trusted as they are.
 */
int require_admin(struct cm_http_req *r)
{
    const char *user = cm_http_req_header(r, "X-User-Id");
    if (!user || !*user) {
        cm_http_reply_error(r, 401, "unauthorized", "authentication required");
        return -1;
    }
    const char *roles = cm_http_req_header(r, "X-User-Roles");
    if (!roles || !has_role(roles, "admin")) {
        cm_http_reply_error(r, 403, "forbidden", "this needs the admin role");
        return -1;
    }
    return 0;
}

cJSON *body_object(struct cm_http_req *r)
{
    cJSON *body = cm_http_req_json(r); /* replies 400 invalid_json itself */
    if (body && !cJSON_IsObject(body)) {
        cm_http_reply_error(r, 422, "validation_failed", "body must be a JSON object");
        return NULL;
    }
    return body;
}

int product_render(struct cm_buf *b, const struct product *p)
{
    char price[CM_DECIMAL_STR_MAX];
    if (cm_decimal_format(p->price_cents, PRICE_SCALE, price, sizeof price) < 0)
        return -1;
    /* ids are strings of digits on the wire (exact past 2^53) */
    int rc = cm_buf_printf(b, "{\"id\":\"%lld\",\"name\":\"", (long long)p->id);
    rc |= cm_buf_json_escape(b, p->name);
    rc |= cm_buf_puts(b, "\",\"description\":\"");
    rc |= cm_buf_json_escape(b, p->description ? p->description : "");
    if (p->category_id)
        rc |= cm_buf_printf(b, "\",\"category_id\":\"%lld\"", (long long)p->category_id);
    else
        rc |= cm_buf_puts(b, "\",\"category_id\":null");
    rc |= cm_buf_printf(b,
                        ",\"price\":\"%s\",\"currency\":\"" SHOP_CURRENCY "\",\"stock\":%lld,"
                        "\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
                        price, (long long)p->stock, p->created_at, p->updated_at);
    return rc ? -1 : 0;
}
