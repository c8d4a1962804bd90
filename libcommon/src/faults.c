/*
 * Fault injection state and the /admin routes (faults, log level).
 * The list is small and changes rarely: a mutex guards it, and per-type
 * atomic counts let the request path skip it entirely when idle.
 */
#include "common/faults.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "http_internal.h"
#include "common/banned.h"

enum ftype { F_LATENCY, F_ERROR, F_CPU, F_MEM, F_KAFKA, F_READY, F_DROP, F_NTYPES };

static const char *const type_names[F_NTYPES] = {"latency",        "error",       "cpu_burn",
                                                 "memory_growth",  "kafka_pause", "readiness_fail",
                                                 "drop_dependency"};

struct fault {
    struct fault *next;
    int id;
    enum ftype type;
    char route[128];
    int min_ms, max_ms;
    double rate;
    int status;
    int millicores, duration_s;
    int mb_per_s, max_mb;
    char name[33];
    /* background work (cpu_burn, memory_growth) */
    pthread_t threads[4];
    int nthreads;
    _Atomic int stop;
    char **blocks;
    size_t nblocks;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault *faults;
static int next_id = 1;
static _Atomic int counts[F_NTYPES];

void faults_publish_metrics(void)
{
    struct cm_metric *m =
        cm_metric_gauge("fault_injection_active", "Active injected faults by type.", "fault");
    for (int i = 0; i < F_NTYPES; i++)
        cm_gauge_set(m, atomic_load(&counts[i]), type_names[i]);
}

/* ---- background faults */

static double now_s(void)
{
    return (double)http_now_ns() / 1e9;
}

static void nap_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Burns its share of millicores in 100 ms periods (spin, then rest). */
static void *cpu_thread(void *arg)
{
    struct fault *f = arg;
    double share = (double)f->millicores / f->nthreads / 1000.0; /* of one core */
    double end = now_s() + f->duration_s;
    volatile uint64_t sink = 0;
    while (!atomic_load(&f->stop) && now_s() < end) {
        double t0 = now_s();
        while (now_s() - t0 < 0.1 * share)
            sink += 1;
        nap_ms(100.0 * (1.0 - share));
    }
    (void)sink;
    return NULL;
}

/* Grows resident memory by mb_per_s (touched pages) up to max_mb, then
 * holds it until cleared. */
static void *mem_thread(void *arg)
{
    struct fault *f = arg;
    size_t step = (size_t)f->mb_per_s * 1024 * 1024 / 10;
    size_t cap = (size_t)f->max_mb * 1024 * 1024, total = 0;
    size_t nalloc = (cap / (step ? step : 1)) + 1;
    f->blocks = calloc(nalloc, sizeof *f->blocks);
    while (!atomic_load(&f->stop)) {
        if (f->blocks && total < cap && f->nblocks < nalloc) {
            size_t n = step < cap - total ? step : cap - total;
            char *b = malloc(n);
            if (b) {
                memset(b, 0xA5, n);
                f->blocks[f->nblocks++] = b;
                total += n;
            }
        }
        nap_ms(100);
    }
    return NULL;
}

static void stop_fault(struct fault *f)
{
    atomic_store(&f->stop, 1);
    for (int i = 0; i < f->nthreads; i++)
        pthread_join(f->threads[i], NULL);
    for (size_t i = 0; i < f->nblocks; i++)
        free(f->blocks[i]);
    free(f->blocks);
    f->blocks = NULL;
    f->nblocks = 0;
}

/* ---- validation */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Every member must be one of the allowed names. */
static int only_fields(const cJSON *spec, const char *const *allowed, char *err, size_t n)
{
    for (const cJSON *m = spec->child; m; m = m->next) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            ok |= strcmp(m->string, allowed[i]) == 0;
        if (!ok)
            return fail(err, n, "unknown field \"%s\" for this fault type", m->string);
    }
    return 0;
}

/* An optional integer field in [lo, hi]; *out keeps its default when absent. */
static int int_field(const cJSON *spec, const char *name, int lo, int hi, int *out, char *err,
                     size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        snprintf(err, n, "\"%s\" must be an integer in [%d, %d]", name, lo, hi);
        return -1;
    }
    *out = (int)v->valuedouble;
    return 0;
}

static int route_field(const cJSON *spec, struct fault *f, char *err, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, "route");
    snprintf(f->route, sizeof f->route, "*");
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, "*") != 0 && v->valuestring[0] != '/') ||
        strlen(v->valuestring) >= sizeof f->route)
        return fail(err, n, "%s", "\"route\" must be \"*\" or a path starting with \"/\"");
    snprintf(f->route, sizeof f->route, "%s", v->valuestring);
    return 0;
}

static int parse_spec(const cJSON *spec, struct fault *f, char *err, size_t n)
{
    static const char *const f_latency[] = {"type", "route", "ms", "min_ms", "max_ms", NULL};
    static const char *const f_error[] = {"type", "route", "rate", "status", NULL};
    static const char *const f_cpu[] = {"type", "millicores", "duration_s", NULL};
    static const char *const f_mem[] = {"type", "mb_per_s", "max_mb", NULL};
    static const char *const f_flag[] = {"type", NULL};
    static const char *const f_drop[] = {"type", "name", NULL};

    if (!cJSON_IsObject(spec))
        return fail(err, n, "%s", "fault must be a JSON object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(spec, "type");
    if (!cJSON_IsString(t))
        return fail(err, n, "%s", "\"type\" is required");
    int type = -1;
    for (int i = 0; i < F_NTYPES; i++)
        if (strcmp(t->valuestring, type_names[i]) == 0)
            type = i;
    if (type < 0)
        return fail(err, n, "unknown fault type \"%.40s\"", t->valuestring);
    f->type = (enum ftype)type;
    switch (f->type) {
    case F_LATENCY: {
        if (only_fields(spec, f_latency, err, n) < 0 || route_field(spec, f, err, n) < 0)
            return -1;
        int ms = -1, lo = -1, hi = -1;
        if (int_field(spec, "ms", 0, 60000, &ms, err, n) < 0 ||
            int_field(spec, "min_ms", 0, 60000, &lo, err, n) < 0 ||
            int_field(spec, "max_ms", 0, 60000, &hi, err, n) < 0)
            return -1;
        if (ms >= 0 && (lo >= 0 || hi >= 0))
            return fail(err, n, "%s", "give either \"ms\" or \"min_ms\"/\"max_ms\"");
        if (ms >= 0) {
            f->min_ms = f->max_ms = ms;
        } else if (lo >= 0 && hi >= 0 && lo <= hi) {
            f->min_ms = lo;
            f->max_ms = hi;
        } else {
            return fail(err, n, "%s", "need \"ms\", or \"min_ms\" <= \"max_ms\"");
        }
        return 0;
    }
    case F_ERROR: {
        if (only_fields(spec, f_error, err, n) < 0 || route_field(spec, f, err, n) < 0)
            return -1;
        f->rate = 1.0;
        f->status = 503;
        const cJSON *rate = cJSON_GetObjectItemCaseSensitive(spec, "rate");
        if (rate) {
            if (!cJSON_IsNumber(rate) || !(rate->valuedouble > 0) || rate->valuedouble > 1)
                return fail(err, n, "%s", "\"rate\" must be a number in (0, 1]");
            f->rate = rate->valuedouble;
        }
        return int_field(spec, "status", 400, 599, &f->status, err, n);
    }
    case F_CPU:
        f->millicores = -1;
        f->duration_s = 60;
        if (only_fields(spec, f_cpu, err, n) < 0 ||
            int_field(spec, "millicores", 1, 4000, &f->millicores, err, n) < 0 ||
            int_field(spec, "duration_s", 1, 3600, &f->duration_s, err, n) < 0)
            return -1;
        if (f->millicores < 0)
            return fail(err, n, "%s", "\"millicores\" is required");
        return 0;
    case F_MEM:
        f->mb_per_s = -1;
        f->max_mb = 256;
        if (only_fields(spec, f_mem, err, n) < 0 ||
            int_field(spec, "mb_per_s", 1, 1024, &f->mb_per_s, err, n) < 0 ||
            int_field(spec, "max_mb", 1, 4096, &f->max_mb, err, n) < 0)
            return -1;
        if (f->mb_per_s < 0)
            return fail(err, n, "%s", "\"mb_per_s\" is required");
        return 0;
    case F_KAFKA:
    case F_READY: return only_fields(spec, f_flag, err, n);
    case F_DROP: {
        if (only_fields(spec, f_drop, err, n) < 0)
            return -1;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(spec, "name");
        if (!cJSON_IsString(nm) || !*nm->valuestring || strlen(nm->valuestring) > 32 ||
            strspn(nm->valuestring, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
                strlen(nm->valuestring))
            return fail(err, n, "%s", "\"name\" must be 1-32 of [a-z0-9_-]");
        snprintf(f->name, sizeof f->name, "%s", nm->valuestring);
        return 0;
    }
    case F_NTYPES: break;
    }
    return -1;
}

/* ---- public API */

int cm_faults_add(const cJSON *spec, char *err, size_t errlen)
{
    struct fault *f = calloc(1, sizeof *f);
    if (!f)
        return fail(err, errlen, "%s", "out of memory");
    if (parse_spec(spec, f, err, errlen) < 0) {
        free(f);
        return -1;
    }
    if (f->type == F_CPU) {
        f->nthreads = (f->millicores + 999) / 1000;
        for (int i = 0; i < f->nthreads; i++)
            if (pthread_create(&f->threads[i], NULL, cpu_thread, f) != 0) {
                f->nthreads = i;
                stop_fault(f);
                free(f);
                return fail(err, errlen, "%s", "cannot start thread");
            }
    } else if (f->type == F_MEM) {
        if (pthread_create(&f->threads[0], NULL, mem_thread, f) != 0) {
            free(f);
            return fail(err, errlen, "%s", "cannot start thread");
        }
        f->nthreads = 1;
    }
    pthread_mutex_lock(&lock);
    f->id = next_id++;
    struct fault **tail = &faults;
    while (*tail)
        tail = &(*tail)->next;
    *tail = f;
    atomic_fetch_add(&counts[f->type], 1);
    int id = f->id;
    pthread_mutex_unlock(&lock);
    faults_publish_metrics();
    cm_log_kv(CM_LOG_WARN, "fault injected", "fault", type_names[f->type], (const char *)NULL);
    return id;
}

/* type -1 clears all. */
static int clear(int type)
{
    struct fault *gone = NULL;
    int n = 0;
    pthread_mutex_lock(&lock);
    struct fault **pp = &faults;
    while (*pp) {
        struct fault *f = *pp;
        if (type < 0 || (int)f->type == type) {
            *pp = f->next;
            f->next = gone;
            gone = f;
            atomic_fetch_sub(&counts[f->type], 1);
            n++;
        } else {
            pp = &f->next;
        }
    }
    pthread_mutex_unlock(&lock);
    /* Join outside the lock: threads can take up to one period to notice. */
    while (gone) {
        struct fault *f = gone;
        gone = f->next;
        stop_fault(f);
        free(f);
    }
    faults_publish_metrics();
    if (n)
        cm_logf(CM_LOG_WARN, "faults cleared: %d", n);
    return n;
}

int cm_faults_clear(void)
{
    return clear(-1);
}

int cm_faults_clear_type(const char *type)
{
    for (int i = 0; i < F_NTYPES; i++)
        if (type && strcmp(type, type_names[i]) == 0)
            return clear(i);
    return -1;
}

static cJSON *fault_json(const struct fault *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", f->id);
    cJSON_AddStringToObject(o, "type", type_names[f->type]);
    switch (f->type) {
    case F_LATENCY:
        cJSON_AddStringToObject(o, "route", f->route);
        cJSON_AddNumberToObject(o, "min_ms", f->min_ms);
        cJSON_AddNumberToObject(o, "max_ms", f->max_ms);
        break;
    case F_ERROR:
        cJSON_AddStringToObject(o, "route", f->route);
        cJSON_AddNumberToObject(o, "rate", f->rate);
        cJSON_AddNumberToObject(o, "status", f->status);
        break;
    case F_CPU:
        cJSON_AddNumberToObject(o, "millicores", f->millicores);
        cJSON_AddNumberToObject(o, "duration_s", f->duration_s);
        break;
    case F_MEM:
        cJSON_AddNumberToObject(o, "mb_per_s", f->mb_per_s);
        cJSON_AddNumberToObject(o, "max_mb", f->max_mb);
        break;
    case F_DROP: cJSON_AddStringToObject(o, "name", f->name); break;
    default: break;
    }
    return o;
}

cJSON *cm_faults_list(void)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&lock);
    for (const struct fault *f = faults; f; f = f->next)
        cJSON_AddItemToArray(a, fault_json(f));
    pthread_mutex_unlock(&lock);
    return a;
}

int cm_faults_kafka_paused(void)
{
    return atomic_load(&counts[F_KAFKA]) > 0;
}
int cm_faults_readiness_failed(void)
{
    return atomic_load(&counts[F_READY]) > 0;
}

int cm_faults_dependency_dropped(const char *name)
{
    if (!name || !atomic_load(&counts[F_DROP]))
        return 0;
    int hit = 0;
    pthread_mutex_lock(&lock);
    for (const struct fault *f = faults; f && !hit; f = f->next)
        hit = f->type == F_DROP && strcmp(f->name, name) == 0;
    pthread_mutex_unlock(&lock);
    return hit;
}

static int route_matches(const char *want, const char *pattern, const char *path)
{
    return strcmp(want, "*") == 0 || strcmp(want, pattern) == 0 || strcmp(want, path) == 0;
}

void faults_for_route(const char *pattern, const char *path, int *delay_ms, int *status)
{
    if (!atomic_load_explicit(&counts[F_LATENCY], memory_order_relaxed) &&
        !atomic_load_explicit(&counts[F_ERROR], memory_order_relaxed))
        return;
    pthread_mutex_lock(&lock);
    for (const struct fault *f = faults; f; f = f->next) {
        if ((f->type != F_LATENCY && f->type != F_ERROR) || !route_matches(f->route, pattern, path))
            continue;
        uint64_t rnd = http_random_u64();
        if (f->type == F_LATENCY)
            *delay_ms += f->min_ms + (int)(rnd % (uint64_t)(f->max_ms - f->min_ms + 1));
        else if (!*status && (double)(rnd >> 11) / 9007199254740992.0 < f->rate)
            *status = f->status;
    }
    pthread_mutex_unlock(&lock);
}

/* ---- admin routes */

static void get_faults(struct cm_http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "faults", cm_faults_list());
    cm_http_reply_json(r, 200, o);
}

static void post_fault(struct cm_http_req *r)
{
    cJSON *spec = cm_http_req_json(r);
    if (!spec)
        return;
    char err[160];
    int id = cm_faults_add(spec, err, sizeof err);
    if (id < 0) {
        cm_http_reply_error(r, 400, "invalid_request", "%s", err);
        return;
    }
    cJSON *out = NULL;
    pthread_mutex_lock(&lock);
    for (const struct fault *f = faults; f && !out; f = f->next)
        if (f->id == id)
            out = fault_json(f);
    pthread_mutex_unlock(&lock);
    if (!out) { /* cleared in between */
        out = cJSON_CreateObject();
        cJSON_AddNumberToObject(out, "id", id);
    }
    cm_http_reply_json(r, 201, out);
}

static void delete_faults(struct cm_http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "cleared", cm_faults_clear());
    cm_http_reply_json(r, 200, o);
}

static void delete_fault_type(struct cm_http_req *r)
{
    int n = cm_faults_clear_type(cm_http_req_param(r, "type"));
    if (n < 0) {
        cm_http_reply_error(r, 400, "invalid_request", "unknown fault type");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "cleared", n);
    cm_http_reply_json(r, 200, o);
}

static void reply_level(struct cm_http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "level", cm_log_level_name(cm_log_get_level()));
    cm_http_reply_json(r, 200, o);
}

static void put_loglevel(struct cm_http_req *r)
{
    cJSON *body = cm_http_req_json(r);
    if (!body)
        return;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(body, "level");
    enum cm_log_level level;
    if (!cJSON_IsObject(body) || cJSON_GetArraySize(body) != 1 || !cJSON_IsString(lv) ||
        cm_log_parse_level(lv->valuestring, &level) < 0) {
        cm_http_reply_error(r, 400, "invalid_request",
                            "expected {\"level\":\"debug|info|warn|error\"}");
        return;
    }
    cm_log_set_level(level);
    reply_level(r);
}

#define ADMIN (CM_ROUTE_ADMIN | HTTP_ROUTE_BUILTIN)
const struct cm_http_route cm_faults_routes[] = {
    {"GET", "/admin/faults", get_faults, ADMIN, NULL},
    {"POST", "/admin/faults", post_fault, ADMIN | CM_ROUTE_BODY, NULL},
    {"DELETE", "/admin/faults", delete_faults, ADMIN, NULL},
    {"DELETE", "/admin/faults/{type}", delete_fault_type, ADMIN, NULL},
    {"GET", "/admin/loglevel", reply_level, ADMIN, NULL},
    {"PUT", "/admin/loglevel", put_loglevel, ADMIN | CM_ROUTE_BODY, NULL},
};
const size_t cm_faults_nroutes = sizeof cm_faults_routes / sizeof cm_faults_routes[0];
