#ifndef COMMON_HTTP_SERVER_H
#define COMMON_HTTP_SERVER_H
/*
 * HTTP server on libmicrohttpd: a static route table, request ids, W3C
 * trace context, access log, standard metrics, health/metrics/admin routes
 * and graceful shutdown. See docs/http.md for the walk-through.
 *
 * Threads: libmicrohttpd runs an epoll loop per worker thread (thread pool,
 * `threads` workers sharing the listen socket). A handler runs on the
 * worker that read the request, synchronously; it must reply (exactly one
 * cm_http_reply* / cm_http_reply_stream call) before it returns, else the
 * client gets 500. Everything a handler gets from `req` is borrowed and
 * valid until the response completes: per-request memory (params, arena,
 * parsed JSON) is released in libmicrohttpd's completion callback.
 * Handlers must not block for long: a worker serves many connections, so
 * services whose handlers wait on I/O (SQL, outbound HTTP) raise threads.
 *
 * Per request the server, before the handler:
 *   - picks the route (404 not_found / 405 method_not_allowed + Allow);
 *   - takes X-Request-Id if it is 1..64 of [A-Za-z0-9._-], else makes one
 *     (128 random bits, hex), and echoes it as X-Request-Id;
 *   - parses `traceparent`; keeps its trace-id (or starts a new trace when
 *     absent or invalid), makes a new span id for this server span and
 *     echoes `traceparent: 00-<trace>-<span>-<flags>`;
 *   - sets the log context (cm_log_set_context) for the worker thread;
 *   - checks CM_ROUTE_ADMIN (401 unauthorized / 403 forbidden), reads the
 *     body for CM_ROUTE_BODY (413 payload_too_large past max_body, checked
 *     on Content-Length first so an oversized body is not read);
 *   - applies latency / error faults that match the route (faults.h).
 * and after the response: one access log line (info) and the metrics
 * http_requests_total{route,method,code}, http_request_duration_seconds
 * {route,method}, http_requests_in_flight (route = template, "unmatched").
 */
#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct cm_http_server;
struct cm_http_req;
struct cm_http_stream;

typedef void (*cm_http_handler_fn)(struct cm_http_req *req);

enum cm_route_flags {
    CM_ROUTE_BODY = 1u << 0,   /* read the request body (size-capped) first */
    CM_ROUTE_ADMIN = 1u << 1,  /* needs Authorization: Bearer ADMIN_TOKEN or X-Admin-Token */
    CM_ROUTE_NO_LOG = 1u << 2, /* no access log line (probes, scrapes) */
};

/*
 * One row of a static route table. pattern is a path of literal segments
 * and "{name}" segments ("/v1/orders/{id}"); a last segment "*" matches the
 * rest of the path (param "*"). Literal segments win over parameters
 * ("/v1/orders/open" beats "/v1/orders/{id}"). GET routes also serve HEAD.
 * The table is borrowed: keep it static.
 */
struct cm_http_route {
    const char *method;
    const char *pattern;
    cm_http_handler_fn handler;
    unsigned flags;
    void *ctx; /* cm_http_req_ctx(); NULL means the server's ctx */
};

struct cm_http_config {
    const char *service;      /* log/metrics name; borrowed */
    const char *bind_addr;    /* IPv4 literal; default $BIND_ADDR, else "0.0.0.0" */
    int port;                 /* 0 = ephemeral (see cm_http_server_port) */
    unsigned threads;         /* worker threads; 0 = online CPUs */
    size_t max_body;          /* default 1 MiB */
    const char *admin_token;  /* borrowed; NULL/"" disables admin routes (403) */
    int drain_delay_ms;       /* readiness fails this long before accept stops; 0 */
    int drain_timeout_ms;     /* in-flight requests get this long; 10000 */
    unsigned idle_timeout_s;  /* keep-alive idle timeout; 30 */
    unsigned max_connections; /* open connections (streams count); 0 = 10000 */
    int builtin_routes;       /* mount health, metrics, admin routes; 1 */
    void *ctx;                /* default handler context */
};

/* Fills the defaults above. */
void cm_http_config_init(struct cm_http_config *cfg);

/* Routes are borrowed (static tables); cfg strings are borrowed too. NULL
 * on a bad pattern (logged) or allocation failure. */
struct cm_http_server *cm_http_server_new(const struct cm_http_config *cfg,
                                          const struct cm_http_route *routes, size_t nroutes);
/* Adds another table before start (e.g. a module's routes). 0 / -1. */
int cm_http_server_add_routes(struct cm_http_server *s, const struct cm_http_route *routes,
                              size_t nroutes);
/* Binds and starts the workers. 0 / -1 (logged). */
int cm_http_server_start(struct cm_http_server *s);
/* The bound port (useful with port 0); -1 before start. */
int cm_http_server_port(const struct cm_http_server *s);

/*
 * Graceful shutdown, in order: readiness fails (draining; responses carry
 * Connection: close), wait drain_delay_ms, stop accepting, end open
 * streams, wait for in-flight requests up to drain_timeout_ms (then
 * answer unanswered deferred replies 503), stop the workers. 0 when every
 * request finished, -1 on timeout (they are cut). Idempotent; call from
 * any thread but a handler.
 */
int cm_http_server_shutdown(struct cm_http_server *s);
/* Installs SIGTERM/SIGINT handlers, waits for one, then shuts down.
 * Returns 0 (main() then exits 0) or -1 if the drain timed out. */
int cm_http_server_run_until_signal(struct cm_http_server *s);
/* Just the first step (tests, or a service draining for its own reason). */
void cm_http_server_set_draining(struct cm_http_server *s);
int cm_http_server_draining(const struct cm_http_server *s);
/* Stops (if running) and frees. */
void cm_http_server_free(struct cm_http_server *s);

/* ---- Request (all strings borrowed, valid until the response completes) */
const char *cm_http_req_method(const struct cm_http_req *r);
const char *cm_http_req_path(const struct cm_http_req *r);
/* The matched pattern, or "unmatched". */
const char *cm_http_req_route(const struct cm_http_req *r);
/* Path parameter by name ("id"), NULL if absent. */
const char *cm_http_req_param(const struct cm_http_req *r, const char *name);
/* Query argument, percent-decoded; NULL if absent ("" for "?flag"). */
const char *cm_http_req_query(const struct cm_http_req *r, const char *name);
/* Request header, case-insensitive name; NULL if absent. */
const char *cm_http_req_header(const struct cm_http_req *r, const char *name);
/* Calls fn for every request header / query argument (decoded), in the
 * order received, until fn returns non-zero. A proxy forwards with these.
 * 0, or -1 on bad arguments. */
typedef int (*cm_http_kv_fn)(void *ctx, const char *key, const char *value);
int cm_http_req_foreach_header(const struct cm_http_req *r, cm_http_kv_fn fn, void *ctx);
int cm_http_req_foreach_query(const struct cm_http_req *r, cm_http_kv_fn fn, void *ctx);
/* Body read for CM_ROUTE_BODY routes, NUL-terminated; "" and 0 otherwise. */
const char *cm_http_req_body(const struct cm_http_req *r, size_t *len);
const char *cm_http_req_client_ip(const struct cm_http_req *r);
const char *cm_http_req_id(const struct cm_http_req *r);
const char *cm_http_req_trace_id(const struct cm_http_req *r);
const char *cm_http_req_span_id(const struct cm_http_req *r);
/* "00-<trace-id>-<this span id>-<flags>": send it on outbound calls. */
const char *cm_http_req_traceparent(const struct cm_http_req *r);
void *cm_http_req_ctx(const struct cm_http_req *r);
struct cm_http_server *cm_http_req_server(const struct cm_http_req *r);
/* Per-request memory (16-byte aligned), released when the response
 * completes; NULL on allocation failure. */
void *cm_http_req_alloc(struct cm_http_req *r, size_t n);
char *cm_http_req_strdup(struct cm_http_req *r, const char *s);

/* ---- Responses (one per request; a second reply returns -1) */
/* Extra response header (copied); before the reply. 0 / -1. */
int cm_http_set_header(struct cm_http_req *r, const char *name, const char *value);
/* body is copied. content_type NULL = "application/octet-stream". */
int cm_http_reply(struct cm_http_req *r, int status, const char *content_type, const void *body,
                  size_t len);
/* body is borrowed for ever (a string literal / static buffer): no copy. */
int cm_http_reply_static(struct cm_http_req *r, int status, const char *content_type,
                         const char *body, size_t len);

/*
 * Deferred replies, for a handler whose answer comes from another thread
 * (a queue, a consumer, a worker pool). The handler calls
 * cm_http_req_defer() and returns without replying; the connection is
 * parked (its worker serves others) and counts as in flight. The owner of
 * the returned handle answers exactly once, from any thread, with one of
 * the cm_http_deferred_reply* calls, which consume the handle. Response
 * headers set with cm_http_set_header before deferring are kept. Nothing
 * borrowed from the request may be used after the handler returns: copy
 * what the answer needs first. If the server stops before the answer
 * (drain timeout) it answers 503 unavailable itself and the late reply
 * returns -1. cm_http_req_defer returns NULL (and the handler must reply
 * normally) if the request was already answered.
 */
struct cm_http_deferred;
struct cm_http_deferred *cm_http_req_defer(struct cm_http_req *r);
/* body is copied. 0, or -1 when the server already answered. */
int cm_http_deferred_reply(struct cm_http_deferred *d, int status, const char *content_type,
                           const void *body, size_t len);
/* Consumes body too. */
int cm_http_deferred_reply_json(struct cm_http_deferred *d, int status, cJSON *body);
int cm_http_deferred_reply_error(struct cm_http_deferred *d, int status, const char *code,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Streaming responses (Server-Sent Events and the like), chunked.
 *
 * The producer is called on the worker thread to fill buf (at most max
 * bytes). It returns the number of bytes written (> 0), 0 when it has
 * nothing right now, or CM_HTTP_STREAM_END to finish the response. After a
 * 0 the connection is parked (no busy loop) until cm_http_stream_wake().
 * With producer NULL the stream has a built-in queue fed by
 * cm_http_stream_send() from any thread.
 *
 * on_close(ctx) runs exactly once when the stream is over (ended, client
 * gone, server stopping); after it the producer is not called again.
 * cm_http_reply_stream returns a reference the caller owns: keep it to
 * send/wake/close from other threads and drop it with
 * cm_http_stream_release(), or release it at once. NULL on failure (the
 * server replies 500).
 */
#define CM_HTTP_STREAM_END ((ssize_t)-1)
typedef ssize_t (*cm_http_stream_fn)(void *ctx, char *buf, size_t max);

struct cm_http_stream *cm_http_reply_stream(struct cm_http_req *r, int status,
                                            const char *content_type, cm_http_stream_fn producer,
                                            void *ctx, void (*on_close)(void *ctx));
/* Queue data (copied; queue capped at 1 MiB). 0, or -1 when the stream is
 * closed or the queue is full (a slow client: close it). Thread-safe. */
int cm_http_stream_send(struct cm_http_stream *st, const void *data, size_t len);
/* A producer has data again. Thread-safe. */
void cm_http_stream_wake(struct cm_http_stream *st);
/* Finish after the queued data is sent. Thread-safe; idempotent. */
void cm_http_stream_close(struct cm_http_stream *st);
/* 1 once the client is gone or the stream was closed. */
int cm_http_stream_closed(const struct cm_http_stream *st);
void cm_http_stream_release(struct cm_http_stream *st);

#endif
