/* /catalog/categories: the category tree (a flat list with parent ids). */
#include <stdlib.h>

#include "common/json_http.h"
#include "../catalog.h"
#include "common/banned.h"

static int render(struct cm_buf *b, const struct category *c)
{
    int rc = cm_buf_printf(b, "{\"id\":\"%lld\",\"name\":\"", (long long)c->id);
    rc |= cm_buf_json_escape(b, c->name);
    if (c->parent_id)
        rc |= cm_buf_printf(b, "\",\"parent_id\":\"%lld\"}", (long long)c->parent_id);
    else
        rc |= cm_buf_puts(b, "\",\"parent_id\":null}");
    return rc ? -1 : 0;
}

static void reply_category(struct cm_http_req *r, int status, const struct category *c)
{
    struct cm_buf b;
    cm_buf_init(&b, 1u << 16);
    if (render(&b, c) < 0)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, status, b.data);
    cm_buf_release(&b);
}

static void store_failed(struct cm_http_req *r, int rc)
{
    if (rc == STORE_NOT_FOUND)
        cm_http_reply_error(r, 404, "not_found", "no such category");
    else if (rc == STORE_BAD_REF)
        cm_http_reply_error(r, 422, "validation_failed",
                            "parent_id must name another category, not this one or one below it");
    else if (rc == STORE_CONFLICT)
        cm_http_reply_error(r, 409, "conflict",
                            "a category of that name already has that parent, or it is in use");
    else
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
}

static int path_id(struct cm_http_req *r, int64_t *id)
{
    if (parse_id(cm_http_req_param(r, "id"), id) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "category id must be a positive integer");
        return -1;
    }
    return 0;
}

static int parse_input(struct cm_http_req *r, struct category_input *in)
{
    cJSON *body = body_object(r);
    if (!body)
        return -1;
    char err[160];
    if (validate_category(body, in, err, sizeof err) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "%s", err);
        return -1;
    }
    return 0;
}

void h_categories_list(struct cm_http_req *r)
{
    struct category *items;
    size_t n;
    if (store_category_list(&items, &n) < 0) {
        store_failed(r, -1);
        return;
    }
    struct cm_buf b;
    cm_buf_init(&b, 8u << 20);
    int rc = cm_buf_puts(&b, "{\"categories\":[");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = (i ? cm_buf_puts(&b, ",") : 0) | render(&b, &items[i]);
    rc |= cm_buf_puts(&b, "]}");
    free(items);
    if (rc)
        cm_http_reply_error(r, 500, "internal", "rendering failed");
    else
        cm_http_reply_json_str(r, 200, b.data);
    cm_buf_release(&b);
}

void h_category_get(struct cm_http_req *r)
{
    int64_t id;
    struct category c;
    if (path_id(r, &id) < 0)
        return;
    int rc = store_category_get(id, &c);
    if (rc == 0)
        reply_category(r, 200, &c);
    else
        store_failed(r, rc);
}

void h_category_create(struct cm_http_req *r)
{
    struct category_input in;
    if (require_admin(r) < 0 || parse_input(r, &in) < 0)
        return;
    struct category c;
    int rc = store_category_create(&in, &c);
    if (rc == 0)
        reply_category(r, 201, &c);
    else if (rc == STORE_BAD_REF)
        cm_http_reply_error(r, 422, "validation_failed", "parent_id names no category");
    else
        store_failed(r, rc);
}

void h_category_update(struct cm_http_req *r)
{
    int64_t id;
    struct category_input in;
    if (require_admin(r) < 0 || path_id(r, &id) < 0 || parse_input(r, &in) < 0)
        return;
    struct category c;
    int rc = store_category_update(id, &in, &c);
    if (rc == 0)
        reply_category(r, 200, &c);
    else
        store_failed(r, rc);
}

void h_category_delete(struct cm_http_req *r)
{
    int64_t id;
    if (require_admin(r) < 0 || path_id(r, &id) < 0)
        return;
    int rc = store_category_delete(id);
    if (rc == 0)
        cm_http_reply(r, 204, NULL, "", 0);
    else
        store_failed(r, rc);
}
