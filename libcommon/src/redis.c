/*
 * Redis client: a fixed pool of hiredis contexts, each guarded by its own
 * mutex, reconnected on demand with backoff.
 */
#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "common/banned.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

struct slot {
    pthread_mutex_t mu;
    redisContext *ctx;   /* NULL: not connected */
    int64_t retry_at_ms; /* no connect attempt before this */
    int failures;        /* consecutive connect failures */
};

struct cm_redis {
    struct cm_redis_url url;
    struct timeval connect_tv, command_tv;
    int nslots;
    struct slot *slots;
    atomic_uint next;
    struct cm_metric *duration, *errors, *up;
};

static int (*_Atomic drop_hook)(const char *dep);

void cm_redis_set_drop_hook(int (*fn)(const char *dep))
{
    drop_hook = fn;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- URL --------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *msg)
{
    if (err)
        snprintf(err, errlen, "REDIS_URL: %s", msg);
    return -1;
}

/* Copies [s, s+n) %-decoded into out; -1 on bad escapes or overflow. */
static int decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return -1;
            char hex[3] = {s[i + 1], s[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int cm_redis_parse_url(const char *url, struct cm_redis_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url || !*url)
        return fail(err, errlen, "is empty");
    if (strncmp(url, "rediss://", 9) == 0)
        return fail(err, errlen, "rediss:// (TLS) is not supported");
    if (strncmp(url, "redis://", 8) != 0)
        return fail(err, errlen, "must start with redis://");
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    if (end[0] == '?' || end[0] == '#')
        return fail(err, errlen, "query parameters are not supported");

    /* userinfo: the last '@' before the path */
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return fail(err, errlen, "credentials must be user:password or :password");
        if (decode(p, (size_t)(colon - p), out->username, sizeof out->username) != 0 ||
            decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password) != 0)
            return fail(err, errlen, "bad or too long credentials");
        p = at + 1;
    }

    /* host[:port] */
    const char *hend, *portp = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return fail(err, errlen, "unterminated [ipv6] host");
        if ((size_t)(rb - p - 1) >= sizeof out->host || rb == p + 1)
            return fail(err, errlen, "bad host");
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        out->host[rb - p - 1] = '\0';
        hend = rb + 1;
        if (hend < end && *hend != ':')
            return fail(err, errlen, "junk after [ipv6] host");
        if (hend < end)
            portp = hend + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        if (hend == p)
            return fail(err, errlen, "host is missing");
        if ((size_t)(hend - p) >= sizeof out->host)
            return fail(err, errlen, "host is too long");
        memcpy(out->host, p, (size_t)(hend - p));
        out->host[hend - p] = '\0';
        if (colon)
            portp = colon + 1;
    }
    if (portp) {
        char num[16];
        int64_t v;
        size_t n = (size_t)(end - portp);
        if (n == 0 || n >= sizeof num)
            return fail(err, errlen, "port must be 1..65535");
        memcpy(num, portp, n);
        num[n] = '\0';
        if (cm_parse_int64(num, &v) != 0 || v < 1 || v > 65535)
            return fail(err, errlen, "port must be 1..65535");
        out->port = (int)v;
    }
    if (*end == '/' && end[1]) {
        int64_t v;
        if (cm_parse_int64(end + 1, &v) != 0 || v < 0 || v > 1000000)
            return fail(err, errlen, "database must be a number (e.g. /0)");
        out->db = (int)v;
    }
    return 0;
}

/* ---- replies ----------------------------------------------------------- */

void cm_redis_reply_release(struct cm_redis_reply *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nelem; i++)
        cm_redis_reply_release(&r->elem[i]);
    free(r->elem);
    free(r->str);
    memset(r, 0, sizeof *r);
}

static int set_str(struct cm_redis_reply *out, const char *s, size_t len)
{
    out->str = malloc(len + 1);
    if (!out->str)
        return -1;
    memcpy(out->str, s, len);
    out->str[len] = '\0';
    out->len = len;
    return 0;
}

static void set_error(struct cm_redis_reply *out, const char *msg)
{
    if (!out)
        return;
    cm_redis_reply_release(out);
    out->type = CM_REDIS_ERROR;
    set_str(out, msg, strlen(msg));
}

static int copy_reply(const redisReply *in, struct cm_redis_reply *out)
{
    memset(out, 0, sizeof *out);
    switch (in->type) {
    case REDIS_REPLY_INTEGER:
        out->type = CM_REDIS_INTEGER;
        out->integer = in->integer;
        return 0;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        out->type = in->type == REDIS_REPLY_STRING   ? CM_REDIS_STRING
                    : in->type == REDIS_REPLY_STATUS ? CM_REDIS_STATUS
                                                     : CM_REDIS_ERROR;
        return set_str(out, in->str, in->len);
    case REDIS_REPLY_ARRAY:
        out->type = CM_REDIS_ARRAY;
        if (in->elements == 0)
            return 0;
        out->elem = calloc(in->elements, sizeof *out->elem);
        if (!out->elem)
            return -1;
        out->nelem = in->elements;
        for (size_t i = 0; i < in->elements; i++)
            if (copy_reply(in->element[i], &out->elem[i]) != 0)
                return -1;
        return 0;
    default: out->type = CM_REDIS_NIL; return 0;
    }
}

/* ---- pool -------------------------------------------------------------- */

struct cm_redis *cm_redis_open(const struct cm_redis_config *cfg, char *err, size_t errlen)
{
    struct cm_redis_url u;
    if (!cfg)
        return fail(err, errlen, "is required"), NULL;
    if (cm_redis_parse_url(cfg->url, &u, err, errlen) != 0)
        return NULL;
    if (cfg->connect_timeout_ms < 0 || cfg->command_timeout_ms < 0 || cfg->pool_size < 0 ||
        cfg->pool_size > 256) {
        if (err)
            snprintf(err, errlen, "redis: a setting is out of range");
        return NULL;
    }
    struct cm_redis *r = calloc(1, sizeof *r);
    if (!r)
        goto oom;
    r->url = u;
    int cms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 1000;
    int qms = cfg->command_timeout_ms ? cfg->command_timeout_ms : 1000;
    r->connect_tv = (struct timeval){cms / 1000, (cms % 1000) * 1000};
    r->command_tv = (struct timeval){qms / 1000, (qms % 1000) * 1000};
    r->nslots = cfg->pool_size ? cfg->pool_size : 4;
    r->slots = calloc((size_t)r->nslots, sizeof *r->slots);
    if (!r->slots)
        goto oom;
    for (int i = 0; i < r->nslots; i++)
        pthread_mutex_init(&r->slots[i].mu, NULL);
    /* Label-free, as in observability/metrics-contract.json; the kind of a
     * failure goes to the log instead. */
    r->duration = cm_metric_histogram("redis_command_duration_seconds",
                                      "Redis command duration, seconds.", NULL, NULL, 0);
    r->errors = cm_metric_counter("redis_errors_total",
                                  "Redis commands that failed (connection or reply error).", NULL);
    r->up =
        cm_metric_gauge("redis_up", "1 if the last Redis command or ping succeeded, else 0.", NULL);
    return r;
oom:
    if (err)
        snprintf(err, errlen, "redis: out of memory");
    free(r);
    return NULL;
}

void cm_redis_close(struct cm_redis *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nslots; i++) {
        if (r->slots[i].ctx)
            redisFree(r->slots[i].ctx);
        pthread_mutex_destroy(&r->slots[i].mu);
    }
    free(r->slots);
    free(r);
}

static struct slot *borrow(struct cm_redis *r)
{
    unsigned start = atomic_fetch_add(&r->next, 1);
    for (int i = 0; i < r->nslots; i++) {
        struct slot *s = &r->slots[(start + (unsigned)i) % (unsigned)r->nslots];
        if (pthread_mutex_trylock(&s->mu) == 0)
            return s;
    }
    struct slot *s = &r->slots[start % (unsigned)r->nslots];
    pthread_mutex_lock(&s->mu);
    return s;
}

/* An idle connection has nothing to read: readable means the server closed
 * it (or sent something unexpected), so it is replaced before use. */
static int idle_ok(redisContext *c)
{
    if (c->err)
        return 0;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    return poll(&pf, 1, 0) == 0;
}

static void drop_conn(struct slot *s)
{
    if (s->ctx)
        redisFree(s->ctx);
    s->ctx = NULL;
}

/* Runs a setup command on a fresh connection; 0 when not an error reply. */
static int setup_cmd(redisContext *c, int argc, const char **argv, char *msg, size_t msglen)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    int rc = rep && rep->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc)
        snprintf(msg, msglen, "%s: %s", argv[0], rep ? rep->str : c->errstr);
    freeReplyObject(rep);
    return rc;
}

static int connect_slot(struct cm_redis *r, struct slot *s, char *msg, size_t msglen)
{
    int64_t now = now_ms();
    if (now < s->retry_at_ms) {
        snprintf(msg, msglen, "redis unavailable (reconnect backoff)");
        return -1;
    }
    redisContext *c = redisConnectWithTimeout(r->url.host, r->url.port, r->connect_tv);
    if (!c || c->err) {
        snprintf(msg, msglen, "redis connect %.200s:%d: %.100s", r->url.host, r->url.port,
                 c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, r->command_tv) != REDIS_OK) {
        snprintf(msg, msglen, "redis: cannot set timeout");
        goto fail;
    }
    if (r->url.password[0]) {
        const char *a2[] = {"AUTH", r->url.password};
        const char *a3[] = {"AUTH", r->url.username, r->url.password};
        if (r->url.username[0] ? setup_cmd(c, 3, a3, msg, msglen)
                               : setup_cmd(c, 2, a2, msg, msglen))
            goto fail;
    }
    if (r->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *a[] = {"SELECT", db};
        if (setup_cmd(c, 2, a, msg, msglen))
            goto fail;
    }
    s->ctx = c;
    s->failures = 0;
    s->retry_at_ms = 0;
    return 0;
fail:
    if (c)
        redisFree(c);
    int shift = s->failures < 6 ? s->failures : 6;
    int64_t wait = (int64_t)BACKOFF_MIN_MS << shift;
    s->retry_at_ms = now + (wait < BACKOFF_MAX_MS ? wait : BACKOFF_MAX_MS);
    s->failures++;
    cm_counter_add(r->errors, 1);
    cm_gauge_set(r->up, 0);
    if (s->failures == 1) /* once per outage, not once per command */
        cm_log_kv(CM_LOG_WARN, "redis connect failed", "error", msg, (const char *)NULL);
    return -1;
}

/* Command name for messages: lowercased, or "other". */
static void command_label(const char *cmd, size_t len, char *out, size_t outlen)
{
    size_t i;
    if (len == 0 || len >= outlen) {
        snprintf(out, outlen, "other");
        return;
    }
    for (i = 0; i < len; i++) {
        if (!isalpha((unsigned char)cmd[i])) {
            snprintf(out, outlen, "other");
            return;
        }
        out[i] = (char)tolower((unsigned char)cmd[i]);
    }
    out[i] = '\0';
}

int cm_redis_command(struct cm_redis *r, struct cm_redis_reply *out, int argc, const char **argv,
                     const size_t *argvlen)
{
    char msg[512], label[24];
    if (out)
        memset(out, 0, sizeof *out);
    if (!r || argc < 1 || !argv || !argv[0]) {
        set_error(out, "redis: bad arguments");
        return -1;
    }
    command_label(argv[0], argvlen ? argvlen[0] : strlen(argv[0]), label, sizeof label);
    int (*hook)(const char *) = drop_hook;
    if (hook && hook("redis") == 1) {
        cm_counter_add(r->errors, 1);
        set_error(out, "redis connection dropped (fault injection)");
        return -1;
    }

    struct slot *s = borrow(r);
    if (s->ctx && !idle_ok(s->ctx))
        drop_conn(s);
    if (!s->ctx && connect_slot(r, s, msg, sizeof msg) != 0) {
        pthread_mutex_unlock(&s->mu);
        set_error(out, msg);
        return -1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    redisReply *rep = redisCommandArgv(s->ctx, argc, argv, argvlen);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cm_histogram_observe(r->duration,
                         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (!rep) {
        /* The context is unusable after any I/O error: drop it; the next
         * command reconnects at once (a failed reconnect then backs off). */
        int timeout = s->ctx->err == REDIS_ERR_IO &&
                      (errno == EAGAIN || errno == EWOULDBLOCK ||
                       strstr(s->ctx->errstr, "temporarily unavailable") != NULL);
        snprintf(msg, sizeof msg, "redis %s: %s", label,
                 timeout ? "command timed out" : s->ctx->errstr);
        drop_conn(s);
        pthread_mutex_unlock(&s->mu);
        cm_counter_add(r->errors, 1);
        cm_gauge_set(r->up, 0);
        set_error(out, msg);
        return -1;
    }
    pthread_mutex_unlock(&s->mu);
    cm_gauge_set(r->up, 1);
    int rc = rep->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc)
        cm_counter_add(r->errors, 1);
    if (out && copy_reply(rep, out) != 0) {
        set_error(out, "redis: out of memory");
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- helpers ----------------------------------------------------------- */

int cm_redis_get(struct cm_redis *r, const char *key, char **val, size_t *len)
{
    struct cm_redis_reply rep;
    const char *argv[] = {"GET", key};
    int rc = cm_redis_command(r, &rep, 2, argv, NULL);
    if (rc == 0 && rep.type == CM_REDIS_STRING) {
        *val = rep.str; /* handed over */
        if (len)
            *len = rep.len;
        rep.str = NULL;
        rc = 1;
    } else if (rc == 0) {
        rc = rep.type == CM_REDIS_NIL ? 0 : -1;
    }
    cm_redis_reply_release(&rep);
    return rc;
}

static int set_impl(struct cm_redis *r, const char *key, const void *val, size_t len,
                    int64_t ttl_ms, int nx)
{
    char ttl[32];
    const char *argv[6] = {"SET", key, val};
    size_t lens[6] = {3, strlen(key), len};
    int argc = 3;
    if (ttl_ms > 0) {
        snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
        argv[argc] = "PX";
        lens[argc++] = 2;
        argv[argc] = ttl;
        lens[argc++] = strlen(ttl);
    }
    if (nx) {
        argv[argc] = "NX";
        lens[argc++] = 2;
    }
    struct cm_redis_reply rep;
    int rc = cm_redis_command(r, &rep, argc, argv, lens);
    if (rc == 0)
        rc = rep.type == CM_REDIS_STATUS ? 1 : 0; /* NX not applied: nil */
    cm_redis_reply_release(&rep);
    return rc;
}

int cm_redis_set(struct cm_redis *r, const char *key, const void *val, size_t len, int64_t ttl_ms)
{
    return set_impl(r, key, val, len, ttl_ms, 0) == 1 ? 0 : -1;
}

int cm_redis_set_nx(struct cm_redis *r, const char *key, const void *val, size_t len,
                    int64_t ttl_ms)
{
    return set_impl(r, key, val, len, ttl_ms, 1);
}

/* Runs a command expected to answer an integer; -1 otherwise. */
static int int_command(struct cm_redis *r, int argc, const char **argv, const size_t *lens,
                       long long *out)
{
    struct cm_redis_reply rep;
    int rc = cm_redis_command(r, &rep, argc, argv, lens);
    if (rc == 0 && rep.type != CM_REDIS_INTEGER)
        rc = -1;
    if (rc == 0 && out)
        *out = rep.integer;
    cm_redis_reply_release(&rep);
    return rc;
}

int cm_redis_del(struct cm_redis *r, const char *key)
{
    long long n = 0;
    const char *argv[] = {"DEL", key};
    return int_command(r, 2, argv, NULL, &n) == 0 ? (int)n : -1;
}

int cm_redis_incr(struct cm_redis *r, const char *key, long long by, long long *out)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", by);
    const char *argv[] = {"INCRBY", key, num};
    return int_command(r, 3, argv, NULL, out);
}

int cm_redis_expire(struct cm_redis *r, const char *key, int64_t ttl_ms)
{
    char num[32];
    long long n = 0;
    snprintf(num, sizeof num, "%lld", (long long)ttl_ms);
    const char *argv[] = {"PEXPIRE", key, num};
    return int_command(r, 3, argv, NULL, &n) == 0 ? (int)n : -1;
}

int cm_redis_publish(struct cm_redis *r, const char *channel, const void *msg, size_t len,
                     long long *receivers)
{
    const char *argv[] = {"PUBLISH", channel, msg};
    size_t lens[] = {7, strlen(channel), len};
    return int_command(r, 3, argv, lens, receivers);
}

int cm_redis_ping(struct cm_redis *r)
{
    const char *argv[] = {"PING"};
    return cm_redis_command(r, NULL, 1, argv, NULL);
}

static int sha1_hex(const char *s, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha1(), NULL) || n != 20)
        return -1;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int cm_redis_eval(struct cm_redis *r, const char *script, int nkeys, const char **keys, int nargs,
                  const char **args, struct cm_redis_reply *out)
{
    char sha[41], nk[16];
    struct cm_redis_reply tmp = {0};
    struct cm_redis_reply *rep = out ? out : &tmp;
    if (!script || nkeys < 0 || nargs < 0 || sha1_hex(script, sha) != 0) {
        set_error(out, "redis eval: bad arguments");
        return -1;
    }
    int argc = 3 + nkeys + nargs;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    if (!argv) {
        set_error(out, "redis: out of memory");
        return -1;
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = sha;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];
    int rc = cm_redis_command(r, rep, argc, argv, NULL);
    if (rc != 0 && rep->type == CM_REDIS_ERROR && rep->str &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        cm_redis_reply_release(rep);
        argv[0] = "EVAL"; /* loads it into the script cache too */
        argv[1] = script;
        rc = cm_redis_command(r, rep, argc, argv, NULL);
    }
    free(argv);
    if (!out)
        cm_redis_reply_release(&tmp);
    return rc;
}

int cm_redis_xadd(struct cm_redis *r, const char *stream, int nfields, const char **fields,
                  const char **values, char *id, size_t idlen)
{
    if (nfields < 1) {
        return -1;
    }
    int argc = 3 + 2 * nfields;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    if (!argv)
        return -1;
    argv[0] = "XADD";
    argv[1] = stream;
    argv[2] = "*";
    for (int i = 0; i < nfields; i++) {
        argv[3 + 2 * i] = fields[i];
        argv[4 + 2 * i] = values[i];
    }
    struct cm_redis_reply rep;
    int rc = cm_redis_command(r, &rep, argc, argv, NULL);
    free(argv);
    if (rc == 0 && rep.type != CM_REDIS_STRING)
        rc = -1;
    if (rc == 0 && id)
        snprintf(id, idlen, "%s", rep.str);
    cm_redis_reply_release(&rep);
    return rc;
}
