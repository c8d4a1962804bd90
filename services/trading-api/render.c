/*
 * JSON shapes: the API's Order object, the commands of
 * exchange.orders.commands (proto/events/exchange.orders.commands/), and
 * the error envelope with details (proto/openapi/common.yaml Error).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "trading.h"
#include "common/banned.h"

static void add_dec(cJSON *o, const char *name, int64_t v, int scale)
{
    char buf[CM_DECIMAL_STR_MAX];
    cm_decimal_format(v, scale, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

cJSON *order_json(const struct order_row *o)
{
    const struct market *m = market_find(trading_markets, trading_nmarkets, o->market);
    int bs = m ? m->base_scale : 8, qs = m ? m->quote_scale : 6;
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, o->id);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", id);
    cJSON_AddStringToObject(j, "client_order_id", o->client_order_id);
    cJSON_AddStringToObject(j, "market", o->market);
    cJSON_AddStringToObject(j, "side", side_name(o->side));
    cJSON_AddStringToObject(j, "type", type_name(o->type));
    if (o->has_price)
        add_dec(j, "price", o->price, qs);
    if (o->has_qty)
        add_dec(j, "quantity", o->qty, bs);
    if (o->has_quote)
        add_dec(j, "quote_amount", o->quote, qs);
    cJSON_AddStringToObject(j, "time_in_force", tif_name(o->tif));
    cJSON_AddBoolToObject(j, "post_only", o->post_only);
    if (o->stp[0])
        cJSON_AddStringToObject(j, "stp", o->stp);
    cJSON_AddStringToObject(j, "status", o->status);
    add_dec(j, "filled_quantity", o->filled_qty, bs);
    add_dec(j, "filled_quote", o->filled_quote, qs);
    int64_t avg;
    if (average_price(o->filled_qty, o->filled_quote, bs, &avg) == 0)
        add_dec(j, "average_price", avg, qs);
    if (o->reject_reason[0])
        cJSON_AddStringToObject(j, "reject_reason", o->reject_reason);
    if (o->end_reason[0])
        cJSON_AddStringToObject(j, "end_reason", o->end_reason);
    cJSON_AddStringToObject(j, "created_at", o->created_at);
    cJSON_AddStringToObject(j, "updated_at", o->updated_at);
    return j;
}

static cJSON *command(const char *type, const char *event_id, const char *market, const char *user)
{
    char ts[40];
    now_ts(ts, sizeof ts);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", type);
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "id", event_id);
    cJSON_AddStringToObject(j, "ts", ts);
    cJSON_AddStringToObject(j, "market", market);
    cJSON_AddStringToObject(j, "user_id", user);
    return j;
}

static char *render(cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

char *place_command_json(const struct order_req *o, const char *user, uint64_t order_id,
                         const char *event_id)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, order_id);
    cJSON *j = command("order.place", event_id, o->m->symbol, user);
    cJSON_AddStringToObject(j, "order_id", id);
    cJSON_AddStringToObject(j, "client_order_id", o->client_order_id);
    cJSON_AddStringToObject(j, "side", side_name(o->side));
    cJSON_AddStringToObject(j, "order_type", type_name(o->type));
    if (o->has_price)
        add_dec(j, "price", o->price, o->m->quote_scale);
    if (o->has_qty)
        add_dec(j, "quantity", o->qty, o->m->base_scale);
    if (o->has_quote)
        add_dec(j, "quote_amount", o->quote, o->m->quote_scale);
    cJSON_AddStringToObject(j, "time_in_force", tif_name(o->tif));
    cJSON_AddBoolToObject(j, "post_only", o->post_only);
    if (o->stp)
        cJSON_AddStringToObject(j, "stp", o->stp);
    return render(j);
}

char *cancel_command_json(const char *market, const char *user, uint64_t order_id,
                          const char *event_id)
{
    cJSON *j = command(order_id ? "order.cancel" : "order.cancel_all", event_id, market, user);
    if (order_id) {
        char id[24];
        snprintf(id, sizeof id, "%" PRIu64, order_id);
        cJSON_AddStringToObject(j, "order_id", id);
    }
    return render(j);
}

void reply_problem(struct cm_http_req *r, const struct vproblem *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(j, "error");
    cJSON_AddStringToObject(e, "code", p->code);
    cJSON_AddStringToObject(e, "message", msg[0] ? msg : p->code);
    cJSON_AddStringToObject(e, "request_id", cm_http_req_id(r));
    if (p->field[0] || p->problem[0]) {
        cJSON *d = cJSON_AddArrayToObject(e, "details");
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "field", p->field);
        cJSON_AddStringToObject(it, "problem", p->problem);
        cJSON_AddItemToArray(d, it);
    }
    cm_http_reply_json(r, p->status, j);
}

const char *require_user(struct cm_http_req *r)
{
    const char *u = cm_http_req_header(r, "X-User-Id");
    uint64_t id;
    if (!u || parse_uint_id(u, &id) < 0) {
        cm_http_set_header(r, "WWW-Authenticate", "Bearer");
        cm_http_reply_error(r, 401, "unauthorized", "missing or malformed X-User-Id");
        return NULL;
    }
    return u;
}

char *trade_stream_json(const struct market *m, const struct trade_row *t)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", t->id);
    add_dec(d, "price", t->price, m->quote_scale);
    add_dec(d, "quantity", t->qty, m->base_scale);
    add_dec(d, "quote_amount", t->quote, m->quote_scale);
    cJSON_AddStringToObject(d, "taker_side", t->taker_side);
    cJSON_AddStringToObject(d, "ts", t->ts);
    return render(d);
}
