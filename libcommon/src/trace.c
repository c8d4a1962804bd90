#include "common/trace.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "http_internal.h"
#include "common/banned.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* exporter: work or stop */
    pthread_cond_t drained; /* flushers: queue emptied */
    struct cm_span *ring;
    size_t cap, head, len;
    size_t batch;
    int64_t delay_ms, timeout_ms;
    char url[1024];
    char service[64];
    int stop;
    int flush_wanted;
    int in_flight; /* spans taken by the exporter, not yet posted */
    pthread_t thread;
    struct cm_metric *exported, *dropped;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .drained = PTHREAD_COND_INITIALIZER};

static atomic_int enabled;
static _Thread_local char cur_trace[33];
static _Thread_local char cur_span[17];

int cm_trace_enabled(void)
{
    return atomic_load_explicit(&enabled, memory_order_relaxed);
}

void cm_trace_set_current(const char *trace_id, const char *span_id)
{
    snprintf(cur_trace, sizeof cur_trace, "%s", trace_id ? trace_id : "");
    snprintf(cur_span, sizeof cur_span, "%s", span_id ? span_id : "");
}
const char *cm_trace_current_trace(void)
{
    return cur_trace;
}
const char *cm_trace_current_span(void)
{
    return cur_span;
}

/* The thread's xoshiro generator (seeded once from getrandom): ids must be
 * unique, not secret, and a getrandom(2) per outbound call showed up in
 * every hop's system time. */
void cm_trace_random_hex(char *out, int nbytes)
{
    if (nbytes > 32)
        nbytes = 32;
    if (nbytes < 1) {
        out[0] = '\0';
        return;
    }
    http_random_hex(out, (size_t)nbytes);
    /* never the invalid all-zero id: the last nibble is odd */
    static const char odd[] = "1133557799bbddff";
    char c = out[2 * nbytes - 1];
    out[2 * nbytes - 1] = odd[c <= '9' ? c - '0' : c - 'a' + 10];
}

int64_t cm_trace_now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void drop(const char *reason, size_t n)
{
    cm_counter_add(T.dropped, (double)n, reason);
}

void cm_trace_record(const struct cm_span *s)
{
    if (!cm_trace_enabled() || !s)
        return;
    pthread_mutex_lock(&T.mu);
    if (T.len == T.cap) {
        pthread_mutex_unlock(&T.mu);
        drop("queue_full", 1);
        return;
    }
    T.ring[(T.head + T.len) % T.cap] = *s;
    T.len++;
    if (T.len >= T.batch)
        pthread_cond_signal(&T.wake);
    pthread_mutex_unlock(&T.mu);
}

static void attr_str(struct cm_buf *b, int *first, const char *k, const char *v)
{
    cm_buf_printf(b, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":\"", *first ? "" : ",", k);
    cm_buf_json_escape(b, v);
    cm_buf_puts(b, "\"}}");
    *first = 0;
}

/* OTLP/HTTP JSON (opentelemetry-proto's JSON mapping: ids as hex, 64-bit
 * integers as strings, enums as numbers). */
static int render(struct cm_buf *b, const struct cm_span *spans, size_t n)
{
    int first = 1;
    cm_buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    attr_str(b, &first, "service.name", T.service);
    cm_buf_puts(b,
                "]},\"scopeSpans\":[{\"scope\":{\"name\":\"exchange-lab/libcommon\"},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        const struct cm_span *s = &spans[i];
        cm_buf_printf(b, "%s{\"traceId\":\"%s\",\"spanId\":\"%s\",", i ? "," : "", s->trace_id,
                      s->span_id);
        if (s->parent_id[0])
            cm_buf_printf(b, "\"parentSpanId\":\"%s\",", s->parent_id);
        cm_buf_puts(b, "\"name\":\"");
        cm_buf_json_escape(b, s->name);
        cm_buf_printf(b,
                      "\",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\","
                      "\"attributes\":[",
                      (int)s->kind, (long long)s->start_unix_ns, (long long)s->end_unix_ns);
        first = 1;
        if (s->method[0])
            attr_str(b, &first, "http.request.method", s->method);
        if (s->route[0])
            attr_str(b, &first, s->kind == CM_SPAN_CLIENT ? "peer.service" : "http.route",
                     s->route);
        if (s->http_status)
            cm_buf_printf(
                b, "%s{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"%d\"}}",
                first ? "" : ",", s->http_status);
        if (cm_buf_printf(b, "],\"status\":{\"code\":%d}}", s->error ? 2 : 0) < 0)
            return -1;
    }
    return cm_buf_puts(b, "]}]}]}");
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

static int post(CURL *h, const struct cm_buf *body)
{
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, T.url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body->len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)T.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    return rc == CURLE_OK && status >= 200 && status < 300 ? 0 : -1;
}

static void *exporter(void *arg)
{
    (void)arg;
    CURL *h = curl_easy_init();
    struct cm_span *batch = calloc(T.batch, sizeof *batch);
    struct cm_buf body;
    cm_buf_init(&body, 32u * 1024 * 1024);
    pthread_mutex_lock(&T.mu);
    for (;;) {
        if (T.len == 0 && !T.stop) {
            if (T.flush_wanted) {
                T.flush_wanted = 0;
                pthread_cond_broadcast(&T.drained);
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += T.delay_ms / 1000;
            until.tv_nsec += (T.delay_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&T.wake, &T.mu, &until);
            continue;
        }
        if (T.len == 0 && T.stop)
            break;
        size_t n = T.len < T.batch ? T.len : T.batch;
        for (size_t i = 0; i < n; i++)
            batch[i] = T.ring[(T.head + i) % T.cap];
        T.head = (T.head + n) % T.cap;
        T.len -= n;
        T.in_flight = (int)n;
        pthread_mutex_unlock(&T.mu);

        cm_buf_reset(&body);
        int ok = h && batch && render(&body, batch, n) == 0 && post(h, &body) == 0;
        if (ok)
            cm_counter_add(T.exported, (double)n);
        else
            drop("export_failed", n);

        pthread_mutex_lock(&T.mu);
        T.in_flight = 0;
    }
    T.flush_wanted = 0;
    pthread_cond_broadcast(&T.drained);
    pthread_mutex_unlock(&T.mu);
    cm_buf_release(&body);
    free(batch);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

int cm_trace_flush(int timeout_ms)
{
    if (!cm_trace_enabled())
        return 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&T.mu);
    int rc = 0;
    while ((T.len > 0 || T.in_flight) && rc == 0) {
        T.flush_wanted = 1;
        pthread_cond_signal(&T.wake);
        rc = pthread_cond_timedwait(&T.drained, &T.mu, &until);
    }
    int left = T.len > 0 || T.in_flight;
    pthread_mutex_unlock(&T.mu);
    return left ? -1 : 0;
}

void cm_trace_shutdown(void)
{
    if (!cm_trace_enabled())
        return;
    cm_trace_flush((int)T.timeout_ms + 500);
    atomic_store(&enabled, 0);
    pthread_mutex_lock(&T.mu);
    T.stop = 1;
    pthread_cond_signal(&T.wake);
    pthread_mutex_unlock(&T.mu);
    pthread_join(T.thread, NULL);
    free(T.ring);
    T.ring = NULL;
    T.len = T.head = 0;
    T.stop = 0;
}

int cm_trace_init(const char *service)
{
    if (cm_trace_enabled())
        return 0;
    struct cm_config c;
    cm_config_init(&c, service);
    const char *traces = cm_config_string(&c, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "");
    const char *base = cm_config_string(&c, "OTEL_EXPORTER_OTLP_ENDPOINT", "");
    int64_t cap = cm_config_int(&c, "OTEL_BSP_MAX_QUEUE_SIZE", "2048", 1, 1000000);
    int64_t batch = cm_config_int(&c, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512", 1, 100000);
    int64_t delay = cm_config_int(&c, "OTEL_BSP_SCHEDULE_DELAY", "1000", 1, 600000);
    int64_t timeout = cm_config_int(&c, "OTEL_EXPORTER_OTLP_TIMEOUT", "2000", 1, 600000);
    if (cm_config_finish(&c) < 0)
        return -1;
    if (!*traces && !*base)
        return 0;
    if (*traces)
        snprintf(T.url, sizeof T.url, "%s", traces);
    else
        snprintf(T.url, sizeof T.url, "%s%sv1/traces", base,
                 base[strlen(base) - 1] == '/' ? "" : "/");
    if (strncmp(T.url, "http://", 7) != 0 && strncmp(T.url, "https://", 8) != 0) {
        cm_error("tracing: OTLP endpoint must be an http(s) URL, got \"%.80s\"", T.url);
        return -1;
    }
    snprintf(T.service, sizeof T.service, "%s", service);
    T.cap = (size_t)cap;
    T.batch = (size_t)(batch < cap ? batch : cap);
    T.delay_ms = delay;
    T.timeout_ms = timeout;
    T.ring = calloc(T.cap, sizeof *T.ring);
    T.exported = cm_metric_counter("otel_spans_exported_total",
                                   "Spans accepted by the OTLP collector.", NULL);
    T.dropped = cm_metric_counter("otel_spans_dropped_total",
                                  "Spans dropped: queue_full or export_failed.", "reason");
    if (!T.ring)
        return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atomic_store(&enabled, 1);
    if (pthread_create(&T.thread, NULL, exporter, NULL) != 0) {
        atomic_store(&enabled, 0);
        free(T.ring);
        T.ring = NULL;
        return -1;
    }
    cm_log_kv(CM_LOG_INFO, "tracing on", "endpoint", T.url, (const char *)NULL);
    return 0;
}
