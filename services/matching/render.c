/*
 * Core events -> the contract JSON of exchange.orders.events and
 * exchange.trades (proto/events/). Deterministic by construction: every
 * byte comes from the event, the market's scales and the command that
 * caused it (its ts string is copied verbatim), so a replay renders
 * byte-identical messages. Field order follows proto/events/examples.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/decimal.h"
#include "matching.h"
#include "common/banned.h"

const char *mt_event_type(int type)
{
    switch (type) {
    case ME_EV_ACCEPTED: return "order.accepted";
    case ME_EV_REJECTED: return "order.rejected";
    case ME_EV_TRADE: return "trade";
    case ME_EV_PARTIALLY_FILLED: return "order.partially_filled";
    case ME_EV_FILLED: return "order.filled";
    case ME_EV_CANCELLED: return "order.cancelled";
    case ME_EV_EXPIRED: return "order.expired";
    default: return "unknown";
    }
}

static int u64(struct cm_buf *b, uint64_t v)
{
    char t[24];
    int n = 0;
    do
        t[sizeof t - 1 - n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 23);
    return cm_buf_append(b, t + sizeof t - n, (size_t)n);
}

/* ,"name":"<decimal>" */
static int dec(struct cm_buf *b, const char *name, int64_t v, int scale)
{
    char t[CM_DECIMAL_STR_MAX];
    int n = cm_decimal_format(v < 0 ? 0 : v, scale, t, sizeof t);
    if (n < 0)
        return -1;
    return cm_buf_puts(b, ",\"") | cm_buf_puts(b, name) | cm_buf_puts(b, "\":\"") |
           cm_buf_append(b, t, (size_t)n) | cm_buf_puts(b, "\"");
}

/* ,"name":"<u64>" (ids are strings on the wire) */
static int id(struct cm_buf *b, const char *name, uint64_t v)
{
    return cm_buf_puts(b, ",\"") | cm_buf_puts(b, name) | cm_buf_puts(b, "\":\"") | u64(b, v) |
           cm_buf_puts(b, "\"");
}

static int kv(struct cm_buf *b, const char *name, const char *v)
{
    return cm_buf_puts(b, ",\"") | cm_buf_puts(b, name) | cm_buf_puts(b, "\":\"") |
           cm_buf_puts(b, v) | cm_buf_puts(b, "\"");
}

static const char *side_name(int side)
{
    return side == ME_BUY ? "buy" : "sell";
}

static const char *cmd_name(int type)
{
    return type == ME_CMD_PLACE ? "place" : type == ME_CMD_CANCEL ? "cancel" : "cancel_all";
}

static const char *tif_name(int tif)
{
    return tif == ME_IOC ? "IOC" : tif == ME_FOK ? "FOK" : "GTC";
}

static const char *stp_name(int stp)
{
    static const char *const n[] = {"none", "cancel_taker", "cancel_maker", "cancel_both"};
    return stp >= ME_STP_NONE && stp <= ME_STP_CANCEL_BOTH ? n[stp - ME_STP_NONE] : "none";
}

int mt_render_event(struct cm_buf *b, const struct mt_market *mk, const struct mt_cmd *c,
                    const struct me_event *ev, int *trade)
{
    const struct me_cmd *cmd = &c->cmd;
    int bs = mk->base_scale, qs = mk->quote_scale;
    int rc = cm_buf_puts(b, "{\"type\":\"") | cm_buf_puts(b, mt_event_type(ev->type)) |
             cm_buf_puts(b, "\",\"version\":1,\"id\":\"") | cm_buf_puts(b, mk->symbol) |
             cm_buf_puts(b, ":") | u64(b, ev->seq) | cm_buf_puts(b, "\"") | kv(b, "ts", c->ts) |
             kv(b, "market", mk->symbol) | cm_buf_puts(b, ",\"seq\":") | u64(b, ev->seq);
    *trade = ev->type == ME_EV_TRADE;
    /* The taker of this command is the only order that can be a market
     * order (they never rest); makers are limit orders. */
    int own = cmd->type == ME_CMD_PLACE && ev->order_id == cmd->order_id;
    int market_order = own && cmd->order_type == ME_MARKET;
    int by_quote = own && c->by_quote;
    switch (ev->type) {
    case ME_EV_ACCEPTED:
        rc |= id(b, "order_id", ev->order_id) | id(b, "user_id", ev->user_id) |
              kv(b, "side", side_name(ev->side)) |
              kv(b, "order_type", cmd->order_type == ME_MARKET ? "market" : "limit");
        if (cmd->order_type == ME_LIMIT)
            rc |= dec(b, "price", cmd->price, qs);
        if (c->by_quote)
            rc |= dec(b, "quote_amount", cmd->quote, qs);
        else
            rc |= dec(b, "quantity", cmd->qty, bs);
        rc |= kv(b, "time_in_force", tif_name(cmd->tif)) |
              cm_buf_puts(b, (cmd->flags & ME_FLAG_POST_ONLY) ? ",\"post_only\":true"
                                                              : ",\"post_only\":false");
        if (c->has_stp)
            rc |= kv(b, "stp", stp_name(cmd->stp));
        break;
    case ME_EV_REJECTED:
        rc |= kv(b, "command", cmd_name(ev->cmd_type));
        if (ev->cmd_type != ME_CMD_CANCEL_ALL)
            rc |= id(b, "order_id", ev->order_id);
        rc |= id(b, "user_id", ev->user_id);
        if (ev->cmd_type == ME_CMD_PLACE)
            rc |= kv(b, "side", side_name(ev->side));
        rc |= kv(b, "reason", me_reason_name(ev->reason));
        break;
    case ME_EV_TRADE:
        rc |= dec(b, "price", ev->price, qs) | dec(b, "quantity", ev->qty, bs) |
              dec(b, "quote_amount", ev->quote, qs) | kv(b, "taker_side", side_name(ev->side)) |
              id(b, "taker_order_id", ev->order_id) | id(b, "taker_user_id", ev->user_id) |
              id(b, "maker_order_id", ev->maker_order_id) |
              id(b, "maker_user_id", ev->maker_user_id);
        break;
    default: /* PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED */
        rc |= id(b, "order_id", ev->order_id) | id(b, "user_id", ev->user_id) |
              kv(b, "side", side_name(ev->side));
        if (!market_order)
            rc |= dec(b, "price", ev->price, qs);
        rc |= dec(b, "filled_quantity", ev->filled, bs) | dec(b, "filled_quote", ev->quote, qs);
        if (by_quote)
            rc |= dec(b, "remaining_quote", ev->remaining, qs);
        else
            rc |= dec(b, "remaining_quantity", ev->remaining, bs);
        if (ev->type == ME_EV_CANCELLED || ev->type == ME_EV_EXPIRED)
            rc |= kv(b, "reason", me_reason_name(ev->reason));
        break;
    }
    rc |= cm_buf_puts(b, "}");
    return rc ? -1 : 0;
}
