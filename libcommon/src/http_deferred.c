/*
 * Deferred replies: a handler parks its request and another thread answers
 * it later. The other thread never touches the request itself (its memory
 * is reused by the connection's next request): it fills a reply into a
 * small reference-counted handle and resumes the connection; the worker
 * then turns that reply into the response. If the server gives up first
 * (shutdown past the drain timeout) it answers 503 itself and a late reply
 * from the owner is refused with -1.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_http.h"
#include "common/log.h"
#include "http_internal.h"
#include "common/banned.h"

enum { PENDING, REPLIED, CANCELLED, TAKEN };

struct cm_http_deferred {
    struct cm_http_deferred *next, *prev; /* server's list, under srv->lock */
    struct cm_http_server *srv;
    struct MHD_Connection *conn;
    pthread_mutex_t lock;
    int refs; /* under lock: the request's and the owner's */
    int state;
    int status;
    char *content_type;
    char *body;
    size_t len;
    char request_id[65];
};

static void unref(struct cm_http_deferred *d)
{
    pthread_mutex_lock(&d->lock);
    int last = --d->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d->content_type);
    free(d->body);
    free(d);
}

static void unlink_from_server(struct cm_http_deferred *d)
{
    struct cm_http_server *s = d->srv;
    pthread_mutex_lock(&s->lock);
    if (d->prev)
        d->prev->next = d->next;
    else if (s->deferred == d)
        s->deferred = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->next = d->prev = NULL;
    pthread_mutex_unlock(&s->lock);
}

struct cm_http_deferred *cm_http_req_defer(struct cm_http_req *r)
{
    if (r->status || r->deferred || r->stream)
        return NULL;
    struct cm_http_deferred *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->srv = r->srv;
    d->conn = r->conn;
    d->refs = 2;
    d->state = PENDING;
    memcpy(d->request_id, r->request_id, sizeof d->request_id);
    pthread_mutex_lock(&r->srv->lock);
    d->next = r->srv->deferred;
    if (d->next)
        d->next->prev = d;
    r->srv->deferred = d;
    pthread_mutex_unlock(&r->srv->lock);
    /* Suspended before anyone can resume it: the handle is not out yet. */
    MHD_suspend_connection(r->conn);
    r->deferred = d;
    return d;
}

/* Stores a reply (takes body) if still pending and wakes the worker. */
static int fill(struct cm_http_deferred *d, int status, const char *content_type, char *body,
                size_t len, int from_server)
{
    int rc = -1;
    pthread_mutex_lock(&d->lock);
    if (d->state == PENDING) {
        d->content_type = malloc(strlen(content_type) + 1);
        if (d->content_type) {
            memcpy(d->content_type, content_type, strlen(content_type) + 1);
            d->status = status;
            d->body = body;
            d->len = len;
            body = NULL;
            d->state = from_server ? CANCELLED : REPLIED;
            MHD_resume_connection(d->conn);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&d->lock);
    free(body);
    return rc;
}

int cm_http_deferred_reply(struct cm_http_deferred *d, int status, const char *content_type,
                           const void *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        unref(d);
        return -1;
    }
    if (len)
        memcpy(copy, body, len);
    copy[len] = '\0';
    int rc =
        fill(d, status, content_type ? content_type : "application/octet-stream", copy, len, 0);
    unref(d);
    return rc;
}

int cm_http_deferred_reply_json(struct cm_http_deferred *d, int status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    int rc = -1;
    if (s)
        rc = fill(d, status, "application/json", s, strlen(s), 0);
    else
        fill(d, 500, "application/json", NULL, 0, 0); /* still answer something */
    unref(d);
    return rc;
}

static char *envelope(const char *request_id, const char *code, const char *msg, size_t *len)
{
    struct cm_buf b;
    cm_buf_init(&b, 16384);
    cm_buf_puts(&b, "{\"error\":{\"code\":\"");
    cm_buf_json_escape(&b, code);
    cm_buf_puts(&b, "\",\"message\":\"");
    cm_buf_json_escape(&b, msg);
    cm_buf_puts(&b, "\",\"request_id\":\"");
    cm_buf_json_escape(&b, request_id);
    if (cm_buf_puts(&b, "\"}}") < 0) {
        cm_buf_release(&b);
        return NULL;
    }
    return cm_buf_detach(&b, len);
}

int cm_http_deferred_reply_error(struct cm_http_deferred *d, int status, const char *code,
                                 const char *fmt, ...)
{
    struct cm_buf msg;
    cm_buf_init(&msg, 4096);
    va_list ap;
    va_start(ap, fmt);
    cm_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *s = envelope(d->request_id, code ? code : "error", msg.data ? msg.data : "", &len);
    cm_buf_release(&msg);
    int rc = s ? fill(d, status, "application/json", s, len, 0) : -1;
    unref(d);
    return rc;
}

/* Worker side, on the call after the resume: the stored reply becomes the
 * response. */
void http_deferred_take(struct cm_http_req *r)
{
    struct cm_http_deferred *d = r->deferred;
    r->deferred = NULL;
    unlink_from_server(d);
    pthread_mutex_lock(&d->lock);
    int state = d->state;
    char *body = d->body, *ctype = d->content_type;
    size_t len = d->len;
    int status = d->status;
    d->body = NULL;
    d->state = TAKEN;
    pthread_mutex_unlock(&d->lock);
    if ((state == REPLIED || state == CANCELLED) && body)
        http_reply_owned(r, status, ctype, body, len);
    else
        free(body);
    if (!r->status)
        cm_http_reply_error(r, 500, "internal", "deferred reply failed");
    unref(d);
}

/* Request ended without the take (connection cut at stop): drop our ref. */
void http_deferred_drop(struct cm_http_req *r)
{
    struct cm_http_deferred *d = r->deferred;
    r->deferred = NULL;
    unlink_from_server(d);
    pthread_mutex_lock(&d->lock);
    d->state = TAKEN;
    pthread_mutex_unlock(&d->lock);
    unref(d);
}

int http_deferred_cancel_all(struct cm_http_server *s)
{
    int n = 0;
    pthread_mutex_lock(&s->lock);
    for (struct cm_http_deferred *d = s->deferred; d; d = d->next) {
        size_t len = 0;
        char *body = envelope(d->request_id, "service_unavailable", "server shutting down", &len);
        if (body && fill(d, 503, "application/json", body, len, 1) == 0)
            n++;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}
