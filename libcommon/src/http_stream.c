/*
 * Streaming responses (chunked; Server-Sent Events). A stream is shared by
 * libmicrohttpd (the content reader, on a worker), the request (to count
 * bytes) and the handler's owner (sending from any thread), so it is
 * reference counted. When the producer has nothing to say the connection
 * is suspended instead of polled, and resumed by wake/send/close.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http_internal.h"
#include "common/banned.h"

#define STREAM_QUEUE_CAP (1024u * 1024u)

struct cm_http_stream {
    struct cm_http_stream *next, *prev; /* server's list, under srv->lock */
    struct cm_http_server *srv;
    struct MHD_Connection *conn;
    _Atomic int refs;
    pthread_mutex_t lock;
    int closed;    /* no more data after the queue drains */
    int gone;      /* libmicrohttpd is done with it */
    int suspended; /* connection parked, waiting for wake */
    int woken;     /* wake arrived while the producer ran */
    _Atomic size_t bytes;
    cm_http_stream_fn producer;
    void *ctx;
    void (*on_close)(void *ctx);
    struct cm_buf queue;
    size_t qoff;
};

static void unref(struct cm_http_stream *st)
{
    if (atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&st->lock);
    cm_buf_release(&st->queue);
    free(st);
}

void cm_http_stream_release(struct cm_http_stream *st)
{
    if (st)
        unref(st);
}

/* Under st->lock. */
static void resume(struct cm_http_stream *st)
{
    if (st->suspended && !st->gone) {
        st->suspended = 0;
        MHD_resume_connection(st->conn);
    }
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct cm_http_stream *st = cls;
    ssize_t n = 0;
    pthread_mutex_lock(&st->lock);
    if (st->producer) {
        if (st->closed) {
            pthread_mutex_unlock(&st->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        st->woken = 0;
        pthread_mutex_unlock(&st->lock);
        n = st->producer(st->ctx, buf, max);
        pthread_mutex_lock(&st->lock);
        if (n == CM_HTTP_STREAM_END || n < 0 || (size_t)n > max) {
            st->closed = 1;
            n = MHD_CONTENT_READER_END_OF_STREAM;
        } else if (n == 0 && !st->woken && !st->closed) {
            st->suspended = 1;
            MHD_suspend_connection(st->conn);
        }
    } else {
        size_t avail = st->queue.len - st->qoff;
        if (avail) {
            n = (ssize_t)(avail < max ? avail : max);
            memcpy(buf, st->queue.data + st->qoff, (size_t)n);
            st->qoff += (size_t)n;
            if (st->qoff == st->queue.len) {
                cm_buf_reset(&st->queue);
                st->qoff = 0;
            }
        } else if (st->closed) {
            n = MHD_CONTENT_READER_END_OF_STREAM;
        } else {
            st->suspended = 1;
            MHD_suspend_connection(st->conn);
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (n > 0)
        atomic_fetch_add(&st->bytes, (size_t)n);
    return n;
}

static void reader_free(void *cls)
{
    struct cm_http_stream *st = cls;
    pthread_mutex_lock(&st->lock);
    st->gone = 1;
    st->closed = 1;
    st->suspended = 0;
    pthread_mutex_unlock(&st->lock);
    pthread_mutex_lock(&st->srv->lock);
    if (st->prev)
        st->prev->next = st->next;
    else if (st->srv->streams == st)
        st->srv->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->next = st->prev = NULL;
    pthread_mutex_unlock(&st->srv->lock);
    if (st->on_close)
        st->on_close(st->ctx);
    unref(st);
}

struct cm_http_stream *cm_http_reply_stream(struct cm_http_req *r, int status,
                                            const char *content_type, cm_http_stream_fn producer,
                                            void *ctx, void (*on_close)(void *ctx))
{
    if (r->status)
        return NULL;
    struct cm_http_stream *st = calloc(1, sizeof *st);
    if (!st)
        goto fail;
    st->srv = r->srv;
    st->conn = r->conn;
    st->producer = producer;
    st->ctx = ctx;
    st->on_close = on_close;
    pthread_mutex_init(&st->lock, NULL);
    cm_buf_init(&st->queue, STREAM_QUEUE_CAP);
    /* One reference each: libmicrohttpd, the request, the caller. */
    atomic_store(&st->refs, 3);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, st, reader_free);
    if (!resp) {
        pthread_mutex_destroy(&st->lock);
        free(st);
        goto fail;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            content_type ? content_type : "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    pthread_mutex_lock(&r->srv->lock);
    st->next = r->srv->streams;
    if (st->next)
        st->next->prev = st;
    r->srv->streams = st;
    pthread_mutex_unlock(&r->srv->lock);
    r->stream = st;
    if (http_set_response(r, status, resp) < 0) {
        /* Cannot happen after the status check above; keep the refs sane. */
        return NULL;
    }
    return st;
fail:
    cm_logf(CM_LOG_ERROR, "http: cannot create stream");
    return NULL;
}

int cm_http_stream_send(struct cm_http_stream *st, const void *data, size_t len)
{
    int rc = -1;
    pthread_mutex_lock(&st->lock);
    if (!st->closed && !st->producer && cm_buf_append(&st->queue, data, len) == 0) {
        rc = 0;
        resume(st);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void cm_http_stream_wake(struct cm_http_stream *st)
{
    pthread_mutex_lock(&st->lock);
    st->woken = 1;
    resume(st);
    pthread_mutex_unlock(&st->lock);
}

void cm_http_stream_close(struct cm_http_stream *st)
{
    pthread_mutex_lock(&st->lock);
    st->closed = 1;
    resume(st);
    pthread_mutex_unlock(&st->lock);
}

int cm_http_stream_closed(const struct cm_http_stream *st)
{
    struct cm_http_stream *m = (struct cm_http_stream *)st;
    pthread_mutex_lock(&m->lock);
    int c = m->closed;
    pthread_mutex_unlock(&m->lock);
    return c;
}

/* Request side: bytes for the access log, then drop the request's ref. */
size_t http_stream_finish(struct cm_http_stream *st)
{
    size_t n = atomic_load(&st->bytes);
    unref(st);
    return n;
}

void http_streams_close_all(struct cm_http_server *s)
{
    pthread_mutex_lock(&s->lock);
    for (struct cm_http_stream *st = s->streams; st; st = st->next)
        cm_http_stream_close(st);
    pthread_mutex_unlock(&s->lock);
}
