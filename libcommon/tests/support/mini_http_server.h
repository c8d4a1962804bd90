#ifndef MINI_HTTP_SERVER_H
#define MINI_HTTP_SERVER_H
/*
 * A tiny scripted HTTP/1.1 server on 127.0.0.1 for client tests.
 *
 * An accept thread hands each connection to a thread of its own (keep-alive
 * supported); for each request the test's handler, called under the
 * server's lock (so handlers may keep plain counters in ctx), decides the
 * reply: status, body, extra headers, a delay before answering, or closing
 * the connection without an answer. Delays end early when the server
 * stops, so stopping never waits for a "slow" reply.
 *
 * Test-only: not hardened, requests over 16 KiB of head or 1 MiB of body
 * are dropped.
 */
#include <stddef.h>

struct mini_http_request {
    char method[16];
    char path[512];
    char head[16384]; /* header lines after the request line, raw */
    const char *body; /* borrowed during the handler call */
    size_t body_len;
    int seq; /* 1-based over the server's lifetime */
};

/* Copies header `name` (case-insensitive) into out: 0, or -1 if absent. */
int mini_http_header(const struct mini_http_request *r, const char *name, char *out, size_t n);

struct mini_http_reply {
    int status;              /* [200] */
    const char *body;        /* borrowed until the reply is sent; NULL with
                                body_len > 0 sends body_len bytes of 'x' */
    size_t body_len;         /* [strlen(body)] */
    const char *headers;     /* extra "Name: value\r\n" lines, or NULL */
    int delay_ms;            /* wait before answering */
    int close_without_reply; /* drop the connection instead */
    int no_content_length;   /* send the body then close (no Content-Length) */
};

typedef void (*mini_http_handler_fn)(const struct mini_http_request *req,
                                     struct mini_http_reply *rep, void *ctx);

struct mini_http_server;

/* NULL on failure. Listens on an ephemeral loopback port. */
struct mini_http_server *mini_http_server_start(mini_http_handler_fn fn, void *ctx);
int mini_http_server_port(const struct mini_http_server *s);
/* Requests seen so far (complete heads read). */
int mini_http_server_requests(struct mini_http_server *s);
/* Connections accepted so far (to prove keep-alive reuse). */
int mini_http_server_connections(struct mini_http_server *s);
/* Stops accepting, wakes delayed replies, joins every thread, frees. */
void mini_http_server_stop(struct mini_http_server *s);

#endif
