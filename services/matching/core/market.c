/* Market lifecycle, book maintenance, read-only views and the invariant
 * checker. Matching itself lives in match.c. */
#include <stdlib.h>
#include <string.h>

#include "market_internal.h"

#include "common/banned.h"

_Static_assert(sizeof(struct me_order) == 128, "order node: two cache lines");

int64_t me_pow10(int e)
{
    int64_t v = 1;
    while (e-- > 0)
        v *= 10;
    return v;
}

int me_rules_valid(const struct me_rules *r)
{
    if (r->base_scale > 18)
        return -1;
    if (r->stp_default < ME_STP_NONE || r->stp_default > ME_STP_CANCEL_BOTH)
        return -1;
    if (r->tick <= 0 || r->lot <= 0)
        return -1;
    if (r->min_qty < r->lot || r->max_qty < r->min_qty)
        return -1;
    if (r->min_price < r->tick || r->max_price < r->min_price)
        return -1;
    if (r->band_bps > 1000000u) /* 10,000% is already absurd */
        return -1;
    if (r->last_price < 0)
        return -1;
    return 0;
}

struct me_market *me_market_new(const struct me_rules *rules)
{
    if (!rules || me_rules_valid(rules) < 0)
        return NULL;
    struct me_market *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->rules = *rules;
    m->scale = me_pow10(rules->base_scale);
    m->last_price = rules->last_price;
    m->next_prio = 1;
    size_t cap = rules->order_capacity ? rules->order_capacity : 1024;
    if (me_pool_init(&m->orders, sizeof(struct me_order), cap) < 0 ||
        me_pool_init(&m->levels, sizeof(struct me_level), 1024) < 0 ||
        me_pool_init(&m->users, sizeof(struct me_user), 1024) < 0 ||
        me_idmap_init(&m->ids, cap) < 0 ||
        me_idmap_init(&m->user_ids, cap < 1024 ? cap : 1024) < 0 ||
        me_side_init(&m->sides[ME_BUY], 1024) < 0 || me_side_init(&m->sides[ME_SELL], 1024) < 0) {
        me_market_free(m);
        return NULL;
    }
    return m;
}

void me_market_free(struct me_market *m)
{
    if (!m)
        return;
    me_side_release(&m->sides[ME_SELL]);
    me_side_release(&m->sides[ME_BUY]);
    free(m->scratch);
    me_idmap_release(&m->user_ids);
    me_idmap_release(&m->ids);
    me_pool_release(&m->users);
    me_pool_release(&m->levels);
    me_pool_release(&m->orders);
    free(m);
}

int me_book_reserve(struct me_market *m)
{
    if (me_pool_reserve1(&m->orders) < 0 || me_pool_reserve1(&m->levels) < 0 ||
        me_pool_reserve1(&m->users) < 0 || me_idmap_reserve(&m->ids) < 0 ||
        me_idmap_reserve(&m->user_ids) < 0)
        return -1;
    if (me_side_reserve(&m->sides[ME_BUY]) < 0 || me_side_reserve(&m->sides[ME_SELL]) < 0)
        return -1;
    return 0;
}

struct me_order *me_book_add(struct me_market *m, uint64_t id, uint64_t user, int side,
                             int64_t price, int64_t qty, uint8_t stp, uint64_t prio)
{
    struct me_book_side *s = &m->sides[side];
    int64_t key = side_key(side, price);
    struct me_level *lv;
    if (s->n && s->v[s->n - 1].key == key) {
        lv = s->v[s->n - 1].lv;
    } else {
        long i = me_side_find(s, key);
        if (i >= 0) {
            lv = s->v[i].lv;
        } else {
            lv = me_pool_get(&m->levels);
            lv->head = lv->tail = NULL;
            lv->price = price;
            lv->qty = 0;
            lv->count = 0;
            me_side_insert(s, key, lv);
        }
    }
    struct me_order *o = me_pool_get(&m->orders);
    o->next = NULL;
    o->prev = lv->tail;
    o->level = lv;
    o->id = id;
    o->user = user;
    o->prio = prio;
    o->price = price;
    o->remaining = qty;
    o->filled = 0;
    o->quote = 0;
    o->side = (uint8_t)side;
    o->stp = stp;
    if (lv->tail)
        lv->tail->next = o;
    else
        lv->head = o;
    lv->tail = o;
    lv->qty += qty;
    lv->count++;
    m->side_qty[side] += qty;
    me_idmap_put(&m->ids, id, o);

    struct me_user *u = me_idmap_get(&m->user_ids, user);
    if (!u) {
        u = me_pool_get(&m->users);
        u->head = NULL;
        u->id = user;
        u->count = 0;
        me_idmap_put(&m->user_ids, user, u);
    }
    o->owner = u;
    o->uprev = NULL;
    o->unext = u->head;
    if (u->head)
        u->head->uprev = o;
    u->head = o;
    u->count++;
    return o;
}

void me_book_remove(struct me_market *m, struct me_order *o)
{
    struct me_level *lv = o->level;
    if (o->prev)
        o->prev->next = o->next;
    else
        lv->head = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        lv->tail = o->prev;
    lv->qty -= o->remaining;
    lv->count--;
    m->side_qty[o->side] -= o->remaining;
    me_idmap_del(&m->ids, o->id);
    struct me_user *u = o->owner;
    if (o->uprev)
        o->uprev->unext = o->unext;
    else
        u->head = o->unext;
    if (o->unext)
        o->unext->uprev = o->uprev;
    if (!--u->count) {
        me_idmap_del(&m->user_ids, u->id);
        me_pool_put(&m->users, u);
    }
    if (!lv->count) {
        me_side_remove(&m->sides[o->side], side_key(o->side, lv->price));
        me_pool_put(&m->levels, lv);
    }
    me_pool_put(&m->orders, o);
}

uint64_t me_market_seq(const struct me_market *m)
{
    return m->seq;
}
int64_t me_market_last_price(const struct me_market *m)
{
    return m->last_price;
}
size_t me_market_order_count(const struct me_market *m)
{
    return m->ids.count;
}
const struct me_rules *me_market_rules(const struct me_market *m)
{
    return &m->rules;
}

int me_market_best(const struct me_market *m, int side, int64_t *price)
{
    if (side != ME_BUY && side != ME_SELL)
        return -1;
    const struct me_book_side *s = &m->sides[side];
    if (!s->n)
        return -1;
    *price = s->v[s->n - 1].lv->price;
    return 0;
}

int me_market_find(const struct me_market *m, uint64_t order_id, struct me_order_info *out)
{
    const struct me_order *o = me_idmap_get(&m->ids, order_id);
    if (!o)
        return -1;
    out->order_id = o->id;
    out->user_id = o->user;
    out->price = o->price;
    out->remaining = o->remaining;
    out->filled = o->filled;
    out->quote = o->quote;
    out->side = o->side;
    out->stp = o->stp;
    return 0;
}

size_t me_market_side_orders(const struct me_market *m, int side)
{
    if (side != ME_BUY && side != ME_SELL)
        return 0;
    const struct me_book_side *s = &m->sides[side];
    size_t n = 0;
    for (uint32_t i = 0; i < s->n; i++)
        n += s->v[i].lv->count;
    return n;
}

size_t me_market_side_levels(const struct me_market *m, int side)
{
    if (side != ME_BUY && side != ME_SELL)
        return 0;
    return m->sides[side].n;
}

size_t me_market_depth(const struct me_market *m, int side, struct me_depth_level *out, size_t n)
{
    if (side != ME_BUY && side != ME_SELL)
        return 0;
    const struct me_book_side *s = &m->sides[side];
    size_t k = 0;
    for (uint32_t i = s->n; i-- > 0 && k < n; k++) {
        out[k].price = s->v[i].lv->price;
        out[k].qty = s->v[i].lv->qty;
        out[k].count = s->v[i].lv->count;
    }
    return k;
}

static int check_side(const struct me_market *m, int side, size_t *orders)
{
    const struct me_book_side *s = &m->sides[side];
    int64_t side_total = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const struct me_level *lv = s->v[i].lv;
        if (s->v[i].key != side_key(side, lv->price))
            return -1;
        if (i && s->v[i - 1].key >= s->v[i].key)
            return -1;
        if (!lv->count || !lv->head || lv->head->prev || !lv->tail || lv->tail->next)
            return -1;
        int64_t qty = 0;
        uint32_t count = 0;
        uint64_t prio = 0;
        for (const struct me_order *o = lv->head; o; o = o->next) {
            if (o->level != lv || o->price != lv->price || o->side != side)
                return -1;
            if (o->remaining <= 0 || o->remaining % m->rules.lot)
                return -1;
            if (o->prio <= prio || o->prio >= m->next_prio)
                return -1;
            if (o->next && o->next->prev != o)
                return -1;
            if (me_idmap_get(&m->ids, o->id) != o)
                return -1;
            if (!o->owner || o->owner->id != o->user ||
                me_idmap_get(&m->user_ids, o->user) != o->owner)
                return -1;
            prio = o->prio;
            qty += o->remaining;
            count++;
        }
        if (qty != lv->qty || count != lv->count)
            return -1;
        *orders += count;
        side_total += qty;
    }
    if (side_total != m->side_qty[side])
        return -1;
    return 0;
}

int me_market_check(const struct me_market *m)
{
    size_t orders = 0;
    if (check_side(m, ME_BUY, &orders) < 0 || check_side(m, ME_SELL, &orders) < 0)
        return -1;
    if (orders != m->ids.count || orders != m->orders.live)
        return -1;
    if (m->levels.live != (size_t)m->sides[0].n + m->sides[1].n)
        return -1;
    /* Every user entry's list holds exactly its count of that user's
     * orders; with the per-order owner check above, lists partition the
     * open orders. */
    size_t users = 0, listed = 0;
    for (size_t i = 0; i <= m->user_ids.mask; i++) {
        const struct me_user *u = m->user_ids.slots[i].val;
        if (!m->user_ids.slots[i].key)
            continue;
        uint32_t c = 0;
        for (const struct me_order *o = u->head; o; o = o->unext) {
            if (o->owner != u || (o->unext && o->unext->uprev != o) || c > u->count)
                return -1;
            c++;
        }
        if (!c || c != u->count || (u->head && u->head->uprev))
            return -1;
        users++;
        listed += c;
    }
    if (listed != orders || users != m->users.live)
        return -1;
    int64_t bid, ask;
    if (me_market_best(m, ME_BUY, &bid) == 0 && me_market_best(m, ME_SELL, &ask) == 0 && bid >= ask)
        return -1; /* crossed */
    return 0;
}
