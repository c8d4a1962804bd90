/*
 * Risk state and rule evaluation (engine.h). One event in, state updated,
 * hits out; pre-trade decisions read the same state.
 *
 * State:
 *   users   id -> open orders, per-second order counts (ring), last deposit,
 *           block, last hit per rule (1 s cooldown), per-asset position
 *           and open notional;
 *   orders  order id -> user, market, side, price, remaining, contribution
 *           to the user's open notional (subtracted exactly on close);
 *   pairs   (user a, user b, market) -> streak of trades at one price;
 *   markets symbol -> last trade price;
 *   offsets (topic, partition) -> last applied offset.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/decimal.h"
#include "engine.h"
#include "common/banned.h"

#define RATE_RING 64

/* ---- a small intrusive hash table keyed by uint64 ---------------------- */

struct hnode {
    struct hnode *next;
    uint64_t key;
};

struct htab {
    struct hnode **b;
    size_t nb, n;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static struct hnode **ht_slot(const struct htab *t, uint64_t key)
{
    return &t->b[mix(key) & (t->nb - 1)];
}

static struct hnode *ht_first(const struct htab *t, uint64_t key)
{
    if (!t->nb)
        return NULL;
    for (struct hnode *n = *ht_slot(t, key); n; n = n->next)
        if (n->key == key)
            return n;
    return NULL;
}

static struct hnode *ht_next(struct hnode *n)
{
    for (struct hnode *x = n->next; x; x = x->next)
        if (x->key == n->key)
            return x;
    return NULL;
}

static int ht_insert(struct htab *t, struct hnode *node)
{
    if (t->n + 1 > t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 1024;
        struct hnode **b = calloc(nb, sizeof *b);
        if (!b)
            return -1;
        for (size_t i = 0; i < t->nb; i++)
            for (struct hnode *n = t->b[i], *next; n; n = next) {
                next = n->next;
                struct hnode **s = &b[mix(n->key) & (nb - 1)];
                n->next = *s;
                *s = n;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    struct hnode **s = ht_slot(t, node->key);
    node->next = *s;
    *s = node;
    t->n++;
    return 0;
}

static void ht_remove(struct htab *t, struct hnode *node)
{
    for (struct hnode **p = ht_slot(t, node->key); *p; p = &(*p)->next)
        if (*p == node) {
            *p = node->next;
            t->n--;
            return;
        }
}

/* Frees every node (they are malloc'd structs starting with the hnode). */
static void ht_release(struct htab *t, void (*fn)(struct hnode *))
{
    for (size_t i = 0; i < t->nb; i++)
        for (struct hnode *n = t->b[i], *next; n; n = next) {
            next = n->next;
            fn ? fn(n) : free(n);
        }
    free(t->b);
    memset(t, 0, sizeof *t);
}

/* ---- state ------------------------------------------------------------- */

struct asset_pos {
    char asset[16];
    int64_t position;
    int64_t open_notional;
};

struct rate_bucket {
    int64_t sec;
    uint32_t n;
};

/* The last hit of one rule for one user (rule: FNV-1a of its id). */
#define HIT_SLOTS 8
struct last_hit {
    uint32_t rule;
    int64_t ts;
};

struct user {
    struct hnode h; /* key: user id */
    int64_t open_orders;
    struct rate_bucket rate[RATE_RING];
    int64_t last_deposit_ms, last_deposit_amount;
    int64_t blocked_until_ms;
    char blocked_rule[RISK_RULE_ID_MAX + 1];
    struct last_hit last_hit[HIT_SLOTS];
    struct asset_pos *pos;
    size_t npos, cappos;
};

struct order {
    struct hnode h; /* key: order id */
    uint64_t user;
    int market;
    int buy;
    int64_t price, remaining, contrib;
};

struct pair {
    struct hnode h; /* key: mix of the three below */
    uint64_t a, b;
    int market;
    int64_t price;
    uint32_t n; /* trades in the streak; ts ring indexed by n % RISK_WASH_RING */
    int64_t ts[RISK_WASH_RING];
};

struct market {
    char sym[32];
    char base[16], quote[16];
    int64_t last_price; /* 0: no trade yet */
};

struct offset {
    char topic[128];
    int32_t partition;
    int64_t applied;
};

struct risk_engine {
    struct risk_rules *rules;
    struct htab users, orders, pairs;
    struct market *mk;
    size_t nmk, capmk;
    struct offset *off;
    size_t noff, capoff;
    uint64_t events;
    int64_t max_ts; /* the latest event time applied (pruning horizon) */
};

static void free_user(struct hnode *n)
{
    struct user *u = (struct user *)n;
    free(u->pos);
    free(u);
}

struct risk_engine *risk_engine_new(struct risk_rules *rules)
{
    struct risk_engine *e = calloc(1, sizeof *e);
    if (!e) {
        risk_rules_free(rules);
        return NULL;
    }
    e->rules = rules;
    return e;
}

static void clear_state(struct risk_engine *e)
{
    ht_release(&e->users, free_user);
    ht_release(&e->orders, NULL);
    ht_release(&e->pairs, NULL);
    free(e->mk);
    free(e->off);
    e->mk = NULL;
    e->off = NULL;
    e->nmk = e->capmk = e->noff = e->capoff = 0;
    e->max_ts = 0;
}

void risk_engine_free(struct risk_engine *e)
{
    if (!e)
        return;
    clear_state(e);
    risk_rules_free(e->rules);
    free(e);
}

void risk_engine_set_rules(struct risk_engine *e, struct risk_rules *rules)
{
    risk_rules_free(e->rules);
    e->rules = rules;
}

const struct risk_rules *risk_engine_rules(const struct risk_engine *e)
{
    return e->rules;
}

uint64_t risk_engine_events(const struct risk_engine *e)
{
    return e->events;
}

static struct user *find_user(const struct risk_engine *e, uint64_t id)
{
    return (struct user *)ht_first(&e->users, id);
}

static struct user *get_user(struct risk_engine *e, uint64_t id)
{
    struct user *u = find_user(e, id);
    if (u)
        return u;
    u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->h.key = id;
    if (ht_insert(&e->users, &u->h) < 0) {
        free(u);
        return NULL;
    }
    return u;
}

static struct asset_pos *get_pos(struct user *u, const char *asset)
{
    for (size_t i = 0; i < u->npos; i++)
        if (strcmp(u->pos[i].asset, asset) == 0)
            return &u->pos[i];
    if (u->npos == u->cappos) {
        size_t cap = u->cappos ? u->cappos * 2 : 4;
        struct asset_pos *p = realloc(u->pos, cap * sizeof *p);
        if (!p)
            return NULL;
        u->pos = p;
        u->cappos = cap;
    }
    struct asset_pos *p = &u->pos[u->npos++];
    memset(p, 0, sizeof *p);
    snprintf(p->asset, sizeof p->asset, "%s", asset);
    return p;
}

static int valid_market(const char *s)
{
    const char *dash = strchr(s, '-');
    size_t n = strlen(s);
    if (!dash || n > 25 || dash == s || !dash[1] || (size_t)(dash - s) > 12 ||
        strlen(dash + 1) > 12)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || p == dash))
            return 0;
    return 1;
}

/* Index of the market (created on first sight), -1 on a bad symbol. */
static int market_index(struct risk_engine *e, const char *sym)
{
    for (size_t i = 0; i < e->nmk; i++)
        if (strcmp(e->mk[i].sym, sym) == 0)
            return (int)i;
    if (!valid_market(sym) || e->nmk >= 4096)
        return -1;
    if (e->nmk == e->capmk) {
        size_t cap = e->capmk ? e->capmk * 2 : 8;
        struct market *m = realloc(e->mk, cap * sizeof *m);
        if (!m)
            return -1;
        e->mk = m;
        e->capmk = cap;
    }
    struct market *m = &e->mk[e->nmk];
    memset(m, 0, sizeof *m);
    snprintf(m->sym, sizeof m->sym, "%s", sym);
    const char *dash = strchr(sym, '-');
    snprintf(m->base, sizeof m->base, "%.*s", (int)(dash - sym), sym);
    snprintf(m->quote, sizeof m->quote, "%s", dash + 1);
    return (int)e->nmk++;
}

static int find_market(const struct risk_engine *e, const char *sym)
{
    for (size_t i = 0; i < e->nmk; i++)
        if (strcmp(e->mk[i].sym, sym) == 0)
            return (int)i;
    return -1;
}

static struct offset *find_offset(const struct risk_engine *e, const char *topic, int32_t part)
{
    for (size_t i = 0; i < e->noff; i++)
        if (e->off[i].partition == part && strcmp(e->off[i].topic, topic) == 0)
            return &e->off[i];
    return NULL;
}

static int set_offset(struct risk_engine *e, const char *topic, int32_t part, int64_t off)
{
    struct offset *o = find_offset(e, topic, part);
    if (!o) {
        if (e->noff == e->capoff) {
            size_t cap = e->capoff ? e->capoff * 2 : 16;
            struct offset *v = realloc(e->off, cap * sizeof *v);
            if (!v)
                return -1;
            e->off = v;
            e->capoff = cap;
        }
        o = &e->off[e->noff++];
        snprintf(o->topic, sizeof o->topic, "%s", topic);
        o->partition = part;
    }
    o->applied = off;
    return 0;
}

int64_t risk_engine_next_offset(const struct risk_engine *e, const char *topic, int32_t partition)
{
    const struct offset *o = find_offset(e, topic, partition);
    return o ? o->applied + 1 : -1;
}

/* ---- helpers ----------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int64_t risk_parse_ts(const char *s)
{
    int y, mo, d, h, mi, se;
    if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    const char *p = s + 19;
    int64_t ms = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
        if (nd == 0 || nd > 9)
            return -1;
        for (; nd < 3; nd++)
            ms *= 10;
    }
    if (p[0] != 'Z' || p[1])
        return -1;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    return ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)se * 1000 + ms;
}

int risk_parse_user(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned dg = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - dg) / 10)
            return -1;
        v = v * 10 + dg;
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* 1 present and valid, 0 absent, -1 malformed. */
static int jdec(const cJSON *o, const char *name, unsigned flags, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it || cJSON_IsNull(it))
        return 0;
    return cm_decimal_from_json(it, RISK_SCALE, flags, out) == 0 ? 1 : -1;
}

static int juser(const cJSON *o, const char *name, uint64_t *out)
{
    return risk_parse_user(jstr(o, name), out);
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* a * b / 10^RISK_SCALE, saturating at INT64_MAX (only compared, never stored as money). */
static int64_t notional(int64_t qty, int64_t price)
{
    int64_t out;
    if (cm_money_mul_div(abs64(qty), abs64(price), 100000000, CM_ROUND_HALF_EVEN, &out) < 0)
        return INT64_MAX;
    return out;
}

/* Deviation of price from ref in basis points (saturating). */
static int64_t band_bps(int64_t price, int64_t ref)
{
    int64_t out;
    if (ref <= 0 || cm_money_mul_div(abs64(price - ref), 10000, ref, CM_ROUND_DOWN, &out) < 0)
        return INT64_MAX;
    return out;
}

static void fmt_amount(char *buf, size_t n, int64_t v)
{
    cm_decimal_format(v, RISK_SCALE, buf, n);
}

static void rate_add(struct user *u, int64_t ts_ms)
{
    int64_t sec = ts_ms / 1000;
    struct rate_bucket *b = &u->rate[(uint64_t)sec % RATE_RING];
    if (b->sec != sec) {
        b->sec = sec;
        b->n = 0;
    }
    b->n++;
}

/* Orders in the window_s seconds ending at now (1 s buckets). */
static int64_t rate_count(const struct user *u, int64_t now_ms, int64_t window_s)
{
    int64_t sec = now_ms / 1000, n = 0;
    for (int i = 0; i < RATE_RING; i++) {
        const struct rate_bucket *b = &u->rate[i];
        if (b->n && b->sec <= sec && b->sec > sec - window_s)
            n += b->n;
    }
    return n;
}

/* ---- hits -------------------------------------------------------------- */

struct ctx {
    struct risk_engine *e;
    struct risk_hits *hits;
    const char *event_id;
    int64_t ts_ms, now_ms;
};

static uint32_t rule_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h ? h : 1;
}

static void hit(struct ctx *c, const struct risk_rule *r, struct user *u, const char *market,
                int64_t observed, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void hit(struct ctx *c, const struct risk_rule *r, struct user *u, const char *market,
                int64_t observed, const char *fmt, ...)
{
    /* One hit per user and rule per second of event time: a burst crossing
     * a threshold alerts once, not once per event. Per rule, not per kind:
     * an alert rule at 30 orders/s must not silence a block rule at 50. */
    uint32_t rh = rule_hash(r->id);
    struct last_hit *slot = NULL;
    for (int i = 0; i < HIT_SLOTS; i++)
        if (u->last_hit[i].rule == rh) {
            slot = &u->last_hit[i];
            break;
        }
    if (slot && c->ts_ms - slot->ts < 1000 && c->ts_ms >= slot->ts)
        return;
    int newly = 0;
    if (r->action == RA_BLOCK) {
        if (u->blocked_until_ms > c->now_ms)
            return; /* already blocked: nothing new to say */
        u->blocked_until_ms = c->now_ms + r->block_ttl_s * 1000;
        snprintf(u->blocked_rule, sizeof u->blocked_rule, "%s", r->id);
        newly = 1;
    }
    if (!slot) { /* an empty slot, else the oldest */
        slot = &u->last_hit[0];
        for (int i = 1; i < HIT_SLOTS && slot->rule; i++)
            if (!u->last_hit[i].rule || u->last_hit[i].ts < slot->ts)
                slot = &u->last_hit[i];
    }
    slot->rule = rh;
    slot->ts = c->ts_ms;
    if (!c->hits || c->hits->n >= RISK_MAX_HITS)
        return;
    struct risk_hit *h = &c->hits->v[c->hits->n++];
    memset(h, 0, sizeof *h);
    snprintf(h->rule_id, sizeof h->rule_id, "%s", r->id);
    h->kind = r->kind;
    h->severity = r->severity;
    h->action = r->action;
    h->block_ttl_s = r->block_ttl_s;
    h->user_id = u->h.key;
    snprintf(h->market, sizeof h->market, "%s", market ? market : "");
    h->observed = observed;
    h->threshold = r->threshold;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->message, sizeof h->message, fmt, ap);
    va_end(ap);
    snprintf(h->source_event_id, sizeof h->source_event_id, "%s", c->event_id ? c->event_id : "");
    h->newly_blocked = newly;
}

#define FOR_RULES(e, r, k)                                                                         \
    for (size_t ri_ = 0; (e)->rules && ri_ < (e)->rules->n; ri_++)                                 \
        for (const struct risk_rule *r = &(e)->rules->v[ri_]; r; r = NULL)                         \
            if (r->enabled && r->kind == (k))

/* ---- event handlers ---------------------------------------------------- */

static void adjust_open(struct user *u, const struct market *m, int buy, int64_t delta)
{
    struct asset_pos *p = get_pos(u, buy ? m->quote : m->base);
    if (p)
        p->open_notional += delta;
}

static int64_t contribution(const struct order *o, int64_t quote_budget)
{
    if (!o->buy)
        return o->remaining;
    if (o->price > 0)
        return notional(o->remaining, o->price);
    return quote_budget;
}

static int on_accepted(struct ctx *c, const cJSON *ev)
{
    struct risk_engine *e = c->e;
    uint64_t uid, oid;
    const char *mkt = jstr(ev, "market"), *side = jstr(ev, "side");
    int64_t price = 0, qty = 0, quote = 0;
    int hp = jdec(ev, "price", 0, &price), hq = jdec(ev, "quantity", 0, &qty),
        hb = jdec(ev, "quote_amount", 0, &quote);
    if (juser(ev, "user_id", &uid) < 0 || juser(ev, "order_id", &oid) < 0 || !mkt || !side ||
        (strcmp(side, "buy") != 0 && strcmp(side, "sell") != 0) || hp < 0 || hq < 0 || hb < 0)
        return RISK_MALFORMED;
    int mi = market_index(e, mkt);
    if (mi < 0)
        return RISK_MALFORMED;
    if (ht_first(&e->orders, oid))
        return RISK_DUPLICATE; /* the order is already open */
    struct user *u = get_user(e, uid);
    struct order *o = calloc(1, sizeof *o);
    if (!u || !o) {
        free(o);
        return RISK_MALFORMED;
    }
    o->h.key = oid;
    o->user = uid;
    o->market = mi;
    o->buy = side[0] == 'b';
    o->price = hp ? price : 0;
    o->remaining = hq ? qty : 0;
    o->contrib = contribution(o, hb ? quote : 0);
    if (ht_insert(&e->orders, &o->h) < 0) {
        free(o);
        return RISK_MALFORMED;
    }
    u->open_orders++;
    adjust_open(u, &e->mk[mi], o->buy, o->contrib);
    rate_add(u, c->ts_ms);

    const struct market *m = &e->mk[mi];
    int64_t last = m->last_price;
    int64_t ntl = hp && hq     ? notional(qty, price)
                  : hb         ? quote
                  : hq && last ? notional(qty, last)
                               : 0;
    char a[CM_DECIMAL_STR_MAX], b[CM_DECIMAL_STR_MAX];
    FOR_RULES(e, r, RK_ORDER_RATE)
    {
        int64_t n = rate_count(u, c->ts_ms, r->window_s);
        if (n >= r->threshold)
            hit(c, r, u, mkt, n, "%" PRId64 " orders in %" PRId64 "s (threshold %" PRId64 ")", n,
                r->window_s, r->threshold);
    }
    FOR_RULES(e, r, RK_MAX_OPEN_ORDERS)
    {
        if (u->open_orders >= r->threshold)
            hit(c, r, u, mkt, u->open_orders, "%" PRId64 " open orders (threshold %" PRId64 ")",
                u->open_orders, r->threshold);
    }
    FOR_RULES(e, r, RK_MAX_ORDER_NOTIONAL)
    {
        if (ntl >= r->threshold) {
            fmt_amount(a, sizeof a, ntl);
            fmt_amount(b, sizeof b, r->threshold);
            hit(c, r, u, mkt, ntl, "order notional %s >= %s", a, b);
        }
    }
    FOR_RULES(e, r, RK_PRICE_BAND)
    {
        int64_t bps = hp && last ? band_bps(price, last) : 0;
        if (hp && last && bps >= r->threshold)
            hit(c, r, u, mkt, bps,
                "price %" PRId64 " bps from the last trade (threshold %" PRId64 " bps)", bps,
                r->threshold);
    }
    return RISK_APPLIED;
}

static void close_order(struct risk_engine *e, struct order *o)
{
    struct user *u = find_user(e, o->user);
    if (u) {
        u->open_orders--;
        adjust_open(u, &e->mk[o->market], o->buy, -o->contrib);
    }
    ht_remove(&e->orders, &o->h);
    free(o);
}

static int on_order_update(struct ctx *c, const cJSON *ev, int closes)
{
    uint64_t oid;
    if (juser(ev, "order_id", &oid) < 0)
        return RISK_MALFORMED;
    struct order *o = (struct order *)ht_first(&c->e->orders, oid);
    if (!o)
        return RISK_APPLIED; /* never seen open (rejected, or before our history) */
    if (closes) {
        close_order(c->e, o);
        return RISK_APPLIED;
    }
    int64_t rem, rem_quote;
    int hr = jdec(ev, "remaining_quantity", 0, &rem);
    int hq = jdec(ev, "remaining_quote", 0, &rem_quote);
    if (hr < 0 || hq < 0)
        return RISK_MALFORMED;
    int64_t next = o->contrib;
    if (hr == 1 && (o->price > 0 || !o->buy)) {
        o->remaining = rem;
        next = contribution(o, 0);
    } else if (hq == 1 && o->buy && o->price == 0) {
        next = rem_quote; /* a market buy by quote budget */
    }
    struct user *u = find_user(c->e, o->user);
    if (u)
        adjust_open(u, &c->e->mk[o->market], o->buy, next - o->contrib);
    o->contrib = next;
    return RISK_APPLIED;
}

static uint64_t pair_key(uint64_t a, uint64_t b, int market)
{
    return mix(a) ^ (mix(b) * 31) ^ ((uint64_t)market * 0x9e3779b97f4a7c15ULL);
}

static struct pair *get_pair(struct risk_engine *e, uint64_t a, uint64_t b, int market)
{
    uint64_t key = pair_key(a, b, market);
    for (struct hnode *n = ht_first(&e->pairs, key); n; n = ht_next(n)) {
        struct pair *p = (struct pair *)n;
        if (p->a == a && p->b == b && p->market == market)
            return p;
    }
    struct pair *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->h.key = key;
    p->a = a;
    p->b = b;
    p->market = market;
    if (ht_insert(&e->pairs, &p->h) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

static int64_t streak_in_window(const struct pair *p, int64_t now_ms, int64_t window_s)
{
    uint32_t have = p->n < RISK_WASH_RING ? p->n : RISK_WASH_RING;
    int64_t n = 0;
    for (uint32_t i = 0; i < have; i++)
        if (p->ts[i] > now_ms - window_s * 1000 && p->ts[i] <= now_ms)
            n++;
    return n;
}

static int apply_leg(struct user *u, const struct market *m, int buy, int64_t qty, int64_t quote)
{
    struct asset_pos *b = get_pos(u, m->base), *q = get_pos(u, m->quote);
    if (!b || !q)
        return -1;
    int64_t nb, nq;
    if (cm_money_add(b->position, buy ? qty : -qty, &nb) < 0 ||
        cm_money_add(q->position, buy ? -quote : quote, &nq) < 0)
        return -1;
    b->position = nb;
    q->position = nq;
    return 0;
}

static int on_trade(struct ctx *c, const cJSON *ev)
{
    struct risk_engine *e = c->e;
    const char *mkt = jstr(ev, "market"), *taker_side = jstr(ev, "taker_side");
    uint64_t taker, maker;
    int64_t price, qty, quote = 0;
    if (!mkt || !taker_side || juser(ev, "taker_user_id", &taker) < 0 ||
        juser(ev, "maker_user_id", &maker) < 0 || jdec(ev, "price", 0, &price) != 1 ||
        jdec(ev, "quantity", 0, &qty) != 1 || jdec(ev, "quote_amount", 0, &quote) < 0 || price <= 0)
        return RISK_MALFORMED;
    int mi = market_index(e, mkt);
    if (mi < 0)
        return RISK_MALFORMED;
    if (!cJSON_GetObjectItemCaseSensitive(ev, "quote_amount"))
        quote = notional(qty, price);
    int taker_buys = strcmp(taker_side, "buy") == 0;
    struct user *tu = get_user(e, taker), *mu = get_user(e, maker);
    if (!tu || !mu)
        return RISK_MALFORMED;
    if (apply_leg(tu, &e->mk[mi], taker_buys, qty, quote) < 0 ||
        apply_leg(mu, &e->mk[mi], !taker_buys, qty, quote) < 0)
        return RISK_MALFORMED;

    /* Wash trading: the same two users trading again at an unchanged price. */
    uint64_t a = taker < maker ? taker : maker, b = taker < maker ? maker : taker;
    struct pair *p = get_pair(e, a, b, mi);
    if (p) {
        if (p->price != price) {
            p->price = price;
            p->n = 0;
        }
        p->ts[p->n % RISK_WASH_RING] = c->ts_ms;
        p->n++;
        FOR_RULES(e, r, RK_WASH_TRADING)
        {
            int64_t n = streak_in_window(p, c->ts_ms, r->window_s);
            if (n >= r->threshold) {
                hit(c, r, tu, mkt, n,
                    "%" PRId64 " trades between users %" PRIu64 " and %" PRIu64
                    " at one price in %" PRId64 "s (threshold %" PRId64 ")",
                    n, a, b, r->window_s, r->threshold);
                if (mu != tu)
                    hit(c, r, mu, mkt, n,
                        "%" PRId64 " trades between users %" PRIu64 " and %" PRIu64
                        " at one price in %" PRId64 "s (threshold %" PRId64 ")",
                        n, a, b, r->window_s, r->threshold);
            }
        }
    }
    e->mk[mi].last_price = price;

    /* Exposure: a user's base position in this market valued at the last price. */
    char x[CM_DECIMAL_STR_MAX], y[CM_DECIMAL_STR_MAX];
    struct user *both[2] = {tu, mu};
    for (int i = 0; i < (tu == mu ? 1 : 2); i++) {
        struct asset_pos *bp = get_pos(both[i], e->mk[mi].base);
        int64_t exp = bp ? notional(bp->position, price) : 0;
        FOR_RULES(e, r, RK_EXPOSURE_CONCENTRATION)
        {
            if (exp >= r->threshold) {
                fmt_amount(x, sizeof x, exp);
                fmt_amount(y, sizeof y, r->threshold);
                hit(c, r, both[i], mkt, exp, "%s exposure %s %s >= %s", e->mk[mi].base, x,
                    e->mk[mi].quote, y);
            }
        }
    }
    return RISK_APPLIED;
}

static int on_deposit(struct ctx *c, const cJSON *ev)
{
    uint64_t uid;
    int64_t amount;
    if (juser(ev, "user_id", &uid) < 0 || jdec(ev, "amount", 0, &amount) != 1)
        return RISK_MALFORMED;
    struct user *u = get_user(c->e, uid);
    if (!u)
        return RISK_MALFORMED;
    u->last_deposit_ms = c->ts_ms;
    u->last_deposit_amount = amount;
    return RISK_APPLIED;
}

static int on_withdrawal(struct ctx *c, const cJSON *ev)
{
    uint64_t uid;
    int64_t amount;
    const char *asset = jstr(ev, "asset");
    if (juser(ev, "user_id", &uid) < 0 || jdec(ev, "amount", 0, &amount) != 1)
        return RISK_MALFORMED;
    struct user *u = get_user(c->e, uid);
    if (!u)
        return RISK_MALFORMED;
    char a[CM_DECIMAL_STR_MAX], b[CM_DECIMAL_STR_MAX];
    FOR_RULES(c->e, r, RK_WITHDRAWAL_VELOCITY)
    {
        int64_t since = c->ts_ms - u->last_deposit_ms;
        if (u->last_deposit_ms && since >= 0 && since <= r->window_s * 1000 &&
            amount >= r->threshold) {
            fmt_amount(a, sizeof a, amount);
            fmt_amount(b, sizeof b, r->threshold);
            hit(c, r, u, NULL, amount, "withdrawal of %s %s %" PRId64 "s after a deposit (>= %s)",
                a, asset ? asset : "", since / 1000, b);
        }
    }
    return RISK_APPLIED;
}

int risk_engine_apply(struct risk_engine *e, const char *topic, int32_t partition, int64_t offset,
                      const cJSON *ev, int64_t now_ms, struct risk_hits *hits)
{
    if (offset >= 0 && topic) {
        const struct offset *o = find_offset(e, topic, partition);
        if (o && offset <= o->applied)
            return RISK_DUPLICATE;
    }
    const char *type = jstr(ev, "type");
    struct ctx c = {.e = e, .hits = hits, .event_id = jstr(ev, "id"), .now_ms = now_ms};
    c.ts_ms = risk_parse_ts(jstr(ev, "ts"));
    int rc;
    if (!type || c.ts_ms < 0)
        rc = RISK_MALFORMED;
    else if (strcmp(type, "order.accepted") == 0)
        rc = on_accepted(&c, ev);
    else if (strcmp(type, "order.partially_filled") == 0)
        rc = on_order_update(&c, ev, 0);
    else if (strcmp(type, "order.filled") == 0 || strcmp(type, "order.cancelled") == 0 ||
             strcmp(type, "order.expired") == 0 || strcmp(type, "order.rejected") == 0)
        rc = on_order_update(&c, ev, 1);
    else if (strcmp(type, "trade") == 0)
        rc = on_trade(&c, ev);
    else if (strcmp(type, "deposit.credited") == 0)
        rc = on_deposit(&c, ev);
    else if (strcmp(type, "withdrawal.requested") == 0)
        rc = on_withdrawal(&c, ev);
    else
        rc = RISK_IGNORED;
    /* Malformed events are skipped for good (logged by the caller): the
     * offset moves on either way, or one bad message would stall the stream. */
    if (offset >= 0 && topic)
        set_offset(e, topic, partition, offset);
    if (rc == RISK_APPLIED) {
        e->events++;
        if (c.ts_ms > e->max_ts)
            e->max_ts = c.ts_ms;
    }
    return rc;
}

int risk_engine_apply_json(struct risk_engine *e, const char *topic, int32_t partition,
                           int64_t offset, const char *json, size_t len, int64_t now_ms,
                           struct risk_hits *hits)
{
    if (offset >= 0 && topic) {
        const struct offset *o = find_offset(e, topic, partition);
        if (o && offset <= o->applied)
            return RISK_DUPLICATE;
    }
    cJSON *ev = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(ev)) {
        cJSON_Delete(ev);
        if (offset >= 0 && topic)
            set_offset(e, topic, partition, offset);
        return RISK_MALFORMED;
    }
    int rc = risk_engine_apply(e, topic, partition, offset, ev, now_ms, hits);
    cJSON_Delete(ev);
    return rc;
}

/* ---- pre-trade --------------------------------------------------------- */

static void decide(struct risk_decision *d, const struct risk_rule *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void decide(struct risk_decision *d, const struct risk_rule *r, const char *fmt, ...)
{
    if (d->deny)
        return;
    if (r->action == RA_SIMULATE) {
        if (d->simulated)
            return;
        d->simulated = 1;
    } else {
        d->deny = 1;
    }
    snprintf(d->rule_id, sizeof d->rule_id, "%s", r->id);
    d->kind = r->kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
}

void risk_engine_pretrade(const struct risk_engine *e, const struct risk_order *o, int64_t now_ms,
                          struct risk_decision *d)
{
    memset(d, 0, sizeof *d);
    const struct user *u = find_user(e, o->user_id);
    if (u && u->blocked_until_ms > now_ms) {
        d->deny = 1;
        d->blocked = 1;
        snprintf(d->rule_id, sizeof d->rule_id, "account_blocked");
        snprintf(d->reason, sizeof d->reason, "user blocked by rule %s", u->blocked_rule);
        return;
    }
    int mi = find_market(e, o->market);
    int64_t last = mi >= 0 ? e->mk[mi].last_price : 0;
    int64_t ntl = -1;
    if (o->has_price && o->has_qty)
        ntl = notional(o->qty, o->price);
    else if (o->has_quote)
        ntl = o->quote;
    else if (o->has_qty && last)
        ntl = notional(o->qty, last);
    char a[CM_DECIMAL_STR_MAX], b[CM_DECIMAL_STR_MAX];
    for (size_t i = 0; e->rules && i < e->rules->n && !d->deny; i++) {
        const struct risk_rule *r = &e->rules->v[i];
        if (!r->enabled)
            continue;
        switch (r->kind) {
        case RK_MAX_ORDER_NOTIONAL:
            if (ntl >= r->threshold) {
                fmt_amount(a, sizeof a, ntl);
                fmt_amount(b, sizeof b, r->threshold);
                decide(d, r, "notional %s >= %s", a, b);
            }
            break;
        case RK_MAX_OPEN_ORDERS:
            if (u && u->open_orders >= r->threshold)
                decide(d, r, "%" PRId64 " open orders (limit %" PRId64 ")", u->open_orders,
                       r->threshold);
            break;
        case RK_ORDER_RATE: {
            int64_t n = u ? rate_count(u, now_ms, r->window_s) : 0;
            if (n >= r->threshold)
                decide(d, r, "%" PRId64 " orders in %" PRId64 "s (threshold %" PRId64 ")", n,
                       r->window_s, r->threshold);
            break;
        }
        case RK_PRICE_BAND:
            if (!o->is_market && o->has_price && last) {
                int64_t bps = band_bps(o->price, last);
                if (bps >= r->threshold) {
                    fmt_amount(a, sizeof a, last);
                    decide(d, r,
                           "price %" PRId64 " bps from the last trade %s (band %" PRId64 " bps)",
                           bps, a, r->threshold);
                }
            }
            break;
        default: break; /* stream-only rules */
        }
    }
}

/* ---- admin views ------------------------------------------------------- */

static void add_ts(cJSON *o, const char *name, int64_t ms)
{
    char buf[RISK_TS_MAX];
    risk_format_ts(ms, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

static int cmp_pos(const void *a, const void *b)
{
    return strcmp(((const struct asset_pos *)a)->asset, ((const struct asset_pos *)b)->asset);
}

cJSON *risk_engine_user_json(const struct risk_engine *e, uint64_t user_id, int64_t now_ms)
{
    const struct user *u = find_user(e, user_id);
    cJSON *o = cJSON_CreateObject();
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, user_id);
    cJSON_AddStringToObject(o, "user_id", id);
    int blocked = u && u->blocked_until_ms > now_ms;
    cJSON_AddBoolToObject(o, "blocked", blocked);
    if (blocked) {
        add_ts(o, "blocked_until", u->blocked_until_ms);
        cJSON_AddStringToObject(o, "blocked_by_rule", u->blocked_rule);
    }
    cJSON_AddNumberToObject(o, "open_orders", u ? (double)u->open_orders : 0);
    cJSON_AddNumberToObject(o, "order_rate_per_s", u ? (double)rate_count(u, now_ms, 1) : 0);
    cJSON *arr = cJSON_AddArrayToObject(o, "exposures");
    if (u && u->npos) {
        struct asset_pos *sorted = malloc(u->npos * sizeof *sorted);
        if (sorted) {
            memcpy(sorted, u->pos, u->npos * sizeof *sorted);
            qsort(sorted, u->npos, sizeof *sorted, cmp_pos);
            for (size_t i = 0; i < u->npos; i++) {
                char a[CM_DECIMAL_STR_MAX], b[CM_DECIMAL_STR_MAX];
                fmt_amount(a, sizeof a, sorted[i].position);
                fmt_amount(b, sizeof b, sorted[i].open_notional);
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "asset", sorted[i].asset);
                cJSON_AddStringToObject(x, "position", a);
                cJSON_AddStringToObject(x, "open_notional", b);
                cJSON_AddItemToArray(arr, x);
            }
            free(sorted);
        }
    }
    return o;
}

int risk_engine_unblock(struct risk_engine *e, uint64_t user_id)
{
    struct user *u = find_user(e, user_id);
    if (!u || !u->blocked_until_ms)
        return 0;
    u->blocked_until_ms = 0;
    u->blocked_rule[0] = '\0';
    return 1;
}

void risk_engine_block(struct risk_engine *e, uint64_t user_id, const char *rule_id,
                       int64_t until_ms)
{
    struct user *u = get_user(e, user_id);
    if (!u)
        return;
    u->blocked_until_ms = until_ms;
    snprintf(u->blocked_rule, sizeof u->blocked_rule, "%s", rule_id);
}

size_t risk_engine_blocked_count(const struct risk_engine *e, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < e->users.nb; i++)
        for (struct hnode *x = e->users.b[i]; x; x = x->next)
            if (((struct user *)x)->blocked_until_ms > now_ms)
                n++;
    return n;
}

size_t risk_engine_prune(struct risk_engine *e)
{
    int64_t horizon_s = 3600;
    for (size_t i = 0; e->rules && i < e->rules->n; i++)
        if (e->rules->v[i].kind == RK_WASH_TRADING && e->rules->v[i].window_s > horizon_s)
            horizon_s = e->rules->v[i].window_s;
    int64_t before = e->max_ts - horizon_s * 1000;
    size_t n = 0;
    for (size_t i = 0; i < e->pairs.nb; i++)
        for (struct hnode **pp = &e->pairs.b[i]; *pp;) {
            struct pair *p = (struct pair *)*pp;
            int64_t newest = p->n ? p->ts[(p->n - 1) % RISK_WASH_RING] : 0;
            if (newest < before) {
                *pp = p->h.next;
                e->pairs.n--;
                free(p);
                n++;
            } else {
                pp = &(*pp)->next;
            }
        }
    return n;
}

/* ---- snapshots ----------------------------------------------------------
 * A line-based text (exact int64s, no JSON number rounding):
 *   risk-snapshot 1
 *   T max_event_ts
 *   O topic partition applied_offset
 *   M market last_price
 *   U id open_orders dep_ms dep_amount blocked_until rule|- (hit_rule hit_ts) x 8
 *   R user sec n                  (non-empty order-rate buckets)
 *   P user asset position open_notional
 *   D order user market buy price remaining contrib
 *   W a b market price n ts...    (min(n, ring) timestamps, ring order)
 *   end
 * The "end" line proves the text is whole.
 */

char *risk_engine_snapshot(const struct risk_engine *e, size_t *len)
{
    struct cm_buf b;
    cm_buf_init(&b, 0);
    int rc = cm_buf_printf(&b, "risk-snapshot 1\nT %" PRId64 "\n", e->max_ts);
    for (size_t i = 0; i < e->noff && rc == 0; i++)
        rc = cm_buf_printf(&b, "O %s %d %" PRId64 "\n", e->off[i].topic, e->off[i].partition,
                           e->off[i].applied);
    for (size_t i = 0; i < e->nmk && rc == 0; i++)
        rc = cm_buf_printf(&b, "M %s %" PRId64 "\n", e->mk[i].sym, e->mk[i].last_price);
    for (size_t i = 0; i < e->users.nb && rc == 0; i++)
        for (struct hnode *x = e->users.b[i]; x && rc == 0; x = x->next) {
            const struct user *u = (const struct user *)x;
            rc = cm_buf_printf(&b,
                               "U %" PRIu64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %s",
                               u->h.key, u->open_orders, u->last_deposit_ms, u->last_deposit_amount,
                               u->blocked_until_ms, u->blocked_rule[0] ? u->blocked_rule : "-");
            for (int k = 0; k < HIT_SLOTS && rc == 0; k++)
                rc = cm_buf_printf(&b, " %u %" PRId64, u->last_hit[k].rule, u->last_hit[k].ts);
            if (rc == 0)
                rc = cm_buf_puts(&b, "\n");
            for (int k = 0; k < RATE_RING && rc == 0; k++)
                if (u->rate[k].n)
                    rc = cm_buf_printf(&b, "R %" PRIu64 " %" PRId64 " %u\n", u->h.key,
                                       u->rate[k].sec, u->rate[k].n);
            for (size_t k = 0; k < u->npos && rc == 0; k++)
                rc = cm_buf_printf(&b, "P %" PRIu64 " %s %" PRId64 " %" PRId64 "\n", u->h.key,
                                   u->pos[k].asset, u->pos[k].position, u->pos[k].open_notional);
        }
    for (size_t i = 0; i < e->orders.nb && rc == 0; i++)
        for (struct hnode *x = e->orders.b[i]; x && rc == 0; x = x->next) {
            const struct order *o = (const struct order *)x;
            rc = cm_buf_printf(
                &b, "D %" PRIu64 " %" PRIu64 " %s %d %" PRId64 " %" PRId64 " %" PRId64 "\n",
                o->h.key, o->user, e->mk[o->market].sym, o->buy, o->price, o->remaining,
                o->contrib);
        }
    for (size_t i = 0; i < e->pairs.nb && rc == 0; i++)
        for (struct hnode *x = e->pairs.b[i]; x && rc == 0; x = x->next) {
            const struct pair *p = (const struct pair *)x;
            rc = cm_buf_printf(&b, "W %" PRIu64 " %" PRIu64 " %s %" PRId64 " %u", p->a, p->b,
                               e->mk[p->market].sym, p->price, p->n);
            uint32_t have = p->n < RISK_WASH_RING ? p->n : RISK_WASH_RING;
            for (uint32_t k = 0; k < have && rc == 0; k++)
                rc = cm_buf_printf(&b, " %" PRId64, p->ts[k]);
            if (rc == 0)
                rc = cm_buf_puts(&b, "\n");
        }
    if (rc == 0)
        rc = cm_buf_puts(&b, "end\n");
    if (rc < 0) {
        cm_buf_release(&b);
        return NULL;
    }
    return cm_buf_detach(&b, len);
}

/* Splits line into at most max space-separated fields (in place). */
static int fields(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; *p && n < max;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        f[n++] = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

static int i64(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int u64(const char *s, uint64_t *out)
{
    return risk_parse_user(s, out);
}

static int restore_line(struct risk_engine *e, char *line)
{
    char *f[8 + RISK_WASH_RING + 2 * HIT_SLOTS];
    int n = fields(line, f, 8 + RISK_WASH_RING + 2 * HIT_SLOTS);
    int64_t v[8 + RISK_WASH_RING];
    uint64_t id, id2;
    if (n < 1)
        return -1;
    switch (f[0][0]) {
    case 'T': return n == 2 ? i64(f[1], &e->max_ts) : -1;
    case 'O':
        if (n != 4 || i64(f[2], &v[0]) < 0 || i64(f[3], &v[1]) < 0)
            return -1;
        return set_offset(e, f[1], (int32_t)v[0], v[1]);
    case 'M': {
        int mi = n == 3 ? market_index(e, f[1]) : -1;
        if (mi < 0 || i64(f[2], &v[0]) < 0)
            return -1;
        e->mk[mi].last_price = v[0];
        return 0;
    }
    case 'U': {
        if (n != 7 + 2 * HIT_SLOTS || u64(f[1], &id) < 0)
            return -1;
        for (int k = 0; k < 4; k++)
            if (i64(f[2 + k], &v[k]) < 0)
                return -1;
        struct user *u = get_user(e, id);
        if (!u)
            return -1;
        u->open_orders = v[0];
        u->last_deposit_ms = v[1];
        u->last_deposit_amount = v[2];
        u->blocked_until_ms = v[3];
        snprintf(u->blocked_rule, sizeof u->blocked_rule, "%s", strcmp(f[6], "-") ? f[6] : "");
        for (int k = 0; k < HIT_SLOTS; k++) {
            int64_t rule;
            if (i64(f[7 + 2 * k], &rule) < 0 || rule < 0 || rule > UINT32_MAX ||
                i64(f[8 + 2 * k], &u->last_hit[k].ts) < 0)
                return -1;
            u->last_hit[k].rule = (uint32_t)rule;
        }
        return 0;
    }
    case 'R': {
        struct user *u;
        if (n != 4 || u64(f[1], &id) < 0 || i64(f[2], &v[0]) < 0 || i64(f[3], &v[1]) < 0 ||
            !(u = get_user(e, id)))
            return -1;
        struct rate_bucket *b = &u->rate[(uint64_t)v[0] % RATE_RING];
        b->sec = v[0];
        b->n = (uint32_t)v[1];
        return 0;
    }
    case 'P': {
        struct user *u;
        struct asset_pos *p;
        if (n != 5 || u64(f[1], &id) < 0 || i64(f[3], &v[0]) < 0 || i64(f[4], &v[1]) < 0 ||
            !(u = get_user(e, id)) || !(p = get_pos(u, f[2])))
            return -1;
        p->position = v[0];
        p->open_notional = v[1];
        return 0;
    }
    case 'D': {
        int mi = n == 8 ? market_index(e, f[3]) : -1;
        if (mi < 0 || u64(f[1], &id) < 0 || u64(f[2], &id2) < 0)
            return -1;
        for (int k = 0; k < 4; k++)
            if (i64(f[4 + k], &v[k]) < 0)
                return -1;
        struct order *o = calloc(1, sizeof *o);
        if (!o)
            return -1;
        o->h.key = id;
        o->user = id2;
        o->market = mi;
        o->buy = v[0] != 0;
        o->price = v[1];
        o->remaining = v[2];
        o->contrib = v[3];
        if (ht_insert(&e->orders, &o->h) < 0) {
            free(o);
            return -1;
        }
        return 0;
    }
    case 'W': {
        int mi = n >= 6 ? market_index(e, f[3]) : -1;
        if (mi < 0 || u64(f[1], &id) < 0 || u64(f[2], &id2) < 0 || i64(f[4], &v[0]) < 0 ||
            i64(f[5], &v[1]) < 0 || v[1] < 0)
            return -1;
        uint32_t have = v[1] < RISK_WASH_RING ? (uint32_t)v[1] : RISK_WASH_RING;
        if (n != 6 + (int)have)
            return -1;
        struct pair *p = get_pair(e, id, id2, mi);
        if (!p)
            return -1;
        p->price = v[0];
        p->n = (uint32_t)v[1];
        for (uint32_t k = 0; k < have; k++)
            if (i64(f[6 + k], &p->ts[k]) < 0)
                return -1;
        return 0;
    }
    default: return -1;
    }
}

int risk_engine_restore(struct risk_engine *e, const char *json, size_t len)
{
    clear_state(e);
    char *text = malloc(len + 1);
    if (!text)
        return -1;
    memcpy(text, json, len);
    text[len] = '\0';
    int rc = -1, ended = 0;
    char *line = text;
    if (strncmp(line, "risk-snapshot 1\n", 16) != 0)
        goto out;
    line += 16;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (!nl)
            goto out;
        *nl = '\0';
        if (strcmp(line, "end") == 0) {
            ended = 1;
            break;
        }
        if (restore_line(e, line) < 0)
            goto out;
        line = nl + 1;
    }
    rc = ended ? 0 : -1;
out:
    free(text);
    if (rc < 0)
        clear_state(e);
    return rc;
}
