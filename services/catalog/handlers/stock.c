/*
 * /internal/stock/reserve and /release: reservations for the order service. Not routed by the
 * gateway; in Kubernetes only the order service may call them
 * (AuthorizationPolicy), in the lab everything is on loopback.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "common/log.h"
#include "../catalog.h"
#include "common/banned.h"

/* The error envelope with details naming the item (its index in the
 * request), as proto/openapi/common.yaml's Error allows; the order service
 * names the product to its user from it. */
static void reply_item_error(struct cm_http_req *r, int status, const char *code, size_t index,
                             const char *msg, const char *problem)
{
    struct cm_buf b;
    cm_buf_init(&b, 4096);
    int rc = cm_buf_printf(&b, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    rc |= cm_buf_json_escape(&b, msg);
    rc |= cm_buf_printf(&b, "\",\"request_id\":\"");
    rc |= cm_buf_json_escape(&b, cm_http_req_id(r));
    rc |= cm_buf_printf(&b, "\",\"details\":[{\"field\":\"items/%zu/product_id\",\"problem\":\"",
                        index);
    rc |= cm_buf_json_escape(&b, problem);
    rc |= cm_buf_puts(&b, "\"}]}}");
    if (rc)
        cm_http_reply_error(r, status, code, "%s", msg);
    else
        cm_http_reply_json_str(r, status, b.data);
    cm_buf_release(&b);
}

static void reply_items(struct cm_http_req *r, const struct reserve_input *in, const char *status,
                        int flag_name_is_replayed, int flag)
{
    struct cm_buf b;
    cm_buf_init(&b, 1u << 16);
    int rc =
        cm_buf_printf(&b, "{\"order_id\":\"%lld\",\"status\":\"%s\",\"%s\":%s,\"items\":[",
                      (long long)in->order_id, status,
                      flag_name_is_replayed ? "replayed" : "released_now", flag ? "true" : "false");
    for (size_t i = 0; i < in->nitems && rc == 0; i++) {
        char price[CM_DECIMAL_STR_MAX];
        if (cm_decimal_format(in->items[i].unit_price_cents, PRICE_SCALE, price, sizeof price) < 0)
            rc = -1;
        else
            rc = cm_buf_printf(
                &b, "%s{\"product_id\":\"%lld\",\"quantity\":%lld,\"unit_price\":\"%s\"}",
                i ? "," : "", (long long)in->items[i].product_id, (long long)in->items[i].quantity,
                price);
    }
    rc |= cm_buf_puts(&b, "]}");
    if (rc)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, 200, b.data);
    cm_buf_release(&b);
}

void h_stock_reserve(struct cm_http_req *r)
{
    cJSON *body = body_object(r);
    if (!body)
        return;
    struct reserve_input *in = malloc(sizeof *in);
    if (!in) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    char err[160];
    if (validate_reserve(body, in, err, sizeof err) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "%s", err);
        goto out;
    }
    int replayed = 0;
    int64_t bad = 0, available = 0;
    /* The request's order (the store sorts items, a replay refills them):
     * errors name the item by its index in the request. */
    int64_t asked[RESERVE_MAX_ITEMS] = {0};
    size_t nasked = in->nitems;
    for (size_t i = 0; i < nasked; i++)
        asked[i] = in->items[i].product_id;
    int rc = store_stock_reserve(in, &replayed, &bad, &available);
    size_t index = 0;
    while (index + 1 < nasked && asked[index] != bad)
        index++;
    if (rc == 0) {
        if (!replayed)
            for (size_t i = 0; i < in->nitems; i++)
                cache_invalidate(in->items[i].product_id);
        reply_items(r, in, "reserved", 1, replayed);
    } else if (rc == STORE_OUT_OF_STOCK) {
        char msg[128], problem[64];
        snprintf(msg, sizeof msg, "product %lld is out of stock (%lld available)", (long long)bad,
                 (long long)available);
        snprintf(problem, sizeof problem, "out of stock: %lld available", (long long)available);
        reply_item_error(r, 409, "out_of_stock", index, msg, problem);
    } else if (rc == STORE_NO_PRODUCT) {
        char msg[128];
        snprintf(msg, sizeof msg, "product %lld does not exist", (long long)bad);
        reply_item_error(r, 422, "validation_failed", index, msg, "no such product");
    } else if (rc == STORE_CONFLICT) {
        cm_http_reply_error(r, 409, "conflict", "the reservation of order %lld was released",
                            (long long)in->order_id);
    } else {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
out:
    free(in);
}

void h_stock_release(struct cm_http_req *r)
{
    cJSON *body = body_object(r);
    if (!body)
        return;
    struct reserve_input *in = calloc(1, sizeof *in);
    if (!in) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    char err[160];
    if (validate_release(body, &in->order_id, err, sizeof err) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "%s", err);
        goto out;
    }
    int released = 0;
    int rc = store_stock_release(in, &released);
    if (rc == 0) {
        if (released)
            for (size_t i = 0; i < in->nitems; i++)
                cache_invalidate(in->items[i].product_id);
        reply_items(r, in, "released", 0, released);
    } else if (rc == STORE_NOT_FOUND) {
        cm_http_reply_error(r, 404, "not_found", "order %lld holds no reservation",
                            (long long)in->order_id);
    } else {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
out:
    free(in);
}
