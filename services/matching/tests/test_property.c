/*
 * Property tests on seeded random command streams. Each stream runs on the
 * engine and on a reference model written here for obviousness, not speed
 * (orders in one array in arrival order; every match step scans all of them
 * for the best price, earliest arrival; FOK is decided by dry-running the
 * match on a copy). Checked after every command:
 *   - the engine's event stream equals the model's, event for event
 *     (hash of the canonical encoding, the first difference printed);
 *   - seq is gap-free; me_market_check passes (book never crossed, level
 *     sums, FIFO, id map);
 *   - quantity is conserved per order: trades sum to `filled`, and
 *     filled + remaining == ordered qty at every status event;
 *   - every accepted order ends in exactly one terminal state, or rests
 *     (and then is in the book with the tracked remaining).
 * Plus snapshot/restore at a random point of every stream: the restored
 * market re-snapshots to identical bytes and the rest of the stream gives
 * an identical event stream (hash compare).
 * Deterministic seeds; the failing stream's seed and command are printed.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"

#include "common/banned.h"

#define STREAMS 3000
#define MAX_CMDS 260
#define RMAX 512
#define MAX_ID 400

/* ---- reference model ---------------------------------------------------- */

struct rorder {
    uint64_t id, user, prio;
    int64_t price, rem, filled, quote;
    uint8_t side, stp;
};

struct refm {
    struct me_rules ru;
    int64_t scale;
    uint64_t seq, next_prio;
    int64_t last;
    int64_t side_qty[2];
    struct rorder o[RMAX];
    size_t n;
    struct evlog *log;
    int mute;
    const struct me_cmd *cmd;
};

static void r_out(struct refm *r, struct me_event ev)
{
    ev.seq = ++r->seq;
    ev.cmd_type = r->cmd->type;
    ev.ts = r->cmd->ts;
    if (!r->mute)
        evlog_emit(r->log, &ev);
}

static void r_status(struct refm *r, int type, int reason, uint64_t id, uint64_t user, int side,
                     int64_t price, int64_t rem, int64_t filled, int64_t quote)
{
    struct me_event ev = {0};
    ev.type = (uint8_t)type;
    ev.reason = (uint8_t)reason;
    ev.order_id = id;
    ev.user_id = user;
    ev.side = (uint8_t)side;
    ev.price = price;
    ev.remaining = rem;
    ev.filled = filled;
    ev.quote = quote;
    r_out(r, ev);
}

static void r_ostatus(struct refm *r, const struct rorder *o, int type, int reason)
{
    r_status(r, type, reason, o->id, o->user, o->side, o->price, o->rem, o->filled, o->quote);
}

static void r_reject(struct refm *r, int reason)
{
    struct me_event ev = {0};
    ev.type = ME_EV_REJECTED;
    ev.reason = (uint8_t)reason;
    ev.order_id = r->cmd->order_id;
    ev.user_id = r->cmd->user_id;
    ev.side = r->cmd->side;
    r_out(r, ev);
}

static long r_find(const struct refm *r, uint64_t id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->o[i].id == id)
            return (long)i;
    return -1;
}

static void r_remove(struct refm *r, size_t i)
{
    r->side_qty[r->o[i].side] -= r->o[i].rem;
    memmove(&r->o[i], &r->o[i + 1], (r->n - i - 1) * sizeof(r->o[0]));
    r->n--;
}

static int r_qty_reason(const struct me_rules *ru, int64_t qty)
{
    if (qty <= 0 || qty % ru->lot)
        return ME_R_BAD_LOT;
    if (qty < ru->min_qty)
        return ME_R_QTY_MIN;
    if (qty > ru->max_qty)
        return ME_R_QTY_MAX;
    return 0;
}

/* Band as [lo, hi] in 128 bits; 0 when there is none. */
static int r_band(const struct refm *r, __int128 *lo, __int128 *hi)
{
    if (!r->ru.band_bps || r->last <= 0)
        return 0;
    __int128 w = (__int128)r->last * r->ru.band_bps / 10000;
    *lo = r->last - w;
    *hi = r->last + w;
    return 1;
}

static int r_validate(const struct refm *r, const struct me_cmd *c)
{
    const struct me_rules *ru = &r->ru;
    int why;
    if (!c->order_id || !c->user_id || c->side > 1 || c->order_type > 1 || c->tif > 2 ||
        c->stp > 4 || (c->flags & ~1u))
        return ME_R_INVALID;
    int post = c->flags & 1;
    if (c->order_type == ME_LIMIT) {
        if (c->quote)
            return ME_R_INVALID;
        if (post && c->tif != ME_GTC)
            return ME_R_BAD_TIF;
        if (c->price <= 0 || c->price % ru->tick)
            return ME_R_BAD_TICK;
        if (c->price < ru->min_price || c->price > ru->max_price)
            return ME_R_PRICE_RANGE;
        __int128 lo, hi;
        if (r_band(r, &lo, &hi) && (c->price > hi || c->price < lo))
            return ME_R_PRICE_BAND;
        if ((why = r_qty_reason(ru, c->qty)))
            return why;
        if ((__int128)(c->side == ME_BUY ? c->price : ru->max_price) * c->qty / r->scale >
            INT64_MAX)
            return ME_R_OVERFLOW;
        if (c->tif == ME_GTC && c->qty > INT64_MAX - r->side_qty[c->side])
            return ME_R_OVERFLOW;
    } else {
        if (post || c->tif == ME_GTC)
            return ME_R_BAD_TIF;
        if (c->price)
            return ME_R_INVALID;
        if (c->qty == 0 && c->quote > 0) {
            if (c->tif == ME_FOK)
                return ME_R_BAD_TIF;
        } else if (c->quote == 0) {
            if ((why = r_qty_reason(ru, c->qty)))
                return why;
            if ((__int128)ru->max_price * c->qty / r->scale > INT64_MAX)
                return ME_R_OVERFLOW;
        } else {
            return ME_R_INVALID;
        }
    }
    return r_find(r, c->order_id) >= 0 ? ME_R_DUPLICATE_ID : 0;
}

struct r_taker {
    int64_t rem, filled, quote;
    int stp_hit, budget_done;
};

/* Best crossing maker: best price, then earliest arrival (array order). */
static long r_best(const struct refm *r, int side, int64_t limit)
{
    long best = -1;
    for (size_t i = 0; i < r->n; i++) {
        const struct rorder *o = &r->o[i];
        if (o->side == side)
            continue;
        if (side == ME_BUY ? o->price > limit : o->price < limit)
            continue;
        if (best < 0 ||
            (side == ME_BUY ? o->price < r->o[best].price : o->price > r->o[best].price))
            best = (long)i;
    }
    return best;
}

static void r_match(struct refm *r, const struct me_cmd *c, int stp, int64_t limit, int by_quote,
                    struct r_taker *t)
{
    while (t->rem > 0) {
        long b = r_best(r, c->side, limit);
        if (b < 0)
            break;
        struct rorder *mk = &r->o[b];
        if (mk->user == c->user_id && stp != ME_STP_NONE) {
            if (stp != ME_STP_CANCEL_TAKER) {
                r_ostatus(r, mk, ME_EV_CANCELLED, ME_R_STP);
                r_remove(r, (size_t)b);
            }
            if (stp != ME_STP_CANCEL_MAKER) {
                t->stp_hit = 1;
                break;
            }
            continue;
        }
        int64_t q;
        if (by_quote) {
            __int128 a = (__int128)t->rem * r->scale / mk->price;
            a -= a % r->ru.lot;
            q = a < mk->rem ? (int64_t)a : mk->rem;
            if (!q) {
                t->budget_done = 1;
                break;
            }
        } else {
            q = t->rem < mk->rem ? t->rem : mk->rem;
        }
        int64_t notional = (int64_t)((__int128)mk->price * q / r->scale);
        mk->rem -= q;
        mk->filled += q;
        mk->quote += notional;
        r->side_qty[mk->side] -= q;
        r->last = mk->price;
        t->filled += q;
        t->quote += notional;
        t->rem -= by_quote ? notional : q;
        struct me_event ev = {0};
        ev.type = ME_EV_TRADE;
        ev.order_id = c->order_id;
        ev.user_id = c->user_id;
        ev.side = c->side;
        ev.price = mk->price;
        ev.qty = q;
        ev.quote = notional;
        ev.remaining = t->rem;
        ev.maker_order_id = mk->id;
        ev.maker_user_id = mk->user;
        r_out(r, ev);
        if (mk->rem) {
            r_ostatus(r, mk, ME_EV_PARTIALLY_FILLED, 0);
        } else {
            r_ostatus(r, mk, ME_EV_FILLED, 0);
            r_remove(r, (size_t)b);
        }
    }
}

static struct refm fok_copy;

static void r_place(struct refm *r, const struct me_cmd *c)
{
    int why = r_validate(r, c);
    if (why) {
        r_reject(r, why);
        return;
    }
    int is_limit = c->order_type == ME_LIMIT;
    int stp = c->stp ? c->stp : r->ru.stp_default;
    int64_t limit = c->price;
    if (!is_limit) {
        __int128 lo, hi;
        int b = r_band(r, &lo, &hi);
        limit = c->side == ME_BUY ? (b && hi < INT64_MAX ? (int64_t)hi : INT64_MAX)
                                  : (b && lo > 0 ? (int64_t)lo : 0);
    }
    if ((c->flags & 1) && r_best(r, c->side, limit) >= 0) {
        r_reject(r, ME_R_POST_ONLY);
        return;
    }
    struct me_event ev = {0};
    ev.type = ME_EV_ACCEPTED;
    ev.order_id = c->order_id;
    ev.user_id = c->user_id;
    ev.side = c->side;
    ev.price = c->price;
    ev.qty = c->qty;
    ev.quote = c->quote;
    r_out(r, ev);
    uint64_t prio = r->next_prio++;
    int by_quote = !is_limit && c->qty == 0;
    if (c->tif == ME_FOK) {
        fok_copy = *r;
        fok_copy.mute = 1;
        struct r_taker dry = {c->qty, 0, 0, 0, 0};
        r_match(&fok_copy, c, stp, limit, 0, &dry);
        if (dry.rem) {
            r_status(r, ME_EV_EXPIRED, ME_R_FOK, c->order_id, c->user_id, c->side, c->price, c->qty,
                     0, 0);
            return;
        }
    }
    struct r_taker t = {by_quote ? c->quote : c->qty, 0, 0, 0, 0};
    r_match(r, c, stp, limit, by_quote, &t);
    if (t.stp_hit) {
        r_status(r, ME_EV_CANCELLED, ME_R_STP, c->order_id, c->user_id, c->side, c->price, t.rem,
                 t.filled, t.quote);
    } else if (t.rem == 0 || t.budget_done) {
        r_status(r, ME_EV_FILLED, 0, c->order_id, c->user_id, c->side, c->price, t.rem, t.filled,
                 t.quote);
    } else if (is_limit && c->tif == ME_GTC) {
        struct rorder *o = &r->o[r->n++];
        *o = (struct rorder){c->order_id, c->user_id, prio,    c->price,    t.rem,
                             t.filled,    t.quote,    c->side, (uint8_t)stp};
        r->side_qty[c->side] += t.rem;
        if (t.filled)
            r_ostatus(r, o, ME_EV_PARTIALLY_FILLED, 0);
    } else {
        r_status(r, ME_EV_EXPIRED, is_limit ? ME_R_IOC : ME_R_NO_LIQUIDITY, c->order_id, c->user_id,
                 c->side, c->price, t.rem, t.filled, t.quote);
    }
}

static void r_apply(struct refm *r, const struct me_cmd *c)
{
    r->cmd = c;
    if (c->type == ME_CMD_PLACE) {
        r_place(r, c);
    } else if (c->type == ME_CMD_CANCEL) {
        long i = r_find(r, c->order_id);
        if (!c->order_id || i < 0)
            r_reject(r, ME_R_NOT_FOUND);
        else if (r->o[i].user != c->user_id)
            r_reject(r, ME_R_NOT_OWNER);
        else {
            r_ostatus(r, &r->o[i], ME_EV_CANCELLED, ME_R_USER_CANCEL);
            r_remove(r, (size_t)i);
        }
    } else if (c->type == ME_CMD_CANCEL_ALL) {
        for (int side = ME_BUY; side <= ME_SELL; side++) {
            for (;;) { /* the user's best order of this side, earliest first */
                long b = -1;
                for (size_t i = 0; i < r->n; i++) {
                    const struct rorder *o = &r->o[i];
                    if (o->side != side || o->user != c->user_id)
                        continue;
                    if (b < 0 ||
                        (side == ME_BUY ? o->price > r->o[b].price : o->price < r->o[b].price))
                        b = (long)i;
                }
                if (b < 0)
                    break;
                r_ostatus(r, &r->o[b], ME_EV_CANCELLED, ME_R_CANCEL_ALL);
                r_remove(r, (size_t)b);
            }
        }
    } else {
        r_reject(r, ME_R_INVALID);
    }
}

/* ---- stream generation -------------------------------------------------- */

static int64_t pow10i(int e)
{
    int64_t v = 1;
    while (e-- > 0)
        v *= 10;
    return v;
}

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int64_t rin(struct rng *g, int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd(g) % (uint64_t)(hi - lo + 1));
}

static struct me_rules random_rules(struct rng *g)
{
    static const int64_t ticks[] = {1, 5, 100};
    struct me_rules r = {0};
    r.base_scale = (uint8_t)rin(g, 0, 3);
    r.stp_default = (uint8_t)rin(g, ME_STP_NONE, ME_STP_CANCEL_BOTH);
    r.tick = ticks[rin(g, 0, 2)];
    r.lot = rin(g, 0, 1) ? 10 : 1;
    r.min_qty = r.lot * rin(g, 1, 2);
    r.max_qty = rin(g, 0, 3) ? r.lot * 40 : INT64_MAX / 4;
    r.min_price = r.tick;
    r.max_price = r.tick * 1000;
    if (rin(g, 0, 3) == 0) {
        r.band_bps = (uint32_t)rin(g, 300, 3000);
        r.last_price = r.tick * 100;
    }
    r.order_capacity = (uint32_t)rin(g, 1, 64);
    return r;
}

static struct me_cmd random_cmd(struct rng *g, const struct me_rules *ru, const struct refm *ref,
                                uint64_t *next_id, uint64_t ts)
{
    struct me_cmd c = {0};
    c.ts = ts;
    c.user_id = (uint64_t)rin(g, 1, 3);
    int64_t mid = ru->tick * 100;
    int64_t dice = rin(g, 0, 99);
    if (dice < 22) {
        c.type = ME_CMD_CANCEL;
        if (ref->n && rin(g, 0, 2)) {
            const struct rorder *o = &ref->o[rin(g, 0, (int64_t)ref->n - 1)];
            c.order_id = o->id;
            c.user_id = rin(g, 0, 5) ? o->user : c.user_id;
        } else {
            c.order_id = (uint64_t)rin(g, 0, (int64_t)*next_id);
        }
        return c;
    }
    if (dice < 25) {
        c.type = ME_CMD_CANCEL_ALL;
        return c;
    }
    if (dice == 25) {
        c.type = (uint8_t)rin(g, 4, 255);
        return c;
    }
    c.type = ME_CMD_PLACE;
    c.side = (uint8_t)rin(g, 0, 1);
    c.order_id = ++*next_id;
    if (rin(g, 0, 30) == 0 && ref->n) /* duplicate of an open id */
        c.order_id = ref->o[rin(g, 0, (int64_t)ref->n - 1)].id;
    else if (rin(g, 0, 40) == 0) /* reuse a finished id: legal */
        c.order_id = (uint64_t)rin(g, 0, (int64_t)*next_id);
    if (rin(g, 0, 4))
        c.stp = (uint8_t)rin(g, 0, 4);
    c.qty = ru->lot * rin(g, 1, 25);
    if (dice < 80) {
        c.order_type = ME_LIMIT;
        int64_t t = rin(g, 0, 9);
        c.tif = t < 6 ? ME_GTC : t < 8 ? ME_IOC : ME_FOK;
        if (c.tif == ME_GTC && rin(g, 0, 9) == 0)
            c.flags = ME_FLAG_POST_ONLY;
        c.price = mid + ru->tick * rin(g, -6, 6);
    } else {
        c.order_type = ME_MARKET;
        c.tif = rin(g, 0, 4) ? ME_IOC : ME_FOK;
        if (rin(g, 0, 2) == 0) {
            c.quote = rin(g, 1, mid * 30 * ru->lot / pow10i(ru->base_scale) + 50);
            c.qty = 0;
        }
    }
    /* A few malformed fields; each is a rejection path. */
    switch (rin(g, 0, 40)) {
    case 0: c.price += 1; break;
    case 1: c.qty += 1; break;
    case 2: c.qty = ru->max_qty + ru->lot; break;
    case 3: c.order_id = 0; break;
    case 4: c.tif = (uint8_t)rin(g, 0, 5); break;
    case 5: c.flags = (uint8_t)rin(g, 0, 3); break;
    case 6: c.price = ru->max_price + ru->tick; break;
    default: break;
    }
    return c;
}

/* ---- per-order bookkeeping from the event stream ------------------------ */

struct track {
    int live; /* accepted, no terminal event yet */
    int by_quote;
    int64_t qty;
    int64_t traded;
};

static struct track tr[MAX_ID + 1];
static char why[512];

static struct track *tr_get(uint64_t id)
{
    return id <= MAX_ID ? &tr[id] : NULL;
}

/* Checks one command's events against the bookkeeping; returns 0 or -1
 * with `why` set. */
static int track_events(const struct evlog *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct me_event *e = &l->ev[i];
        struct track *t = tr_get(e->order_id);
        if (e->type == ME_EV_REJECTED)
            continue;
        if (!t) {
            snprintf(why, sizeof(why), "event for id %" PRIu64 " out of range", e->order_id);
            return -1;
        }
        switch (e->type) {
        case ME_EV_ACCEPTED:
            if (t->live) {
                snprintf(why, sizeof(why), "id %" PRIu64 " accepted twice", e->order_id);
                return -1;
            }
            *t = (struct track){1, e->qty == 0, e->qty, 0};
            break;
        case ME_EV_TRADE: {
            struct track *mk = tr_get(e->maker_order_id);
            if (!t->live || !mk || !mk->live || e->qty <= 0) {
                snprintf(why, sizeof(why), "trade between non-live orders");
                return -1;
            }
            t->traded += e->qty;
            mk->traded += e->qty;
            break;
        }
        default:
            if (!t->live) {
                snprintf(why, sizeof(why), "%s for id %" PRIu64 " not live",
                         me_event_type_name(e->type), e->order_id);
                return -1;
            }
            if (e->filled != t->traded || (!t->by_quote && e->filled + e->remaining != t->qty)) {
                snprintf(why, sizeof(why),
                         "qty not conserved for id %" PRIu64 ": qty %" PRId64 " traded %" PRId64
                         " filled %" PRId64 " rem %" PRId64,
                         e->order_id, t->qty, t->traded, e->filled, e->remaining);
                return -1;
            }
            if (e->type != ME_EV_PARTIALLY_FILLED)
                t->live = 0; /* terminal: a second one trips !live above */
            break;
        }
    }
    return 0;
}

/* Live orders are exactly the open orders of the book, with their qty. */
static int track_matches_book(const struct me_market *m)
{
    size_t live = 0;
    for (uint64_t id = 1; id <= MAX_ID; id++) {
        struct me_order_info oi;
        int open = me_market_find(m, id, &oi) == 0;
        if (tr[id].live != open) {
            snprintf(why, sizeof(why), "id %" PRIu64 " live=%d but open=%d", id, tr[id].live, open);
            return -1;
        }
        if (open && (oi.remaining != tr[id].qty - tr[id].traded || oi.filled != tr[id].traded)) {
            snprintf(why, sizeof(why), "id %" PRIu64 " remaining differs", id);
            return -1;
        }
        live += open;
    }
    if (live != me_market_order_count(m)) {
        snprintf(why, sizeof(why), "book has orders the stream never accepted");
        return -1;
    }
    return 0;
}

/* ---- the property run --------------------------------------------------- */

static struct evlog eng_log, ref_log, snap_log;
static uint64_t stats[8]; /* events by type over all streams */
static struct refm ref;
static struct me_cmd cmds[MAX_CMDS];

static void diag(uint64_t seed, size_t at, const struct me_cmd *c)
{
    fprintf(stderr,
            "# FAILED seed=0x%016" PRIx64 " cmd #%zu type=%u id=%" PRIu64 " user=%" PRIu64
            " side=%u otype=%u tif=%u stp=%u flags=%u price=%" PRId64 " qty=%" PRId64
            " quote=%" PRId64 "\n# %s\n",
            seed, at, c->type, c->order_id, c->user_id, c->side, c->order_type, c->tif, c->stp,
            c->flags, c->price, c->qty, c->quote, why);
}

/* Runs one stream; 0 if every property held. */
static int run_stream(uint64_t seed)
{
    struct rng g = {seed};
    struct me_rules ru = random_rules(&g);
    struct me_market *m = me_market_new(&ru), *m2 = NULL;
    uint8_t *snap = NULL, *snap2 = NULL;
    size_t snap_len = 0, snap2_len = 0;
    int rc = -1;
    if (!m)
        return -1;
    memset(&ref, 0, sizeof(ref));
    ref.ru = ru;
    ref.scale = pow10i(ru.base_scale);
    ref.next_prio = 1;
    ref.last = ru.last_price;
    ref.log = &ref_log;
    memset(tr, 0, sizeof(tr));
    evlog_init(&eng_log, 1);
    evlog_init(&ref_log, 1);
    size_t n = (size_t)rin(&g, 20, MAX_CMDS);
    size_t cut = (size_t)rin(&g, 0, (int64_t)n);
    uint64_t next_id = 0, suffix = ME_HASH_INIT;
    size_t i = 0;
    for (; i < n; i++) {
        if (i == cut) {
            if (me_market_snapshot(m, &snap, &snap_len) < 0 ||
                !(m2 = me_market_restore(snap, snap_len)) ||
                me_market_snapshot(m2, &snap2, &snap2_len) < 0 || snap_len != snap2_len ||
                memcmp(snap, snap2, snap_len)) {
                snprintf(why, sizeof(why), "snapshot/restore round trip differs");
                goto out;
            }
            evlog_init(&snap_log, me_market_seq(m) + 1);
            if (track_matches_book(m2) < 0)
                goto out;
        }
        cmds[i] = random_cmd(&g, &ru, &ref, &next_id, i + 1);
        if (next_id > MAX_ID - 2)
            next_id = MAX_ID - 2;
        evlog_clear(&eng_log);
        evlog_clear(&ref_log);
        if (me_market_apply(m, &cmds[i], evlog_emit, &eng_log) < 0) {
            snprintf(why, sizeof(why), "apply failed");
            goto out;
        }
        r_apply(&ref, &cmds[i]);
        if (eng_log.hash != ref_log.hash || eng_log.n != ref_log.n) {
            snprintf(why, sizeof(why), "engine and reference event streams differ");
            fprintf(stderr, "# engine:\n");
            evlog_dump(&eng_log);
            fprintf(stderr, "# reference:\n");
            evlog_dump(&ref_log);
            goto out;
        }
        if (eng_log.seq_errors) {
            snprintf(why, sizeof(why), "seq gap");
            goto out;
        }
        if (me_market_check(m) < 0) {
            snprintf(why, sizeof(why), "book invariant broken (crossed or sums)");
            goto out;
        }
        if (track_events(&eng_log) < 0)
            goto out;
        for (size_t k = 0; k < eng_log.n; k++)
            stats[eng_log.ev[k].type & 7]++;
        if (m2) {
            for (size_t k = 0; k < eng_log.n; k++)
                suffix = me_event_hash(suffix, &eng_log.ev[k]);
            if (me_market_apply(m2, &cmds[i], evlog_emit, &snap_log) < 0)
                goto out;
        }
    }
    if (track_matches_book(m) < 0)
        goto out;
    if (i == cut) { /* snapshot at the very end: restore must equal m */
        if (me_market_snapshot(m, &snap, &snap_len) < 0 ||
            !(m2 = me_market_restore(snap, snap_len))) {
            snprintf(why, sizeof(why), "final snapshot failed");
            goto out;
        }
        evlog_init(&snap_log, me_market_seq(m) + 1);
    }
    if (snap_log.hash != suffix || snap_log.seq_errors || me_market_seq(m2) != me_market_seq(m) ||
        me_market_check(m2) < 0 || track_matches_book(m2) < 0) {
        if (!why[0])
            snprintf(why, sizeof(why), "replay after restore at %zu differs", cut);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        diag(seed, i, &cmds[i < n ? i : n - 1]);
    free(snap);
    free(snap2);
    me_market_free(m2);
    me_market_free(m);
    return rc;
}

static void test_random_streams(void **state)
{
    (void)state;
    /* MATCHING_PROP_SEED=<seed printed on failure> reruns just that stream. */
    const char *env = getenv("MATCHING_PROP_SEED");
    uint64_t base = env ? strtoull(env, NULL, 0) : 0x6d61746368ull;
    int streams = env ? 1 : STREAMS;
    int failed = 0;
    for (int s = 0; s < streams && failed < 3; s++) {
        why[0] = 0;
        if (run_stream(base + (uint64_t)s) < 0)
            failed++;
    }
    print_message("# %d streams: accepted %" PRIu64 " rejected %" PRIu64 " trades %" PRIu64
                  " partial %" PRIu64 " filled %" PRIu64 " cancelled %" PRIu64 " expired %" PRIu64
                  "\n",
                  streams, stats[1], stats[2], stats[3], stats[4], stats[5], stats[6], stats[7]);
    if (failed)
        fail_msg("%d stream(s) failed; rerun one with MATCHING_PROP_SEED=<seed>", failed);
}

/* The properties must be able to fail: a reference model that disagrees
 * by one detail (no time priority) is caught. Guards against a vacuous
 * comparison (e.g. both logs silently empty). */
static void test_reference_comparison_is_not_vacuous(void **state)
{
    (void)state;
    struct me_rules ru = test_rules();
    struct me_market *m = me_market_new(&ru);
    assert_non_null(m);
    memset(&ref, 0, sizeof(ref));
    ref.ru = ru;
    ref.scale = 1000;
    ref.next_prio = 1;
    ref.log = &ref_log;
    evlog_init(&eng_log, 1);
    evlog_init(&ref_log, 1);
    const struct me_cmd seq[] = {
        cmd_limit(1, 1, ME_SELL, 1000, 100, ME_GTC),
        cmd_limit(2, 2, ME_SELL, 1000, 100, ME_GTC),
        cmd_limit(3, 3, ME_BUY, 1000, 100, ME_GTC),
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(me_market_apply(m, &seq[i], evlog_emit, &eng_log), 0);
        if (i == 2) /* break the model: swap the two makers' arrival order */
            memcpy(&ref.o[2], &ref.o[0], sizeof(ref.o[0])),
                memmove(&ref.o[0], &ref.o[1], 2 * sizeof(ref.o[0]));
        r_apply(&ref, &seq[i]);
    }
    assert_int_equal(eng_log.total, ref_log.total);
    assert_true(eng_log.total > 4);
    assert_true(eng_log.hash != ref_log.hash);
    me_market_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_comparison_is_not_vacuous),
        cmocka_unit_test(test_random_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
