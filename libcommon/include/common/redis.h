#ifndef COMMON_REDIS_H
#define COMMON_REDIS_H
/*
 * Redis client over hiredis 0.14: a small pool of connections with connect
 * and command timeouts, automatic reconnect, and replies copied into plain
 * structs (hiredis' redisReply never escapes this module).
 *
 * Reconnect: a connection that broke (server restart, CLIENT KILL, a
 * command timeout) is dropped; the next command reconnects. Repeated
 * connect failures back off (50 ms doubling to 2 s) so a dead server costs
 * callers a fast error, not a connect timeout each. An idle connection the
 * server closed is noticed before use, so the command is not lost to it.
 *
 * Metrics (label-free, per observability/metrics-contract.json):
 * redis_command_duration_seconds, redis_errors_total (connect, I/O,
 * timeout, error reply, dropped), redis_up (1 after a successful exchange,
 * 0 after a failed connect or I/O error).
 *
 * Thread-safety: every function may be called from any thread; each
 * command borrows one pooled connection for its duration. Pub/sub
 * SUBSCRIBE and blocking commands do not belong on the pool.
 */
#include <stddef.h>
#include <stdint.h>

struct cm_redis_url {
    char host[256];
    int port;           /* default 6379 */
    int db;             /* default 0 */
    char username[128]; /* ACL user, "" for none */
    char password[256]; /* "" for none */
};

/* redis://[[user]:password@]host[:port][/db]; host may be [ipv6];
 * user and password may be %-encoded. 0, or -1 with a reason in err. */
int cm_redis_parse_url(const char *url, struct cm_redis_url *out, char *err, size_t errlen);

struct cm_redis_config {
    const char *url;        /* required (REDIS_URL) */
    int connect_timeout_ms; /* default 1000 */
    int command_timeout_ms; /* default 1000 */
    int pool_size;          /* default 4 */
};

enum cm_redis_type {
    CM_REDIS_NIL = 0,
    CM_REDIS_INTEGER,
    CM_REDIS_STRING,
    CM_REDIS_STATUS, /* "OK", "PONG" */
    CM_REDIS_ARRAY,
    CM_REDIS_ERROR, /* server error reply, or the local failure's text */
};

/* A reply; owns its strings and elements: cm_redis_reply_release(). */
struct cm_redis_reply {
    enum cm_redis_type type;
    long long integer; /* INTEGER */
    char *str;         /* STRING, STATUS, ERROR (NUL-terminated) */
    size_t len;
    struct cm_redis_reply *elem; /* ARRAY */
    size_t nelem;
};
void cm_redis_reply_release(struct cm_redis_reply *r);

struct cm_redis;

/* Validates the URL; connections open on first use (a service may start
 * before Redis). NULL with err on bad config. Caller owns the client. */
struct cm_redis *cm_redis_open(const struct cm_redis_config *cfg, char *err, size_t errlen);
/* NULL is a no-op. No command may be running. */
void cm_redis_close(struct cm_redis *r);

/* Runs one command given as argv (binary-safe; argvlen NULL means
 * strlen). Returns 0 when a non-error reply arrived; -1 on an error reply
 * or a local failure (connect, I/O, timeout, dropped), with out->type
 * CM_REDIS_ERROR and the text in out->str. out may be NULL; when given,
 * the caller releases it whatever the result. */
int cm_redis_command(struct cm_redis *r, struct cm_redis_reply *out, int argc, const char **argv,
                     const size_t *argvlen);

/* Helpers. Keys are C strings; values binary with a length. */
/* 1 found (*val malloc'd and NUL-terminated, caller frees), 0 nil, -1 error. */
int cm_redis_get(struct cm_redis *r, const char *key, char **val, size_t *len);
/* SET with an optional TTL (ttl_ms <= 0: none). 0 / -1. */
int cm_redis_set(struct cm_redis *r, const char *key, const void *val, size_t len, int64_t ttl_ms);
/* SET NX: 1 when set, 0 when the key existed, -1 error. */
int cm_redis_set_nx(struct cm_redis *r, const char *key, const void *val, size_t len,
                    int64_t ttl_ms);
/* Number of keys removed, or -1. */
int cm_redis_del(struct cm_redis *r, const char *key);
/* INCRBY key by -> *out (may be NULL). 0 / -1. */
int cm_redis_incr(struct cm_redis *r, const char *key, long long by, long long *out);
/* PEXPIRE: 1 set, 0 no such key, -1 error. */
int cm_redis_expire(struct cm_redis *r, const char *key, int64_t ttl_ms);
/* PUBLISH; *receivers (may be NULL) gets the subscriber count. 0 / -1. */
int cm_redis_publish(struct cm_redis *r, const char *channel, const void *msg, size_t len,
                     long long *receivers);
/* Runs a Lua script by EVALSHA (SHA-1 of script), falling back to EVAL
 * when the server does not have it cached (NOSCRIPT). Same result
 * contract as cm_redis_command. */
int cm_redis_eval(struct cm_redis *r, const char *script, int nkeys, const char **keys, int nargs,
                  const char **args, struct cm_redis_reply *out);
/* XADD stream * field value...; the new entry id goes to id (may be NULL).
 * 0 / -1. */
int cm_redis_xadd(struct cm_redis *r, const char *stream, int nfields, const char **fields,
                  const char **values, char *id, size_t idlen);
/* PING: 0 / -1 (readiness checks). */
int cm_redis_ping(struct cm_redis *r);

/* Fault injection: while fn("redis") returns 1, every command fails as if
 * the connection dropped. NULL removes the hook. Wire it
 * as cm_redis_set_drop_hook(cm_faults_dependency_dropped). */
void cm_redis_set_drop_hook(int (*fn)(const char *dep));

#endif
