#ifndef GATEWAY_H
#define GATEWAY_H
/*
 * gateway: the single public entry point (docs/gateway.md).
 *
 * Modules, one concept each:
 *   config.c       environment -> struct gw_config
 *   upstreams.c    the routes file (GATEWAY_ROUTES_FILE): prefixes, upstreams,
 *                  rate-limit classes; matching and prefix rewrite (pure)
 *   headers.c      what is forwarded upstream: header filter, path/query
 *                  encoding (pure)
 *   validate.c     email and password rules (pure)
 *   ratelimit.c    token buckets: Redis (Lua) shared, local fallback
 *   tokens.c       password hashing, JWT issue/verify, refresh tokens
 *   store.c        SQL: users, refresh tokens
 *   proxy.c        upstream clients and the proxy handler
 *   handlers/auth.c  /v1/auth/..., /.well-known/jwks.json
 *   routes.c       the static route table
 */
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/jwt.h"

/* ---- configuration (config.c) */

struct gw_config {
    int port;
    unsigned threads;
    size_t max_body;
    const char *admin_token;
    const char *database_url;
    const char *redis_url;
    const char *migrations_dir;
    const char *routes_file;
    int log_level;
    int64_t redis_timeout_ms;
    /* JWT */
    int jwt_alg; /* enum cm_jwt_alg */
    const char *jwt_secret;
    const char *jwt_private_key_file;
    const char *jwt_issuer;
    const char *jwt_audience;
    int64_t access_ttl_s;
    int64_t refresh_ttl_s;
    /* passwords */
    int pwhash_fast; /* GATEWAY_PWHASH=fast: lab/test only */
    int pwhash_concurrency;
};

/* Loads the environment; -1 after printing one line per problem. */
int gw_config_load(struct gw_config *c);

/* ---- routes file (upstreams.c) */

#define GW_MAX_UPSTREAMS 16
#define GW_MAX_ROUTES 64
#define GW_MAX_CLASSES 16
#define GW_NAME_MAX 48
#define GW_PREFIX_MAX 128

enum gw_auth {
    GW_AUTH_REQUIRED = 0, /* every method needs a valid access token */
    GW_AUTH_PUBLIC,       /* no token needed (one is verified if sent) */
    GW_AUTH_PUBLIC_READ,  /* GET/HEAD public, other methods need a token */
};

struct gw_limit {
    double rate;  /* tokens per second, > 0 */
    double burst; /* bucket capacity, >= 1 */
};

struct gw_class {
    char name[GW_NAME_MAX];
    int has_user, has_ip;
    struct gw_limit user, ip;
    /* Tokens taken from Redis per round trip and spent locally within
     * GW_LEASE_MS (1: every request asks Redis). Unspent tokens are
     * dropped, so a lease never lets more through than the shared bucket;
     * it trades precision (a replica may hold up to lease-1 tokens another
     * replica cannot use) for fewer round trips. */
    int lease;
};

#define GW_LEASE_MS 1000

struct gw_upstream {
    char name[GW_NAME_MAX]; /* metric label, e.g. "trading-api" */
    char env[64];           /* variable holding the base URL */
    const char *url;        /* resolved by gw_routes_resolve (borrowed env) */
    int consecutive_failures;
    int64_t open_ms;
    int64_t connect_timeout_ms;
    int pool_size;
};

struct gw_route {
    char prefix[GW_PREFIX_MAX];
    size_t prefix_len;
    char rewrite[GW_PREFIX_MAX]; /* "" keeps the prefix */
    int has_rewrite;
    int upstream; /* index into upstreams */
    int64_t timeout_ms;
    enum gw_auth auth;
    int rl_class;    /* index into classes */
    int block_check; /* risk:blocked:<user> -> 403 on POST/PUT/PATCH */
    int stream;      /* GETs asking for text/event-stream are relayed live */
};

struct gw_routes {
    struct gw_upstream upstreams[GW_MAX_UPSTREAMS];
    int nupstreams;
    struct gw_route routes[GW_MAX_ROUTES];
    int nroutes;
    struct gw_class classes[GW_MAX_CLASSES];
    int nclasses;
    int auth_class; /* class for /v1/auth/... */
};

/* Parses the routes document (see routes.json and docs/gateway.md). 0, or
 * -1 with the first problem in err. Unknown members are errors (typos in
 * a security-relevant file must not pass silently). */
int gw_routes_parse(const char *json, struct gw_routes *out, char *err, size_t errlen);
/* Reads file (at most 256 KiB) and parses it. */
int gw_routes_load(const char *file, struct gw_routes *out, char *err, size_t errlen);
/* Looks up every upstream's env variable: -1 with err when one is unset or
 * not an http(s) URL. */
int gw_routes_resolve(struct gw_routes *rt, char *err, size_t errlen);
/* Longest prefix that matches path at a segment boundary ("/v1/orders"
 * matches "/v1/orders" and "/v1/orders/7", not "/v1/ordersx"); NULL if
 * none. */
const struct gw_route *gw_routes_match(const struct gw_routes *rt, const char *path);
/* The upstream path: the prefix replaced by the rewrite. 0 / -1 (too long). */
int gw_routes_rewrite(const struct gw_route *r, const char *path, char *out, size_t outsz);
/* Index of a class by name, -1 if absent. */
int gw_routes_class(const struct gw_routes *rt, const char *name);

/* ---- forwarding (headers.c) */

/* 1 when a client header may go upstream: not hop-by-hop, not the
 * identity/internal headers the gateway owns (X-User-*, X-Internal-*,
 * X-Admin-Token, X-Forwarded-*, Authorization...), not ones curl sets. */
int gw_header_forwardable(const char *name);
/* 1 when an upstream response header may go back to the client: an
 * end-to-end header, not hop-by-hop (Connection, Keep-Alive,
 * Transfer-Encoding, ... and any name listed in the upstream's Connection
 * header, `connection` = its value or NULL), not framing the gateway
 * computes (Content-Length, Content-Type, Date) and not the gateway's own
 * (X-Request-Id, traceparent, Server). */
int gw_response_header_forwardable(const char *name, const char *connection);
/* Appends path percent-encoded (unreserved, '/', and sub-delims kept). */
int gw_path_append(struct cm_buf *b, const char *path);
/* Appends "?k=v" or "&k=v", percent-encoded; value NULL: bare "k". */
int gw_query_append(struct cm_buf *b, const char *key, const char *value);

/* ---- validation (validate.c) */

#define GW_EMAIL_MAX 254
#define GW_PASSWORD_MIN 12
#define GW_PASSWORD_MAX 256

/* Trims nothing; lower-cases into out (at least GW_EMAIL_MAX + 1). 0, or
 * -1 with a reason for the client. */
int gw_email_normalize(const char *in, char *out, size_t outsz, const char **why);
/* 0, or -1 with a reason. Length counted in bytes of valid UTF-8. */
int gw_password_check(const char *pw, const char **why);

/* ---- rate limiting (ratelimit.c) */

struct gw_bucket {
    double tokens;
    int64_t ts_ms; /* last refill; 0: new (full) */
};

struct gw_take {
    int allowed;
    long limit;     /* X-RateLimit-Limit (burst) */
    long remaining; /* X-RateLimit-Remaining */
    long reset_s;   /* X-RateLimit-Reset: seconds until full */
    long retry_ms;  /* when refused: until one token is there */
};

/* Refills b at rate up to burst for now_ms, then takes one token if there
 * is one. Pure; the Lua script in ratelimit.c does the same in Redis. */
void gw_bucket_take(struct gw_bucket *b, const struct gw_limit *l, int64_t now_ms,
                    struct gw_take *out);

struct cm_redis;
struct gw_limiter;
/* redis may be NULL (local limiter only). Caller owns. */
struct gw_limiter *gw_limiter_new(struct cm_redis *redis);
void gw_limiter_free(struct gw_limiter *l);

enum gw_rl_scope { GW_RL_NONE = 0, GW_RL_USER, GW_RL_IP };

struct gw_rl_result {
    struct gw_take take; /* of the tightest bucket */
    enum gw_rl_scope refused_by;
    int blocked;  /* the block key exists */
    int fallback; /* answered by the local limiter */
};

/* Takes a token from the class's user bucket (user non-NULL) and ip bucket
 * atomically; with block_user non-NULL also reports risk:blocked:<user>.
 * Redis first; on a Redis failure the local limiter answers (and the
 * gateway_ratelimit_fallback gauge says so). */
void gw_limiter_check(struct gw_limiter *l, const struct gw_class *cls, const char *user,
                      const char *ip, const char *block_user, struct gw_rl_result *out);

/* ---- tokens (tokens.c) */

struct gw_tokens;
/* Builds signer and verifier from the config; NULL (logged) on bad keys. */
struct gw_tokens *gw_tokens_new(const struct gw_config *c);
void gw_tokens_free(struct gw_tokens *t);
/* Issued access token (caller frees) for user id and roles (comma list). */
char *gw_tokens_issue(struct gw_tokens *t, const char *uid, const char *roles);
int64_t gw_tokens_access_ttl(const struct gw_tokens *t);
int64_t gw_tokens_refresh_ttl(const struct gw_tokens *t);
const struct cm_jwt_verifier *gw_tokens_verifier(const struct gw_tokens *t);
/* cm_jwt_verify through a cache of recently verified tokens: a token seen
 * before (same bytes) and not yet expired skips the signature check.
 * Same result contract as cm_jwt_verify. Thread-safe. */
int gw_tokens_verify(struct gw_tokens *t, const char *token, struct cm_jwt_claims *out);
/* JWKS document into b ("{"keys":[]}" with HS256). 0 / -1. */
int gw_tokens_jwks(const struct gw_tokens *t, struct cm_buf *b);

/* Password hashing (Argon2id, libsodium crypto_pwhash_str). fast: MIN
 * limits (tests). Concurrency is bounded (memory-hard hashes). */
void gw_pwhash_init(int fast, int concurrency);
int gw_pwhash(const char *pw, char *out, size_t outsz);
/* 1 match, 0 mismatch, -1 error. With hash NULL it burns a dummy verify
 * (so unknown emails cost as much as known ones) and returns 0. */
int gw_pwverify(const char *hash, const char *pw);

/* Refresh token: 256 random bits, base64url (43 chars) into tok (>= 64),
 * and its SHA-256 hex (65 bytes) into hash. */
int gw_refresh_new(char *tok, size_t toksz, char *hash, size_t hashsz);
void gw_refresh_hash(const char *tok, char *hash, size_t hashsz);

/* ---- store (store.c) */

struct cm_db_pool;
int store_open(const char *url, const char *migrations_dir, int max_conns);
void store_close(void);
int store_ping(void);

enum store_rc {
    STORE_OK = 0,
    STORE_ERR = -1,
    STORE_CONFLICT = -2,
    STORE_NOTFOUND = -3,
    STORE_REUSED = -4,
    STORE_REVOKED = -5
};

struct store_user {
    char id[24];
    char email[GW_EMAIL_MAX + 1];
    char password_hash[160];
    char roles[256]; /* comma-separated */
    char created_at[40];
};

int store_user_create(const char *email, const char *hash, struct store_user *out);
int store_user_by_email(const char *email, struct store_user *out);
/* Starts a new refresh family for uid. */
int store_refresh_issue(const char *uid, const char *hash, int64_t ttl_s);
/* Rotation: old -> new in one transaction. STORE_OK with user
 * filled; STORE_REUSED (the whole family was revoked), STORE_NOTFOUND,
 * STORE_REVOKED (revoked or expired). */
int store_refresh_rotate(const char *old_hash, const char *new_hash, int64_t ttl_s,
                         struct store_user *user);
/* Revokes the family of hash (idempotent). */
int store_refresh_revoke(const char *hash);

/* ---- proxy (proxy.c) */

struct gw_app {
    struct gw_config cfg;
    struct gw_routes routes;
    struct cm_http_client *clients[GW_MAX_UPSTREAMS];
    struct gw_limiter *limiter;
    struct gw_tokens *tokens;
    struct cm_redis *redis;
};

int gw_proxy_open(struct gw_app *app);
void gw_proxy_close(struct gw_app *app);
void gw_proxy_handle(struct cm_http_req *r);

/* Relays an event stream: GET url (absolute) with headers (NULL-terminated
 * "Name: value" lines, copied) on a thread of its own; replies on r (the
 * upstream's non-stream answer, 502/503/504, or a live stream). stream.c. */
void gw_stream_proxy(struct cm_http_req *r, struct gw_app *app, const struct gw_route *route,
                     const char *url, const char *const *headers);

/* Identity of the request (shared by proxy and auth handlers). */
struct gw_identity {
    int present; /* a verified token */
    struct cm_jwt_claims claims;
};
/* Verifies Authorization: Bearer. 0 with id filled (present 0 when no
 * header), or -1 after replying 401 (invalid/expired). */
int gw_authenticate(struct cm_http_req *r, struct gw_app *app, struct gw_identity *id);
/* Rate limit one request; 0 go on (headers set), -1 replied (429/403). */
int gw_rate_limit(struct cm_http_req *r, struct gw_app *app, int cls, const char *user,
                  int block_check);
/* The same, but when the request may go on the X-RateLimit-* headers are
 * not set: they are left in *take for gw_rate_headers (the proxy sets them
 * only if the upstream's answer carries none of its own). */
int gw_rate_limit_take(struct cm_http_req *r, struct gw_app *app, int cls, const char *user,
                       int block_check, struct gw_take *take);
void gw_rate_headers(struct cm_http_req *r, const struct gw_take *take);

/* ---- HTTP (routes.c, handlers/auth.c) */
extern const struct cm_http_route gw_http_routes[];
extern const size_t gw_http_nroutes;
void auth_register(struct cm_http_req *r);
void auth_login(struct cm_http_req *r);
void auth_refresh(struct cm_http_req *r);
void auth_logout(struct cm_http_req *r);
void auth_jwks(struct cm_http_req *r);

#endif
