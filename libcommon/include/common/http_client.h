#ifndef COMMON_HTTP_CLIENT_H
#define COMMON_HTTP_CLIENT_H
/*
 * HTTP client for service-to-service calls (trading-api -> risk/wallet,
 * gateway -> services, order -> catalog), on libcurl.
 *
 * One client per upstream: base URL, a name used as the `upstream` label,
 * timeouts, retry policy and a circuit breaker (common/breaker.h).
 *
 * Per call:
 * - the breaker is asked before every attempt; when it refuses the first
 *   attempt the call fails fast with CM_HTTP_CLIENT_OPEN and nothing is
 *   sent (gateways answer 503);
 * - each attempt is bounded by timeout_ms and the whole call, retries and
 *   backoff included, by deadline_ms;
 * - retries happen only for idempotent requests (GET, HEAD, PUT, DELETE,
 *   OPTIONS, or any method the caller marks idempotent, e.g. a POST with an
 *   idempotency key), only after connection errors, timeouts and 502/503/504,
 *   with "full jitter" backoff: sleep uniform(0, min(backoff_max,
 *   backoff_base * 2^attempt)), stretched to the upstream's Retry-After
 *   (delta-seconds) when that is longer, and never past the deadline: a
 *   retry that would not fit returns the current answer at once;
 * - X-Request-Id and traceparent are sent from the caller's values or else
 *   from the log context (cm_log_request_id/cm_log_trace_id), plus any extra
 *   headers; values containing CR or LF are refused (CM_HTTP_CLIENT_ERROR);
 * - the response body is read into a cm_buf capped at max_body (default
 *   4 MiB); a bigger one is CM_HTTP_CLIENT_TOO_LARGE.
 *
 * Breaker accounting: a response with status < 500 counts as a success
 * (a 4xx is the caller's problem, not the upstream's health), 5xx,
 * timeouts and connection errors as failures.
 *
 * Response headers: every header field of the final response is kept
 * (cm_http_response_header, cm_http_response_foreach_header), so a proxy
 * can relay Location, X-RateLimit-* and the like.
 *
 * Transport: for http:// base URLs a small built-in HTTP/1.1 client over a
 * pool of keep-alive connections (one send and, for a small answer, one
 * blocking receive per request: no poll, no per-call allocation beyond the
 * body); https:// (or use_libcurl) goes through libcurl easy handles. Both
 * behave the same for everything above. A pooled connection that the
 * upstream closed while idle is detected when the request finds it dead
 * before any byte of answer; the request is then sent once more on a fresh
 * connection (libcurl does the same), which is not a retry and not counted
 * as an attempt. Request headers named Host, Content-Length,
 * Transfer-Encoding or Connection are the client's own (framing) and are
 * dropped from `headers`; a header with an empty value is not sent (as with
 * libcurl).
 *
 * Metrics, per attempt (so retries show): http_client_requests_total
 * {upstream,code} where code is the HTTP status, "timeout", "open" or
 * "error" (connection errors and too-large bodies included), as in
 * observability/metrics-contract.json; http_client_request_duration_seconds
 * {upstream}.
 *
 * Thread-safety: a client is shared by all threads; idle connections (or
 * libcurl easy handles) are reused from a small mutex-guarded pool.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/breaker.h"
#include "common/buf.h"

enum cm_http_client_outcome {
    CM_HTTP_CLIENT_OK = 0,        /* an HTTP response arrived (any status) */
    CM_HTTP_CLIENT_TIMEOUT,       /* attempt timeout or deadline reached */
    CM_HTTP_CLIENT_CONNECT_ERROR, /* refused, unreachable, DNS, connection reset/closed */
    CM_HTTP_CLIENT_OPEN,          /* breaker open: nothing was sent */
    CM_HTTP_CLIENT_TOO_LARGE,     /* body over max_body */
    CM_HTTP_CLIENT_ERROR,         /* anything else (bad request arguments, TLS, ...) */
};

/* "ok", "timeout", "connect_error", "open", "too_large", "error". */
const char *cm_http_client_outcome_name(enum cm_http_client_outcome o);

#define CM_HTTP_CLIENT_DEFAULT_MAX_BODY (4u * 1024u * 1024u)
/* max_retries value meaning "never retry" (0 means the default). */
#define CM_HTTP_CLIENT_NO_RETRY (-1)

/* Zero fields take the defaults in brackets. */
struct cm_http_client_config {
    const char *name;           /* upstream label, e.g. "risk"; required; copied */
    const char *base_url;       /* "http://risk:8084"; required; copied */
    int64_t timeout_ms;         /* per attempt [2000] */
    int64_t deadline_ms;        /* whole call incl. retries [timeout_ms * (1 + max_retries)] */
    int64_t connect_timeout_ms; /* [1000] */
    int max_retries;            /* retries after the first attempt [2]; NO_RETRY: none */
    int64_t backoff_base_ms;    /* [50], at most 60000 */
    int64_t backoff_max_ms;     /* [1000], at most 600000 */
    size_t max_body;            /* response cap [CM_HTTP_CLIENT_DEFAULT_MAX_BODY] */
    int pool_size;              /* idle connections (or easy handles) kept [8] */
    int breaker_off;            /* 1: no circuit breaker */
    int use_libcurl;            /* 1: libcurl for http:// too (https:// always is) */
    /* name is taken from the client; the rest as in common/breaker.h. */
    struct cm_breaker_config breaker;
};

struct cm_http_request {
    const char *method; /* "GET", "POST", ...; NULL = GET */
    const char *path;   /* appended to base_url; must start with '/' */
    const char *body;   /* borrowed; may be NULL */
    size_t body_len;
    const char *content_type;   /* [application/json when there is a body] */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *request_id;     /* NULL: the log context's request id, if any */
    const char *traceparent;    /* NULL: built from the log context's trace id */
    int64_t timeout_ms;         /* per attempt; 0: the client's */
    int64_t deadline_ms;        /* whole call; 0: the client's */
    int idempotent;             /* 1: retry this POST/PATCH too */
};

/* Owned by the caller; filled by cm_http_client_do, which initialises it:
 * always call cm_http_response_release afterwards, whatever the result. */
struct cm_http_response {
    enum cm_http_client_outcome outcome;
    long status;            /* HTTP status, 0 when no response */
    struct cm_buf body;     /* NUL-terminated when non-empty */
    char content_type[128]; /* "" if absent (truncated if longer) */
    char retry_after[64];   /* "" if absent */
    int attempts;           /* requests actually sent */
    int64_t elapsed_ms;
    /* Every header field of the final response, in order, as "name\0value\0"
     * pairs (values trimmed); read them with the functions below. */
    struct cm_buf headers;
    int nheaders;
};

struct cm_http_client;

/* NULL (and an error log line) on a bad config. Calls curl_global_init
 * once per process. Caller owns; free after all calls have returned. */
struct cm_http_client *cm_http_client_new(const struct cm_http_client_config *cfg);
void cm_http_client_free(struct cm_http_client *c);

/* Performs req. Returns 0 when an HTTP response arrived (check
 * resp->status), -1 otherwise (resp->outcome says why). */
int cm_http_client_do(struct cm_http_client *c, const struct cm_http_request *req,
                      struct cm_http_response *resp);
/* GET base_url + path with the defaults. */
int cm_http_client_get(struct cm_http_client *c, const char *path, struct cm_http_response *resp);

void cm_http_response_release(struct cm_http_response *resp);

/* The first response header called name (any case), or NULL. Borrowed:
 * valid until cm_http_response_release. */
const char *cm_http_response_header(const struct cm_http_response *resp, const char *name);

/* 1 when token is one of the comma-separated elements of a header value
 * such as Connection ("keep-alive, Upgrade"), case-insensitively; 0 for
 * NULL or empty arguments. */
int cm_http_header_has_token(const char *list, const char *token);
/* Calls fn for each response header in order (name and value borrowed as
 * above) until fn returns non-zero. Returns the number of calls. */
int cm_http_response_foreach_header(const struct cm_http_response *resp,
                                    int (*fn)(void *ctx, const char *name, const char *value),
                                    void *ctx);

/* The client's breaker (borrowed; NULL when breaker_off). */
struct cm_breaker *cm_http_client_breaker(struct cm_http_client *c);

#endif
