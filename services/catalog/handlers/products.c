/* /catalog/products: list, read (through the cache), create, update, delete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_http.h"
#include "../catalog.h"
#include "common/banned.h"

#define LIST_DEFAULT 50
#define LIST_MAX 500

static int path_id(struct cm_http_req *r, int64_t *id)
{
    if (parse_id(cm_http_req_param(r, "id"), id) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "product id must be a positive integer");
        return -1;
    }
    return 0;
}

static void reply_product(struct cm_http_req *r, int status, const struct product *p)
{
    struct cm_buf b;
    cm_buf_init(&b, 1u << 20);
    if (product_render(&b, p) < 0)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, status, b.data);
    cm_buf_release(&b);
}

static void store_failed(struct cm_http_req *r, int rc)
{
    if (rc == STORE_NOT_FOUND)
        cm_http_reply_error(r, 404, "not_found", "no such product");
    else if (rc == STORE_BAD_REF)
        cm_http_reply_error(r, 422, "validation_failed", "category_id names no category");
    else if (rc == STORE_CONFLICT)
        cm_http_reply_error(r, 409, "conflict", "conflicting product");
    else
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
}

void h_products_list(struct cm_http_req *r)
{
    struct product_query qr = {.limit = LIST_DEFAULT};
    const char *v;
    char pattern[PRODUCT_NAME_MAX_CHARS * 8 + 3];
    if ((v = cm_http_req_query(r, "limit"))) {
        int64_t lim;
        if (parse_id(v, &lim) < 0 || lim > LIST_MAX) {
            cm_http_reply_error(r, 422, "validation_failed", "limit must be 1 to %d", LIST_MAX);
            return;
        }
        qr.limit = (int)lim;
    }
    if ((v = cm_http_req_query(r, "cursor")) && parse_id(v, &qr.after_id) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "cursor is not one we gave out");
        return;
    }
    if ((v = cm_http_req_query(r, "category")) && parse_id(v, &qr.category_id) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "category must be a positive integer");
        return;
    }
    if ((v = cm_http_req_query(r, "q"))) {
        long n = cm_utf8_chars(v);
        if (n < 1 || n > PRODUCT_NAME_MAX_CHARS || like_pattern(v, pattern, sizeof pattern) < 0) {
            cm_http_reply_error(r, 422, "validation_failed", "q must be 1 to %d characters",
                                PRODUCT_NAME_MAX_CHARS);
            return;
        }
        qr.pattern = pattern;
    }
    struct product *items;
    size_t n;
    if (store_product_list(&qr, &items, &n) < 0) {
        store_failed(r, -1);
        return;
    }
    struct cm_buf b;
    cm_buf_init(&b, 8u << 20);
    int rc = cm_buf_puts(&b, "{\"items\":[");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = (i ? cm_buf_puts(&b, ",") : 0) | product_render(&b, &items[i]);
    /* A full page may have more after it; the cursor is the last id. */
    if (n == (size_t)qr.limit)
        rc |= cm_buf_printf(&b, "],\"next_cursor\":\"%lld\"}", (long long)items[n - 1].id);
    else
        rc |= cm_buf_puts(&b, "],\"next_cursor\":null}");
    for (size_t i = 0; i < n; i++)
        product_release(&items[i]);
    free(items);
    if (rc)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, 200, b.data);
    cm_buf_release(&b);
}

void h_product_get(struct cm_http_req *r)
{
    int64_t id;
    if (path_id(r, &id) < 0)
        return;
    struct cm_buf b;
    cm_buf_init(&b, 1u << 20);
    int rc = cache_product_json(id, &b);
    if (rc == 0)
        cm_http_reply_json_str(r, 200, b.data);
    else
        store_failed(r, rc);
    cm_buf_release(&b);
}

static int parse_product(struct cm_http_req *r, int partial, struct product_input *in)
{
    cJSON *body = body_object(r);
    if (!body)
        return -1;
    char err[160];
    if (validate_product(body, partial, in, err, sizeof err) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "%s", err);
        return -1;
    }
    return 0;
}

void h_product_create(struct cm_http_req *r)
{
    struct product_input in;
    if (require_admin(r) < 0 || parse_product(r, 0, &in) < 0)
        return;
    struct product *p = calloc(1, sizeof *p);
    if (!p) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    int rc = store_product_create(&in, p);
    if (rc == 0) {
        cache_invalidate(p->id); /* a cached "no such product" for this id */
        char loc[64];
        snprintf(loc, sizeof loc, "/catalog/products/%lld", (long long)p->id);
        cm_http_set_header(r, "Location", loc);
        reply_product(r, 201, p);
    } else {
        store_failed(r, rc);
    }
    product_release(p);
    free(p);
}

void h_product_update(struct cm_http_req *r)
{
    int64_t id;
    struct product_input in;
    if (require_admin(r) < 0 || path_id(r, &id) < 0 || parse_product(r, 1, &in) < 0)
        return;
    struct product *p = calloc(1, sizeof *p);
    if (!p) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    int rc = store_product_update(id, &in, p);
    if (rc == 0) {
        cache_invalidate(id);
        reply_product(r, 200, p);
    } else {
        store_failed(r, rc);
    }
    product_release(p);
    free(p);
}

void h_product_delete(struct cm_http_req *r)
{
    int64_t id;
    if (require_admin(r) < 0 || path_id(r, &id) < 0)
        return;
    int rc = store_product_delete(id);
    if (rc == 0) {
        cache_invalidate(id);
        cm_http_reply(r, 204, NULL, "", 0);
    } else {
        store_failed(r, rc);
    }
}
