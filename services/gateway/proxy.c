/*
 * The proxy: match a prefix from the routes file, authenticate, rate limit,
 * forward to the upstream through common/http_client.h (per-route timeout,
 * one circuit breaker per upstream, pooled connections) and hand back its
 * status, body and the headers a client needs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http_client.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "gateway.h"
#include "common/banned.h"

#define MAX_FWD_HEADERS 48

static struct cm_metric *m_auth_fail;

int gw_proxy_open(struct gw_app *app)
{
    m_auth_fail = cm_metric_counter(
        "gateway_auth_failures_total",
        "Requests refused by authentication; reason is missing, invalid, expired or blocked.",
        "reason");
    static const char *const reasons[] = {"missing", "invalid", "expired", "blocked"};
    for (size_t i = 0; i < 4; i++)
        cm_counter_add(m_auth_fail, 0, reasons[i]);
    for (int i = 0; i < app->routes.nupstreams; i++) {
        const struct gw_upstream *u = &app->routes.upstreams[i];
        char base[512];
        snprintf(base, sizeof base, "%s", u->url);
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
            base[--n] = '\0';
        struct cm_http_client_config cc = {
            .name = u->name,
            .base_url = base,
            .timeout_ms = 30000,
            .connect_timeout_ms = u->connect_timeout_ms,
            /* The gateway never retries: the client decides (it knows
             * whether its request is idempotent), and timeouts stay exact. */
            .max_retries = CM_HTTP_CLIENT_NO_RETRY,
            .pool_size = u->pool_size,
            .breaker = {.consecutive_failures = u->consecutive_failures, .open_ms = u->open_ms},
        };
        app->clients[i] = cm_http_client_new(&cc);
        if (!app->clients[i])
            return -1;
    }
    return 0;
}

void gw_proxy_close(struct gw_app *app)
{
    for (int i = 0; i < app->routes.nupstreams; i++) {
        cm_http_client_free(app->clients[i]);
        app->clients[i] = NULL;
    }
}

static int is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Creates or changes something: what a blocked account may not do
 * (cancelling with DELETE only reduces exposure, so it stays open). */
static int is_write(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

static void challenge(struct cm_http_req *r, const char *error, const char *reason, const char *msg)
{
    char v[128];
    if (error)
        snprintf(v, sizeof v, "Bearer realm=\"exchange-lab\", error=\"%s\"", error);
    else
        snprintf(v, sizeof v, "Bearer realm=\"exchange-lab\"");
    cm_http_set_header(r, "WWW-Authenticate", v);
    cm_counter_add(m_auth_fail, 1, reason);
    cm_http_reply_error(r, 401, "unauthorized", "%s", msg);
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int role_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
              *s == ':' || *s == '.'))
            return 0;
    return 1;
}

int gw_authenticate(struct cm_http_req *r, struct gw_app *app, struct gw_identity *id)
{
    memset(id, 0, sizeof *id);
    const char *h = cm_http_req_header(r, "Authorization");
    if (!h)
        return 0;
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        challenge(r, "invalid_request", "invalid", "Authorization must be a Bearer token");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    int rc = gw_tokens_verify(app->tokens, tok, &id->claims);
    if (rc == 0 && !all_digits(id->claims.sub))
        rc = CM_JWT_EFORMAT;
    for (size_t i = 0; rc == 0 && i < id->claims.nroles; i++)
        if (!role_ok(id->claims.roles[i]))
            rc = CM_JWT_EFORMAT;
    if (rc != 0) {
        int expired = rc == CM_JWT_EEXPIRED;
        cm_log_kv(CM_LOG_INFO, "token refused", "reason", cm_jwt_strerror(rc), (const char *)NULL);
        challenge(r, "invalid_token", expired ? "expired" : "invalid",
                  expired ? "access token expired" : "invalid access token");
        return -1;
    }
    id->present = 1;
    return 0;
}

void gw_rate_headers(struct cm_http_req *r, const struct gw_take *take)
{
    char v[32];
    if (take->limit <= 0)
        return;
    snprintf(v, sizeof v, "%ld", take->limit);
    cm_http_set_header(r, "X-RateLimit-Limit", v);
    snprintf(v, sizeof v, "%ld", take->remaining);
    cm_http_set_header(r, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%ld", take->reset_s);
    cm_http_set_header(r, "X-RateLimit-Reset", v);
}

int gw_rate_limit(struct cm_http_req *r, struct gw_app *app, int cls, const char *user,
                  int block_check)
{
    struct gw_take take;
    if (gw_rate_limit_take(r, app, cls, user, block_check, &take) < 0)
        return -1;
    gw_rate_headers(r, &take);
    return 0;
}

int gw_rate_limit_take(struct cm_http_req *r, struct gw_app *app, int cls, const char *user,
                       int block_check, struct gw_take *take)
{
    struct gw_rl_result res;
    gw_limiter_check(app->limiter, &app->routes.classes[cls], user, cm_http_req_client_ip(r),
                     block_check ? user : NULL, &res);
    *take = res.take;
    if (res.blocked) {
        cm_counter_add(m_auth_fail, 1, "blocked");
        cm_http_reply_error(r, 403, "account_blocked",
                            "this account is blocked from trading; contact support");
        return -1;
    }
    if (res.take.allowed)
        return 0;
    gw_rate_headers(r, &res.take);
    char v[32];
    long secs = (res.take.retry_ms + 999) / 1000;
    if (secs < 1)
        secs = 1;
    snprintf(v, sizeof v, "%ld", secs);
    cm_http_set_header(r, "Retry-After", v);
    cm_http_reply_error(r, 429, "rate_limited", "rate limit exceeded (%s), retry in %lds",
                        res.refused_by == GW_RL_USER ? "per user" : "per client address", secs);
    return -1;
}

struct fwd {
    struct cm_http_req *r;
    const char **headers;
    int n;
    struct cm_buf *url;
    int bad;
};

static int add_header(void *ctx, const char *key, const char *value)
{
    struct fwd *f = ctx;
    if (!gw_header_forwardable(key) || !value || strpbrk(value, "\r\n"))
        return 0;
    if (f->n >= MAX_FWD_HEADERS)
        return 1;
    size_t len = strlen(key) + strlen(value) + 3;
    char *line = cm_http_req_alloc(f->r, len);
    if (!line)
        return 1;
    snprintf(line, len, "%s: %s", key, value);
    f->headers[f->n++] = line;
    return 0;
}

static int add_query(void *ctx, const char *key, const char *value)
{
    struct fwd *f = ctx;
    if (gw_query_append(f->url, key, value) < 0) {
        f->bad = 1;
        return 1;
    }
    return 0;
}

static const char *fixed_header(struct fwd *f, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = cm_http_req_alloc(f->r, len);
    if (line)
        snprintf(line, len, "%s: %s", name, value);
    return line;
}

struct relay {
    struct cm_http_req *r;
    const char *connection; /* the upstream's Connection header */
    int upstream_limits;    /* it sent X-RateLimit-* */
};

static int relay_header(void *ctx, const char *name, const char *value)
{
    struct relay *rl = ctx;
    if (!gw_response_header_forwardable(name, rl->connection))
        return 0;
    if (strncasecmp(name, "X-RateLimit-", 12) == 0)
        rl->upstream_limits = 1;
    cm_http_set_header(rl->r, name, value); /* refuses CR/LF itself */
    return 0;
}

void gw_proxy_handle(struct cm_http_req *r)
{
    struct gw_app *app = cm_http_req_ctx(r);
    const char *method = cm_http_req_method(r);
    const char *path = cm_http_req_path(r);
    const struct gw_route *route = gw_routes_match(&app->routes, path);
    if (!route) {
        cm_http_reply_error(r, 404, "not_found", "no route for %s", path);
        return;
    }

    struct gw_identity id;
    if (gw_authenticate(r, app, &id) < 0)
        return;
    int need =
        route->auth == GW_AUTH_REQUIRED || (route->auth == GW_AUTH_PUBLIC_READ && !is_read(method));
    if (need && !id.present) {
        challenge(r, NULL, "missing", "missing access token (Authorization: Bearer ...)");
        return;
    }
    const char *user = id.present ? id.claims.sub : NULL;
    struct gw_take take;
    if (gw_rate_limit_take(r, app, route->rl_class, user, route->block_check && is_write(method),
                           &take) < 0)
        return;

    /* Upstream URL: rewritten prefix, re-encoded path, the query as sent. */
    char upath[2048];
    struct cm_buf url;
    cm_buf_init(&url, 16384);
    if (gw_routes_rewrite(route, path, upath, sizeof upath) < 0 ||
        gw_path_append(&url, upath) < 0) {
        cm_buf_release(&url);
        gw_rate_headers(r, &take);
        cm_http_reply_error(r, 414, "uri_too_long", "path too long");
        return;
    }
    const char *headers[MAX_FWD_HEADERS + 8];
    struct fwd f = {.r = r, .headers = headers, .url = &url};
    cm_http_req_foreach_query(r, add_query, &f);
    cm_http_req_foreach_header(r, add_header, &f);
    if (f.bad) {
        cm_buf_release(&url);
        gw_rate_headers(r, &take);
        cm_http_reply_error(r, 414, "uri_too_long", "query too long");
        return;
    }
    /* The verified identity, and only it (client copies were dropped). */
    if (id.present) {
        char roles[CM_JWT_MAX_ROLES * CM_JWT_MAX_ROLE];
        roles[0] = '\0';
        size_t used = 0;
        for (size_t i = 0; i < id.claims.nroles; i++) {
            int w = snprintf(roles + used, sizeof roles - used, "%s%s", i ? "," : "",
                             id.claims.roles[i]);
            if (w > 0)
                used += (size_t)w;
        }
        headers[f.n++] = fixed_header(&f, "X-User-Id", id.claims.sub);
        headers[f.n++] = fixed_header(&f, "X-User-Roles", roles);
    }
    headers[f.n++] = fixed_header(&f, "X-Forwarded-For", cm_http_req_client_ip(r));
    headers[f.n] = NULL;
    for (int i = 0; i < f.n; i++)
        if (!headers[i]) {
            cm_buf_release(&url);
            gw_rate_headers(r, &take);
            cm_http_reply_error(r, 500, "internal", "out of memory");
            return;
        }

    const char *accept = cm_http_req_header(r, "Accept");
    if (route->stream && strcmp(method, "GET") == 0 && accept &&
        strstr(accept, "text/event-stream")) {
        struct cm_buf full;
        cm_buf_init(&full, 20000);
        const struct gw_upstream *su = &app->routes.upstreams[route->upstream];
        size_t bl = strlen(su->url);
        while (bl > 0 && su->url[bl - 1] == '/')
            bl--;
        if (cm_buf_append(&full, su->url, bl) < 0 || cm_buf_append(&full, url.data, url.len) < 0) {
            cm_buf_release(&full);
            cm_buf_release(&url);
            gw_rate_headers(r, &take);
            cm_http_reply_error(r, 414, "uri_too_long", "path too long");
            return;
        }
        cm_buf_release(&url);
        gw_rate_headers(r, &take);
        gw_stream_proxy(r, app, route, full.data, headers);
        cm_buf_release(&full);
        return;
    }

    size_t blen = 0;
    const char *body = cm_http_req_body(r, &blen);
    struct cm_http_request req = {
        .method = method,
        .path = url.data,
        .body = blen ? body : NULL,
        .body_len = blen,
        .content_type = cm_http_req_header(r, "Content-Type"),
        .headers = headers,
        .request_id = cm_http_req_id(r),
        .traceparent = cm_http_req_traceparent(r),
        .timeout_ms = route->timeout_ms,
        .deadline_ms = route->timeout_ms,
    };
    if (req.content_type && strpbrk(req.content_type, "\r\n"))
        req.content_type = NULL;
    const struct gw_upstream *up = &app->routes.upstreams[route->upstream];
    struct cm_http_response resp;
    cm_http_client_do(app->clients[route->upstream], &req, &resp);
    cm_buf_release(&url);

    char ra[32];
    switch (resp.outcome) {
    case CM_HTTP_CLIENT_OK: {
        /* The upstream's end-to-end headers; its own X-RateLimit-* (the
         * narrower limit this request met) replace the gateway's. */
        struct relay rl = {.r = r, .connection = cm_http_response_header(&resp, "Connection")};
        cm_http_response_foreach_header(&resp, relay_header, &rl);
        if (!rl.upstream_limits)
            gw_rate_headers(r, &take);
        cm_http_reply(r, (int)resp.status, resp.content_type[0] ? resp.content_type : NULL,
                      resp.body.data ? resp.body.data : "", resp.body.len);
        break;
    }
    case CM_HTTP_CLIENT_OPEN:
        gw_rate_headers(r, &take);
        snprintf(ra, sizeof ra, "%lld", (long long)((up->open_ms + 999) / 1000));
        cm_http_set_header(r, "Retry-After", ra);
        cm_http_reply_error(r, 503, "service_unavailable", "%s unavailable (circuit open)",
                            up->name);
        break;
    case CM_HTTP_CLIENT_TIMEOUT:
        gw_rate_headers(r, &take);
        cm_http_reply_error(r, 504, "upstream_timeout", "%s did not answer within %lld ms",
                            up->name, (long long)route->timeout_ms);
        break;
    default:
        gw_rate_headers(r, &take);
        cm_log_kv(CM_LOG_WARN, "upstream failed", "upstream", up->name, "outcome",
                  cm_http_client_outcome_name(resp.outcome), (const char *)NULL);
        cm_http_reply_error(r, 502, "upstream_error", "%s gave no valid answer", up->name);
        break;
    }
    cm_http_response_release(&resp);
}
