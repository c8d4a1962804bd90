/* /orders: create (idempotent), read, change status, list a user's orders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "common/log.h"
#include "../order.h"
#include "common/banned.h"

#define LIST_DEFAULT 50
#define LIST_MAX 500

struct identity {
    const char *user_id;
    int is_admin;
};

/*
 * The gateway verified the JWT and passes X-User-Id / X-User-Roles; only
 * it can reach this service (NetworkPolicy + Istio AuthorizationPolicy in
 * Kubernetes, loopback in the lab), so the headers are trusted.
 */
static int identify(struct cm_http_req *r, struct identity *id)
{
    id->user_id = cm_http_req_header(r, "X-User-Id");
    if (!id->user_id || !*id->user_id) {
        cm_http_reply_error(r, 401, "unauthorized", "authentication required");
        return -1;
    }
    if (!valid_user_id(id->user_id)) {
        cm_http_reply_error(r, 401, "unauthorized", "malformed user identity");
        return -1;
    }
    const char *roles = cm_http_req_header(r, "X-User-Roles");
    id->is_admin = roles && has_role(roles, "admin");
    return 0;
}

static int money(struct cm_buf *b, const char *name, int64_t cents)
{
    char s[CM_DECIMAL_STR_MAX];
    if (cm_decimal_format(cents, PRICE_SCALE, s, sizeof s) < 0)
        return -1;
    return cm_buf_printf(b, "\"%s\":\"%s\"", name, s);
}

static int render(struct cm_buf *b, const struct order *o)
{
    /* ids are strings of digits on the wire (exact past 2^53) */
    int rc = cm_buf_printf(b, "{\"id\":\"%lld\",\"user_id\":\"", (long long)o->id);
    rc |= cm_buf_json_escape(b, o->user_id);
    rc |= cm_buf_printf(b, "\",\"status\":\"%s\",\"currency\":\"" SHOP_CURRENCY "\",",
                        status_name(o->status));
    rc |= money(b, "total", o->total_cents);
    rc |= cm_buf_puts(b, ",\"items\":[");
    for (size_t i = 0; i < o->nitems; i++) {
        const struct order_item *it = &o->items[i];
        rc |= cm_buf_printf(b, "%s{\"product_id\":\"%lld\",\"name\":\"", i ? "," : "",
                            (long long)it->product_id);
        rc |= cm_buf_json_escape(b, it->name);
        rc |= cm_buf_printf(b, "\",\"quantity\":%lld,", (long long)it->quantity);
        rc |= money(b, "unit_price", it->unit_price_cents);
        rc |= cm_buf_puts(b, ",");
        rc |= money(b, "line_total", it->line_total_cents);
        rc |= cm_buf_puts(b, "}");
    }
    rc |= cm_buf_printf(b, "],\"shipping_address\":%s,\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
                        o->shipping_address ? o->shipping_address : "null", o->created_at,
                        o->updated_at);
    return rc ? -1 : 0;
}

static void reply_order(struct cm_http_req *r, int status, const struct order *o)
{
    struct cm_buf b;
    cm_buf_init(&b, 4u << 20);
    if (render(&b, o) < 0)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, status, b.data);
    cm_buf_release(&b);
}

/* 409 out_of_stock naming the product, with the item in details. */
static void reply_out_of_stock(struct cm_http_req *r, const struct order_request *req,
                               int64_t product)
{
    size_t index = 0;
    while (index + 1 < req->nitems && req->items[index].product_id != product)
        index++;
    struct cm_buf b;
    cm_buf_init(&b, 4096);
    int rc = cm_buf_printf(&b,
                           "{\"error\":{\"code\":\"out_of_stock\",\"message\":\"product %lld is "
                           "out of stock\",\"request_id\":\"",
                           (long long)product);
    rc |= cm_buf_json_escape(&b, cm_http_req_id(r));
    rc |= cm_buf_printf(&b,
                        "\",\"details\":[{\"field\":\"items/%zu/product_id\",\"problem\":\"out of "
                        "stock\"}]}}",
                        index);
    if (rc)
        cm_http_reply_error(r, 409, "out_of_stock", "product %lld is out of stock",
                            (long long)product);
    else
        cm_http_reply_json_str(r, 409, b.data);
    cm_buf_release(&b);
}

/* A retry with a key already used: same body, same order; else 409. */
static void replay(struct cm_http_req *r, const struct order *o, const char *fingerprint)
{
    if (strcmp(o->fingerprint, fingerprint) == 0)
        reply_order(r, 200, o);
    else
        cm_http_reply_error(r, 409, "idempotency_conflict",
                            "Idempotency-Key was already used with a different request");
}

/* Gives back a reservation whose order was not written: now if the
 * catalog answers, else later from the relay (the debt recorded before the
 * reservation stays due). */
static void give_back(int64_t order_id)
{
    if (catalog_release(order_id) == CAT_OK)
        store_release_done(order_id, 1);
    else
        events_wake();
}

void h_order_create(struct cm_http_req *r)
{
    struct identity who;
    if (identify(r, &who) < 0)
        return;
    const char *key = cm_http_req_header(r, "Idempotency-Key");
    if (!key) {
        cm_http_reply_error(r, 422, "validation_failed", "the Idempotency-Key header is required");
        return;
    }
    if (!valid_idempotency_key(key)) {
        cm_http_reply_error(r, 422, "validation_failed",
                            "Idempotency-Key must be 1 to %d visible ASCII characters",
                            IDEMPOTENCY_KEY_MAX);
        return;
    }
    cJSON *body = cm_http_req_json(r);
    if (!body)
        return;
    struct order_request *req = malloc(sizeof *req);
    struct order *o = calloc(1, sizeof *o);
    struct cm_buf addr;
    cm_buf_init(&addr, 1u << 16);
    if (!req || !o) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    char err[160], fp[FINGERPRINT_LEN + 1];
    if (validate_order_request(body, req, err, sizeof err) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "%s", err);
        goto out;
    }
    if (request_fingerprint(req, fp) < 0 || address_render(&addr, &req->address) < 0) {
        cm_http_reply_error(r, 500, "internal", "fingerprint failed");
        goto out;
    }

    int rc = store_find_by_key(who.user_id, key, o);
    if (rc == 0) {
        replay(r, o, fp);
        goto out;
    }
    if (rc < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        goto out;
    }

    /* Current names and prices; an unknown product is the client's error. */
    for (size_t i = 0; i < req->nitems; i++) {
        struct order_item *it = &req->items[i];
        rc = catalog_product(it->product_id, it->name, sizeof it->name, &it->unit_price_cents);
        if (rc == CAT_NO_PRODUCT) {
            cm_http_reply_error(r, 422, "validation_failed", "product %lld does not exist",
                                (long long)it->product_id);
            goto out;
        }
        if (rc != CAT_OK) {
            cm_http_reply_error(r, 503, "service_unavailable", "the catalog is unavailable");
            goto out;
        }
    }

    /*
     * The release is owed before the stock is taken: the debt falls due in
     * RESERVATION_GRACE unless the order's own transaction cancels it, so a
     * crash between "reserved" and "order written" strands nothing (the
     * relay pays overdue debts). The grace also covers a reservation still
     * in flight when we gave up waiting: releasing it at once could reach
     * the catalog first, find nothing, and let the late reservation stand.
     */
    int64_t id, bad = 0;
    if (store_next_order_id(&id) < 0 || store_release_hold(id, RESERVATION_GRACE_S) < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        goto out;
    }
    rc = catalog_reserve(id, req->items, req->nitems, &bad);
    if (rc == CAT_OUT_OF_STOCK || rc == CAT_NO_PRODUCT)
        store_release_done(id, 1); /* the catalog refused: nothing to give back */
    if (rc == CAT_OUT_OF_STOCK) {
        reply_out_of_stock(r, req, bad);
        goto out;
    }
    if (rc == CAT_NO_PRODUCT) {
        cm_http_reply_error(r, 422, "validation_failed", "product %lld does not exist",
                            (long long)bad);
        goto out;
    }
    if (rc != CAT_OK) {
        /* It may still happen (a timeout before the catalog's commit): the
         * debt stays due in RESERVATION_GRACE_S. */
        cm_http_reply_error(r, 503, "service_unavailable", "the catalog is unavailable");
        goto out;
    }

    o->id = id;
    snprintf(o->user_id, sizeof o->user_id, "%s", who.user_id);
    o->status = ST_PENDING;
    o->shipping_address = addr.data;
    memcpy(o->fingerprint, fp, sizeof fp);
    memcpy(o->items, req->items, req->nitems * sizeof req->items[0]);
    o->nitems = req->nitems;
    if (order_totals(o->items, o->nitems, &o->total_cents) < 0) {
        o->shipping_address = NULL;
        give_back(id);
        cm_http_reply_error(r, 422, "validation_failed", "order total is too large");
        goto out;
    }
    rc = store_create_order(o, key, order_events_topic);
    o->shipping_address = NULL; /* borrowed from addr */
    if (rc == STORE_DUPLICATE) {
        /* A concurrent request with the same key won: ours is surplus. */
        give_back(id);
        rc = store_find_by_key(who.user_id, key, o);
        if (rc == 0)
            replay(r, o, fp);
        else
            cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        goto out;
    }
    if (rc != 0) {
        give_back(id);
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        goto out;
    }
    orders_count(ST_PENDING);
    events_wake();
    struct order *saved = calloc(1, sizeof *saved);
    if (saved && store_get_order(id, saved) == 0) {
        char loc[48];
        snprintf(loc, sizeof loc, "/orders/%lld", (long long)id);
        cm_http_set_header(r, "Location", loc);
        reply_order(r, 201, saved);
        order_release(saved);
    } else {
        cm_http_reply_error(r, 503, "service_unavailable", "order %lld saved but not readable",
                            (long long)id);
    }
    free(saved);
out:
    if (o)
        order_release(o);
    free(o);
    free(req);
    cm_buf_release(&addr);
}

static int path_id(struct cm_http_req *r, int64_t *id)
{
    if (parse_id(cm_http_req_param(r, "id"), id) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "order id must be a positive integer");
        return -1;
    }
    return 0;
}

void h_order_get(struct cm_http_req *r)
{
    struct identity who;
    int64_t id;
    if (identify(r, &who) < 0 || path_id(r, &id) < 0)
        return;
    struct order *o = calloc(1, sizeof *o);
    if (!o) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    int rc = store_get_order(id, o);
    if (rc < 0)
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    else if (rc != 0 || (!who.is_admin && strcmp(o->user_id, who.user_id) != 0))
        cm_http_reply_error(r, 404, "not_found", "no such order");
    else
        reply_order(r, 200, o);
    order_release(o);
    free(o);
}

void h_order_status(struct cm_http_req *r)
{
    struct identity who;
    int64_t id;
    if (identify(r, &who) < 0 || path_id(r, &id) < 0)
        return;
    cJSON *body = cm_http_req_json(r);
    if (!body)
        return;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(body, "status");
    int to = cJSON_IsString(st) ? status_parse(st->valuestring) : -1;
    if (!cJSON_IsObject(body) || cJSON_GetArraySize(body) != 1 || to < 0) {
        cm_http_reply_error(r, 422, "validation_failed",
                            "body must be {\"status\": one of pending, paid, shipped, delivered, "
                            "cancelled}");
        return;
    }
    struct order *o = calloc(1, sizeof *o);
    if (!o) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    enum order_status from;
    int rc = store_set_status(id, (enum order_status)to, who.user_id, who.is_admin,
                              order_events_topic, &from, o);
    switch (rc) {
    case 0:
        orders_count((enum order_status)to);
        events_wake();
        /* Stock goes back now if the catalog answers; the recorded debt
         * (same transaction as the cancellation) covers the rest. */
        if (to == ST_CANCELLED && catalog_release(id) == CAT_OK)
            store_release_done(id, 1);
        reply_order(r, 200, o);
        break;
    case STORE_SAME: reply_order(r, 200, o); break;
    case STORE_NOT_FOUND: cm_http_reply_error(r, 404, "not_found", "no such order"); break;
    case STORE_FORBIDDEN:
        cm_http_reply_error(r, 403, "forbidden", "only an admin may set status %s",
                            status_name((enum order_status)to));
        break;
    case STORE_ILLEGAL:
        cm_http_reply_error(r, 409, "conflict", "an order cannot go from %s to %s",
                            status_name(from), status_name((enum order_status)to));
        break;
    default: cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    }
    order_release(o);
    free(o);
}

struct page {
    struct cm_buf b;
    size_t n;
};

static int render_one(void *ctx, const struct order *o)
{
    struct page *pg = ctx;
    int rc = (pg->n++ ? cm_buf_puts(&pg->b, ",") : 0) | render(&pg->b, o);
    return rc ? -1 : 0;
}

void h_orders_of_user(struct cm_http_req *r)
{
    struct identity who;
    if (identify(r, &who) < 0)
        return;
    const char *user = cm_http_req_param(r, "userId");
    if (!valid_user_id(user)) {
        cm_http_reply_error(r, 422, "validation_failed", "malformed user id");
        return;
    }
    if (!who.is_admin && strcmp(user, who.user_id) != 0) {
        cm_http_reply_error(r, 403, "forbidden", "you may only list your own orders");
        return;
    }
    int64_t limit = LIST_DEFAULT, before = 0;
    const char *v;
    if ((v = cm_http_req_query(r, "limit")) && (parse_id(v, &limit) < 0 || limit > LIST_MAX)) {
        cm_http_reply_error(r, 422, "validation_failed", "limit must be 1 to %d", LIST_MAX);
        return;
    }
    if ((v = cm_http_req_query(r, "cursor")) && parse_id(v, &before) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "cursor is not one we gave out");
        return;
    }
    struct page page;
    cm_buf_init(&page.b, 64u << 20);
    page.n = 0;
    int rc = cm_buf_puts(&page.b, "{\"items\":[");
    size_t n;
    int64_t last;
    if (rc < 0 ||
        store_list_user_orders(user, before, (int)limit, render_one, &page, &n, &last) < 0) {
        cm_buf_release(&page.b);
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    struct cm_buf b = page.b;
    /* a full page may have more after it; the cursor is the last id */
    if (n == (size_t)limit)
        rc |= cm_buf_printf(&b, "],\"next_cursor\":\"%lld\"}", (long long)last);
    else
        rc |= cm_buf_puts(&b, "],\"next_cursor\":null}");
    if (rc)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, 200, b.data);
    cm_buf_release(&b);
}
