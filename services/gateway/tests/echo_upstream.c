/*
 * gateway-echo PORT [THREADS]: a tiny upstream for the gateway's
 * integration test and bench, on common/http_server.h.
 *   GET  /ping         {"ok":true} (cheap: the bench's target)
 *   ANY  /slow?ms=N    answers after N ms (default 2000)
 *   ANY  /fail         500
 *   GET  /events?n=N   text/event-stream: N events "data: i" 20 ms apart
 *   GET  /headers      201 with end-to-end headers (Location, X-RateLimit-*,
 *                      X-Upstream) and hop-by-hop / gateway-owned ones
 *                      (Keep-Alive, Server, a Connection-listed X-Hop) that a
 *                      proxy must not relay
 *   ANY  (else)        echoes {"method","path","query":{..},"headers":{..},"body"}
 * Header names are lower-cased in the echo. Not for production use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/http_server.h"
#include "common/json_http.h"
#include "common/log.h"
#include "../gateway.h"
#include "common/banned.h"

static void ping(struct cm_http_req *r)
{
    static const char body[] = "{\"ok\":true}";
    cm_http_reply_static(r, 200, "application/json", body, sizeof body - 1);
}

static void fail(struct cm_http_req *r)
{
    cm_http_reply_error(r, 500, "internal", "asked to fail");
}

static void slow(struct cm_http_req *r)
{
    const char *q = cm_http_req_query(r, "ms");
    long ms = q ? strtol(q, NULL, 10) : 2000;
    if (ms < 0 || ms > 60000)
        ms = 2000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    cm_http_reply_json_str(r, 200, "{\"slow\":true}");
}

static void headers(struct cm_http_req *r)
{
    cm_http_set_header(r, "Location", "/v1/orders/42");
    cm_http_set_header(r, "X-RateLimit-Limit", "7");
    cm_http_set_header(r, "X-RateLimit-Remaining", "6");
    cm_http_set_header(r, "X-Upstream", "yes");
    cm_http_set_header(r, "Keep-Alive", "timeout=5");
    cm_http_set_header(r, "Server", "echo-internal");
    cm_http_set_header(r, "Connection", "X-Hop");
    cm_http_set_header(r, "X-Hop", "1");
    cm_http_reply_json_str(r, 201, "{\"created\":true}");
}

/* GET /events?n=N: N events "data: i", 20 ms apart, then the end. */
struct events {
    int sent, total;
    long long next_ms;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t events_next(void *ctx, char *buf, size_t max)
{
    struct events *e = ctx;
    if (e->sent >= e->total)
        return CM_HTTP_STREAM_END;
    long long now = mono_ms();
    if (now < e->next_ms) {
        struct timespec ts = {0, (long)(e->next_ms - now) * 1000000L};
        nanosleep(&ts, NULL);
    }
    e->next_ms = mono_ms() + 20;
    int n = snprintf(buf, max, "data: %d\n\n", e->sent++);
    return n > 0 && (size_t)n < max ? n : CM_HTTP_STREAM_END;
}

static void events(struct cm_http_req *r)
{
    struct events *e = calloc(1, sizeof *e);
    const char *q = cm_http_req_query(r, "n");
    e->total = q ? (int)strtol(q, NULL, 10) : 3;
    struct cm_http_stream *st =
        cm_http_reply_stream(r, 200, "text/event-stream", events_next, e, free);
    if (st)
        cm_http_stream_release(st);
    else
        free(e);
}

static int put(void *ctx, const char *key, const char *value)
{
    char name[128];
    size_t i = 0;
    for (; key[i] && i + 1 < sizeof name; i++)
        name[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    name[i] = '\0';
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, name);
    cJSON_AddStringToObject(ctx, name, value ? value : "");
    return 0;
}

static int put_raw(void *ctx, const char *key, const char *value)
{
    cJSON_AddStringToObject(ctx, key, value ? value : "");
    return 0;
}

static void echo(struct cm_http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *h = cJSON_CreateObject(), *q = cJSON_CreateObject();
    size_t len = 0;
    const char *body = cm_http_req_body(r, &len);
    cJSON_AddStringToObject(o, "method", cm_http_req_method(r));
    cJSON_AddStringToObject(o, "path", cm_http_req_path(r));
    cm_http_req_foreach_query(r, put_raw, q);
    cm_http_req_foreach_header(r, put, h);
    cJSON_AddItemToObject(o, "query", q);
    cJSON_AddItemToObject(o, "headers", h);
    cJSON_AddStringToObject(o, "body", body);
    cm_http_set_header(r, "X-Echo", "1");
    cm_http_reply_json(r, strcmp(cm_http_req_method(r), "POST") == 0 ? 201 : 200, o);
}

#define ALL(p, fn)                                                                                 \
    {"GET", p, fn, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL},                                         \
        {"POST", p, fn, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL},                                    \
        {"PUT", p, fn, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL},                                     \
        {"PATCH", p, fn, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL},                                   \
    {                                                                                              \
        "DELETE", p, fn, CM_ROUTE_BODY | CM_ROUTE_NO_LOG, NULL                                     \
    }

static const struct cm_http_route routes[] = {
    {"GET", "/ping", ping, CM_ROUTE_NO_LOG, NULL},
    {"GET", "/events", events, CM_ROUTE_NO_LOG, NULL},
    {"GET", "/headers", headers, CM_ROUTE_NO_LOG, NULL},
    {"GET", "/v1/echo/headers", headers, CM_ROUTE_NO_LOG, NULL}, /* the itest's route */
    ALL("/slow", slow),
    ALL("/fail", fail),
    ALL("/*", echo),
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gateway-echo PORT [THREADS]\n");
        return 2;
    }
    cm_log_init("gateway-echo", CM_LOG_WARN);
    struct cm_http_config hc;
    cm_http_config_init(&hc);
    hc.service = "gateway-echo";
    hc.bind_addr = "127.0.0.1";
    hc.port = (int)strtol(argv[1], NULL, 10);
    hc.threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 8;
    struct cm_http_server *s = cm_http_server_new(&hc, routes, sizeof routes / sizeof routes[0]);
    if (!s || cm_http_server_start(s) < 0)
        return 1;
    int rc = cm_http_server_run_until_signal(s);
    cm_http_server_free(s);
    return rc == 0 ? 0 : 1;
}
