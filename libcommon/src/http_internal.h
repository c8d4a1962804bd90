#ifndef COMMON_HTTP_INTERNAL_H
#define COMMON_HTTP_INTERNAL_H
/*
 * Private to the HTTP stack (http_server.c, http_router.c, http_stream.c,
 * json_http.c, health.c, faults.c) and its unit tests.
 */
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http_server.h"
#include "common/metrics.h"

/* ---- Router */
#define ROUTER_MAX_SEGS 16
#define ROUTER_MAX_PARAMS 8

struct route_seg {
    const char *text; /* literal text, or the parameter name */
    size_t len;
    int param; /* 1 "{name}", 2 "*" (rest of path) */
};

struct compiled_route {
    const struct cm_http_route *route;
    struct route_seg segs[ROUTER_MAX_SEGS];
    int nsegs;
    int literals; /* precedence: more literal segments win */
};

struct router {
    struct compiled_route *routes;
    size_t n, alloc;
};

struct route_param {
    const char *name;
    size_t name_len;
    const char *value; /* points into the path: not NUL-terminated */
    size_t len;
};

struct route_match {
    const struct compiled_route *route; /* NULL: no route for this method */
    struct route_param params[ROUTER_MAX_PARAMS];
    int nparams;
    int path_known; /* some route matched the path with another method */
    char allow[96]; /* those methods, "GET, POST" */
};

void router_init(struct router *rt);
void router_release(struct router *rt);
/* Compiles and appends; -1 on a bad pattern or too many segments. */
int router_add(struct router *rt, const struct cm_http_route *route);
/* 0 and m->route set on a match; -1 otherwise (m->path_known, m->allow). */
int router_match(const struct router *rt, const char *method, const char *path,
                 struct route_match *m);

/* Marks the built-in tables (health, metrics, admin): faults skip them so
 * an error fault on "*" can still be cleared. Above the public flags. */
#define HTTP_ROUTE_BUILTIN (1u << 15)

/* ---- Per-request state: one per connection, reused across keep-alive
 * requests so the hot path does not allocate for it. */
#define ARENA_INLINE 2048

struct arena_chunk {
    struct arena_chunk *next;
    /* payload follows */
};

struct resp_header {
    struct resp_header *next;
    const char *name, *value;
};

struct cm_http_req {
    struct cm_http_server *srv;
    struct MHD_Connection *conn;
    char client_ip[48];

    /* per request, reset in the completion callback */
    int active;
    const char *method;
    const char *path;
    const struct compiled_route *route;
    struct route_param params[ROUTER_MAX_PARAMS];
    char *param_values[ROUTER_MAX_PARAMS];
    int nparams;
    int want_body;
    int body_too_large;
    int faults_done;  /* faults looked up (a latency fault parks us once) */
    int fault_status; /* injected error to answer with after the delay */
    size_t discarded;
    int no_log;
    struct cm_buf body;
    cJSON *json;
    struct MHD_Response *resp;
    int status;
    size_t bytes;
    struct cm_http_stream *stream;
    struct cm_http_deferred *deferred; /* parked for a deferred reply */
    struct resp_header *headers;
    uint64_t start_ns;
    char request_id[65];
    char trace_id[33];
    char span_id[17];
    char parent_span_id[17]; /* the caller's span, "" when it sent none */
    char trace_flags[3];
    char traceparent[56];

    size_t arena_used;
    struct arena_chunk *chunks;
    _Alignas(16) char arena[ARENA_INLINE];
};

struct health_check {
    struct health_check *next;
    char *name;
    int (*fn)(void *ctx, char *msg, size_t msglen);
    void *ctx;
    int timeout_ms;
};

/* Parked connections for injected latency (http_delay.c). */
struct delay_entry;
struct http_delays {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    pthread_t thread;
    struct delay_entry *list; /* by due time */
    int running, stop, flush, closed;
};

void http_delays_init(struct http_delays *d);
/* Suspends conn and resumes it after ms; -1 (not suspended) when shutting
 * down or out of memory. Call from the access handler only. */
int http_delay_park(struct http_delays *d, struct MHD_Connection *conn, int ms);
/* Resumes everything parked now and refuses new parking (shutdown). */
void http_delays_flush(struct http_delays *d);
void http_delays_stop(struct http_delays *d);
void http_delays_release(struct http_delays *d);

struct cm_http_server {
    struct cm_http_config cfg;
    struct router router;
    struct MHD_Daemon *daemon;
    int port;
    _Atomic int draining;
    _Atomic int stopped;
    _Atomic long in_flight;

    struct cm_metric *m_requests, *m_duration, *m_in_flight;

    struct http_delays delays;
    pthread_mutex_t lock; /* streams list, checks list */
    struct cm_http_stream *streams;
    struct cm_http_deferred *deferred;
    struct health_check *checks;
};

uint64_t http_now_ns(void);
/* Per-thread PRNG (xoshiro256**, seeded from getrandom). */
uint64_t http_random_u64(void);
/* Fills hex with 2*nbytes random hex digits + NUL (per-thread PRNG). */
void http_random_hex(char *hex, size_t nbytes);

/* Reply with a ready MHD response (takes it). */
int http_set_response(struct cm_http_req *r, int status, struct MHD_Response *resp);

/* Takes a malloc'd body (freed by MHD, or here on failure). */
int http_reply_owned(struct cm_http_req *r, int status, const char *content_type, char *body,
                     size_t len);

/* Deferred replies (http_deferred.c) */
void http_deferred_take(struct cm_http_req *r);
void http_deferred_drop(struct cm_http_req *r);
/* Answers every pending deferral with 503 (shutdown); how many. */
int http_deferred_cancel_all(struct cm_http_server *s);

/* Streams (http_stream.c) */
void http_streams_close_all(struct cm_http_server *s);
/* Drops the request's reference; returns the bytes streamed. */
size_t http_stream_finish(struct cm_http_stream *st);

/* Built-in routes (health.c, faults.c) */
extern const struct cm_http_route cm_health_routes[];
extern const size_t cm_health_nroutes;
extern const struct cm_http_route cm_faults_routes[];
extern const size_t cm_faults_nroutes;
void health_checks_free(struct cm_http_server *s);

/* Faults applied before a handler (faults.c), matched on the route pattern
 * or the raw path ("*" = any): fills the delay and, when an
 * error fault fires, the status to answer with (0 otherwise). Cheap when no
 * fault is active (one atomic load). */
/* Registers fault_injection_active{fault} with every type (0 when idle). */
void faults_publish_metrics(void);
void faults_for_route(const char *pattern, const char *path, int *delay_ms, int *status);

#endif
