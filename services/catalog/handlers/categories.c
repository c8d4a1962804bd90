/* /catalog/categories: the category tree (flat list with parent ids). */
#include <stdlib.h>

#include "common/json_http.h"
#include "../catalog.h"
#include "common/banned.h"

static int render(struct cm_buf *b, const struct category *c)
{
    int rc = cm_buf_printf(b, "{\"id\":%lld,\"name\":\"", (long long)c->id);
    rc |= cm_buf_json_escape(b, c->name);
    if (c->parent_id)
        rc |= cm_buf_printf(b, "\",\"parent_id\":%lld}", (long long)c->parent_id);
    else
        rc |= cm_buf_puts(b, "\",\"parent_id\":null}");
    return rc ? -1 : 0;
}

void h_categories_list(struct cm_http_req *r)
{
    struct category *items;
    size_t n;
    if (store_category_list(&items, &n) < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    struct cm_buf b;
    cm_buf_init(&b, 8u << 20);
    int rc = cm_buf_puts(&b, "{\"items\":[");
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

void h_category_create(struct cm_http_req *r)
{
    if (require_admin(r) < 0)
        return;
    cJSON *body = body_object(r);
    if (!body)
        return;
    struct category_input in;
    char err[160];
    if (validate_category(body, &in, err, sizeof err) < 0) {
        cm_http_reply_error(r, 422, "validation_failed", "%s", err);
        return;
    }
    struct category *c = malloc(sizeof *c);
    if (!c) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    int rc = store_category_create(&in, c);
    if (rc == STORE_BAD_REF) {
        cm_http_reply_error(r, 422, "validation_failed", "parent_id names no category");
    } else if (rc == STORE_CONFLICT) {
        cm_http_reply_error(r, 409, "conflict", "a category of that name already has that parent");
    } else if (rc < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
    } else {
        struct cm_buf b;
        cm_buf_init(&b, 1u << 16);
        if (render(&b, c) < 0)
            cm_http_reply_error(r, 500, "internal", "rendering failed");
        else
            cm_http_reply_json_str(r, 201, b.data);
        cm_buf_release(&b);
    }
    free(c);
}
