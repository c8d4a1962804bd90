/*
 * Token buckets per user and per client IP. The buckets live in Redis so
 * every gateway replica draws from the same ones; one Lua script refills,
 * checks and takes from all of a request's buckets atomically (and reads
 * the risk block key in the same round trip). When Redis fails, a local
 * per-process table answers with the same rates, and the
 * gateway_ratelimit_fallback gauge and a log line say so: limits then hold
 * per replica instead of per fleet, which is the better failure than
 * either refusing everything or limiting nothing.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "gateway.h"
#include "common/banned.h"

/* ---- bucket math (pure) */

static void refill(struct gw_bucket *b, const struct gw_limit *l, int64_t now_ms)
{
    if (b->ts_ms == 0) {
        b->tokens = l->burst;
        b->ts_ms = now_ms;
        return;
    }
    if (now_ms > b->ts_ms) {
        b->tokens += (double)(now_ms - b->ts_ms) * l->rate / 1000.0;
        if (b->tokens > l->burst)
            b->tokens = l->burst;
        b->ts_ms = now_ms;
    }
}

static void report(const struct gw_bucket *b, const struct gw_limit *l, int allowed,
                   struct gw_take *out)
{
    out->allowed = allowed;
    out->limit = (long)l->burst;
    out->remaining = b->tokens < 0 ? 0 : (long)floor(b->tokens);
    out->reset_s = (long)ceil((l->burst - b->tokens) / l->rate);
    out->retry_ms = allowed ? 0 : (long)ceil((1.0 - b->tokens) * 1000.0 / l->rate);
    if (out->reset_s < 0)
        out->reset_s = 0;
}

void gw_bucket_take(struct gw_bucket *b, const struct gw_limit *l, int64_t now_ms,
                    struct gw_take *out)
{
    refill(b, l, now_ms);
    int ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    report(b, l, ok, out);
}

/* ---- Redis script. KEYS: n bucket keys, then the block key if ARGV[2]
 * is "1". ARGV: n, block flag, then rate, burst and wanted tokens (the
 * lease, >= 1) per bucket. When every bucket has a token, each gives
 * min(wanted, whole tokens it has). Returns {allowed, refused index
 * (1-based, 0 none), limit, remaining, reset_s, retry_ms, blocked,
 * reported index, granted_1..granted_n}. Same arithmetic as
 * gw_bucket_take: keep them in sync. */
static const char script[] =
    "local n = tonumber(ARGV[1])\n"
    "if ARGV[2] == '1' and redis.call('EXISTS', KEYS[n + 1]) == 1 then\n"
    "  return {0, 0, 0, 0, 0, 0, 1, 0}\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local tok, refused, grant = {}, 0, {}\n"
    "for i = 1, n do\n"
    "  local rate, burst = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])\n"
    "  local st = redis.call('HMGET', KEYS[i], 't', 'ts')\n"
    "  local tokens, ts = tonumber(st[1]), tonumber(st[2])\n"
    "  if tokens == nil or ts == nil then tokens = burst; ts = now end\n"
    "  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end\n"
    "  tok[i] = tokens\n"
    "  grant[i] = 0\n"
    "  if tokens < 1 and refused == 0 then refused = i end\n"
    "end\n"
    "local pick = refused\n"
    "for i = 1, n do\n"
    "  local rate, burst = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])\n"
    "  if refused == 0 then\n"
    "    grant[i] = math.min(tonumber(ARGV[3 * i + 2]), math.floor(tok[i]))\n"
    "    tok[i] = tok[i] - grant[i]\n"
    "  end\n"
    "  redis.call('HSET', KEYS[i], 't', tostring(tok[i]), 'ts', now)\n"
    "  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)\n"
    "  if refused == 0 and (pick == 0 or tok[i] < tok[pick]) then pick = i end\n"
    "end\n"
    "local rate, burst = tonumber(ARGV[3 * pick]), tonumber(ARGV[3 * pick + 1])\n"
    "local left = tok[pick]\n"
    "local rem = math.floor(left); if rem < 0 then rem = 0 end\n"
    "local reset = math.ceil((burst - left) / rate); if reset < 0 then reset = 0 end\n"
    "local retry = 0\n"
    "if refused ~= 0 then retry = math.ceil((1 - left) * 1000 / rate) end\n"
    "local out = {refused == 0 and 1 or 0, refused, burst, rem, reset, retry, 0, pick}\n"
    "for i = 1, n do out[8 + i] = grant[i] end\n"
    "return out\n";

/* ---- local fallback table */

#define LOCAL_SLOTS 8192
#define KEY_MAX 160

struct slot {
    char key[KEY_MAX];
    struct gw_bucket b;
};

/* Tokens leased from Redis, spent here until they run out or expire. */
struct lease {
    char key[KEY_MAX];
    long left;
    int64_t exp_ms;
    struct gw_take take; /* Redis's answer when leased (headers) */
};

struct gw_limiter {
    struct cm_redis *redis;
    pthread_mutex_t mu;
    struct slot *slots;
    struct lease *leases;
    atomic_int fallback;
    struct cm_metric *m_fallback, *m_rejects;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct gw_limiter *gw_limiter_new(struct cm_redis *redis)
{
    struct gw_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->slots = calloc(LOCAL_SLOTS, sizeof *l->slots);
    l->leases = calloc(LOCAL_SLOTS, sizeof *l->leases);
    if (!l->slots || !l->leases) {
        free(l->slots);
        free(l->leases);
        free(l);
        return NULL;
    }
    l->redis = redis;
    pthread_mutex_init(&l->mu, NULL);
    l->m_fallback =
        cm_metric_gauge("gateway_ratelimit_fallback",
                        "1 while Redis is unreachable and the in-process limiter is used instead, "
                        "else 0.",
                        NULL);
    l->m_rejects = cm_metric_counter(
        "gateway_ratelimit_rejections_total",
        "Requests rejected with 429 by the rate limiter; scope is ip, user or global.", "scope");
    cm_gauge_set(l->m_fallback, redis ? 0 : 1);
    cm_counter_add(l->m_rejects, 0, "user");
    cm_counter_add(l->m_rejects, 0, "ip");
    atomic_store(&l->fallback, redis ? 0 : 1);
    return l;
}

void gw_limiter_free(struct gw_limiter *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l->leases);
    free(l);
}

/* A slot for key: found, or a fresh one that replaces whatever hashed
 * there (a full table forgets old buckets, which only ever errs towards
 * letting a request through). Called with mu held. */
static struct gw_bucket *local_bucket(struct gw_limiter *l, const char *key)
{
    uint64_t h = fnv1a(key);
    struct slot *victim = NULL;
    for (int probe = 0; probe < 4; probe++) {
        struct slot *s = &l->slots[(h + (uint64_t)probe) % LOCAL_SLOTS];
        if (strcmp(s->key, key) == 0)
            return &s->b;
        if (!victim && s->key[0] == '\0')
            victim = s;
    }
    if (!victim)
        victim = &l->slots[h % LOCAL_SLOTS];
    size_t kn = strnlen(key, KEY_MAX - 1);
    memcpy(victim->key, key, kn);
    victim->key[kn] = '\0';
    victim->b.tokens = 0;
    victim->b.ts_ms = 0;
    return &victim->b;
}

/* The lease slot of key (NULL if none: found only on an exact key). With
 * create, the slot is taken over. Called with mu held. */
static struct lease *lease_slot(struct gw_limiter *l, const char *key, int create)
{
    uint64_t h = fnv1a(key);
    struct lease *victim = NULL;
    for (int probe = 0; probe < 4; probe++) {
        struct lease *s = &l->leases[(h + (uint64_t)probe) % LOCAL_SLOTS];
        if (strcmp(s->key, key) == 0)
            return s;
        if (!victim && s->key[0] == '\0')
            victim = s;
    }
    if (!create)
        return NULL;
    if (!victim)
        victim = &l->leases[h % LOCAL_SLOTS];
    size_t kn = strnlen(key, KEY_MAX - 1);
    memcpy(victim->key, key, kn);
    victim->key[kn] = '\0';
    return victim;
}

/* Spends one leased token from every bucket if each has one. */
static int lease_take(struct gw_limiter *l, int n, char keys[][KEY_MAX], struct gw_take *out)
{
    int64_t now = mono_ms();
    struct lease *ls[2] = {NULL, NULL};
    int ok = n > 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n && ok; i++) {
        ls[i] = lease_slot(l, keys[i], 0);
        ok = ls[i] && ls[i]->left >= 1 && ls[i]->exp_ms > now;
    }
    if (ok) {
        int pick = 0;
        for (int i = 0; i < n; i++) {
            ls[i]->left--;
            if (ls[i]->take.remaining + ls[i]->left < ls[pick]->take.remaining + ls[pick]->left)
                pick = i;
        }
        *out = ls[pick]->take;
        out->remaining += ls[pick]->left;
        out->allowed = 1;
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static void lease_store(struct gw_limiter *l, int n, char keys[][KEY_MAX], const long *granted,
                        const struct gw_take *take)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n; i++) {
        struct lease *s = lease_slot(l, keys[i], 1);
        /* Threads that missed at the same moment each brought a lease:
         * pool them rather than drop tokens already taken from Redis. */
        long keep = s->exp_ms > now ? s->left : 0;
        s->left = keep + (granted[i] > 1 ? granted[i] - 1 : 0);
        s->exp_ms = now + GW_LEASE_MS;
        s->take = *take;
    }
    pthread_mutex_unlock(&l->mu);
}

static void local_check(struct gw_limiter *l, int n, char keys[][KEY_MAX],
                        const struct gw_limit *const *lims, struct gw_rl_result *out,
                        int *refused_idx)
{
    int64_t now = mono_ms();
    struct gw_bucket *bs[2];
    pthread_mutex_lock(&l->mu);
    int refused = -1;
    for (int i = 0; i < n; i++) {
        bs[i] = local_bucket(l, keys[i]);
        refill(bs[i], lims[i], now);
        if (bs[i]->tokens < 1.0 && refused < 0)
            refused = i;
    }
    int pick = refused;
    for (int i = 0; i < n; i++) {
        if (refused < 0) {
            bs[i]->tokens -= 1.0;
            if (pick < 0 || bs[i]->tokens < bs[pick]->tokens)
                pick = i;
        }
    }
    report(bs[pick], lims[pick], refused < 0, &out->take);
    pthread_mutex_unlock(&l->mu);
    *refused_idx = refused;
}

static void set_fallback(struct gw_limiter *l, int on, const char *why)
{
    int was = atomic_exchange(&l->fallback, on);
    if (was == on)
        return;
    cm_gauge_set(l->m_fallback, on);
    if (on)
        cm_log_kv(CM_LOG_WARN,
                  "rate limiter: Redis unavailable, using the local per-process limiter", "reason",
                  why, (const char *)NULL);
    else
        cm_info("rate limiter: Redis is back, limits are shared again");
}

void gw_limiter_check(struct gw_limiter *l, const struct gw_class *cls, const char *user,
                      const char *ip, const char *block_user, struct gw_rl_result *out)
{
    memset(out, 0, sizeof *out);
    char keys[3][KEY_MAX];
    const struct gw_limit *lims[2];
    enum gw_rl_scope scopes[2];
    int n = 0;
    if (user && *user && cls->has_user) {
        snprintf(keys[n], KEY_MAX, "rl:%s:u:%s", cls->name, user);
        lims[n] = &cls->user;
        scopes[n++] = GW_RL_USER;
    }
    if (ip && *ip && cls->has_ip) {
        snprintf(keys[n], KEY_MAX, "rl:%s:ip:%s", cls->name, ip);
        lims[n] = &cls->ip;
        scopes[n++] = GW_RL_IP;
    }
    int block = block_user && *block_user;
    if (n == 0 && !block) {
        out->take.allowed = 1;
        return;
    }

    int lease = cls->lease > 1 ? cls->lease : 1;
    if (l->redis && lease > 1 && !atomic_load(&l->fallback) && lease_take(l, n, keys, &out->take)) {
        if (!block)
            return;
        /* Paid from the lease; the block key is still read on every
         * request, with one EXISTS: far less work for Redis than the
         * script (refill and write-back of every bucket). */
        snprintf(keys[2], KEY_MAX, "risk:blocked:%s", block_user);
        const char *argv[2] = {"EXISTS", keys[2]};
        struct cm_redis_reply rep;
        int rc = cm_redis_command(l->redis, &rep, 2, argv, NULL);
        if (rc == 0 && rep.type == CM_REDIS_INTEGER) {
            out->blocked = rep.integer == 1;
            cm_redis_reply_release(&rep);
            return;
        }
        /* Redis failed: the token was already taken, the block key cannot
         * be read (as in the local fallback below). */
        set_fallback(l, 1, rep.str ? rep.str : "unexpected reply");
        cm_redis_reply_release(&rep);
        out->fallback = 1;
        return;
    }
    if (l->redis) {
        const char *kv[3];
        char argv[8][32];
        const char *args[8];
        int nk = 0;
        for (int i = 0; i < n; i++)
            kv[nk++] = keys[i];
        if (block) {
            snprintf(keys[2], KEY_MAX, "risk:blocked:%s", block_user);
            kv[nk++] = keys[2];
        }
        snprintf(argv[0], sizeof argv[0], "%d", n);
        snprintf(argv[1], sizeof argv[1], "%d", block);
        for (int i = 0; i < n; i++) {
            snprintf(argv[2 + 3 * i], sizeof argv[0], "%.6f", lims[i]->rate);
            snprintf(argv[3 + 3 * i], sizeof argv[0], "%.0f", lims[i]->burst);
            snprintf(argv[4 + 3 * i], sizeof argv[0], "%d", lease);
        }
        for (int i = 0; i < 2 + 3 * n; i++)
            args[i] = argv[i];
        struct cm_redis_reply rep;
        int rc = cm_redis_eval(l->redis, script, nk, kv, 2 + 3 * n, args, &rep);
        if (rc == 0 && rep.type == CM_REDIS_ARRAY && rep.nelem >= 8) {
            long long v[10] = {0};
            for (size_t i = 0; i < rep.nelem && i < 10; i++)
                v[i] = rep.elem[i].type == CM_REDIS_INTEGER ? rep.elem[i].integer : 0;
            cm_redis_reply_release(&rep);
            set_fallback(l, 0, NULL);
            out->blocked = v[6] == 1;
            if (out->blocked || n == 0) {
                out->take.allowed = 1;
                return;
            }
            out->take.allowed = v[0] == 1;
            out->take.limit = (long)v[2];
            out->take.remaining = (long)v[3];
            out->take.reset_s = (long)v[4];
            out->take.retry_ms = (long)v[5];
            if (!out->take.allowed && v[1] >= 1 && v[1] <= n) {
                out->refused_by = scopes[v[1] - 1];
                cm_counter_add(l->m_rejects, 1, out->refused_by == GW_RL_USER ? "user" : "ip");
            }
            if (out->take.allowed && lease > 1) {
                long granted[2] = {(long)v[8], (long)v[9]};
                lease_store(l, n, keys, granted, &out->take);
                /* The leased tokens are still this client's to spend. */
                if (v[7] >= 1 && v[7] <= n && granted[v[7] - 1] > 1)
                    out->take.remaining += granted[v[7] - 1] - 1;
            }
            return;
        }
        set_fallback(l, 1, rep.str ? rep.str : "unexpected reply");
        cm_redis_reply_release(&rep);
    }
    /* Local limiter. The block key cannot be read: trading-api checks it
     * too, so a Redis outage does not unblock anyone there. */
    out->fallback = 1;
    if (n == 0) {
        out->take.allowed = 1;
        return;
    }
    int refused;
    local_check(l, n, keys, lims, out, &refused);
    if (refused >= 0) {
        out->refused_by = scopes[refused];
        cm_counter_add(l->m_rejects, 1, out->refused_by == GW_RL_USER ? "user" : "ip");
    }
}
