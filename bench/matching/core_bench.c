/*
 * In-process benchmark of the matching core (no I/O, one market, one core).
 *
 * For each scenario the command stream is generated BEFORE any timing, by
 * running a shadow market so cancels target orders that are really open.
 * Then, on fresh markets:
 *   throughput: the whole stream is applied REPS times back to back with
 *               clock reads before and after each rep; best rep wins.
 *               The main figure divides by the thread's CPU time
 *               (CLOCK_THREAD_CPUTIME_ID): other engineers share this
 *               2-core box and wall time would count the slices we were
 *               preempted; the wall-clock figure is printed too
 *               (throughput_wall), and on an idle core the two agree;
 *   latency:    one more pass reads CLOCK_MONOTONIC around every single
 *               command; the percentiles are over those per-command
 *               samples minus the median cost of an empty clock pair
 *               (printed as timer_overhead so the correction is visible).
 * Event sink: counts events and folds seq/type, as cheap as a service's
 * append to an output buffer. Usage: core_bench [mixed|addonly|cancelheavy] [n]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../services/matching/core/book.h"

#include "common/banned.h"

#define USERS 4000
#define REPS 5

struct rng {
    uint64_t s;
};

static uint64_t next(struct rng *r)
{
    /* splitmix64: deterministic and fast, good enough for workloads */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
    return next(r) % n;
}

/* Open-order tracker for the generator: ids are dense, so pos[] by id. */
struct openset {
    uint64_t *ids;
    uint64_t *users;
    int32_t *pos; /* index in ids, -1 if not open */
    size_t n;
};

static void open_add(struct openset *s, uint64_t id, uint64_t user)
{
    s->pos[id] = (int32_t)s->n;
    s->ids[s->n] = id;
    s->users[s->n++] = user;
}

static void open_del(struct openset *s, uint64_t id)
{
    int32_t i = s->pos[id];
    if (i < 0)
        return;
    s->n--;
    s->ids[i] = s->ids[s->n];
    s->users[i] = s->users[s->n];
    s->pos[s->ids[i]] = i;
    s->pos[id] = -1;
}

static void track(void *ctx, const struct me_event *ev)
{
    struct openset *s = ctx;
    switch (ev->type) {
    case ME_EV_FILLED:
    case ME_EV_CANCELLED:
    case ME_EV_EXPIRED: open_del(s, ev->order_id); break;
    default: break;
    }
}

struct sink {
    uint64_t events;
    uint64_t fold;
};

static void sink(void *ctx, const struct me_event *ev)
{
    struct sink *s = ctx;
    s->events++;
    s->fold += ev->seq ^ ev->type;
}

static struct me_rules rules(void)
{
    struct me_rules r = {0};
    r.base_scale = 8;
    r.stp_default = ME_STP_CANCEL_TAKER;
    r.tick = 1;
    r.lot = 1000;
    r.min_qty = 1000;
    r.max_qty = 100000000000;
    r.min_price = 1;
    r.max_price = 1000000000000;
    r.order_capacity = 1 << 20;
    return r;
}

enum scenario { MIXED, ADDONLY, CANCELHEAVY };

struct stream {
    struct me_cmd *cmds;
    size_t n;       /* timed commands */
    size_t prefill; /* commands applied before timing starts */
};

static struct me_cmd limit_cmd(uint64_t id, uint64_t user, int side, int64_t price, int64_t qty,
                               int tif)
{
    struct me_cmd c = {0};
    c.type = ME_CMD_PLACE;
    c.order_type = ME_LIMIT;
    c.side = (uint8_t)side;
    c.tif = (uint8_t)tif;
    c.order_id = id;
    c.user_id = user;
    c.price = price;
    c.qty = qty;
    return c;
}

/* Builds prefill + n commands for a scenario, applying them to a shadow
 * market as it goes so cancels name open orders and prices follow the
 * book. Returns 0 or -1. */
static int generate(enum scenario sc, size_t n, uint64_t seed, struct stream *st)
{
    size_t prefill = sc == CANCELHEAVY ? 200000 : sc == MIXED ? 20000 : 0;
    size_t total = prefill + n;
    st->cmds = calloc(total, sizeof(*st->cmds));
    struct openset os = {0};
    os.ids = malloc((total + 1) * sizeof(*os.ids));
    os.users = malloc((total + 1) * sizeof(*os.users));
    os.pos = malloc((total + 2) * sizeof(*os.pos));
    struct me_rules ru = rules();
    struct me_market *m = me_market_new(&ru);
    if (!st->cmds || !os.ids || !os.users || !os.pos || !m)
        goto fail;
    for (size_t i = 0; i < total + 2; i++)
        os.pos[i] = -1;
    struct rng r = {seed};
    const int64_t mid0 = 3000000; /* 30,000.00 quote per base, tick 0.01 */
    int64_t mid = mid0;
    uint64_t id = 0;
    for (size_t i = 0; i < total; i++) {
        struct me_cmd c;
        int prefilling = i < prefill;
        uint64_t user = below(&r, USERS) + 1;
        int side = (int)below(&r, 2);
        int64_t qty = (int64_t)(below(&r, 100) + 1) * 1000;
        uint64_t dice = below(&r, 100);
        if (sc == MIXED && !(i & 1023)) /* slow random walk of the mid */
            mid += (int64_t)below(&r, 41) - 20;
        if (prefilling || sc == ADDONLY) {
            int64_t off = (int64_t)below(&r, sc == ADDONLY ? 2000 : 500) + 1;
            c = limit_cmd(++id, user, side, side == ME_BUY ? mid - off : mid + off, qty, ME_GTC);
        } else if (sc == CANCELHEAVY) {
            if (dice < 55 && os.n) {
                size_t k = below(&r, os.n);
                c = (struct me_cmd){
                    .type = ME_CMD_CANCEL, .order_id = os.ids[k], .user_id = os.users[k]};
            } else {
                int64_t off = (int64_t)below(&r, 500) + 1;
                c = limit_cmd(++id, user, side, side == ME_BUY ? mid - off : mid + off, qty,
                              ME_GTC);
            }
        } else {
            /* exchange-core-like mix: mostly passive limits near the touch,
             * many cancels, some aggressive limits and market orders; the
             * cancel share rises when the book grows past ~30k orders. */
            int cancel_pct = os.n > 30000 ? 50 : 35;
            if (dice < (uint64_t)cancel_pct && os.n) {
                size_t k = below(&r, os.n);
                c = (struct me_cmd){
                    .type = ME_CMD_CANCEL, .order_id = os.ids[k], .user_id = os.users[k]};
            } else if (dice < 88) {
                int64_t off = (int64_t)below(&r, 60) + 1;
                c = limit_cmd(++id, user, side, side == ME_BUY ? mid - off : mid + off, qty,
                              ME_GTC);
            } else if (dice < 96) {
                int64_t off = (int64_t)below(&r, 10);
                c = limit_cmd(++id, user, side, side == ME_BUY ? mid + off : mid - off, qty,
                              dice < 92 ? ME_GTC : ME_IOC);
            } else {
                c = (struct me_cmd){.type = ME_CMD_PLACE,
                                    .order_type = ME_MARKET,
                                    .side = (uint8_t)side,
                                    .tif = ME_IOC,
                                    .order_id = ++id,
                                    .user_id = user,
                                    .qty = qty / 2 + 1000};
            }
        }
        c.ts = i;
        st->cmds[i] = c;
        if (c.type == ME_CMD_PLACE && c.order_type == ME_LIMIT && c.tif == ME_GTC)
            open_add(&os, c.order_id, c.user_id);
        if (me_market_apply(m, &c, track, &os) < 0)
            goto fail;
    }
    st->n = n;
    st->prefill = prefill;
    me_market_free(m);
    free(os.ids);
    free(os.users);
    free(os.pos);
    return 0;
fail:
    me_market_free(m);
    free(os.ids);
    free(os.users);
    free(os.pos);
    free(st->cmds);
    return -1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static struct me_market *prepared(const struct stream *st, struct sink *s)
{
    struct me_rules ru = rules();
    struct me_market *m = me_market_new(&ru);
    if (!m)
        return NULL;
    for (size_t i = 0; i < st->prefill; i++)
        me_market_apply(m, &st->cmds[i], sink, s);
    return m;
}

static uint32_t timer_overhead(void)
{
    static uint32_t v[10001];
    for (size_t i = 0; i < 10001; i++) {
        uint64_t t0 = now_ns();
        uint64_t t1 = now_ns();
        v[i] = (uint32_t)(t1 - t0);
    }
    qsort(v, 10001, sizeof(v[0]), cmp_u32);
    return v[5000];
}

static int run(const char *name, enum scenario sc, size_t n)
{
    struct stream st = {0};
    if (generate(sc, n, 0x5eed0000u + (uint64_t)sc, &st) < 0) {
        fprintf(stderr, "%s: generation failed\n", name);
        return -1;
    }
    const struct me_cmd *cmds = st.cmds + st.prefill;
    double best = 0, best_wall = 0;
    uint64_t events = 0;
    for (int rep = 0; rep < REPS; rep++) {
        struct sink s = {0};
        struct me_market *m = prepared(&st, &s);
        if (!m)
            return -1;
        s.events = 0;
        uint64_t t0 = now_ns(), c0 = cpu_ns();
        for (size_t i = 0; i < st.n; i++)
            me_market_apply(m, &cmds[i], sink, &s);
        uint64_t t1 = now_ns(), c1 = cpu_ns();
        double rate = (double)st.n * 1e9 / (double)(c1 - c0);
        double wall = (double)st.n * 1e9 / (double)(t1 - t0);
        if (rate > best)
            best = rate;
        if (wall > best_wall)
            best_wall = wall;
        if (rep && s.events != events)
            fprintf(stderr, "%s: event count differs between reps\n", name);
        events = s.events;
        me_market_free(m);
    }
    uint32_t ovh = timer_overhead();
    uint32_t *lat = malloc(st.n * sizeof(*lat));
    struct sink s = {0};
    struct me_market *m = prepared(&st, &s);
    if (!lat || !m)
        return -1;
    for (size_t i = 0; i < st.n; i++) {
        uint64_t t0 = now_ns();
        me_market_apply(m, &cmds[i], sink, &s);
        uint64_t d = now_ns() - t0;
        d = d > ovh ? d - ovh : 0;
        lat[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
    size_t open = me_market_order_count(m);
    me_market_free(m);
    qsort(lat, st.n, sizeof(*lat), cmp_u32);
    printf("# %s: %zu commands (+%zu prefill), %" PRIu64 " events, %zu orders open at end\n", name,
           st.n, st.prefill, events, open);
    printf("BENCH matching.core.%s.throughput %.0f cmd/s\n", name, best);
    printf("BENCH matching.core.%s.throughput_wall %.0f cmd/s\n", name, best_wall);
    printf("BENCH matching.core.%s.p50 %u ns\n", name, lat[st.n / 2]);
    printf("BENCH matching.core.%s.p99 %u ns\n", name, lat[st.n * 99 / 100]);
    printf("BENCH matching.core.%s.p99.9 %u ns\n", name, lat[st.n * 999 / 1000]);
    printf("BENCH matching.core.%s.timer_overhead %u ns\n", name, ovh);
    fflush(stdout);
    free(lat);
    free(st.cmds);
    return 0;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    size_t n = 0;
    if (argc > 2) {
        char *end;
        unsigned long long v = strtoull(argv[2], &end, 10);
        if (*end || v == 0 || v > 50000000) {
            fprintf(stderr, "usage: %s [mixed|addonly|cancelheavy] [n]\n", argv[0]);
            return 2;
        }
        n = (size_t)v;
    }
    static const struct {
        const char *name;
        enum scenario sc;
        size_t n;
    } all[] = {
        {"mixed", MIXED, 2000000},
        {"addonly", ADDONLY, 1000000},
        {"cancelheavy", CANCELHEAVY, 1000000},
    };
    int rc = 0, ran = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (only && strcmp(only, all[i].name))
            continue;
        ran = 1;
        if (run(all[i].name, all[i].sc, n ? n : all[i].n) < 0)
            rc = 1;
    }
    if (!ran) {
        fprintf(stderr, "unknown scenario %s\n", only);
        return 2;
    }
    return rc;
}
