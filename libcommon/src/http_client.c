#include "common/http_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/metrics.h"

#include "common/trace.h"
#include "common/banned.h"

struct cm_http_client {
    char *name;
    char *base_url;
    int64_t timeout_ms;
    int64_t deadline_ms;
    int64_t connect_timeout_ms;
    int max_retries;
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    size_t max_body;
    struct cm_breaker *breaker; /* NULL when off */

    pthread_mutex_t pool_lock;
    int pool_size;
    int pool_count;
    CURL **pool;
};

/* ---- process-wide ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Per-thread xorshift64 for jitter: not security-relevant. */
static uint64_t rand64(void)
{
    static _Thread_local uint64_t s;
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&s;
        if (s == 0)
            s = 0x9e3779b97f4a7c15ull;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

const char *cm_http_client_outcome_name(enum cm_http_client_outcome o)
{
    switch (o) {
    case CM_HTTP_CLIENT_OK: return "ok";
    case CM_HTTP_CLIENT_TIMEOUT: return "timeout";
    case CM_HTTP_CLIENT_CONNECT_ERROR: return "connect_error";
    case CM_HTTP_CLIENT_OPEN: return "open";
    case CM_HTTP_CLIENT_TOO_LARGE: return "too_large";
    case CM_HTTP_CLIENT_ERROR: return "error";
    }
    return "error";
}

/* Looked up per use (registration is idempotent and cheap next to a
 * network call) so cm_metrics_reset() in tests cannot leave stale pointers. */
static void count_request(const struct cm_http_client *c, const char *code, double seconds)
{
    struct cm_metric *m = cm_metric_counter(
        "http_client_requests_total",
        "Outgoing HTTP requests by upstream and status code; code is timeout, error or open "
        "for non-HTTP outcomes.",
        "upstream,code");
    if (m)
        cm_counter_add(m, 1, c->name, code);
    if (seconds < 0)
        return;
    struct cm_metric *h = cm_metric_histogram(
        "http_client_request_duration_seconds",
        "Outgoing HTTP request duration by upstream, seconds.", "upstream", NULL, 0);
    if (h)
        cm_histogram_observe(h, seconds, c->name);
}

/* ---- lifecycle ---- */

struct cm_http_client *cm_http_client_new(const struct cm_http_client_config *cfg)
{
    if (!cfg || !cfg->name || !*cfg->name || !cfg->base_url ||
        (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0)) {
        cm_error("http_client: name and an http(s):// base_url are required");
        return NULL;
    }
    if (cfg->timeout_ms < 0 || cfg->deadline_ms < 0 || cfg->connect_timeout_ms < 0 ||
        cfg->max_retries < CM_HTTP_CLIENT_NO_RETRY || cfg->max_retries > 10 ||
        cfg->backoff_base_ms < 0 || cfg->backoff_base_ms > 60000 || cfg->backoff_max_ms < 0 ||
        cfg->backoff_max_ms > 600000 || cfg->pool_size < 0 || cfg->pool_size > 1024) {
        cm_error("http_client %s: negative or out-of-range setting", cfg->name);
        return NULL;
    }
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc < 0) {
        cm_error("http_client: curl_global_init failed");
        return NULL;
    }
    struct cm_http_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 2000;
    c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 1000;
    c->max_retries = cfg->max_retries == CM_HTTP_CLIENT_NO_RETRY ? 0
                     : cfg->max_retries                          ? cfg->max_retries
                                                                 : 2;
    c->deadline_ms = cfg->deadline_ms ? cfg->deadline_ms : c->timeout_ms * (1 + c->max_retries);
    c->backoff_base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 50;
    c->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 1000;
    c->max_body = cfg->max_body ? cfg->max_body : CM_HTTP_CLIENT_DEFAULT_MAX_BODY;
    c->pool_size = cfg->pool_size ? cfg->pool_size : 8;
    c->name = strdup(cfg->name);
    /* Without a trailing slash, so that base + "/path" is one slash. */
    size_t blen = strlen(cfg->base_url);
    while (blen > 0 && cfg->base_url[blen - 1] == '/')
        blen--;
    c->base_url = strndup(cfg->base_url, blen);
    c->pool = calloc((size_t)c->pool_size, sizeof *c->pool);
    if (!c->name || !c->base_url || !c->pool)
        goto fail;
    if (pthread_mutex_init(&c->pool_lock, NULL) != 0)
        goto fail;
    if (!cfg->breaker_off) {
        struct cm_breaker_config bc = cfg->breaker;
        bc.name = c->name;
        c->breaker = cm_breaker_new(&bc);
        if (!c->breaker) {
            pthread_mutex_destroy(&c->pool_lock);
            cm_error("http_client %s: bad breaker settings", c->name);
            goto fail;
        }
    }
    return c;
fail:
    free(c->pool);
    free(c->base_url);
    free(c->name);
    free(c);
    return NULL;
}

void cm_http_client_free(struct cm_http_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->pool_count; i++)
        curl_easy_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->pool_lock);
    cm_breaker_free(c->breaker);
    free(c->pool);
    free(c->base_url);
    free(c->name);
    free(c);
}

struct cm_breaker *cm_http_client_breaker(struct cm_http_client *c)
{
    return c->breaker;
}

static CURL *handle_get(struct cm_http_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->pool_count > 0)
        h = c->pool[--c->pool_count];
    pthread_mutex_unlock(&c->pool_lock);
    if (h) {
        curl_easy_reset(h); /* keeps the live connections and DNS cache */
        return h;
    }
    return curl_easy_init();
}

static void handle_put(struct cm_http_client *c, CURL *h)
{
    pthread_mutex_lock(&c->pool_lock);
    if (c->pool_count < c->pool_size) {
        c->pool[c->pool_count++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

void cm_http_response_release(struct cm_http_response *resp)
{
    if (resp)
        cm_buf_release(&resp->body);
}

/* ---- one attempt ---- */

struct attempt {
    struct cm_http_response *resp;
    int too_large;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct attempt *a = ud;
    size_t len = size * n;
    if (cm_buf_append(&a->resp->body, p, len) < 0) {
        a->too_large = 1;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    return len;
}

/* Copies the value of header `name` from line into out, trimmed. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= outsz)
        vl = outsz - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct attempt *a = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response head (after 100-continue, say): forget the old. */
        a->resp->content_type[0] = '\0';
        a->resp->retry_after[0] = '\0';
        return len;
    }
    header_value(p, len, "Content-Type", a->resp->content_type, sizeof a->resp->content_type);
    header_value(p, len, "Retry-After", a->resp->retry_after, sizeof a->resp->retry_after);
    return len;
}

static int has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A CLIENT span's context: the thread's current span (a handler's request,
 * common/trace.h) becomes the parent, else the log context's trace id
 * (a Kafka consumer's); a fresh span id is this call's. -1 when the thread
 * carries no trace. */
static int context_span(struct cm_span *sp)
{
    const char *t = cm_trace_current_trace();
    const char *parent = cm_trace_current_span();
    if (!t[0]) {
        t = cm_log_trace_id();
        parent = "";
        if (t && strlen(t) == 55 && t[2] == '-' && t[35] == '-' && t[52] == '-') {
            memcpy(sp->parent_id, t + 36, 16); /* a whole traceparent */
            sp->parent_id[16] = '\0';
            memcpy(sp->trace_id, t + 3, 32);
            sp->trace_id[32] = '\0';
            t = sp->trace_id;
            parent = sp->parent_id;
        }
    }
    if (!t || strlen(t) != 32 || !is_hex(t, 32))
        return -1;
    if (t != sp->trace_id)
        memcpy(sp->trace_id, t, 33);
    if (parent != sp->parent_id)
        snprintf(sp->parent_id, sizeof sp->parent_id, "%s", parent);
    cm_trace_random_hex(sp->span_id, 8);
    return 0;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *line, int *err)
{
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n) {
        *err = 1;
        return l;
    }
    return n;
}

/* Builds the header list; NULL with *err set on bad input or no memory. */
static struct curl_slist *build_headers(const struct cm_http_request *req, const char *trace,
                                        int *err)
{
    struct curl_slist *l = NULL;
    char line[512];
    *err = 0;
    const char *rid = req->request_id ? req->request_id : cm_log_request_id();
    if (has_crlf(rid) || has_crlf(trace) || has_crlf(req->content_type)) {
        *err = 1;
        return NULL;
    }
    if (rid && *rid) {
        snprintf(line, sizeof line, "X-Request-Id: %s", rid);
        l = add_header(l, line, err);
    }
    if (trace && *trace) {
        snprintf(line, sizeof line, "traceparent: %s", trace);
        l = add_header(l, line, err);
    }
    if (req->body) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 req->content_type ? req->content_type : "application/json");
        l = add_header(l, line, err);
    }
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    l = add_header(l, "Expect:", err);
    for (const char *const *h = req->headers; h && *h; h++) {
        if (has_crlf(*h) || !strchr(*h, ':')) {
            *err = 1;
            break;
        }
        l = add_header(l, *h, err);
    }
    if (*err) {
        curl_slist_free_all(l);
        return NULL;
    }
    return l;
}

static int method_idempotent(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(m, ok[i]) == 0)
            return 1;
    return 0;
}

static int valid_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

/* One request on h; fills resp (outcome, status, body, headers). */
static void attempt_once(struct cm_http_client *c, CURL *h, const struct cm_http_request *req,
                         const char *method, const char *url, struct curl_slist *headers,
                         int64_t timeout_ms, struct cm_http_response *resp)
{
    struct attempt a = {.resp = resp, .too_large = 0};
    cm_buf_reset(&resp->body);
    resp->status = 0;
    resp->content_type[0] = resp->retry_after[0] = '\0';

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(
        h, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(c->connect_timeout_ms < timeout_ms ? c->connect_timeout_ms : timeout_ms));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (req->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
    }

    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->outcome = CM_HTTP_CLIENT_OK;
        return;
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: resp->outcome = CM_HTTP_CLIENT_TIMEOUT; break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR: resp->outcome = CM_HTTP_CLIENT_CONNECT_ERROR; break;
    case CURLE_FILESIZE_EXCEEDED: resp->outcome = CM_HTTP_CLIENT_TOO_LARGE; break;
    case CURLE_WRITE_ERROR:
        resp->outcome = a.too_large ? CM_HTTP_CLIENT_TOO_LARGE : CM_HTTP_CLIENT_ERROR;
        break;
    default: resp->outcome = CM_HTTP_CLIENT_ERROR; break;
    }
    if (resp->outcome == CM_HTTP_CLIENT_TOO_LARGE)
        cm_buf_release(&resp->body); /* a truncated body is worse than none */
    else
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
}

static int retryable(const struct cm_http_response *r)
{
    switch (r->outcome) {
    case CM_HTTP_CLIENT_TIMEOUT:
    case CM_HTTP_CLIENT_CONNECT_ERROR: return 1;
    case CM_HTTP_CLIENT_OK: return r->status == 502 || r->status == 503 || r->status == 504;
    default: return 0;
    }
}

/* Retry-After in delta-seconds form, in ms; -1 if absent or an HTTP date. */
static int64_t retry_after_ms(const char *v)
{
    int64_t secs = 0;
    if (!v[0])
        return -1;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || secs > 86400)
            return -1;
        secs = secs * 10 + (*p - '0');
    }
    return secs * 1000;
}

static int upstream_healthy(const struct cm_http_response *r)
{
    if (r->outcome == CM_HTTP_CLIENT_OK)
        return r->status < 500;
    return r->outcome == CM_HTTP_CLIENT_TOO_LARGE; /* it answered */
}

static void metric_code(const struct cm_http_response *r, char *out, size_t n)
{
    /* observability/metrics-contract.json: the status, or timeout/error/open. */
    if (r->outcome == CM_HTTP_CLIENT_OK)
        snprintf(out, n, "%ld", r->status);
    else if (r->outcome == CM_HTTP_CLIENT_TIMEOUT)
        snprintf(out, n, "timeout");
    else
        snprintf(out, n, "error"); /* connect_error, too_large, error */
}

int cm_http_client_do(struct cm_http_client *c, const struct cm_http_request *req,
                      struct cm_http_response *resp)
{
    if (!resp)
        return -1;
    memset(resp, 0, sizeof *resp);
    resp->outcome = CM_HTTP_CLIENT_ERROR;
    if (!c || !req)
        return -1;
    cm_buf_init(&resp->body, c->max_body);

    int64_t start = now_ms();
    int64_t start_unix_ns = cm_trace_now_unix_ns();
    const char *method = req->method ? req->method : "GET";
    struct cm_span span;
    char tp[64];
    int traced = 0;
    memset(&span, 0, sizeof span);
    struct cm_buf url;
    struct curl_slist *headers = NULL;
    CURL *h = NULL;
    int err = 0;
    cm_buf_init(&url, 8192);
    if (!valid_method(method) || !req->path || req->path[0] != '/' || has_crlf(req->path) ||
        strchr(req->path, ' ') || (req->body_len && !req->body))
        goto done;
    if (cm_buf_puts(&url, c->base_url) < 0 || cm_buf_puts(&url, req->path) < 0)
        goto done;
    /* An explicit traceparent is the caller's own context, sent as is;
     * otherwise this call is a CLIENT span of the thread's trace. */
    const char *trace = req->traceparent;
    if (!trace && context_span(&span) == 0) {
        snprintf(tp, sizeof tp, "00-%s-%s-01", span.trace_id, span.span_id);
        trace = tp;
        traced = 1;
    }
    headers = build_headers(req, trace, &err);
    if (err)
        goto done;

    int64_t attempt_timeout = req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms;
    int64_t deadline = start + (req->deadline_ms > 0 ? req->deadline_ms : c->deadline_ms);
    int may_retry = req->idempotent || method_idempotent(method);
    int max_attempts = 1 + (may_retry ? c->max_retries : 0);

    h = handle_get(c);
    if (!h)
        goto done;
    for (int i = 0; i < max_attempts; i++) {
        int64_t now = now_ms();
        int64_t left = deadline - now;
        if (left <= 0) {
            if (resp->attempts == 0)
                resp->outcome = CM_HTTP_CLIENT_TIMEOUT;
            break;
        }
        if (c->breaker && !cm_breaker_allow(c->breaker)) {
            if (resp->attempts == 0) {
                resp->outcome = CM_HTTP_CLIENT_OPEN;
                count_request(c, "open", -1);
            }
            break; /* else keep the last real result */
        }
        if (i > 0)
            curl_easy_reset(h);
        attempt_once(c, h, req, method, url.data, headers,
                     attempt_timeout < left ? attempt_timeout : left, resp);
        resp->attempts++;
        int64_t took = now_ms() - now;
        char code[24];
        metric_code(resp, code, sizeof code);
        count_request(c, code, (double)took / 1000.0);
        if (c->breaker)
            cm_breaker_record(c->breaker, upstream_healthy(resp));
        if (!retryable(resp) || i + 1 >= max_attempts)
            break;
        /* Full jitter; never sleep past the deadline. */
        int64_t cap = c->backoff_base_ms << (i < 20 ? i : 20);
        if (cap > c->backoff_max_ms || cap <= 0)
            cap = c->backoff_max_ms;
        int64_t pause = cap > 0 ? (int64_t)(rand64() % (uint64_t)(cap + 1)) : 0;
        /* The upstream's own Retry-After wins when longer; if it does not
         * fit the deadline the caller gets the answer (and header) now. */
        int64_t ra = retry_after_ms(resp->retry_after);
        if (ra > pause)
            pause = ra;
        if (now_ms() + pause >= deadline)
            break;
        cm_log_kv(CM_LOG_DEBUG, "http_client retry", "upstream", c->name, "outcome",
                  cm_http_client_outcome_name(resp->outcome), (const char *)NULL);
        sleep_ms(pause);
    }
done:
    if (h)
        handle_put(c, h);
    curl_slist_free_all(headers);
    cm_buf_release(&url);
    resp->elapsed_ms = now_ms() - start;
    if (traced && cm_trace_enabled()) {
        snprintf(span.name, sizeof span.name, "%s %s", method, c->name);
        snprintf(span.method, sizeof span.method, "%s", method);
        snprintf(span.route, sizeof span.route, "%s", c->name);
        span.kind = CM_SPAN_CLIENT;
        span.start_unix_ns = start_unix_ns;
        span.end_unix_ns = cm_trace_now_unix_ns();
        span.http_status = resp->outcome == CM_HTTP_CLIENT_OK ? (int)resp->status : 0;
        span.error = resp->outcome != CM_HTTP_CLIENT_OK || resp->status >= 500;
        cm_trace_record(&span);
    }
    return resp->outcome == CM_HTTP_CLIENT_OK ? 0 : -1;
}

int cm_http_client_get(struct cm_http_client *c, const char *path, struct cm_http_response *resp)
{
    struct cm_http_request req = {.method = "GET", .path = path};
    return cm_http_client_do(c, &req, resp);
}
