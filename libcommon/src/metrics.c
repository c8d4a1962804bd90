#include "common/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/banned.h"

/*
 * Layout: a family owns a singly linked list of series. Readers walk the
 * list without a lock (nodes are published with release stores and never
 * unlinked until cm_metrics_reset); writers take the family mutex only to
 * create a series. Values are doubles kept as bit patterns in atomics, so
 * an update is one CAS loop on one cache line.
 */

#define MAX_LABELS 8

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct series {
    struct series *_Atomic next;
    uint64_t hash;
    char **values;             /* nlabels strings, inside this allocation */
    _Atomic uint64_t value;    /* double bits: counter/gauge value, histogram sum */
    _Atomic uint64_t count;    /* histogram sample count */
    _Atomic uint64_t *buckets; /* histogram: nbuckets + 1 non-cumulative counts */
};

struct cm_metric {
    struct cm_metric *next;
    enum kind kind;
    char *name;
    char *help;
    char *labels; /* the declaration, for clash checks */
    size_t nlabels;
    char *label_names[MAX_LABELS];
    double *bounds;
    size_t nbounds;
    pthread_mutex_t lock; /* series creation only */
    struct series *_Atomic head;
    struct series *tail;
};

struct collector {
    struct collector *next;
    cm_metrics_collect_fn fn;
    void *ctx;
};

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const double CM_METRICS_SECONDS_BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t CM_METRICS_SECONDS_NBUCKETS = sizeof default_buckets / sizeof default_buckets[0];

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cm_metric *families;
static struct cm_metric *families_tail;
static struct collector *collectors;

static double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, double_to_bits(bits_to_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void free_family(struct cm_metric *m)
{
    struct series *s = atomic_load(&m->head);
    while (s) {
        struct series *n = atomic_load(&s->next);
        free(s);
        s = n;
    }
    pthread_mutex_destroy(&m->lock);
    free(m->name);
    free(m->help);
    free(m->labels);
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->label_names[i]);
    free(m->bounds);
    free(m);
}

/* Splits "a,b,c" into m->label_names; -1 on a bad or reserved name. */
static int parse_labels(struct cm_metric *m, const char *labels)
{
    const char *p = labels;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (m->nlabels == MAX_LABELS || n == 0 || n > 63)
            return -1;
        char name[64];
        memcpy(name, p, n);
        name[n] = '\0';
        if (!valid_name(name, 0) || strncmp(name, "__", 2) == 0)
            return -1;
        if (m->kind == KIND_HISTOGRAM && strcmp(name, "le") == 0)
            return -1;
        for (size_t i = 0; i < m->nlabels; i++)
            if (strcmp(m->label_names[i], name) == 0)
                return -1;
        if (!(m->label_names[m->nlabels] = dupstr(name)))
            return -1;
        m->nlabels++;
        p = end ? end + 1 : p + n;
        if (end && !*p)
            return -1;
    }
    return 0;
}

static int same_bounds(const struct cm_metric *m, const double *b, size_t n)
{
    if (m->nbounds != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m->bounds[i] != b[i])
            return 0;
    return 1;
}

static struct cm_metric *find_or_create(enum kind kind, const char *name, const char *help,
                                        const char *labels, const double *bounds, size_t nbounds)
{
    if (!labels)
        labels = "";
    if (kind == KIND_HISTOGRAM && !bounds) {
        bounds = default_buckets;
        nbounds = CM_METRICS_SECONDS_NBUCKETS;
    }
    if (!valid_name(name, 1)) {
        cm_logf(CM_LOG_ERROR, "metrics: invalid metric name \"%s\"", name ? name : "(null)");
        return NULL;
    }
    for (size_t i = 0; kind == KIND_HISTOGRAM && i < nbounds; i++)
        if (isnan(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            cm_logf(CM_LOG_ERROR, "metrics: %s: buckets must ascend strictly", name);
            return NULL;
        }

    struct cm_metric *m = NULL;
    pthread_mutex_lock(&registry_lock);
    for (m = families; m; m = m->next) {
        if (strcmp(m->name, name) != 0)
            continue;
        if (m->kind != kind || strcmp(m->labels, labels) != 0 ||
            (kind == KIND_HISTOGRAM && !same_bounds(m, bounds, nbounds))) {
            cm_logf(CM_LOG_ERROR, "metrics: %s registered again with another type or labels", name);
            m = NULL;
        }
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        goto out;
    m->kind = kind;
    pthread_mutex_init(&m->lock, NULL);
    m->name = dupstr(name);
    m->help = dupstr(help ? help : "");
    m->labels = dupstr(labels);
    if (!m->name || !m->help || !m->labels || parse_labels(m, labels) < 0) {
        cm_logf(CM_LOG_ERROR, "metrics: %s: invalid label names \"%s\"", name, labels);
        goto fail;
    }
    if (kind == KIND_HISTOGRAM) {
        m->bounds = malloc((nbounds ? nbounds : 1) * sizeof(double));
        if (!m->bounds)
            goto fail;
        if (nbounds)
            memcpy(m->bounds, bounds, nbounds * sizeof(double));
        m->nbounds = nbounds;
    }
    if (families_tail)
        families_tail->next = m;
    else
        families = m;
    families_tail = m;
    goto out;
fail:
    free_family(m);
    m = NULL;
out:
    pthread_mutex_unlock(&registry_lock);
    return m;
}

static struct series *resolve(struct cm_metric *m, int make, va_list ap);

/* A family without labels has exactly one series: create it now, at 0, so
 * it is exported before its first event (an error counter that has never
 * counted still reads 0, and rules over it see a series, not nothing). */
static struct cm_metric *with_series(struct cm_metric *m, ...)
{
    if (m && m->nlabels == 0) {
        va_list ap;
        va_start(ap, m);
        resolve(m, 1, ap);
        va_end(ap);
    }
    return m;
}

struct cm_metric *cm_metric_counter(const char *name, const char *help, const char *labels)
{
    return with_series(find_or_create(KIND_COUNTER, name, help, labels, NULL, 0));
}

struct cm_metric *cm_metric_gauge(const char *name, const char *help, const char *labels)
{
    return with_series(find_or_create(KIND_GAUGE, name, help, labels, NULL, 0));
}

struct cm_metric *cm_metric_histogram(const char *name, const char *help, const char *labels,
                                      const double *buckets, size_t nbuckets)
{
    return with_series(find_or_create(KIND_HISTOGRAM, name, help, labels, buckets, nbuckets));
}

static uint64_t hash_values(const char *const *v, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)v[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* separator: ("ab","") != ("a","b") */
    }
    return h;
}

static struct series *lookup(struct cm_metric *m, const char *const *v, uint64_t h)
{
    for (struct series *s = atomic_load_explicit(&m->head, memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        if (s->hash != h)
            continue;
        size_t i = 0;
        while (i < m->nlabels && strcmp(s->values[i], v[i]) == 0)
            i++;
        if (i == m->nlabels)
            return s;
    }
    return NULL;
}

static struct series *create(struct cm_metric *m, const char *const *v, uint64_t h)
{
    size_t nb = m->kind == KIND_HISTOGRAM ? m->nbounds + 1 : 0;
    size_t size =
        sizeof(struct series) + nb * sizeof(_Atomic uint64_t) + m->nlabels * sizeof(char *);
    size_t lens[MAX_LABELS];
    for (size_t i = 0; i < m->nlabels; i++) {
        lens[i] = strlen(v[i]) + 1;
        size += lens[i];
    }
    struct series *s = calloc(1, size);
    if (!s)
        return NULL;
    char *p = (char *)(s + 1);
    s->buckets = nb ? (_Atomic uint64_t *)p : NULL;
    p += nb * sizeof(_Atomic uint64_t);
    s->values = (char **)p;
    p += m->nlabels * sizeof(char *);
    for (size_t i = 0; i < m->nlabels; i++) {
        memcpy(p, v[i], lens[i]);
        s->values[i] = p;
        p += lens[i];
    }
    s->hash = h;
    atomic_store_explicit(&s->value, double_to_bits(0.0), memory_order_relaxed);
    return s;
}

/* Finds the series for the label values in ap, creating it if asked. */
static struct series *resolve(struct cm_metric *m, int make, va_list ap)
{
    const char *v[MAX_LABELS];
    for (size_t i = 0; i < m->nlabels; i++) {
        v[i] = va_arg(ap, const char *);
        if (!v[i])
            v[i] = "";
    }
    uint64_t h = hash_values(v, m->nlabels);
    struct series *s = lookup(m, v, h);
    if (s || !make)
        return s;
    pthread_mutex_lock(&m->lock);
    s = lookup(m, v, h);
    if (!s && (s = create(m, v, h)) != NULL) {
        if (m->tail)
            atomic_store_explicit(&m->tail->next, s, memory_order_release);
        else
            atomic_store_explicit(&m->head, s, memory_order_release);
        m->tail = s;
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

void cm_counter_add(struct cm_metric *m, double v, ...)
{
    if (!m || m->kind != KIND_COUNTER || !(v >= 0))
        return; /* counters only go up; NaN and negatives are dropped */
    va_list ap;
    va_start(ap, v);
    struct series *s = resolve(m, 1, ap);
    va_end(ap);
    if (s)
        atomic_add_double(&s->value, v);
}

void cm_counter_set(struct cm_metric *m, double v, ...)
{
    if (!m || m->kind != KIND_COUNTER)
        return;
    va_list ap;
    va_start(ap, v);
    struct series *s = resolve(m, 1, ap);
    va_end(ap);
    if (s)
        atomic_store_explicit(&s->value, double_to_bits(v), memory_order_relaxed);
}

void cm_gauge_set(struct cm_metric *m, double v, ...)
{
    if (!m || m->kind != KIND_GAUGE)
        return;
    va_list ap;
    va_start(ap, v);
    struct series *s = resolve(m, 1, ap);
    va_end(ap);
    if (s)
        atomic_store_explicit(&s->value, double_to_bits(v), memory_order_relaxed);
}

void cm_gauge_add(struct cm_metric *m, double v, ...)
{
    if (!m || m->kind != KIND_GAUGE)
        return;
    va_list ap;
    va_start(ap, v);
    struct series *s = resolve(m, 1, ap);
    va_end(ap);
    if (s)
        atomic_add_double(&s->value, v);
}

void cm_histogram_observe(struct cm_metric *m, double v, ...)
{
    if (!m || m->kind != KIND_HISTOGRAM || isnan(v))
        return;
    va_list ap;
    va_start(ap, v);
    struct series *s = resolve(m, 1, ap);
    va_end(ap);
    if (!s)
        return;
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&s->value, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

int cm_metric_value(struct cm_metric *m, double *out, ...)
{
    if (!m || !out)
        return -1;
    va_list ap;
    va_start(ap, out);
    struct series *s = resolve(m, 0, ap);
    va_end(ap);
    if (!s)
        return -1;
    if (m->kind == KIND_HISTOGRAM)
        *out = (double)atomic_load_explicit(&s->count, memory_order_relaxed);
    else
        *out = bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed));
    return 0;
}

void cm_metrics_on_collect(cm_metrics_collect_fn fn, void *ctx)
{
    if (!fn)
        return;
    pthread_mutex_lock(&registry_lock);
    for (struct collector *c = collectors; c; c = c->next)
        if (c->fn == fn && c->ctx == ctx)
            goto out;
    struct collector *c = malloc(sizeof *c);
    if (c) {
        c->fn = fn;
        c->ctx = ctx;
        c->next = collectors;
        collectors = c;
    }
out:
    pthread_mutex_unlock(&registry_lock);
}

/* Integers print as integers (counters stay readable to people), other
 * values as the shortest %g text that reads back to the same double. */
int cm_metrics_format_value(char *dst, size_t n, double v)
{
    if (isnan(v))
        return snprintf(dst, n, "NaN");
    if (isinf(v))
        return snprintf(dst, n, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15)
        return snprintf(dst, n, "%.0f", v);
    for (int prec = 1; prec <= 17; prec++) {
        int len = snprintf(dst, n, "%.*g", prec, v);
        if (strtod(dst, NULL) == v)
            return len;
    }
    return snprintf(dst, n, "%.17g", v);
}

/* Render state: the first failed append (buffer cap) sticks in err. */
struct rctx {
    struct cm_buf *b;
    int err;
};

static void rappend(struct rctx *r, const char *p, size_t n)
{
    if (!r->err && cm_buf_append(r->b, p, n) < 0)
        r->err = -1;
}

static void rputs(struct rctx *r, const char *s)
{
    rappend(r, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void rprintf(struct rctx *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!r->err && cm_buf_vprintf(r->b, fmt, ap) < 0)
        r->err = -1;
    va_end(ap);
}

static void escape(struct rctx *r, const char *s, int quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            rputs(r, "\\\\");
        else if (*p == '\n')
            rputs(r, "\\n");
        else if (quote && *p == '"')
            rputs(r, "\\\"");
        else
            rappend(r, p, 1);
    }
}

/* Writes {a="x",b="y"[,le="0.5"]}; nothing when there are no labels at all. */
static void put_labels(struct rctx *r, const struct cm_metric *m, const struct series *s,
                       const char *le)
{
    if (!m->nlabels && !le)
        return;
    rputs(r, "{");
    for (size_t i = 0; i < m->nlabels; i++) {
        rprintf(r, "%s%s=\"", i ? "," : "", m->label_names[i]);
        escape(r, s->values[i], 1);
        rputs(r, "\"");
    }
    if (le)
        rprintf(r, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    rputs(r, "}");
}

static void put_value(struct rctx *r, double v)
{
    char num[40];
    cm_metrics_format_value(num, sizeof num, v);
    rprintf(r, " %s\n", num);
}

static void render_family(struct rctx *r, const struct cm_metric *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    rprintf(r, "# HELP %s ", m->name);
    escape(r, m->help, 0);
    rprintf(r, "\n# TYPE %s %s\n", m->name, types[m->kind]);
    for (struct series *s = atomic_load_explicit(&m->head, memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        if (m->kind != KIND_HISTOGRAM) {
            rputs(r, m->name);
            put_labels(r, m, s, NULL);
            put_value(r, bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed)));
            continue;
        }
        /* Buckets are stored apart and summed here, so _count is read last
         * and equals the +Inf bucket even while observations race in. */
        uint64_t cum = 0;
        char le[40];
        for (size_t i = 0; i <= m->nbounds; i++) {
            cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
            if (i < m->nbounds)
                cm_metrics_format_value(le, sizeof le, m->bounds[i]);
            else
                snprintf(le, sizeof le, "+Inf");
            rprintf(r, "%s_bucket", m->name);
            put_labels(r, m, s, le);
            put_value(r, (double)cum);
        }
        rprintf(r, "%s_sum", m->name);
        put_labels(r, m, s, NULL);
        put_value(r, bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed)));
        rprintf(r, "%s_count", m->name);
        put_labels(r, m, s, NULL);
        put_value(r, (double)cum);
    }
}

int cm_metrics_render(struct cm_buf *out)
{
    /* Collectors run outside the registry lock: they register and set. */
    pthread_mutex_lock(&registry_lock);
    struct collector *cs = collectors;
    pthread_mutex_unlock(&registry_lock);
    for (struct collector *c = cs; c; c = c->next)
        c->fn(c->ctx);

    struct rctx r = {out, 0};
    pthread_mutex_lock(&registry_lock);
    for (struct cm_metric *m = families; m; m = m->next)
        render_family(&r, m);
    pthread_mutex_unlock(&registry_lock);
    return r.err;
}

void cm_metrics_reset(void)
{
    pthread_mutex_lock(&registry_lock);
    struct cm_metric *m = families;
    while (m) {
        struct cm_metric *n = m->next;
        free_family(m);
        m = n;
    }
    families = families_tail = NULL;
    struct collector *c = collectors;
    while (c) {
        struct collector *n = c->next;
        free(c);
        c = n;
    }
    collectors = NULL;
    pthread_mutex_unlock(&registry_lock);
}
