#include "common/http_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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
    CURL **pool; /* libcurl transport: idle easy handles */

    /* Built-in transport (http:// unless use_libcurl): where to connect,
     * what to send as Host, the base URL's path, and idle connections. */
    int native;
    char *host;      /* for getaddrinfo, without IPv6 brackets */
    char *port;      /* decimal */
    char *authority; /* Host header value, as in the URL */
    char *base_path; /* "" or "/prefix" (no trailing slash) */
    int idle_count;
    struct conn *idle; /* pool_size slots, LIFO: the warmest first */
};

/* One keep-alive connection of the built-in transport. */
struct conn {
    int fd;
    int rcvtimeo_ms; /* SO_RCVTIMEO in force; 0: none set yet */
    int64_t idle_since_ms;
    char *rbuf; /* receive buffer, kept with the connection */
    size_t rcap;
};

#define RBUF_SIZE 16384u
#define HEAD_MAX (64u * 1024u)    /* a bigger response head is a bad answer */
#define HEADERS_CAP (80u * 1024u) /* resp->headers: HEAD_MAX of "name\0value\0" */
/* A connection idle longer than this is checked (one non-blocking peek)
 * before reuse; hotter ones are just used, and a dead one is caught by the
 * fresh-connection resend. */
#define IDLE_CHECK_MS 1000

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

static void conn_close(struct conn *cn)
{
    if (cn->fd >= 0)
        close(cn->fd);
    cn->fd = -1;
    free(cn->rbuf);
    cn->rbuf = NULL;
    cn->rcap = 0;
}

/* Splits c->base_url ("http://host[:port][/path]") for the built-in
 * transport; -1 (logged) on what it cannot connect to. */
static int parse_base(struct cm_http_client *c)
{
    if (strlen(c->base_url) <= 7)
        goto bad;
    const char *a = c->base_url + 7;
    size_t alen = strcspn(a, "/?#");
    const char *path = a + alen;
    const char *host = a, *port = NULL;
    size_t hlen = alen, plen = 0;
    if (alen == 0 || memchr(a, '@', alen) || (*path && *path != '/'))
        goto bad;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', alen);
        if (!rb)
            goto bad;
        host = a + 1;
        hlen = (size_t)(rb - host);
        if (rb + 1 < a + alen) {
            if (rb[1] != ':')
                goto bad;
            port = rb + 2;
            plen = (size_t)(a + alen - port);
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        if (colon) {
            hlen = (size_t)(colon - a);
            port = colon + 1;
            plen = (size_t)(a + alen - port);
        }
    }
    if (hlen == 0 || (port && (plen == 0 || plen > 5)))
        goto bad;
    long pn = 0;
    for (size_t i = 0; port && i < plen; i++) {
        if (port[i] < '0' || port[i] > '9')
            goto bad;
        pn = pn * 10 + (port[i] - '0');
    }
    if (port && (pn < 1 || pn > 65535))
        goto bad;
    if (strpbrk(path, " \r\n"))
        goto bad;
    c->host = strndup(host, hlen);
    c->port = port ? strndup(port, plen) : strdup("80");
    c->authority = strndup(a, alen);
    c->base_path = strdup(path);
    if (!c->host || !c->port || !c->authority || !c->base_path)
        return -1;
    c->native = 1;
    return 0;
bad:
    cm_error("http_client %s: cannot use base_url %s", c->name, c->base_url);
    return -1;
}

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
    if (!cfg->use_libcurl && strncmp(cfg->base_url, "http://", 7) == 0) {
        if (parse_base(c) < 0)
            goto fail;
        c->idle = calloc((size_t)c->pool_size, sizeof *c->idle);
        if (!c->idle)
            goto fail;
    }
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
    free(c->idle);
    free(c->host);
    free(c->port);
    free(c->authority);
    free(c->base_path);
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
    for (int i = 0; i < c->idle_count; i++)
        conn_close(&c->idle[i]);
    pthread_mutex_destroy(&c->pool_lock);
    cm_breaker_free(c->breaker);
    free(c->idle);
    free(c->host);
    free(c->port);
    free(c->authority);
    free(c->base_path);
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
    if (!resp)
        return;
    cm_buf_release(&resp->body);
    cm_buf_release(&resp->headers);
    resp->nheaders = 0;
}

int cm_http_response_foreach_header(const struct cm_http_response *resp,
                                    int (*fn)(void *ctx, const char *name, const char *value),
                                    void *ctx)
{
    if (!resp || !fn || !resp->headers.data)
        return 0;
    const char *p = resp->headers.data;
    const char *end = p + resp->headers.len;
    int calls = 0;
    for (int i = 0; i < resp->nheaders && p < end; i++) {
        const char *name = p;
        const char *value = name + strlen(name) + 1;
        p = value + strlen(value) + 1;
        calls++;
        if (fn(ctx, name, value))
            break;
    }
    return calls;
}

struct find {
    const char *name;
    const char *value;
};

static int find_one(void *ctx, const char *name, const char *value)
{
    struct find *f = ctx;
    if (strcasecmp(name, f->name) != 0)
        return 0;
    f->value = value;
    return 1;
}

const char *cm_http_response_header(const struct cm_http_response *resp, const char *name)
{
    struct find f = {.name = name, .value = NULL};
    if (name)
        cm_http_response_foreach_header(resp, find_one, &f);
    return f.value;
}

/* Forgets the headers of a response head that did not count (a 1xx). */
static void headers_reset(struct cm_http_response *resp)
{
    cm_buf_reset(&resp->headers);
    resp->nheaders = 0;
    resp->content_type[0] = '\0';
    resp->retry_after[0] = '\0';
}

static void copy_trunc(char *out, size_t outsz, const char *v, size_t vl)
{
    if (vl >= outsz)
        vl = outsz - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

/* Records one header field (name and value already delimited and trimmed).
 * -1 when the headers pass HEADERS_CAP. */
static int header_add(struct cm_http_response *resp, const char *name, size_t nl, const char *v,
                      size_t vl)
{
    static const char nul = '\0';
    if (cm_buf_append(&resp->headers, name, nl) < 0 || cm_buf_append(&resp->headers, &nul, 1) < 0 ||
        cm_buf_append(&resp->headers, v, vl) < 0 || cm_buf_append(&resp->headers, &nul, 1) < 0)
        return -1;
    resp->nheaders++;
    if (nl == 12 && strncasecmp(name, "Content-Type", 12) == 0)
        copy_trunc(resp->content_type, sizeof resp->content_type, v, vl);
    else if (nl == 11 && strncasecmp(name, "Retry-After", 11) == 0)
        copy_trunc(resp->retry_after, sizeof resp->retry_after, v, vl);
    return 0;
}

/* Splits one header line (CRLF or LF included or not) into a trimmed name
 * and value and records it. 1: not a header field (blank, malformed); 0
 * recorded; -1 over the cap. */
static int header_line(struct cm_http_response *resp, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    const char *colon = len ? memchr(line, ':', len) : NULL;
    if (!colon || colon == line)
        return 1;
    size_t nl = (size_t)(colon - line);
    for (size_t i = 0; i < nl; i++)
        if (line[i] <= ' ' || line[i] == 0x7f)
            return 1; /* not a token: no space before the colon, no controls */
    const char *v = colon + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return header_add(resp, line, nl, v, (size_t)(end - v)) < 0 ? -1 : 0;
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

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct attempt *a = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new response head (after 100-continue, say): forget the old. */
        headers_reset(a->resp);
        return len;
    }
    if (header_line(a->resp, p, len) < 0)
        return 0; /* aborts: a head this big is not a sane answer */
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

/* The checks build_headers makes, for the built-in transport: -1 when a
 * value would split the head (CR/LF) or a header line has no colon. */
static int headers_valid(const struct cm_http_request *req, const char *rid, const char *trace)
{
    if (has_crlf(rid) || has_crlf(trace) || has_crlf(req->content_type))
        return -1;
    for (const char *const *h = req->headers; h && *h; h++)
        if (has_crlf(*h) || !strchr(*h, ':'))
            return -1;
    return 0;
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
    headers_reset(resp);

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

/* ---- the built-in HTTP/1.1 transport (http://) ----
 *
 * Why not libcurl here: per call, curl_easy_perform costs a liveness poll,
 * a wait poll per read, proxy environment lookups and a few dozen small
 * allocations, and it was more than half of a proxying gateway's CPU. This
 * path sends the request with one sendmsg and, for an answer that fits
 * one segment, reads it with one blocking recv bounded by SO_RCVTIMEO. */

/* Idle connections: LIFO, so the warmest (least likely closed) is reused. */
static int conn_take(struct cm_http_client *c, struct conn *out)
{
    for (;;) {
        pthread_mutex_lock(&c->pool_lock);
        int got = c->idle_count > 0;
        if (got)
            *out = c->idle[--c->idle_count];
        pthread_mutex_unlock(&c->pool_lock);
        if (!got)
            return 0;
        if (now_ms() - out->idle_since_ms <= IDLE_CHECK_MS)
            return 1;
        /* Long idle: the upstream may have closed it (EOF) or sent
         * something unasked; either way it is not reusable. */
        char b;
        ssize_t r = recv(out->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        conn_close(out);
    }
}

static void conn_put(struct cm_http_client *c, struct conn *cn)
{
    cn->idle_since_ms = now_ms();
    pthread_mutex_lock(&c->pool_lock);
    if (c->idle_count < c->pool_size) {
        c->idle[c->idle_count++] = *cn;
        cn->fd = -1;
        cn->rbuf = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    conn_close(cn); /* no-op when pooled */
}

/* Waits for events on fd until deadline: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* A new connection, blocking mode, TCP_NODELAY. 0, or -1 with *why. */
static int conn_open(struct cm_http_client *c, struct conn *cn, int64_t deadline,
                     enum cm_http_client_outcome *why)
{
    memset(cn, 0, sizeof *cn);
    cn->fd = -1;
    *why = CM_HTTP_CLIENT_CONNECT_ERROR;
    int64_t cdl = now_ms() + c->connect_timeout_ms;
    if (cdl > deadline)
        cdl = deadline;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(c->host, c->port, &hints, &res) != 0 || !res)
        return -1;
    for (struct addrinfo *ai = res; ai && cn->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        if (!ok && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, cdl);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w == 0)
                *why = CM_HTTP_CLIENT_TIMEOUT;
            else if (w > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                ok = 1;
        }
        if (!ok) {
            close(fd);
            if (*why == CM_HTTP_CLIENT_TIMEOUT)
                break;
            continue;
        }
        int one = 1;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        cn->fd = fd;
    }
    freeaddrinfo(res);
    if (cn->fd < 0)
        return -1;
    cn->rbuf = malloc(RBUF_SIZE);
    if (!cn->rbuf) {
        conn_close(cn);
        *why = CM_HTTP_CLIENT_ERROR;
        return -1;
    }
    cn->rcap = RBUF_SIZE;
    return 0;
}

/* Sends every byte of iov before deadline. 0; -1 connection error; -2 timeout. */
static int send_all(int fd, struct iovec *iov, int iovcnt, int64_t deadline)
{
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
    while (m.msg_iovlen > 0) {
        if (m.msg_iov->iov_len == 0) {
            m.msg_iov++;
            m.msg_iovlen--;
            continue;
        }
        ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w <= 0)
                return w == 0 ? -2 : -1;
            continue;
        }
        size_t left = (size_t)n;
        while (left > 0 && left >= m.msg_iov->iov_len) {
            left -= m.msg_iov->iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (left > 0) {
            m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + left;
            m.msg_iov->iov_len -= left;
        }
    }
    return 0;
}

/* One blocking recv bounded by the deadline through SO_RCVTIMEO, which is
 * set only when the value in force is not within 10 ms under what is left
 * (so a steady per-route timeout costs no extra system call). Bytes read,
 * 0 at EOF, -1 connection error, -2 timeout. */
static ssize_t conn_read(struct conn *cn, char *buf, size_t n, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -2;
        if (cn->rcvtimeo_ms <= 0 || cn->rcvtimeo_ms > left || cn->rcvtimeo_ms < left - 10) {
            int64_t t = left > 3600000 ? 3600000 : left;
            struct timeval tv = {.tv_sec = (time_t)(t / 1000), .tv_usec = (t % 1000) * 1000};
            if (setsockopt(cn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
                return -1;
            cn->rcvtimeo_ms = (int)t;
        }
        ssize_t r = recv(cn->fd, buf, n, 0);
        if (r >= 0)
            return r;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

/* The length of the response head at p (through its blank line), or 0 if
 * it is not complete yet. Bare LF line ends are tolerated. */
static size_t head_end(const char *p, size_t n)
{
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + n - q))) != NULL; q++) {
        size_t i = (size_t)(q - p);
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
        if (i + 1 >= n || (i + 2 >= n && p[i + 1] == '\r'))
            return 0;
    }
    return 0;
}

enum framing { F_NONE, F_LENGTH, F_CHUNKED, F_CLOSE };

struct head {
    long status;
    int keep_alive;
    enum framing framing;
    uint64_t length;
};

int cm_http_header_has_token(const char *list, const char *token)
{
    size_t tl = token ? strlen(token) : 0;
    for (const char *p = list; tl && p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(p, token, tl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* Parses a complete head p[0..n) into h and resp (status, headers). -1 on
 * anything that is not a well-formed HTTP/1.x response head. */
static int parse_head(const char *p, size_t n, int is_head_req, struct head *h,
                      struct cm_http_response *resp)
{
    memset(h, 0, sizeof *h);
    headers_reset(resp);
    /* The fields take less room than their head: one allocation, not a
     * chain of doublings. */
    if (resp->headers.alloc <= n && cm_buf_append(&resp->headers, p, n) == 0)
        cm_buf_reset(&resp->headers);
    /* "HTTP/1.x SSS[ reason]" */
    if (n < 13 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return -1;
    if (p[12] != ' ' && p[12] != '\r' && p[12] != '\n')
        return -1;
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (h->status < 100)
        return -1;
    int http11 = p[7] == '1';
    int conn_close = 0, conn_keep = 0, chunked = 0, other_te = 0, have_len = 0;
    uint64_t len = 0;
    const char *end = p + n;
    const char *line = (const char *)memchr(p, '\n', n) + 1;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = (size_t)(nl - line);
        if (ll == 0 || (ll == 1 && line[0] == '\r'))
            break; /* the blank line */
        if (line[0] == ' ' || line[0] == '\t')
            return -1; /* obsolete line folding: refused (RFC 9112 5.2) */
        size_t before = resp->headers.len;
        int rc = header_line(resp, line, ll);
        if (rc != 0)
            return -1;
        const char *name = resp->headers.data + before;
        const char *value = name + strlen(name) + 1;
        if (strcasecmp(name, "Content-Length") == 0) {
            uint64_t v = 0;
            if (!*value)
                return -1;
            for (const char *q = value; *q; q++) {
                if (*q < '0' || *q > '9' || v > UINT64_MAX / 20)
                    return -1;
                v = v * 10 + (uint64_t)(*q - '0');
            }
            if (have_len && v != len)
                return -1;
            have_len = 1;
            len = v;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            /* chunked must be the last coding; anything else: read to close */
            size_t vl = strlen(value);
            if (vl >= 7 && strcasecmp(value + vl - 7, "chunked") == 0 &&
                (vl == 7 || value[vl - 8] == ',' || value[vl - 8] == ' '))
                chunked = 1;
            else
                other_te = 1;
        } else if (strcasecmp(name, "Connection") == 0) {
            conn_close |= cm_http_header_has_token(value, "close");
            conn_keep |= cm_http_header_has_token(value, "keep-alive");
        }
        line = nl + 1;
    }
    h->keep_alive = http11 ? !conn_close : (conn_keep && !conn_close);
    if (is_head_req || h->status < 200 || h->status == 204 || h->status == 304) {
        h->framing = F_NONE;
    } else if (other_te) {
        h->framing = F_CLOSE;
        h->keep_alive = 0;
    } else if (chunked) {
        h->framing = F_CHUNKED;
    } else if (have_len) {
        h->framing = F_LENGTH;
        h->length = len;
    } else {
        h->framing = F_CLOSE;
        h->keep_alive = 0;
    }
    return 0;
}

/* Chunked body decoding, fed as bytes arrive. */
enum chunk_state { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

struct chunks {
    enum chunk_state st;
    uint64_t left;  /* CH_DATA: bytes of the chunk still to come */
    int digits;     /* CH_SIZE: hex digits read */
    size_t linelen; /* CH_TRAILER / CH_DATA_END: bytes on the current line */
};

/* Consumes p[0..n): appends data to body. Returns the bytes consumed (less
 * than n only once CH_DONE), -1 malformed, -2 body over its cap. */
static ssize_t chunks_feed(struct chunks *ck, const char *p, size_t n, struct cm_buf *body)
{
    size_t i = 0;
    while (i < n && ck->st != CH_DONE) {
        char ch = p[i];
        switch (ck->st) {
        case CH_SIZE:
            if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')) {
                if (ck->digits >= 15)
                    return -1;
                int d = ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
                ck->left = ck->left * 16 + (uint64_t)d;
                ck->digits++;
                i++;
                break;
            }
            if (ck->digits == 0)
                return -1;
            ck->st = CH_EXT;
            break;
        case CH_EXT: /* extensions and whitespace up to LF: ignored */
            i++;
            if (ch == '\n') {
                ck->digits = 0;
                ck->linelen = 0;
                ck->st = ck->left ? CH_DATA : CH_TRAILER;
            } else if ((unsigned char)ch < 0x20 && ch != '\r' && ch != '\t') {
                return -1;
            }
            break;
        case CH_DATA: {
            size_t take = n - i;
            if (take > ck->left)
                take = (size_t)ck->left;
            if (cm_buf_append(body, p + i, take) < 0)
                return -2;
            i += take;
            ck->left -= take;
            if (ck->left == 0) {
                ck->st = CH_DATA_END;
                ck->linelen = 0;
            }
            break;
        }
        case CH_DATA_END: /* the CRLF after a chunk's data */
            i++;
            if (ch == '\n')
                ck->st = CH_SIZE;
            else if (ch != '\r' || ck->linelen++ > 0)
                return -1;
            break;
        case CH_TRAILER: /* trailer fields are dropped; an empty line ends */
            i++;
            if (ch == '\n') {
                if (ck->linelen == 0)
                    ck->st = CH_DONE;
                ck->linelen = 0;
            } else if (ch != '\r' || ck->linelen > 0) {
                if (++ck->linelen > HEAD_MAX)
                    return -1;
            }
            break;
        case CH_DONE: break;
        }
    }
    return (ssize_t)i;
}

enum xfer { XF_OK, XF_DEAD, XF_FAIL };

/* Sends the request on cn and reads the answer into resp. XF_OK: resp is
 * complete (outcome OK) and *reuse says whether cn may serve again; XF_DEAD:
 * the connection failed before any byte of answer (resp untouched besides
 * outcome CONNECT_ERROR); XF_FAIL: resp->outcome says what went wrong. */
static enum xfer exchange(struct cm_http_client *c, struct conn *cn, const char *reqhead,
                          size_t reqhead_len, const struct cm_http_request *req, int is_head_req,
                          int64_t deadline, struct cm_http_response *resp, int *reuse)
{
    *reuse = 0;
    struct iovec iov[2] = {
        {.iov_base = (void *)reqhead, .iov_len = reqhead_len},
        {.iov_base = (void *)req->body, .iov_len = req->body ? req->body_len : 0}};
    int s = send_all(cn->fd, iov, 2, deadline);
    if (s < 0) {
        resp->outcome = s == -2 ? CM_HTTP_CLIENT_TIMEOUT : CM_HTTP_CLIENT_CONNECT_ERROR;
        return s == -2 ? XF_FAIL : XF_DEAD;
    }

    /* The head: read until its blank line, skipping 1xx interim heads. */
    struct head h;
    size_t have = 0, hlen = 0;
    for (;;) {
        hlen = have ? head_end(cn->rbuf, have) : 0;
        if (hlen) {
            if (parse_head(cn->rbuf, hlen, is_head_req, &h, resp) < 0 || h.status == 101) {
                resp->outcome = CM_HTTP_CLIENT_ERROR;
                return XF_FAIL;
            }
            if (h.status >= 200)
                break;
            memmove(cn->rbuf, cn->rbuf + hlen, have - hlen); /* 1xx: next head */
            have -= hlen;
            headers_reset(resp);
            continue;
        }
        if (have == cn->rcap) {
            if (cn->rcap >= HEAD_MAX) {
                resp->outcome = CM_HTTP_CLIENT_ERROR;
                return XF_FAIL;
            }
            char *nb = realloc(cn->rbuf, cn->rcap * 2);
            if (!nb) {
                resp->outcome = CM_HTTP_CLIENT_ERROR;
                return XF_FAIL;
            }
            cn->rbuf = nb;
            cn->rcap *= 2;
        }
        ssize_t r = conn_read(cn, cn->rbuf + have, cn->rcap - have, deadline);
        if (r == -2) {
            resp->outcome = CM_HTTP_CLIENT_TIMEOUT;
            return XF_FAIL;
        }
        if (r <= 0) {
            resp->outcome = CM_HTTP_CLIENT_CONNECT_ERROR;
            return have == 0 ? XF_DEAD : XF_FAIL;
        }
        have += (size_t)r;
    }
    resp->status = h.status;

    /* The body, as framed. */
    const char *p = cn->rbuf + hlen;
    size_t n = have - hlen;
    struct chunks ck = {.st = CH_SIZE};
    uint64_t want = h.length;
    if (h.framing == F_LENGTH && want > c->max_body) {
        resp->outcome = CM_HTTP_CLIENT_TOO_LARGE;
        return XF_FAIL;
    }
    int done = h.framing == F_NONE;
    size_t extra = done ? n : 0;
    for (;;) {
        if (!done && n > 0) {
            if (h.framing == F_LENGTH) {
                size_t take = n < want ? n : (size_t)want;
                if (cm_buf_append(&resp->body, p, take) < 0) {
                    resp->outcome = CM_HTTP_CLIENT_TOO_LARGE;
                    return XF_FAIL;
                }
                want -= take;
                extra = n - take;
            } else if (h.framing == F_CHUNKED) {
                ssize_t used = chunks_feed(&ck, p, n, &resp->body);
                if (used < 0) {
                    resp->outcome = used == -2 ? CM_HTTP_CLIENT_TOO_LARGE : CM_HTTP_CLIENT_ERROR;
                    return XF_FAIL;
                }
                extra = n - (size_t)used;
            } else if (cm_buf_append(&resp->body, p, n) < 0) {
                resp->outcome = CM_HTTP_CLIENT_TOO_LARGE;
                return XF_FAIL;
            }
        }
        if (h.framing == F_LENGTH)
            done = want == 0;
        else if (h.framing == F_CHUNKED)
            done = ck.st == CH_DONE;
        if (done)
            break;
        size_t room = cn->rcap;
        if (h.framing == F_LENGTH && want < room)
            room = (size_t)want; /* never read into the next answer */
        ssize_t r = conn_read(cn, cn->rbuf, room, deadline);
        if (r == -2) {
            resp->outcome = CM_HTTP_CLIENT_TIMEOUT;
            return XF_FAIL;
        }
        if (r == 0 && h.framing == F_CLOSE)
            break;
        if (r <= 0) {
            resp->outcome = CM_HTTP_CLIENT_CONNECT_ERROR;
            return XF_FAIL;
        }
        p = cn->rbuf;
        n = (size_t)r;
    }
    resp->outcome = CM_HTTP_CLIENT_OK;
    /* Bytes past the answer were not asked for: do not trust the rest. */
    *reuse = h.keep_alive && h.framing != F_CLOSE && extra == 0;
    return XF_OK;
}

/* One attempt over the built-in transport; fills resp like attempt_once. */
static void native_attempt(struct cm_http_client *c, const char *reqhead, size_t reqhead_len,
                           const struct cm_http_request *req, int is_head_req, int64_t timeout_ms,
                           struct cm_http_response *resp)
{
    int64_t deadline = now_ms() + timeout_ms;
    cm_buf_reset(&resp->body);
    resp->status = 0;
    headers_reset(resp);
    struct conn cn;
    int reused = conn_take(c, &cn);
    enum cm_http_client_outcome why;
    if (!reused && conn_open(c, &cn, deadline, &why) < 0) {
        resp->outcome = why;
        return;
    }
    int reuse = 0;
    enum xfer x = exchange(c, &cn, reqhead, reqhead_len, req, is_head_req, deadline, resp, &reuse);
    if (x == XF_DEAD && reused) {
        /* The pooled connection had died while idle: send on a fresh one. */
        conn_close(&cn);
        if (conn_open(c, &cn, deadline, &why) < 0) {
            resp->outcome = why;
            return;
        }
        x = exchange(c, &cn, reqhead, reqhead_len, req, is_head_req, deadline, resp, &reuse);
    }
    if (resp->outcome == CM_HTTP_CLIENT_TOO_LARGE)
        cm_buf_release(&resp->body); /* a truncated body is worse than none */
    if (x == XF_OK && reuse)
        conn_put(c, &cn);
    else
        conn_close(&cn);
}

/* Request head writer: run once to measure (p NULL), once to write. */
struct out {
    char *p;
    size_t n;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->p)
        memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void put_s(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_field(struct out *o, const char *name, const char *value)
{
    put_s(o, name);
    put(o, ": ", 2);
    put_s(o, value);
    put(o, "\r\n", 2);
}

/* A caller header the transport owns (framing, Host) or one libcurl would
 * not send either (empty value). 1: skip it. Sets *accept for Accept. */
static int skip_header(const char *line, int *accept)
{
    static const char *const own[] = {"Host", "Content-Length", "Transfer-Encoding", "Connection"};
    size_t nl = (size_t)(strchr(line, ':') - line);
    const char *v = line + nl + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return 1;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (nl == strlen(own[i]) && strncasecmp(line, own[i], nl) == 0)
            return 1;
    if (nl == 6 && strncasecmp(line, "Accept", 6) == 0)
        *accept = 1;
    return 0;
}

static void write_head(struct out *o, const struct cm_http_client *c,
                       const struct cm_http_request *req, const char *method, const char *rid,
                       const char *trace, int send_length)
{
    put_s(o, method);
    put(o, " ", 1);
    put_s(o, c->base_path);
    put_s(o, req->path);
    put(o, " HTTP/1.1\r\n", 11);
    put_field(o, "Host", c->authority);
    if (rid && *rid)
        put_field(o, "X-Request-Id", rid);
    if (trace && *trace)
        put_field(o, "traceparent", trace);
    if (req->body)
        put_field(o, "Content-Type", req->content_type ? req->content_type : "application/json");
    if (send_length) {
        char len[32];
        snprintf(len, sizeof len, "%zu", req->body ? req->body_len : (size_t)0);
        put_field(o, "Content-Length", len);
    }
    int accept = 0;
    for (const char *const *h = req->headers; h && *h; h++) {
        if (skip_header(*h, &accept))
            continue;
        put_s(o, *h);
        put(o, "\r\n", 2);
    }
    if (!accept)
        put(o, "Accept: */*\r\n", 13);
    put(o, "\r\n", 2);
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
    cm_buf_init(&resp->headers, HEADERS_CAP);

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
    char stackhead[2048];
    char *reqhead = stackhead;
    size_t reqhead_len = 0;
    cm_buf_init(&url, 8192);
    if (!valid_method(method) || !req->path || req->path[0] != '/' || has_crlf(req->path) ||
        strchr(req->path, ' ') || (req->body_len && !req->body))
        goto done;
    if (c->native ? strlen(c->base_url) + strlen(req->path) >= 8192
                  : cm_buf_puts(&url, c->base_url) < 0 || cm_buf_puts(&url, req->path) < 0)
        goto done; /* the same URL length limit for both transports */
    /* An explicit traceparent is the caller's own context, sent as is;
     * otherwise this call is a CLIENT span of the thread's trace. */
    const char *trace = req->traceparent;
    if (!trace && context_span(&span) == 0) {
        snprintf(tp, sizeof tp, "00-%s-%s-01", span.trace_id, span.span_id);
        trace = tp;
        traced = 1;
    }
    if (c->native) {
        const char *rid = req->request_id ? req->request_id : cm_log_request_id();
        if (headers_valid(req, rid, trace) < 0)
            goto done;
        int send_length = req->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                          strcmp(method, "PATCH") == 0;
        struct out o = {.p = NULL, .n = 0};
        write_head(&o, c, req, method, rid, trace, send_length);
        reqhead_len = o.n;
        reqhead = reqhead_len < sizeof stackhead ? stackhead : malloc(reqhead_len + 1);
        if (!reqhead)
            goto done;
        o.p = reqhead;
        o.n = 0;
        write_head(&o, c, req, method, rid, trace, send_length);
    } else {
        headers = build_headers(req, trace, &err);
        if (err)
            goto done;
    }

    int64_t attempt_timeout = req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms;
    int64_t deadline = start + (req->deadline_ms > 0 ? req->deadline_ms : c->deadline_ms);
    int may_retry = req->idempotent || method_idempotent(method);
    int max_attempts = 1 + (may_retry ? c->max_retries : 0);

    if (!c->native) {
        h = handle_get(c);
        if (!h)
            goto done;
    }
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
        int64_t t = attempt_timeout < left ? attempt_timeout : left;
        if (c->native) {
            native_attempt(c, reqhead, reqhead_len, req, strcmp(method, "HEAD") == 0, t, resp);
        } else {
            if (i > 0)
                curl_easy_reset(h);
            attempt_once(c, h, req, method, url.data, headers, t, resp);
        }
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
    if (reqhead != stackhead)
        free(reqhead);
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
