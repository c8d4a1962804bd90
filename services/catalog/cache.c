/*
 * Cache-aside for product reads, on Redis (hiredis 0.14, one connection
 * per thread, opened lazily).
 *
 * Keys, per product id N:
 *   catalog:product:N        the product's JSON as served ("" = no such product)
 *   catalog:product:N:gen    bumped by every write (INCR), so a reader that
 *                            loaded older rows cannot cache them afterwards
 *   catalog:product:N:lock   SET NX PX: the one request loading N on a miss
 *
 * Why the generation: plain cache-aside has a race (reader loads old row,
 * writer commits and deletes the key, reader stores the old row for a whole
 * TTL). The reader reads gen together with the value (one MGET) before it
 * reads PostgreSQL and stores only if gen is unchanged (a Lua script); a
 * writer bumps gen after its commit. Either the writer's INCR comes first
 * (the store is refused) or the store comes first (the writer's DEL removes
 * it).
 *
 * Redis trouble never fails a request: any error (connect, timeout, reply)
 * drops the connection, counts result="error", and the read goes to
 * PostgreSQL; reconnects are attempted at most every RETRY_MS per thread so
 * a dead Redis costs nothing on the hot path.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/faults.h"
#include "common/log.h"
#include "common/metrics.h"
#include "catalog.h"
#include "common/banned.h"

#define RETRY_MS 500
#define NEGATIVE_TTL_MS 5000
#define MAX_CONNS 128

static struct {
    char host[256];
    int port;
    int db;
    int64_t ttl_ms, lock_ms, timeout_ms;
    struct cm_metric *requests;
    struct cm_metric *loads;
    struct cm_metric *invalidations;
} g;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static redisContext *g_conns[MAX_CONNS];
static _Thread_local redisContext *t_redis;
static _Thread_local int64_t t_retry_at;
static atomic_ulong g_token;

static const char SET_IF_GEN[] =
    "if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";
static const char INVALIDATE[] =
    "redis.call('INCR', KEYS[2]) redis.call('PEXPIRE', KEYS[2], 86400000) "
    "redis.call('DEL', KEYS[1]) return 1";
static const char UNLOCK[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* redis://host:port[/db]; 0 / -1. */
static int parse_url(const char *url)
{
    const char *p = url + strlen("redis://");
    const char *at = strchr(p, '@');
    if (at)
        p = at + 1; /* credentials are not supported by the lab; ignore */
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    size_t hl = colon ? (size_t)(colon - p) : slash ? (size_t)(slash - p) : strlen(p);
    if (hl == 0 || hl >= sizeof g.host)
        return -1;
    memcpy(g.host, p, hl);
    g.host[hl] = '\0';
    g.port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return -1;
        g.port = (int)port;
    }
    g.db = 0;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000)
            return -1;
        g.db = (int)db;
    }
    return 0;
}

int cache_open(const char *url, int64_t ttl_ms, int64_t lock_ms, int64_t timeout_ms)
{
    if (parse_url(url) < 0) {
        cm_error("cache: bad REDIS_URL");
        return -1;
    }
    g.ttl_ms = ttl_ms;
    g.lock_ms = lock_ms;
    g.timeout_ms = timeout_ms;
    g.requests = cm_metric_counter("catalog_cache_requests_total",
                                   "Product cache lookups by result (hit, miss, error).", "result");
    g.loads = cm_metric_counter("catalog_product_loads_total",
                                "Product reads that went to PostgreSQL (misses, errors, no cache).",
                                NULL);
    cm_counter_add(g.loads, 0);
    g.invalidations = cm_metric_counter("catalog_cache_invalidations_total",
                                        "Cache keys invalidated after a write.", NULL);
    cm_counter_add(g.invalidations, 0);
    /* zero series so dashboards see every result from the first scrape */
    cm_counter_add(g.requests, 0, "hit");
    cm_counter_add(g.requests, 0, "miss");
    cm_counter_add(g.requests, 0, "error");
    if (!ttl_ms)
        cm_info("cache: disabled (CACHE_TTL=0)");
    return 0;
}

void cache_close(void)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (g_conns[i]) {
            redisFree(g_conns[i]);
            g_conns[i] = NULL;
        }
    pthread_mutex_unlock(&g_lock);
    t_redis = NULL;
}

static void forget(redisContext *c)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (g_conns[i] == c)
            g_conns[i] = NULL;
    pthread_mutex_unlock(&g_lock);
    redisFree(c);
}

static redisContext *connect_redis(void)
{
    struct timeval tv = {(time_t)(g.timeout_ms / 1000), (suseconds_t)(g.timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(g.host, g.port, tv);
    if (!c)
        return NULL;
    if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    if (g.db) {
        redisReply *r = redisCommand(c, "SELECT %d", g.db);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* The thread's connection or NULL (Redis down, backing off, or dropped by
 * the drop_dependency fault). */
static redisContext *rconn(void)
{
    if (cm_faults_dependency_dropped("redis"))
        return NULL;
    if (t_redis)
        return t_redis;
    int64_t now = now_ms();
    if (now < t_retry_at)
        return NULL;
    redisContext *c = connect_redis();
    if (!c) {
        t_retry_at = now + RETRY_MS;
        return NULL;
    }
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < MAX_CONNS && !t_redis; i++)
        if (!g_conns[i]) {
            g_conns[i] = c;
            t_redis = c;
        }
    pthread_mutex_unlock(&g_lock);
    if (!t_redis)
        redisFree(c);
    return t_redis;
}

/* One command; NULL on any failure (the connection is then dropped unless
 * Redis merely answered with an error reply). Caller frees the reply. */
static redisReply *rcmd(int argc, const char **argv, const size_t *lens)
{
    /* A connection kept from before a Redis restart fails on its first
     * command: then reconnect and retry once, at once. Back off only when
     * connecting itself fails (Redis really down). */
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = !t_redis;
        redisContext *c = rconn();
        if (!c)
            return NULL;
        redisReply *r = redisCommandArgv(c, argc, argv, lens);
        if (r && r->type == REDIS_REPLY_ERROR) {
            cm_warn("cache: redis error reply: %s", r->str);
            freeReplyObject(r);
            return NULL;
        }
        if (r)
            return r;
        cm_warn("cache: redis: %s", c->errstr[0] ? c->errstr : "no reply");
        forget(c);
        t_redis = NULL;
        if (fresh) {
            t_retry_at = now_ms() + RETRY_MS;
            return NULL;
        }
    }
    return NULL;
}

int cache_ping(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout(g.host, g.port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok ? 0 : -1;
}

/* Loads from PostgreSQL and renders: 0, STORE_NOT_FOUND or -1. */
static int load(int64_t id, struct cm_buf *json)
{
    struct product *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    cm_counter_add(g.loads, 1);
    int rc = store_product_get(id, p);
    if (rc == 0 && product_render(json, p) < 0)
        rc = -1;
    product_release(p);
    free(p);
    return rc;
}

/* "" in the cache marks a product that does not exist. */
static int from_value(const redisReply *v, struct cm_buf *json)
{
    if (v->len == 0)
        return STORE_NOT_FOUND;
    return cm_buf_append(json, v->str, v->len) < 0 ? -1 : 0;
}

/* Stores the loaded value if the generation read before loading still holds. */
static void store_if_gen(const char *key, const char *genkey, const char *gen, int rc,
                         const struct cm_buf *json)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld",
             (long long)(rc == 0 ? g.ttl_ms
                                 : (g.ttl_ms < NEGATIVE_TTL_MS ? g.ttl_ms : NEGATIVE_TTL_MS)));
    const char *value = rc == 0 ? json->data : "";
    const char *argv[8] = {"EVAL", SET_IF_GEN, "2", key, genkey, gen, value, ttl};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    lens[6] = rc == 0 ? json->len : 0;
    redisReply *r = rcmd(8, argv, lens);
    if (r)
        freeReplyObject(r);
}

int cache_product_json(int64_t id, struct cm_buf *json)
{
    if (!g.ttl_ms)
        return load(id, json);

    char key[64], genkey[72], lockkey[72], gen[32] = "0";
    snprintf(key, sizeof key, "catalog:product:%lld", (long long)id);
    snprintf(genkey, sizeof genkey, "%s:gen", key);
    snprintf(lockkey, sizeof lockkey, "%s:lock", key);

    const char *mget[3] = {"MGET", key, genkey};
    redisReply *r = rcmd(3, mget, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        if (r)
            freeReplyObject(r);
        cm_counter_add(g.requests, 1, "error");
        return load(id, json);
    }
    if (r->element[0]->type == REDIS_REPLY_STRING) {
        int rc = from_value(r->element[0], json);
        freeReplyObject(r);
        cm_counter_add(g.requests, 1, "hit");
        return rc;
    }
    if (r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(gen, sizeof gen, "%.*s", (int)r->element[1]->len, r->element[1]->str);
    freeReplyObject(r);
    cm_counter_add(g.requests, 1, "miss");

    /* Stampede protection: one loader per product; the others poll the
     * value for a while, then load it themselves rather than fail. */
    char token[48], px[24];
    snprintf(token, sizeof token, "%d-%lu", (int)getpid(), atomic_fetch_add(&g_token, 1) + 1);
    snprintf(px, sizeof px, "%lld", (long long)g.lock_ms);
    const char *setnx[6] = {"SET", lockkey, token, "NX", "PX", px};
    r = rcmd(6, setnx, NULL);
    int locked = r && r->type == REDIS_REPLY_STATUS;
    int lock_error = !r;
    if (r)
        freeReplyObject(r);

    if (!locked && !lock_error) {
        /* up to the lock's lifetime: past it a dead loader's lock is gone */
        int64_t deadline = now_ms() + g.lock_ms;
        const char *get[2] = {"GET", key};
        while (now_ms() < deadline) {
            usleep(2000);
            r = rcmd(2, get, NULL);
            if (!r)
                break;
            if (r->type == REDIS_REPLY_STRING) {
                int rc = from_value(r, json);
                freeReplyObject(r);
                return rc;
            }
            freeReplyObject(r);
        }
        return load(id, json);
    }

    const char *unlock[5] = {"EVAL", UNLOCK, "1", lockkey, token};
    if (locked) {
        /* Double-checked: the previous loader may have stored the value and
         * released the lock between our MGET and our SET NX. */
        const char *get[2] = {"GET", key};
        r = rcmd(2, get, NULL);
        if (r && r->type == REDIS_REPLY_STRING) {
            int rc = from_value(r, json);
            freeReplyObject(r);
            r = rcmd(5, unlock, NULL);
            if (r)
                freeReplyObject(r);
            return rc;
        }
        if (r)
            freeReplyObject(r);
    }
    int rc = load(id, json);
    if (locked) {
        if (rc == 0 || rc == STORE_NOT_FOUND)
            store_if_gen(key, genkey, gen, rc, json);
        r = rcmd(5, unlock, NULL);
        if (r)
            freeReplyObject(r);
    }
    return rc;
}

void cache_invalidate(int64_t id)
{
    if (!g.ttl_ms)
        return;
    char key[64], genkey[72];
    snprintf(key, sizeof key, "catalog:product:%lld", (long long)id);
    snprintf(genkey, sizeof genkey, "%s:gen", key);
    const char *argv[5] = {"EVAL", INVALIDATE, "2", key, genkey};
    redisReply *r = rcmd(5, argv, NULL);
    if (r) {
        freeReplyObject(r);
        cm_counter_add(g.invalidations, 1);
    } else {
        cm_warn("cache: could not invalidate product %lld (stale for up to CACHE_TTL)",
                (long long)id);
    }
}
