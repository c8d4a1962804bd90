/* /healthz, /readyz (dependency checks with timeouts) and /metrics. */
#include "common/health.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/faults.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "http_internal.h"
#include "common/banned.h"

int cm_health_add_check(struct cm_http_server *s, const char *name, cm_health_check_fn fn,
                        void *ctx, int timeout_ms)
{
    if (!s || !name || !*name || !fn)
        return -1;
    struct health_check *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return -1;
    }
    c->fn = fn;
    c->ctx = ctx;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    pthread_mutex_lock(&s->lock);
    struct health_check **tail = &s->checks;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void health_checks_free(struct cm_http_server *s)
{
    struct health_check *c = s->checks;
    while (c) {
        struct health_check *n = c->next;
        free(c->name);
        free(c);
        c = n;
    }
    s->checks = NULL;
}

/* One /readyz evaluation: shared with the check threads, which may outlive
 * the request when they overrun (hence the reference count). */
struct result {
    char name[64];
    cm_health_check_fn fn;
    void *ctx;
    int timeout_ms;
    int done, rc;
    double ms;
    char msg[160];
};

struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    size_t n;
    struct result res[];
};

struct job {
    struct batch *b;
    size_t i;
};

static void batch_unref(struct batch *b)
{
    pthread_mutex_lock(&b->lock);
    int last = --b->refs == 0;
    pthread_mutex_unlock(&b->lock);
    if (last) {
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
        free(b);
    }
}

static void *run_check(void *arg)
{
    struct job *j = arg;
    struct batch *b = j->b;
    struct result *res = &b->res[j->i];
    free(j);
    char msg[160] = "";
    uint64_t t0 = http_now_ns();
    int rc = res->fn(res->ctx, msg, sizeof msg);
    double ms = (double)(http_now_ns() - t0) / 1e6;
    pthread_mutex_lock(&b->lock);
    if (!res->done) { /* else already reported as timed out */
        res->rc = rc == 0 ? 0 : -1;
        res->ms = ms;
        snprintf(res->msg, sizeof res->msg, "%s", msg);
        res->done = 1;
    }
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    batch_unref(b);
    return NULL;
}

static struct batch *snapshot(struct cm_http_server *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = 0;
    for (struct health_check *c = s->checks; c; c = c->next)
        n++;
    struct batch *b = calloc(1, sizeof *b + n * sizeof(struct result));
    if (b) {
        size_t i = 0;
        for (struct health_check *c = s->checks; c; c = c->next, i++) {
            snprintf(b->res[i].name, sizeof b->res[i].name, "%s", c->name);
            b->res[i].fn = c->fn;
            b->res[i].ctx = c->ctx;
            b->res[i].timeout_ms = c->timeout_ms;
        }
        b->n = n;
        b->refs = 1;
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->cond, NULL);
    }
    pthread_mutex_unlock(&s->lock);
    return b;
}

static void start_checks(struct batch *b)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (size_t i = 0; i < b->n; i++) {
        struct result *res = &b->res[i];
        if (cm_faults_dependency_dropped(res->name)) {
            res->done = 1;
            res->rc = -1;
            snprintf(res->msg, sizeof res->msg, "dependency dropped by fault injection");
            continue;
        }
        struct job *j = malloc(sizeof *j);
        pthread_t t;
        pthread_mutex_lock(&b->lock);
        b->refs++;
        pthread_mutex_unlock(&b->lock);
        if (j) {
            j->b = b;
            j->i = i;
        }
        if (!j || pthread_create(&t, &attr, run_check, j) != 0) {
            free(j);
            res->done = 1;
            res->rc = -1;
            snprintf(res->msg, sizeof res->msg, "cannot start check");
            pthread_mutex_lock(&b->lock);
            b->refs--; /* no thread took this reference */
            pthread_mutex_unlock(&b->lock);
        }
    }
    pthread_attr_destroy(&attr);
}

/* Waits for each check up to its own deadline (all started together). */
static void wait_checks(struct batch *b, uint64_t t0)
{
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->n; i++) {
        struct result *res = &b->res[i];
        uint64_t deadline_ns = t0 + (uint64_t)res->timeout_ms * 1000000u;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t left = deadline_ns > http_now_ns() ? deadline_ns - http_now_ns() : 0;
        struct timespec abs = now;
        abs.tv_sec += (time_t)(left / 1000000000u);
        abs.tv_nsec += (long)(left % 1000000000u);
        if (abs.tv_nsec >= 1000000000L) {
            abs.tv_sec++;
            abs.tv_nsec -= 1000000000L;
        }
        while (!res->done)
            if (pthread_cond_timedwait(&b->cond, &b->lock, &abs) == ETIMEDOUT)
                break;
        if (!res->done) {
            res->rc = -1;
            res->ms = res->timeout_ms;
            snprintf(res->msg, sizeof res->msg, "timed out after %d ms", res->timeout_ms);
            res->done = 2; /* reported as timed out; the thread's late result is ignored */
        }
    }
    pthread_mutex_unlock(&b->lock);
}

static void readyz(struct cm_http_req *r)
{
    struct cm_http_server *s = cm_http_req_server(r);
    struct batch *b = snapshot(s);
    if (!b) {
        cm_http_reply_error(r, 503, "service_unavailable", "out of memory");
        return;
    }
    uint64_t t0 = http_now_ns();
    start_checks(b);
    wait_checks(b, t0);

    int ok = 1;
    cJSON *out = cJSON_CreateObject();
    cJSON *checks = cJSON_AddArrayToObject(out, "checks");
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->n; i++) {
        struct result *res = &b->res[i];
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", res->name);
        cJSON_AddBoolToObject(c, "ok", res->rc == 0);
        cJSON_AddNumberToObject(c, "duration_ms", (double)(int64_t)(res->ms * 1000) / 1000);
        if (res->rc != 0)
            cJSON_AddStringToObject(c, "message", res->msg[0] ? res->msg : "check failed");
        cJSON_AddItemToArray(checks, c);
        ok &= res->rc == 0;
    }
    pthread_mutex_unlock(&b->lock);
    batch_unref(b);

    const char *status = "ready";
    if (cm_http_server_draining(s))
        status = "draining";
    else if (cm_faults_readiness_failed())
        status = "readiness_fail_fault";
    else if (!ok)
        status = "not_ready";
    cJSON_AddStringToObject(out, "status", status);
    cm_http_reply_json(r, strcmp(status, "ready") == 0 ? 200 : 503, out);
}

static void healthz(struct cm_http_req *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    cm_http_reply_static(r, 200, "application/json", body, sizeof body - 1);
}

static void metrics(struct cm_http_req *r)
{
    struct cm_buf b;
    cm_buf_init(&b, 32u * 1024u * 1024u);
    if (cm_metrics_render(&b) < 0) {
        cm_buf_release(&b);
        cm_http_reply_error(r, 500, "internal", "metrics exposition too large");
        return;
    }
    size_t len;
    char *s = cm_buf_detach(&b, &len);
    if (!s) {
        s = calloc(1, 1);
        len = 0;
    }
    http_reply_owned(r, 200, "text/plain; version=0.0.4; charset=utf-8", s, len);
}

const struct cm_http_route cm_health_routes[] = {
    {"GET", "/healthz", healthz, CM_ROUTE_NO_LOG | HTTP_ROUTE_BUILTIN, NULL},
    {"GET", "/readyz", readyz, CM_ROUTE_NO_LOG | HTTP_ROUTE_BUILTIN, NULL},
    {"GET", "/metrics", metrics, CM_ROUTE_NO_LOG | HTTP_ROUTE_BUILTIN, NULL},
};
const size_t cm_health_nroutes = sizeof cm_health_routes / sizeof cm_health_routes[0];
