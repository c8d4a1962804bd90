/* Canonical event encoding, hashing and text form. The encoding is the
 * determinism contract: tests hash it to compare whole streams. */
#include <inttypes.h>
#include <stdio.h>

#include "book.h"

#include "common/banned.h"

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

size_t me_event_encode(const struct me_event *ev, uint8_t out[ME_EVENT_WIRE_SIZE])
{
    uint8_t *p = put64(out, ev->seq);
    *p++ = ev->type;
    *p++ = ev->cmd_type;
    *p++ = ev->side;
    *p++ = ev->reason;
    p = put64(p, ev->order_id);
    p = put64(p, ev->user_id);
    p = put64(p, (uint64_t)ev->price);
    p = put64(p, (uint64_t)ev->qty);
    p = put64(p, (uint64_t)ev->remaining);
    p = put64(p, (uint64_t)ev->filled);
    p = put64(p, (uint64_t)ev->quote);
    p = put64(p, ev->maker_order_id);
    p = put64(p, ev->maker_user_id);
    p = put64(p, ev->ts);
    return (size_t)(p - out); /* == ME_EVENT_WIRE_SIZE */
}

uint64_t me_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t me_event_hash(uint64_t h, const struct me_event *ev)
{
    uint8_t buf[ME_EVENT_WIRE_SIZE];
    size_t n = me_event_encode(ev, buf);
    return me_hash(h, buf, n);
}

const char *me_event_type_name(int type)
{
    static const char *const names[] = {
        [ME_EV_ACCEPTED] = "ACCEPTED", [ME_EV_REJECTED] = "REJECTED",
        [ME_EV_TRADE] = "TRADE",       [ME_EV_PARTIALLY_FILLED] = "PARTIALLY_FILLED",
        [ME_EV_FILLED] = "FILLED",     [ME_EV_CANCELLED] = "CANCELLED",
        [ME_EV_EXPIRED] = "EXPIRED",
    };
    if (type < 0 || type >= (int)(sizeof(names) / sizeof(names[0])) || !names[type])
        return "UNKNOWN";
    return names[type];
}

const char *me_reason_name(int reason)
{
    static const char *const names[] = {
        [ME_R_NONE] = "none",
        [ME_R_INVALID] = "invalid",
        [ME_R_BAD_TIF] = "bad_tif",
        [ME_R_BAD_TICK] = "bad_tick",
        [ME_R_BAD_LOT] = "bad_lot",
        [ME_R_QTY_MIN] = "qty_min",
        [ME_R_QTY_MAX] = "qty_max",
        [ME_R_PRICE_RANGE] = "price_range",
        [ME_R_PRICE_BAND] = "price_band",
        [ME_R_OVERFLOW] = "overflow",
        [ME_R_POST_ONLY] = "post_only",
        [ME_R_DUPLICATE_ID] = "duplicate_id",
        [ME_R_NOT_FOUND] = "not_found",
        [ME_R_NOT_OWNER] = "not_owner",
        [ME_R_USER_CANCEL] = "user_cancel",
        [ME_R_CANCEL_ALL] = "cancel_all",
        [ME_R_STP] = "stp",
        [ME_R_IOC] = "ioc",
        [ME_R_FOK] = "fok",
        [ME_R_NO_LIQUIDITY] = "no_liquidity",
    };
    if (reason < 0 || reason >= ME_R_MAX_ || !names[reason])
        return "unknown";
    return names[reason];
}

int me_event_format(const struct me_event *ev, char *buf, size_t n)
{
    int w = snprintf(buf, n,
                     "seq=%" PRIu64 " %s cmd=%u side=%s reason=%s id=%" PRIu64 " user=%" PRIu64
                     " price=%" PRId64 " qty=%" PRId64 " rem=%" PRId64 " filled=%" PRId64
                     " quote=%" PRId64 " maker=%" PRIu64 "/%" PRIu64 " ts=%" PRIu64,
                     ev->seq, me_event_type_name(ev->type), ev->cmd_type,
                     ev->side == ME_BUY ? "buy" : "sell", me_reason_name(ev->reason), ev->order_id,
                     ev->user_id, ev->price, ev->qty, ev->remaining, ev->filled, ev->quote,
                     ev->maker_order_id, ev->maker_user_id, ev->ts);
    return w < 0 ? -1 : 0;
}
