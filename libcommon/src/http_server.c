/*
 * The HTTP server: libmicrohttpd daemon set-up, per-request pipeline
 * (ids, trace context, routing, admin check, body cap, faults, handler),
 * completion (access log, metrics, per-request memory) and shutdown.
 *
 * Why epoll + thread pool: every worker runs its own epoll loop over its
 * share of the connections and accepts from the shared listen socket, so
 * with N workers on N cores there is no hand-off between threads per
 * request (thread-per-connection pays a context switch and a stack per
 * keep-alive client; a single polling thread would cap at one core).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/json_http.h"
#include "common/log.h"
#include "http_internal.h"
#include "common/trace.h"
#include "common/banned.h"

#define DEFAULT_MAX_BODY (1024u * 1024u)

/* ---- small helpers */

uint64_t http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xoshiro256**, seeded from getrandom once per thread: ids need to be
 * unique and unguessable enough for correlation, not secret. */
static _Thread_local uint64_t rng[4];
static _Thread_local int rng_ready;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t http_random_u64(void)
{
    if (!rng_ready) {
        if (getrandom(rng, sizeof rng, 0) != (ssize_t)sizeof rng) {
            uint64_t t = http_now_ns() ^ (uint64_t)(uintptr_t)&rng;
            for (int i = 0; i < 4; i++)
                rng[i] = t = t * 6364136223846793005ull + 1442695040888963407ull;
        }
        if (!(rng[0] | rng[1] | rng[2] | rng[3]))
            rng[0] = 1;
        rng_ready = 1;
    }
    uint64_t result = rotl(rng[1] * 5, 7) * 9;
    uint64_t t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

void http_random_hex(char *hex, size_t nbytes)
{
    static const char digits[] = "0123456789abcdef";
    size_t i = 0;
    while (i < nbytes) {
        uint64_t v = http_random_u64();
        for (int k = 0; k < 8 && i < nbytes; k++, i++, v >>= 8) {
            hex[2 * i] = digits[(v >> 4) & 15];
            hex[2 * i + 1] = digits[v & 15];
        }
    }
    hex[2 * nbytes] = '\0';
}

static int valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n == 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

static int lower_hex(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        nonzero |= c != '0';
    }
    return nonzero;
}

/* W3C trace-context: "vv-<32 hex>-<16 hex>-<2 hex>", lower case, ids not
 * all zero, version not ff; version 00 has exactly that length, later
 * versions may append "-..." fields. */
static int parse_traceparent(const char *tp, char trace[33], char parent[17], char flags[3])
{
    size_t n = strlen(tp);
    if (n < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return -1;
    if (lower_hex(tp, 2) < 0 || (tp[0] == 'f' && tp[1] == 'f'))
        return -1;
    if ((tp[0] == '0' && tp[1] == '0' && n != 55) || (n > 55 && tp[55] != '-'))
        return -1;
    if (lower_hex(tp + 3, 32) != 1 || lower_hex(tp + 36, 16) != 1 || lower_hex(tp + 53, 2) < 0)
        return -1;
    memcpy(trace, tp + 3, 32);
    trace[32] = '\0';
    memcpy(parent, tp + 36, 16);
    parent[16] = '\0';
    flags[0] = tp[53];
    flags[1] = tp[54];
    flags[2] = '\0';
    return 0;
}

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET",   "POST", "PUT",     "DELETE",
                                        "PATCH", "HEAD", "OPTIONS", NULL};
    for (int i = 0; known[i]; i++)
        if (strcmp(m, known[i]) == 0)
            return known[i];
    return "OTHER";
}

/* ---- per-request memory */

void *cm_http_req_alloc(struct cm_http_req *r, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n)
        return NULL;
    if (need <= ARENA_INLINE - r->arena_used) {
        void *p = r->arena + r->arena_used;
        r->arena_used += need;
        return p;
    }
    /* Header padded to 16 so the payload keeps malloc's alignment. */
    if (need > SIZE_MAX - 16)
        return NULL;
    struct arena_chunk *c = malloc(16 + need);
    if (!c)
        return NULL;
    c->next = r->chunks;
    r->chunks = c;
    return (char *)c + 16;
}

static char *arena_strndup(struct cm_http_req *r, const char *s, size_t n)
{
    char *d = cm_http_req_alloc(r, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *cm_http_req_strdup(struct cm_http_req *r, const char *s)
{
    return s ? arena_strndup(r, s, strlen(s)) : NULL;
}

/* ---- request accessors */

const char *cm_http_req_method(const struct cm_http_req *r)
{
    return r->method;
}
const char *cm_http_req_path(const struct cm_http_req *r)
{
    return r->path;
}
const char *cm_http_req_route(const struct cm_http_req *r)
{
    return r->route ? r->route->route->pattern : "unmatched";
}
const char *cm_http_req_client_ip(const struct cm_http_req *r)
{
    return r->client_ip;
}
const char *cm_http_req_id(const struct cm_http_req *r)
{
    return r->request_id;
}
const char *cm_http_req_trace_id(const struct cm_http_req *r)
{
    return r->trace_id;
}
const char *cm_http_req_span_id(const struct cm_http_req *r)
{
    return r->span_id;
}
struct kv_walk {
    cm_http_kv_fn fn;
    void *ctx;
};

static enum MHD_Result kv_visit(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    struct kv_walk *w = cls;
    return w->fn(w->ctx, key, value ? value : "") == 0 ? MHD_YES : MHD_NO;
}

static int kv_walk(const struct cm_http_req *r, enum MHD_ValueKind kind, cm_http_kv_fn fn,
                   void *ctx)
{
    if (!r || !r->conn || !fn)
        return -1;
    struct kv_walk w = {fn, ctx};
    MHD_get_connection_values(r->conn, kind, kv_visit, &w);
    return 0;
}

int cm_http_req_foreach_header(const struct cm_http_req *r, cm_http_kv_fn fn, void *ctx)
{
    return kv_walk(r, MHD_HEADER_KIND, fn, ctx);
}

int cm_http_req_foreach_query(const struct cm_http_req *r, cm_http_kv_fn fn, void *ctx)
{
    return kv_walk(r, MHD_GET_ARGUMENT_KIND, fn, ctx);
}

const char *cm_http_req_traceparent(const struct cm_http_req *r)
{
    return r->traceparent;
}
struct cm_http_server *cm_http_req_server(const struct cm_http_req *r)
{
    return r->srv;
}

void *cm_http_req_ctx(const struct cm_http_req *r)
{
    if (r->route && r->route->route->ctx)
        return r->route->route->ctx;
    return r->srv->cfg.ctx;
}

const char *cm_http_req_param(const struct cm_http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nparams; i++)
        if (r->params[i].name_len == n && memcmp(r->params[i].name, name, n) == 0)
            return r->param_values[i];
    return NULL;
}

const char *cm_http_req_query(const struct cm_http_req *r, const char *name)
{
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v, &n) !=
        MHD_YES)
        return NULL;
    return v ? v : ""; /* "?flag" has a key and no value */
}

const char *cm_http_req_header(const struct cm_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *cm_http_req_body(const struct cm_http_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

/* ---- responses */

int cm_http_set_header(struct cm_http_req *r, const char *name, const char *value)
{
    if (r->status || !name || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -1;
    struct resp_header *h = cm_http_req_alloc(r, sizeof *h);
    if (!h || !(h->name = cm_http_req_strdup(r, name)) ||
        !(h->value = cm_http_req_strdup(r, value)))
        return -1;
    h->next = r->headers;
    r->headers = h;
    return 0;
}

int http_set_response(struct cm_http_req *r, int status, struct MHD_Response *resp)
{
    if (!resp)
        return -1;
    if (r->status) {
        MHD_destroy_response(resp);
        return -1;
    }
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "traceparent", r->traceparent);
    for (const struct resp_header *h = r->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    if (atomic_load_explicit(&r->srv->draining, memory_order_relaxed))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->resp = resp;
    r->status = status;
    return 0;
}

static int reply_buffer(struct cm_http_req *r, int status, const char *content_type,
                        const void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    if (r->status)
        return -1;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!resp)
        return -1;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            content_type ? content_type : "application/octet-stream");
    r->bytes = len;
    return http_set_response(r, status, resp);
}

int cm_http_reply(struct cm_http_req *r, int status, const char *content_type, const void *body,
                  size_t len)
{
    return reply_buffer(r, status, content_type, body ? body : "", body ? len : 0,
                        MHD_RESPMEM_MUST_COPY);
}

int cm_http_reply_static(struct cm_http_req *r, int status, const char *content_type,
                         const char *body, size_t len)
{
    return reply_buffer(r, status, content_type, body ? body : "", body ? len : 0,
                        MHD_RESPMEM_PERSISTENT);
}

int http_reply_owned(struct cm_http_req *r, int status, const char *content_type, char *body,
                     size_t len)
{
    if (r->status) {
        free(body);
        return -1;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return -1;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    r->bytes = len;
    return http_set_response(r, status, resp);
}

/* ---- the pipeline */

static int has_body(struct cm_http_req *r)
{
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl)
        return strcmp(cl, "0") != 0;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* Constant time over the expected token's length. */
static int token_equal(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    unsigned char diff = gl != wl;
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static int check_admin(struct cm_http_req *r)
{
    const char *want = r->srv->cfg.admin_token;
    const char *tok = cm_http_req_header(r, "X-Admin-Token");
    const char *auth = cm_http_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!tok && auth && strncasecmp(auth, "Bearer ", 7) == 0)
        tok = auth + 7;
    if (!tok || !*tok) {
        cm_http_set_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        cm_http_reply_error(r, 401, "unauthorized", "admin token required");
        return -1;
    }
    if (!want || !*want || !token_equal(tok, want)) {
        cm_http_reply_error(r, 403, "forbidden", "admin token rejected");
        return -1;
    }
    return 0;
}

static void begin(struct cm_http_req *r, const char *url, const char *method)
{
    struct cm_http_server *s = r->srv;
    r->active = 1;
    r->start_ns = http_now_ns();
    r->method = method;
    r->path = url;
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
    cm_gauge_add(s->m_in_flight, 1);

    const char *rid = cm_http_req_header(r, "X-Request-Id");
    if (rid && valid_request_id(rid))
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
        http_random_hex(r->request_id, 16);
    const char *tp = cm_http_req_header(r, "traceparent");
    r->parent_span_id[0] = '\0';
    if (!tp || parse_traceparent(tp, r->trace_id, r->parent_span_id, r->trace_flags) < 0) {
        r->parent_span_id[0] = '\0';
        http_random_hex(r->trace_id, 16);
        memcpy(r->trace_flags, "01", 3);
    }
    http_random_hex(r->span_id, 8);
    snprintf(r->traceparent, sizeof r->traceparent, "00-%s-%s-%s", r->trace_id, r->span_id,
             r->trace_flags);
    cm_log_set_context(r->request_id, r->trace_id);
    cm_trace_set_current(r->trace_id, r->span_id);

    struct route_match m;
    if (router_match(&s->router, method, url, &m) < 0) {
        if (m.path_known) {
            cm_http_set_header(r, MHD_HTTP_HEADER_ALLOW, m.allow);
            cm_http_reply_error(r, 405, "method_not_allowed", "method %s not allowed here", method);
        } else {
            cm_http_reply_error(r, 404, "not_found", "no route for %s", url);
        }
        return;
    }
    r->route = m.route;
    unsigned flags = m.route->route->flags;
    r->no_log = (flags & CM_ROUTE_NO_LOG) != 0;
    for (int i = 0; i < m.nparams; i++) {
        r->params[i] = m.params[i];
        r->param_values[i] = arena_strndup(r, m.params[i].value, m.params[i].len);
        if (!r->param_values[i]) {
            cm_http_reply_error(r, 500, "internal", "out of memory");
            return;
        }
    }
    r->nparams = m.nparams;
    if ((flags & CM_ROUTE_ADMIN) && check_admin(r) < 0)
        return;
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || n > s->cfg.max_body) {
            cm_http_reply_error(r, 413, "payload_too_large", "body over %zu bytes",
                                s->cfg.max_body);
            return;
        }
    }
    /* r->body was set up (capped at max_body) when the connection opened
     * and is emptied after every request. */
    r->want_body = (flags & CM_ROUTE_BODY) != 0;
}

/* Runs faults and the handler; 1 when the request is parked (a latency
 * fault or a deferred reply) and must not be touched until resumed. */

/* Error code for an HTTP status, per the error envelope's code list. */
static const char *code_for_status(int status)
{
    switch (status) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 422: return "unprocessable";
    case 429: return "rate_limited";
    case 502: return "upstream_error";
    case 503: return "service_unavailable";
    case 504: return "upstream_timeout";
    default: return status >= 500 ? "internal" : "invalid_request";
    }
}

static int dispatch(struct cm_http_req *r)
{
    if (r->status)
        return 0;
    if (r->deferred) { /* resumed: the answer is waiting in the handle */
        http_deferred_take(r);
        return 0;
    }
    const struct cm_http_route *rt = r->route->route;
    if (!(rt->flags & HTTP_ROUTE_BUILTIN) && !r->faults_done) {
        int delay_ms = 0;
        r->faults_done = 1;
        faults_for_route(rt->pattern, r->path, &delay_ms, &r->fault_status);
        /* Parked, not slept: we are called again when the delay is over. */
        if (delay_ms > 0 && http_delay_park(&r->srv->delays, r->conn, delay_ms) == 0)
            return 1;
    }
    if (r->fault_status) {
        /* The code a real failure of that status would carry (proto/openapi/common.yaml),
         * so clients and dashboards see an injected fault as the real thing. */
        cm_http_reply_error(r, r->fault_status, code_for_status(r->fault_status), "injected fault");
        return 0;
    }
    /* The worker served other connections since begin(): set it again. */
    cm_log_set_context(r->request_id, r->trace_id);
    cm_trace_set_current(r->trace_id, r->span_id);
    rt->handler(r);
    if (r->deferred)
        return 1; /* another thread may already be answering: hands off */
    if (!r->status) {
        cm_logf(CM_LOG_ERROR, "http: handler for %s %s did not reply", rt->method, rt->pattern);
        cm_http_reply_error(r, 500, "internal", "handler did not reply");
    }
    return 0;
}

/* Hands a pending response to libmicrohttpd (no-op when there is none yet
 * or it was already queued). */
static enum MHD_Result queue(struct cm_http_req *r)
{
    if (!r->resp)
        return MHD_YES;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
    MHD_destroy_response(r->resp); /* MHD holds its own reference */
    r->resp = NULL;
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct cm_http_req *r = *con_cls;
    if (!r) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r = ci ? ci->socket_context : NULL;
        if (!r)
            return MHD_NO;
        *con_cls = r;
        begin(r, url, method);
        /* A response queued on this first call makes libmicrohttpd close
         * the connection (it cannot know the body was read). Do that only
         * to refuse a body (413, 401...) without reading it; everything
         * else answers on the next call and keeps the connection alive. */
        if (r->status && has_body(r))
            return queue(r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* libmicrohttpd 0.9.75 cannot queue a response in the middle of a
         * body, so an over-long chunked body is discarded and answered 413
         * at its end; one that goes on far past the cap gets the connection
         * closed instead. (A declared Content-Length is checked up front.) */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->body_too_large) {
            r->discarded += n;
            return r->discarded > 4 * r->srv->cfg.max_body + 65536 ? MHD_NO : MHD_YES;
        }
        if (r->want_body && !r->status && cm_buf_append(&r->body, upload_data, n) < 0) {
            r->body_too_large = 1;
            r->discarded = n;
            cm_buf_release(&r->body);
        }
        return MHD_YES;
    }
    if (r->body_too_large && !r->status)
        cm_http_reply_error(r, 413, "payload_too_large", "body over %zu bytes",
                            r->srv->cfg.max_body);
    if (dispatch(r))
        return MHD_YES;
    return queue(r);
}

static void access_log(struct cm_http_req *r, int status, double secs)
{
    if (r->no_log || cm_log_get_level() > CM_LOG_INFO)
        return;
    cJSON *f = cJSON_CreateObject();
    if (!f)
        return;
    /* Numbers go in as raw JSON text: cJSON's own number printing costs a
     * printf and a scanf per field, per request. */
    char st[16], ms[32], bytes[32];
    uint64_t us = (uint64_t)(secs * 1e6);
    snprintf(st, sizeof st, "%d", status);
    snprintf(ms, sizeof ms, "%llu.%03u", (unsigned long long)(us / 1000), (unsigned)(us % 1000));
    snprintf(bytes, sizeof bytes, "%zu", r->bytes);
    cJSON_AddStringToObject(f, "method", r->method);
    cJSON_AddStringToObject(f, "route", cm_http_req_route(r));
    cJSON_AddStringToObject(f, "path", r->path);
    cJSON_AddRawToObject(f, "status", st);
    cJSON_AddRawToObject(f, "duration_ms", ms);
    cJSON_AddRawToObject(f, "bytes", bytes);
    cJSON_AddStringToObject(f, "client_ip", r->client_ip);
    cm_log_json(CM_LOG_INFO, "request", f);
    cJSON_Delete(f);
}

/* The request as a SERVER span (common/trace.h), child of the caller's. */
static void record_span(const struct cm_http_req *r, int status, double secs)
{
    struct cm_span sp;
    memset(&sp, 0, sizeof sp);
    memcpy(sp.trace_id, r->trace_id, sizeof sp.trace_id);
    memcpy(sp.span_id, r->span_id, sizeof sp.span_id);
    memcpy(sp.parent_id, r->parent_span_id, sizeof sp.parent_id);
    snprintf(sp.name, sizeof sp.name, "%s %s", method_label(r->method), cm_http_req_route(r));
    snprintf(sp.method, sizeof sp.method, "%s", method_label(r->method));
    snprintf(sp.route, sizeof sp.route, "%s", cm_http_req_route(r));
    sp.kind = CM_SPAN_SERVER;
    sp.end_unix_ns = cm_trace_now_unix_ns();
    sp.start_unix_ns = sp.end_unix_ns - (int64_t)(secs * 1e9);
    sp.http_status = status;
    sp.error = status >= 500;
    cm_trace_record(&sp);
}

/* Ends a request: log, metrics, then drop everything it allocated. */
static void finish(struct cm_http_req *r, enum MHD_RequestTerminationCode toe)
{
    struct cm_http_server *s = r->srv;
    double secs = (double)(http_now_ns() - r->start_ns) / 1e9;
    if (r->stream)
        r->bytes = http_stream_finish(r->stream);
    if (r->deferred)
        http_deferred_drop(r);
    /* 499 (nginx's "client closed request") when nothing was answered. */
    int status = r->status ? r->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->stream && !r->status)
        status = 499;
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *route = cm_http_req_route(r);
    const char *method = method_label(r->method);
    cm_log_set_context(r->request_id, r->trace_id);
    access_log(r, status, secs);
    cm_counter_add(s->m_requests, 1, route, method, code);
    cm_histogram_observe(s->m_duration, secs, route, method);
    cm_gauge_add(s->m_in_flight, -1);
    if (cm_trace_enabled() && !r->no_log)
        record_span(r, status, secs);
    cm_log_set_context(NULL, NULL);
    cm_trace_set_current(NULL, NULL);

    if (r->resp)
        MHD_destroy_response(r->resp);
    cJSON_Delete(r->json);
    while (r->chunks) {
        struct arena_chunk *c = r->chunks;
        r->chunks = c->next;
        free(c);
    }
    /* Keep a small body buffer for the next request on this connection. */
    if (r->body.alloc > 64 * 1024)
        cm_buf_release(&r->body);
    else
        cm_buf_reset(&r->body);
    r->active = 0;
    r->route = NULL;
    r->nparams = 0;
    r->want_body = r->no_log = r->body_too_large = 0;
    r->faults_done = r->fault_status = 0;
    r->discarded = 0;
    r->json = NULL;
    r->resp = NULL;
    r->status = 0;
    r->bytes = 0;
    r->stream = NULL;
    r->headers = NULL;
    r->arena_used = 0;
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_release);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct cm_http_req *r = *con_cls;
    if (r && r->active)
        finish(r, toe);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct cm_http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct cm_http_req *r = calloc(1, sizeof *r);
        if (!r)
            return; /* on_request answers MHD_NO: the connection closes */
        r->srv = s;
        r->conn = conn;
        cm_buf_init(&r->body, s->cfg.max_body);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                      r->client_ip, sizeof r->client_ip);
        else if (sa && sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      r->client_ip, sizeof r->client_ip);
        *socket_context = r;
        return;
    }
    struct cm_http_req *r = *socket_context;
    if (!r)
        return;
    if (r->active)
        finish(r, MHD_REQUEST_TERMINATED_WITH_ERROR);
    cm_buf_release(&r->body);
    free(r);
    *socket_context = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    struct cm_buf b;
    cm_buf_init(&b, 1024);
    cm_buf_vprintf(&b, fmt, ap);
    /* MHD ends its messages with a newline. */
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.data[--b.len] = '\0';
    cm_logf(CM_LOG_WARN, "http: libmicrohttpd: %s", b.data ? b.data : "");
    cm_buf_release(&b);
}

/* ---- server lifecycle */

void cm_http_config_init(struct cm_http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->service = "service";
    /* BIND_ADDR: the local lab binds every service to loopback, since they
     * trust the gateway's identity headers; in a pod, all interfaces. */
    const char *bind = getenv("BIND_ADDR");
    cfg->bind_addr = bind && *bind ? bind : "0.0.0.0";
    cfg->max_body = DEFAULT_MAX_BODY;
    cfg->drain_timeout_ms = 10000;
    cfg->idle_timeout_s = 30;
    cfg->builtin_routes = 1;
}

int cm_http_server_add_routes(struct cm_http_server *s, const struct cm_http_route *routes,
                              size_t nroutes)
{
    if (!s || s->daemon)
        return -1;
    for (size_t i = 0; i < nroutes; i++)
        if (router_add(&s->router, &routes[i]) < 0)
            return -1;
    return 0;
}

struct cm_http_server *cm_http_server_new(const struct cm_http_config *cfg,
                                          const struct cm_http_route *routes, size_t nroutes)
{
    struct cm_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (cfg)
        s->cfg = *cfg;
    else
        cm_http_config_init(&s->cfg);
    if (!s->cfg.max_body)
        s->cfg.max_body = DEFAULT_MAX_BODY;
    if (!s->cfg.bind_addr)
        s->cfg.bind_addr = "0.0.0.0";
    if (!s->cfg.service)
        s->cfg.service = "service";
    s->port = -1;
    pthread_mutex_init(&s->lock, NULL);
    http_delays_init(&s->delays);
    router_init(&s->router);
    s->m_requests =
        cm_metric_counter("http_requests_total", "HTTP requests completed.", "route,method,code");
    s->m_duration = cm_metric_histogram("http_request_duration_seconds",
                                        "HTTP request duration, first byte read to last sent.",
                                        "route,method", NULL, 0);
    s->m_in_flight =
        cm_metric_gauge("http_requests_in_flight", "HTTP requests being served.", NULL);
    cm_gauge_add(s->m_in_flight, 0); /* a scrape shows 0, not nothing */
    if (cm_http_server_add_routes(s, routes, nroutes) < 0)
        goto fail;
    if (s->cfg.builtin_routes &&
        (cm_http_server_add_routes(s, cm_health_routes, cm_health_nroutes) < 0 ||
         cm_http_server_add_routes(s, cm_faults_routes, cm_faults_nroutes) < 0))
        goto fail;
    if (s->cfg.builtin_routes)
        faults_publish_metrics();
    return s;
fail:
    cm_http_server_free(s);
    return NULL;
}

int cm_http_server_start(struct cm_http_server *s)
{
    if (!s || s->daemon)
        return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->cfg.port);
    if (inet_pton(AF_INET, s->cfg.bind_addr, &addr.sin_addr) != 1) {
        cm_logf(CM_LOG_ERROR, "http: bad bind address \"%s\"", s->cfg.bind_addr);
        return -1;
    }
    unsigned threads = s->cfg.threads;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    unsigned max_conns = s->cfg.max_connections ? s->cfg.max_connections : 10000;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.idle_timeout_s, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        1024, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_CONNECTION_LIMIT,
        max_conns, MHD_OPTION_END);
    if (!s->daemon) {
        cm_logf(CM_LOG_ERROR, "http: cannot listen on %s:%d", s->cfg.bind_addr, s->cfg.port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    cm_log_kv(CM_LOG_INFO, "http server listening", "service", s->cfg.service, "addr",
              s->cfg.bind_addr, (const char *)NULL);
    return 0;
}

int cm_http_server_port(const struct cm_http_server *s)
{
    return s ? s->port : -1;
}

void cm_http_server_set_draining(struct cm_http_server *s)
{
    atomic_store(&s->draining, 1);
}
int cm_http_server_draining(const struct cm_http_server *s)
{
    return atomic_load(&s->draining);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int cm_http_server_shutdown(struct cm_http_server *s)
{
    if (!s || !s->daemon || atomic_exchange(&s->stopped, 1))
        return 0;
    cm_http_server_set_draining(s);
    cm_logf(CM_LOG_INFO, "http: draining (readiness failing)");
    if (s->cfg.drain_delay_ms > 0)
        sleep_ms(s->cfg.drain_delay_ms); /* a window for load balancers, not a sync */
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    http_streams_close_all(s);
    http_delays_flush(&s->delays); /* injected latency ends early on shutdown */
    uint64_t deadline = http_now_ns() + (uint64_t)s->cfg.drain_timeout_ms * 1000000u;
    while (atomic_load(&s->in_flight) > 0 && http_now_ns() < deadline)
        sleep_ms(2);
    /* Deferred replies nobody gave in time: answer 503 ourselves. */
    if (atomic_load(&s->in_flight) > 0 && http_deferred_cancel_all(s) > 0) {
        deadline = http_now_ns() + 1000000000u;
        while (atomic_load(&s->in_flight) > 0 && http_now_ns() < deadline)
            sleep_ms(2);
    }
    long left = atomic_load(&s->in_flight);
    if (left > 0)
        cm_logf(CM_LOG_WARN, "http: drain timeout, cutting %ld request(s)", left);
    http_delays_stop(&s->delays);
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    cm_logf(CM_LOG_INFO, "http: stopped");
    return left > 0 ? -1 : 0;
}

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    ssize_t rc = write(signal_pipe[1], &c, 1);
    (void)rc;
    errno = saved;
}

int cm_http_server_run_until_signal(struct cm_http_server *s)
{
    if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        cm_logf(CM_LOG_ERROR, "http: pipe: %s", strerror(errno));
        return -1;
    }
    struct sigaction sa, old_term, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    unsigned char sig = 0;
    for (;;) {
        struct pollfd p = {signal_pipe[0], POLLIN, 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            break;
        if (read(signal_pipe[0], &sig, 1) == 1)
            break;
    }
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    cm_logf(CM_LOG_INFO, "http: signal %d, shutting down", (int)sig);
    return cm_http_server_shutdown(s);
}

void cm_http_server_free(struct cm_http_server *s)
{
    if (!s)
        return;
    if (s->daemon) {
        atomic_store(&s->stopped, 0);
        int saved = s->cfg.drain_delay_ms;
        s->cfg.drain_delay_ms = 0;
        cm_http_server_shutdown(s);
        s->cfg.drain_delay_ms = saved;
    }
    http_delays_stop(&s->delays);
    http_delays_release(&s->delays);
    health_checks_free(s);
    router_release(&s->router);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
