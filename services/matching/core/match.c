/*
 * Command application: validation, matching, resting, cancels. Every
 * outcome is an event; seq increments by one per event, never skipping.
 *
 * Event order for a place command (the contract docs/matching.md states):
 *   REJECTED                                   (validation failed), or
 *   ACCEPTED, then per fill: TRADE + maker FILLED|PARTIALLY_FILLED
 *     (an STP-cancelled maker: CANCELLED reason STP), then exactly one of
 *     taker FILLED | CANCELLED(STP) | EXPIRED(IOC|FOK|NO_LIQUIDITY) |
 *     PARTIALLY_FILLED (rests after a partial fill) | nothing (rests unfilled).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "market_internal.h"

#include "common/banned.h"

struct run {
    struct me_market *m;
    const struct me_cmd *cmd;
    me_emit_fn emit;
    void *ctx;
};

static void out(struct run *r, struct me_event *ev)
{
    ev->seq = ++r->m->seq;
    ev->cmd_type = r->cmd->type;
    ev->ts = r->cmd->ts;
    r->emit(r->ctx, ev);
}

static void reject(struct run *r, int reason)
{
    struct me_event ev = {0};
    ev.type = ME_EV_REJECTED;
    ev.reason = (uint8_t)reason;
    ev.order_id = r->cmd->order_id;
    ev.user_id = r->cmd->user_id;
    ev.side = r->cmd->side;
    out(r, &ev);
}

/* An order's status event (FILLED, PARTIALLY_FILLED, CANCELLED, EXPIRED). */
static void status(struct run *r, int type, int reason, uint64_t id, uint64_t user, int side,
                   int64_t price, int64_t remaining, int64_t filled, int64_t quote)
{
    struct me_event ev = {0};
    ev.type = (uint8_t)type;
    ev.reason = (uint8_t)reason;
    ev.order_id = id;
    ev.user_id = user;
    ev.side = (uint8_t)side;
    ev.price = price;
    ev.remaining = remaining;
    ev.filled = filled;
    ev.quote = quote;
    out(r, &ev);
}

static void order_status(struct run *r, const struct me_order *o, int type, int reason)
{
    status(r, type, reason, o->id, o->user, o->side, o->price, o->remaining, o->filled, o->quote);
}

/* Price band around the last trade price: [*lo, *hi], clamped to int64.
 * Returns 0 when there is no band (disabled or no trade yet). */
static int band(const struct me_market *m, int64_t *lo, int64_t *hi)
{
    if (!m->rules.band_bps || m->last_price <= 0)
        return 0;
    __int128 w = (__int128)m->last_price * m->rules.band_bps / 10000;
    __int128 h = m->last_price + w, l = m->last_price - w;
    *hi = h > INT64_MAX ? INT64_MAX : (int64_t)h;
    *lo = l < 0 ? 0 : (int64_t)l;
    return 1;
}

/* floor(a * b / d) for non-negative a, b and d > 0, in 64 bits when the
 * product fits (the common case; 128-bit division is a libgcc call) and in
 * 128 bits otherwise. *out is set only when the result fits int64. */
static inline int mul_div(int64_t a, int64_t b, int64_t d, int64_t *out)
{
    int64_t p;
    if (!__builtin_mul_overflow(a, b, &p)) {
        *out = p / d;
        return 0;
    }
    __int128 q = (__int128)a * b / d;
    if (q > INT64_MAX)
        return -1;
    *out = (int64_t)q;
    return 0;
}

static int qty_reason(const struct me_rules *ru, int64_t qty)
{
    if (qty <= 0 || qty % ru->lot)
        return ME_R_BAD_LOT;
    if (qty < ru->min_qty)
        return ME_R_QTY_MIN;
    if (qty > ru->max_qty)
        return ME_R_QTY_MAX;
    return 0;
}

static int validate_place(const struct me_market *m, const struct me_cmd *c)
{
    const struct me_rules *ru = &m->rules;
    int reason;
    if (!c->order_id || !c->user_id || c->side > ME_SELL || c->order_type > ME_MARKET ||
        c->tif > ME_FOK || c->stp > ME_STP_CANCEL_BOTH || (c->flags & ~ME_FLAG_POST_ONLY))
        return ME_R_INVALID;
    int post = c->flags & ME_FLAG_POST_ONLY;
    if (c->order_type == ME_LIMIT) {
        if (c->quote != 0)
            return ME_R_INVALID;
        if (post && c->tif != ME_GTC)
            return ME_R_BAD_TIF;
        if (c->price <= 0 || c->price % ru->tick)
            return ME_R_BAD_TICK;
        if (c->price < ru->min_price || c->price > ru->max_price)
            return ME_R_PRICE_RANGE;
        int64_t lo, hi;
        if (band(m, &lo, &hi) && (c->price > hi || c->price < lo))
            return ME_R_PRICE_BAND;
        if ((reason = qty_reason(ru, c->qty)))
            return reason;
        /* The taker's cumulative notional must fit too: a buy pays at most
         * its limit, a sell can meet bids up to max_price. */
        int64_t worst = c->side == ME_BUY ? c->price : ru->max_price, n;
        if (mul_div(worst, c->qty, m->scale, &n) < 0)
            return ME_R_OVERFLOW;
        if (c->tif == ME_GTC && c->qty > INT64_MAX - m->side_qty[c->side])
            return ME_R_OVERFLOW;
    } else {
        if (post || c->tif == ME_GTC)
            return ME_R_BAD_TIF;
        if (c->price != 0)
            return ME_R_INVALID;
        if (c->qty == 0 && c->quote > 0) {
            if (c->tif == ME_FOK)
                return ME_R_BAD_TIF;
        } else if (c->quote == 0) {
            if ((reason = qty_reason(ru, c->qty)))
                return reason;
            int64_t n;
            if (mul_div(ru->max_price, c->qty, m->scale, &n) < 0)
                return ME_R_OVERFLOW;
        } else {
            return ME_R_INVALID;
        }
    }
    if (me_idmap_get(&m->ids, c->order_id))
        return ME_R_DUPLICATE_ID;
    return 0;
}

static inline int crosses(int taker_side, int64_t maker_price, int64_t limit)
{
    return taker_side == ME_BUY ? maker_price <= limit : maker_price >= limit;
}

/* Would a FOK taker of qty fill completely? Walks the book exactly as the
 * matching loop will, STP included, without changing anything. */
static int fok_fillable(const struct me_market *m, const struct me_cmd *c, int64_t limit, int stp)
{
    const struct me_book_side *os = &m->sides[!c->side];
    int64_t need = c->qty;
    for (uint32_t i = os->n; i-- > 0;) {
        const struct me_level *lv = os->v[i].lv;
        if (!crosses(c->side, lv->price, limit))
            return 0;
        if (stp == ME_STP_NONE) {
            if (lv->qty >= need)
                return 1;
            need -= lv->qty;
            continue;
        }
        for (const struct me_order *o = lv->head; o; o = o->next) {
            if (o->user == c->user_id) {
                if (stp == ME_STP_CANCEL_MAKER)
                    continue;
                return 0; /* the taker is cancelled here */
            }
            if (o->remaining >= need)
                return 1;
            need -= o->remaining;
        }
    }
    return 0;
}

static int place(struct run *r)
{
    struct me_market *m = r->m;
    const struct me_cmd *c = r->cmd;
    int reason = validate_place(m, c);
    if (reason) {
        reject(r, reason);
        return 0;
    }
    int is_limit = c->order_type == ME_LIMIT;
    int rests = is_limit && c->tif == ME_GTC;
    /* The only allocations a command can need happen before any event. */
    if (rests && me_book_reserve(m) < 0)
        return -1;

    int side = c->side;
    struct me_book_side *os = &m->sides[!side];
    int stp = c->stp ? c->stp : m->rules.stp_default;
    int64_t limit = c->price;
    if (!is_limit) {
        int64_t lo, hi;
        if (band(m, &lo, &hi))
            limit = side == ME_BUY ? hi : lo;
        else
            limit = side == ME_BUY ? INT64_MAX : 0;
    }
    if ((c->flags & ME_FLAG_POST_ONLY) && os->n &&
        crosses(side, os->v[os->n - 1].lv->price, limit)) {
        reject(r, ME_R_POST_ONLY);
        return 0;
    }

    struct me_event ev = {0};
    ev.type = ME_EV_ACCEPTED;
    ev.order_id = c->order_id;
    ev.user_id = c->user_id;
    ev.side = (uint8_t)side;
    ev.price = c->price;
    ev.qty = c->qty;
    ev.quote = c->quote;
    out(r, &ev);
    uint64_t prio = m->next_prio++;

    if (c->tif == ME_FOK && !fok_fillable(m, c, limit, stp)) {
        status(r, ME_EV_EXPIRED, ME_R_FOK, c->order_id, c->user_id, side, c->price, c->qty, 0, 0);
        return 0;
    }

    int by_quote = !is_limit && c->qty == 0;
    int64_t remaining = by_quote ? c->quote : c->qty; /* budget if by_quote */
    int64_t filled = 0, quote = 0;
    int stp_hit = 0, budget_done = 0;
    const int64_t lot = m->rules.lot;
    while (os->n && remaining > 0) {
        struct me_level *lv = os->v[os->n - 1].lv;
        if (!crosses(side, lv->price, limit))
            break;
        struct me_order *mk = lv->head;
        if (mk->user == c->user_id && stp != ME_STP_NONE) {
            if (stp != ME_STP_CANCEL_TAKER) {
                order_status(r, mk, ME_EV_CANCELLED, ME_R_STP);
                me_book_remove(m, mk);
            }
            if (stp != ME_STP_CANCEL_MAKER) {
                stp_hit = 1;
                break;
            }
            continue;
        }
        int64_t q;
        if (by_quote) {
            int64_t afford;
            if (mul_div(remaining, m->scale, lv->price, &afford) < 0)
                afford = INT64_MAX; /* more than any maker holds */
            afford -= afford % lot;
            q = afford < mk->remaining ? afford : mk->remaining;
            if (!q) {
                budget_done = 1;
                break;
            }
        } else {
            q = remaining < mk->remaining ? remaining : mk->remaining;
        }
        /* Fits: q <= the maker's qty, whose notional was checked. */
        int64_t notional = 0;
        (void)mul_div(lv->price, q, m->scale, &notional);
        mk->remaining -= q;
        mk->filled += q;
        mk->quote += notional;
        lv->qty -= q;
        m->side_qty[!side] -= q;
        m->last_price = lv->price;
        filled += q;
        quote += notional;
        remaining -= by_quote ? notional : q;

        ev = (struct me_event){0};
        ev.type = ME_EV_TRADE;
        ev.order_id = c->order_id;
        ev.user_id = c->user_id;
        ev.side = (uint8_t)side;
        ev.price = lv->price;
        ev.qty = q;
        ev.quote = notional;
        ev.remaining = remaining;
        ev.maker_order_id = mk->id;
        ev.maker_user_id = mk->user;
        out(r, &ev);
        if (mk->remaining) {
            order_status(r, mk, ME_EV_PARTIALLY_FILLED, ME_R_NONE);
        } else {
            order_status(r, mk, ME_EV_FILLED, ME_R_NONE);
            me_book_remove(m, mk);
        }
    }

    if (stp_hit) {
        status(r, ME_EV_CANCELLED, ME_R_STP, c->order_id, c->user_id, side, c->price, remaining,
               filled, quote);
    } else if (remaining == 0 || budget_done) {
        status(r, ME_EV_FILLED, ME_R_NONE, c->order_id, c->user_id, side, c->price, remaining,
               filled, quote);
    } else if (rests) {
        struct me_order *o =
            me_book_add(m, c->order_id, c->user_id, side, c->price, remaining, (uint8_t)stp, prio);
        o->filled = filled;
        o->quote = quote;
        if (filled)
            order_status(r, o, ME_EV_PARTIALLY_FILLED, ME_R_NONE);
    } else {
        status(r, ME_EV_EXPIRED, is_limit ? ME_R_IOC : ME_R_NO_LIQUIDITY, c->order_id, c->user_id,
               side, c->price, remaining, filled, quote);
    }
    return 0;
}

static void cancel(struct run *r)
{
    struct me_order *o = me_idmap_get(&r->m->ids, r->cmd->order_id);
    if (!o) {
        reject(r, ME_R_NOT_FOUND);
        return;
    }
    if (o->user != r->cmd->user_id) {
        reject(r, ME_R_NOT_OWNER);
        return;
    }
    order_status(r, o, ME_EV_CANCELLED, ME_R_USER_CANCEL);
    me_book_remove(r->m, o);
}

/* Book priority order: bids before asks, better price first, then
 * arrival. cancel-all emits in this order, a function of the book alone,
 * so the event stream survives snapshot/restore. */
static int by_priority(const void *a, const void *b)
{
    const struct me_order *x = *(const struct me_order *const *)a;
    const struct me_order *y = *(const struct me_order *const *)b;
    if (x->side != y->side)
        return x->side < y->side ? -1 : 1;
    int64_t kx = side_key(x->side, x->price), ky = side_key(y->side, y->price);
    if (kx != ky)
        return kx > ky ? -1 : 1;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

/* O(k log k) in the user's k open orders. */
static int cancel_all(struct run *r)
{
    struct me_market *m = r->m;
    struct me_user *u = me_idmap_get(&m->user_ids, r->cmd->user_id);
    if (!u)
        return 0;
    size_t k = u->count;
    if (k > m->scratch_cap) { /* before any event: failure changes nothing */
        struct me_order **v = realloc(m->scratch, k * sizeof(*v));
        if (!v)
            return -1;
        m->scratch = v;
        m->scratch_cap = k;
    }
    size_t n = 0;
    for (struct me_order *o = u->head; o; o = o->unext)
        m->scratch[n++] = o;
    qsort(m->scratch, n, sizeof(*m->scratch), by_priority);
    for (size_t i = 0; i < n; i++) { /* u is freed with the last order */
        order_status(r, m->scratch[i], ME_EV_CANCELLED, ME_R_CANCEL_ALL);
        me_book_remove(m, m->scratch[i]);
    }
    return 0;
}

int me_market_apply(struct me_market *m, const struct me_cmd *cmd, me_emit_fn emit, void *ctx)
{
    struct run r = {m, cmd, emit, ctx};
    switch (cmd->type) {
    case ME_CMD_PLACE: return place(&r);
    case ME_CMD_CANCEL: cancel(&r); return 0;
    case ME_CMD_CANCEL_ALL: return cancel_all(&r);
    default: reject(&r, ME_R_INVALID); return 0;
    }
}

int me_market_reject(struct me_market *m, const struct me_cmd *cmd, int reason, me_emit_fn emit,
                     void *ctx)
{
    if (reason <= ME_R_NONE || reason >= ME_R_MAX_)
        return -1;
    struct run r = {m, cmd, emit, ctx};
    reject(&r, reason);
    return 0;
}
