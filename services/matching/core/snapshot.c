/*
 * Snapshot format (all integers little-endian, fixed width):
 *   header  "MESNAP01" u32 version(1) u32 zero
 *   rules   u8 base_scale u8 stp_default u16 zero u32 band_bps
 *           i64 tick lot min_qty max_qty min_price max_price last_price
 *           u32 order_capacity
 *   state   u64 seq u64 next_prio i64 last_price u64 order_count
 *   orders  order_count x { u64 id u64 user u64 prio i64 price
 *           i64 remaining i64 filled i64 quote u8 side u8 stp }
 *           bids best level first, then asks best first, FIFO in a level
 *   trailer u64 FNV-1a of everything before it
 * Restore trusts nothing: checksum, every field range, the ordering and
 * an uncrossed book are verified before a market is returned.
 */
#include <stdlib.h>
#include <string.h>

#include "market_internal.h"

#include "common/banned.h"

#define MAGIC "MESNAP01"
#define VERSION 1u
#define HDR_SIZE (8 + 4 + 4)
#define RULES_SIZE (1 + 1 + 2 + 4 + 7 * 8 + 4)
#define STATE_SIZE (4 * 8)
#define ORDER_SIZE (7 * 8 + 2)
#define FIXED_SIZE (HDR_SIZE + RULES_SIZE + STATE_SIZE + 8)

struct wr {
    uint8_t *p;
};

static void w8(struct wr *w, uint8_t v)
{
    *w->p++ = v;
}
static void w32(struct wr *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}
static void w64(struct wr *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}

struct rd {
    const uint8_t *p;
};

static uint8_t r8(struct rd *r)
{
    return *r->p++;
}
static uint32_t r32(struct rd *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)*r->p++ << (8 * i);
    return v;
}
static uint64_t r64(struct rd *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)*r->p++ << (8 * i);
    return v;
}

static void write_side(const struct me_market *m, int side, struct wr *w)
{
    const struct me_book_side *s = &m->sides[side];
    for (uint32_t i = s->n; i-- > 0;) {
        for (const struct me_order *o = s->v[i].lv->head; o; o = o->next) {
            w64(w, o->id);
            w64(w, o->user);
            w64(w, o->prio);
            w64(w, (uint64_t)o->price);
            w64(w, (uint64_t)o->remaining);
            w64(w, (uint64_t)o->filled);
            w64(w, (uint64_t)o->quote);
            w8(w, o->side);
            w8(w, o->stp);
        }
    }
}

int me_market_snapshot(const struct me_market *m, uint8_t **out, size_t *len)
{
    size_t count = m->ids.count;
    size_t n = FIXED_SIZE + count * ORDER_SIZE;
    uint8_t *buf = malloc(n);
    if (!buf)
        return -1;
    struct wr w = {buf};
    const struct me_rules *ru = &m->rules;
    memcpy(w.p, MAGIC, 8);
    w.p += 8;
    w32(&w, VERSION);
    w32(&w, 0);
    w8(&w, ru->base_scale);
    w8(&w, ru->stp_default);
    w8(&w, 0);
    w8(&w, 0);
    w32(&w, ru->band_bps);
    w64(&w, (uint64_t)ru->tick);
    w64(&w, (uint64_t)ru->lot);
    w64(&w, (uint64_t)ru->min_qty);
    w64(&w, (uint64_t)ru->max_qty);
    w64(&w, (uint64_t)ru->min_price);
    w64(&w, (uint64_t)ru->max_price);
    w64(&w, (uint64_t)ru->last_price);
    w32(&w, ru->order_capacity);
    w64(&w, m->seq);
    w64(&w, m->next_prio);
    w64(&w, (uint64_t)m->last_price);
    w64(&w, count);
    write_side(m, ME_BUY, &w);
    write_side(m, ME_SELL, &w);
    w64(&w, me_hash(ME_HASH_INIT, buf, (size_t)(w.p - buf)));
    *out = buf;
    *len = n;
    return 0;
}

struct snap_order {
    uint64_t id, user, prio;
    int64_t price, remaining, filled, quote;
    uint8_t side, stp;
    uint32_t level_start; /* index of the first order of its level */
};

/* Range checks for one order against the rules, then its place in the
 * priority sequence relative to the previous order (prev may be NULL). */
static int order_valid(const struct me_market *m, const struct snap_order *o,
                       const struct snap_order *prev)
{
    const struct me_rules *ru = &m->rules;
    if (!o->id || !o->user || o->side > ME_SELL || o->stp < ME_STP_NONE ||
        o->stp > ME_STP_CANCEL_BOTH)
        return -1;
    if (o->price < ru->min_price || o->price > ru->max_price || o->price % ru->tick)
        return -1;
    if (o->remaining <= 0 || o->remaining % ru->lot || o->filled < 0 || o->quote < 0)
        return -1;
    if ((__int128)o->price * o->remaining / m->scale > INT64_MAX)
        return -1;
    if (!o->prio || o->prio >= m->next_prio)
        return -1;
    if (!prev || prev->side != o->side)
        return prev && prev->side > o->side ? -1 : 0;
    if (prev->price == o->price)
        return o->prio > prev->prio ? 0 : -1;
    /* Next level must be strictly worse. */
    return side_key(o->side, o->price) < side_key(o->side, prev->price) ? 0 : -1;
}

static int load_orders(struct me_market *m, struct snap_order *v, size_t n)
{
    /* Add levels worst first so each new level lands at the array's end. */
    for (size_t end = n; end > 0;) {
        size_t start = v[end - 1].level_start;
        for (size_t i = start; i < end; i++) {
            if (me_idmap_get(&m->ids, v[i].id))
                return -1; /* duplicate id */
            if (v[i].remaining > INT64_MAX - m->side_qty[v[i].side])
                return -1;
            if (me_book_reserve(m) < 0)
                return -1;
            struct me_order *o = me_book_add(m, v[i].id, v[i].user, v[i].side, v[i].price,
                                             v[i].remaining, v[i].stp, v[i].prio);
            o->filled = v[i].filled;
            o->quote = v[i].quote;
        }
        end = start;
    }
    return 0;
}

struct me_market *me_market_restore(const uint8_t *data, size_t len)
{
    if (!data || len < FIXED_SIZE)
        return NULL;
    struct rd r = {data + len - 8};
    if (r64(&r) != me_hash(ME_HASH_INIT, data, len - 8))
        return NULL;
    if (memcmp(data, MAGIC, 8))
        return NULL;
    r.p = data + 8;
    if (r32(&r) != VERSION || r32(&r) != 0)
        return NULL;
    struct me_rules ru = {0};
    ru.base_scale = r8(&r);
    ru.stp_default = r8(&r);
    if (r8(&r) || r8(&r))
        return NULL;
    ru.band_bps = r32(&r);
    ru.tick = (int64_t)r64(&r);
    ru.lot = (int64_t)r64(&r);
    ru.min_qty = (int64_t)r64(&r);
    ru.max_qty = (int64_t)r64(&r);
    ru.min_price = (int64_t)r64(&r);
    ru.max_price = (int64_t)r64(&r);
    ru.last_price = (int64_t)r64(&r);
    ru.order_capacity = r32(&r);
    uint64_t seq = r64(&r), next_prio = r64(&r);
    int64_t last_price = (int64_t)r64(&r);
    uint64_t count = r64(&r);
    if (last_price < 0 || count > (len - FIXED_SIZE) / ORDER_SIZE || count > UINT32_MAX ||
        len != FIXED_SIZE + count * ORDER_SIZE)
        return NULL;
    /* Do not trust the capacity hint beyond what the snapshot needs. */
    uint32_t hint = ru.order_capacity;
    if (hint > count + 1024)
        ru.order_capacity = (uint32_t)(count + 1024);
    struct me_market *m = me_market_new(&ru);
    if (!m)
        return NULL;
    m->rules.order_capacity = hint;
    m->seq = seq;
    m->next_prio = next_prio;
    m->last_price = last_price;
    struct snap_order *v = count ? malloc(count * sizeof(*v)) : NULL;
    if (count && !v)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        struct snap_order *o = &v[i];
        o->id = r64(&r);
        o->user = r64(&r);
        o->prio = r64(&r);
        o->price = (int64_t)r64(&r);
        o->remaining = (int64_t)r64(&r);
        o->filled = (int64_t)r64(&r);
        o->quote = (int64_t)r64(&r);
        o->side = r8(&r);
        o->stp = r8(&r);
        const struct snap_order *prev = i ? &v[i - 1] : NULL;
        if (order_valid(m, o, prev) < 0)
            goto fail;
        o->level_start = prev && prev->side == o->side && prev->price == o->price
                             ? prev->level_start
                             : (uint32_t)i;
    }
    if (load_orders(m, v, count) < 0 || me_market_check(m) < 0)
        goto fail;
    free(v);
    return m;
fail:
    free(v);
    me_market_free(m);
    return NULL;
}
