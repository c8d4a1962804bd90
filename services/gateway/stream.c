/*
 * Relaying Server-Sent Events (GET /v1/markets/{m}/stream and any route
 * marked "stream"). common/http_client.h reads whole bodies, which a
 * stream never ends, so this path drives libcurl itself on a thread of its
 * own: the handler waits (bounded by the route's timeout) until the
 * upstream's response head arrives, then either answers it like any
 * proxied response or opens a stream (cm_http_reply_stream) that the
 * thread feeds from curl's write callback with cm_http_stream_send. The
 * upstream's breaker (the same cm_breaker the route's client uses) is
 * asked first and told how the head went.
 *
 * Ending: the client going away or the server shutting down makes
 * cm_http_stream_send fail (or cm_http_stream_closed true, checked by the
 * progress callback about once a second), which aborts the transfer; an
 * upstream silent for 90 s is dropped too (SSE servers send heartbeats).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "common/breaker.h"
#include "common/json_http.h"
#include "common/log.h"
#include "gateway.h"
#include "common/banned.h"

#define MAX_STREAMS 1000
#define EARLY_CAP (1u << 20)

static atomic_int active_streams;

enum { WAITING = 0, HEAD = 1, DONE = 2 };

struct job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
    int refs; /* handler + thread */
    int handler_gone;
    long status;
    char ctype[128];
    char retry_after[64];
    struct cm_buf early; /* body bytes before the stream is handed over */
    int early_overflow;
    struct cm_http_stream *st;
    CURLcode rc;
    /* inputs */
    char *url;
    struct curl_slist *headers;
    int64_t connect_timeout_ms;
    struct cm_breaker *breaker;
    int recorded;
    char request_id[72];
};

static void job_unref(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    cm_buf_release(&j->early);
    curl_slist_free_all(j->headers);
    free(j->url);
    free(j);
}

static void record(struct job *j, int ok)
{
    if (j->breaker && !j->recorded) {
        j->recorded = 1;
        cm_breaker_record(j->breaker, ok);
    }
}

static void copy_value(const char *p, size_t len, size_t nl, char *out, size_t outsz)
{
    const char *v = p + nl + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t n = (size_t)(end - v);
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct job *j = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        j->ctype[0] = j->retry_after[0] = '\0';
        return len;
    }
    if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0)
        copy_value(p, len, 12, j->ctype, sizeof j->ctype);
    else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        copy_value(p, len, 11, j->retry_after, sizeof j->retry_after);
    return len;
}

/* The handle is needed in callbacks to read the status. */
struct ctx {
    struct job *j;
    CURL *h;
};

static size_t on_header_ctx(char *p, size_t size, size_t n, void *ud)
{
    struct ctx *c = ud;
    struct job *j = c->j;
    size_t len = on_header(p, size, n, j);
    /* The blank line ends a head; an interim 1xx head is followed by another. */
    if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200) {
            pthread_mutex_lock(&j->mu);
            j->status = status;
            if (j->state == WAITING)
                j->state = HEAD;
            pthread_cond_broadcast(&j->cv);
            pthread_mutex_unlock(&j->mu);
            record(j, status < 500);
        }
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct ctx *c = ud;
    struct job *j = c->j;
    size_t len = size * n;
    pthread_mutex_lock(&j->mu);
    struct cm_http_stream *st = j->st;
    int gone = j->handler_gone;
    if (!st && !gone) {
        if (cm_buf_append(&j->early, p, len) < 0)
            j->early_overflow = 1;
    }
    pthread_mutex_unlock(&j->mu);
    if (gone || j->early_overflow)
        return 0; /* abort */
    if (st && cm_http_stream_send(st, p, len) < 0)
        return 0; /* client gone or too slow */
    return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
    (void)a, (void)b, (void)c2, (void)d;
    struct ctx *c = ud;
    struct job *j = c->j;
    pthread_mutex_lock(&j->mu);
    int stop = j->handler_gone || (j->st && cm_http_stream_closed(j->st));
    pthread_mutex_unlock(&j->mu);
    return stop;
}

static void *run(void *arg)
{
    struct job *j = arg;
    cm_log_set_context(j->request_id, NULL);
    CURL *h = curl_easy_init();
    struct ctx c = {j, h};
    CURLcode rc = CURLE_FAILED_INIT;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, j->url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->headers);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)j->connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 90L);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_ctx);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c);
        rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
    }
    if (j->state == WAITING)
        record(j, 0);
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->state = DONE;
    struct cm_http_stream *st = j->st;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (st) {
        cm_http_stream_close(st);
        cm_http_stream_release(st);
    }
    atomic_fetch_sub(&active_streams, 1);
    cm_log_set_context(NULL, NULL);
    job_unref(j);
    return NULL;
}

/* Waits for state >= want until deadline (CLOCK_REALTIME for the condvar).
 * Called with mu held. */
static void wait_state(struct job *j, int want, const struct timespec *deadline)
{
    while (j->state < want)
        if (pthread_cond_timedwait(&j->cv, &j->mu, deadline) != 0)
            break;
}

void gw_stream_proxy(struct cm_http_req *r, struct gw_app *app, const struct gw_route *route,
                     const char *url, const char *const *headers)
{
    const struct gw_upstream *up = &app->routes.upstreams[route->upstream];
    struct cm_breaker *br = cm_http_client_breaker(app->clients[route->upstream]);
    if (atomic_fetch_add(&active_streams, 1) >= MAX_STREAMS) {
        atomic_fetch_sub(&active_streams, 1);
        cm_http_set_header(r, "Retry-After", "5");
        cm_http_reply_error(r, 503, "service_unavailable", "too many open streams");
        return;
    }
    if (br && !cm_breaker_allow(br)) {
        atomic_fetch_sub(&active_streams, 1);
        char ra[32];
        snprintf(ra, sizeof ra, "%lld", (long long)((up->open_ms + 999) / 1000));
        cm_http_set_header(r, "Retry-After", ra);
        cm_http_reply_error(r, 503, "service_unavailable", "%s unavailable (circuit open)",
                            up->name);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    int err = !j;
    if (j) {
        pthread_mutex_init(&j->mu, NULL);
        pthread_cond_init(&j->cv, NULL);
        j->refs = 2;
        cm_buf_init(&j->early, EARLY_CAP);
        j->url = strdup(url);
        j->breaker = br;
        j->connect_timeout_ms = up->connect_timeout_ms;
        snprintf(j->request_id, sizeof j->request_id, "%s", cm_http_req_id(r));
        char line[160];
        snprintf(line, sizeof line, "X-Request-Id: %s", cm_http_req_id(r));
        j->headers = curl_slist_append(j->headers, line);
        snprintf(line, sizeof line, "traceparent: %s", cm_http_req_traceparent(r));
        j->headers = curl_slist_append(j->headers, line);
        for (const char *const *p = headers; p && *p; p++)
            j->headers = curl_slist_append(j->headers, *p);
        err = !j->url || !j->headers;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (err || pthread_create(&t, &attr, run, j) != 0) {
        pthread_attr_destroy(&attr);
        if (br)
            cm_breaker_record(br, 1); /* our failure, not the upstream's */
        atomic_fetch_sub(&active_streams, 1);
        if (j) {
            j->refs = 1;
            job_unref(j);
        }
        cm_http_reply_error(r, 500, "internal", "cannot start the stream");
        return;
    }
    pthread_attr_destroy(&attr);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += route->timeout_ms / 1000;
    deadline.tv_nsec += (route->timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    wait_state(j, HEAD, &deadline);
    int is_stream =
        j->state == HEAD && j->status == 200 && strncasecmp(j->ctype, "text/event-stream", 17) == 0;
    if (j->state == HEAD && !is_stream)
        wait_state(j, DONE, &deadline); /* an ordinary answer: take it whole */
    if (is_stream) {
        struct cm_http_stream *st =
            cm_http_reply_stream(r, 200, "text/event-stream", NULL, NULL, NULL);
        if (st && j->early.len)
            cm_http_stream_send(st, j->early.data, j->early.len);
        j->st = st;
        if (!st)
            j->handler_gone = 1; /* the server answered 500 */
    } else if (j->state == DONE && j->rc == CURLE_OK && j->status >= 200) {
        if (j->retry_after[0])
            cm_http_set_header(r, "Retry-After", j->retry_after);
        cm_http_reply(r, (int)j->status, j->ctype[0] ? j->ctype : NULL,
                      j->early.data ? j->early.data : "", j->early.len);
    } else if (j->state == DONE && j->rc != CURLE_OPERATION_TIMEDOUT) {
        j->handler_gone = 1;
        cm_http_reply_error(r, 502, "upstream_error", "%s gave no valid answer", up->name);
    } else {
        j->handler_gone = 1;
        cm_http_reply_error(r, 504, "upstream_timeout", "%s did not answer within %lld ms",
                            up->name, (long long)route->timeout_ms);
    }
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}
