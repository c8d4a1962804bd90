/*
 * Fixed-size PostgreSQL connection pool. Slots connect on demand; a slot
 * whose connection broke (server restart, pg_terminate_backend, network)
 * is detected when borrowed or returned and reconnected on next use.
 * Connecting happens outside the pool lock, so a slow database delays only
 * the thread that needs the new connection.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/db.h"
#include "common/log.h"
#include "common/metrics.h"
#include "db_internal.h"
#include "common/banned.h"

struct cm_db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cm_db_conn *slots;
    int max;
    int acquire_timeout_ms;
    enum cm_db_isolation isolation;
    /* PQconnectdbParams arguments; strings owned */
    const char *keys[6];
    const char *values[6];
    char *url, *app, *options, *connect_timeout;
    struct cm_metric *conns;
    struct cm_metric *errors;
    struct cm_metric *hist;
};

static int (*_Atomic drop_hook)(const char *dep);

void cm_db_set_drop_hook(int (*fn)(const char *dep))
{
    drop_hook = fn;
}

enum cm_db_isolation cm_db_pool_isolation_internal(const struct cm_db_pool *pool)
{
    return pool->isolation;
}

static char *dup_long(const char *prefix, long v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s%ld", prefix, v);
    return strdup(buf);
}

struct cm_db_pool *cm_db_pool_open(const struct cm_db_pool_config *cfg, char *err, size_t errlen)
{
    char *perr = NULL;
    if (!cfg || !cfg->url || !*cfg->url) {
        if (err)
            snprintf(err, errlen, "database url is required");
        return NULL;
    }
    PQconninfoOption *opts = PQconninfoParse(cfg->url, &perr);
    if (!opts) {
        if (err)
            snprintf(err, errlen, "database url is invalid: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(opts);
    if (cfg->max_conns < 0 || cfg->max_conns > 1000 || cfg->acquire_timeout_ms < 0 ||
        cfg->connect_timeout_s < 0 || cfg->statement_timeout_ms < 0 ||
        (unsigned)cfg->isolation > CM_DB_SERIALIZABLE) {
        if (err)
            snprintf(err, errlen, "database pool: a setting is out of range");
        return NULL;
    }

    struct cm_db_pool *p = calloc(1, sizeof *p);
    if (!p)
        goto oom;
    p->max = cfg->max_conns ? cfg->max_conns : 8;
    p->acquire_timeout_ms = cfg->acquire_timeout_ms ? cfg->acquire_timeout_ms : 5000;
    p->isolation = cfg->isolation;
    p->slots = calloc((size_t)p->max, sizeof *p->slots);
    p->url = strdup(cfg->url);
    p->connect_timeout = dup_long("", cfg->connect_timeout_s ? cfg->connect_timeout_s : 5);
    if (!p->slots || !p->url || !p->connect_timeout)
        goto oom;
    int n = 0;
    p->keys[n] = "dbname";
    p->values[n++] = p->url;
    p->keys[n] = "connect_timeout";
    p->values[n++] = p->connect_timeout;
    if (cfg->application_name && *cfg->application_name) {
        if (!(p->app = strdup(cfg->application_name)))
            goto oom;
        p->keys[n] = "application_name";
        p->values[n++] = p->app;
    }
    if (cfg->statement_timeout_ms) {
        if (!(p->options = dup_long("-c statement_timeout=", cfg->statement_timeout_ms)))
            goto oom;
        p->keys[n] = "options";
        p->values[n++] = p->options;
    }
    p->keys[n] = NULL;
    p->values[n] = NULL;

    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->conns = cm_metric_gauge("db_pool_connections",
                               "PostgreSQL pool connections by state (in_use, idle).", "state");
    p->errors = cm_metric_counter(
        "db_errors_total", "PostgreSQL errors by kind (connection, query, serialization, timeout).",
        "kind");
    p->hist = cm_metric_histogram("db_query_duration_seconds",
                                  "PostgreSQL query duration, seconds.", NULL, NULL, 0);
    cm_gauge_add(p->conns, 0, "in_use");
    cm_gauge_add(p->conns, 0, "idle");
    /* Every kind exported from the start, so alerts see 0, not no data. */
    static const char *const kinds[] = {"connection", "query", "serialization", "timeout"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        cm_counter_add(p->errors, 0, kinds[i]);
    return p;
oom:
    if (err)
        snprintf(err, errlen, "database pool: out of memory");
    if (p) {
        free(p->slots);
        free(p->url);
        free(p->connect_timeout);
        free(p->app);
        free(p->options);
        free(p);
    }
    return NULL;
}

void cm_db_pool_close(struct cm_db_pool *p)
{
    if (!p)
        return;
    int idle = 0;
    for (int i = 0; i < p->max; i++) {
        if (p->slots[i].in_use)
            cm_log_kv(CM_LOG_ERROR, "database pool closed with a connection in use",
                      (const char *)NULL);
        if (p->slots[i].pg) {
            idle += !p->slots[i].in_use;
            PQfinish(p->slots[i].pg);
        }
    }
    cm_gauge_add(p->conns, -idle, "idle");
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p->url);
    free(p->connect_timeout);
    free(p->app);
    free(p->options);
    free(p);
}

/* A connection that looks fine to libpq may have been closed by the server
 * while idle (restart, pg_terminate_backend: a FATAL message, then EOF). An
 * idle pooled connection has nothing to read, so anything readable on its
 * socket means it is no longer usable; replacing it loses nothing. */
static int healthy(PGconn *pg)
{
    if (PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) != PQTRANS_IDLE)
        return 0;
    struct pollfd pf = {.fd = PQsocket(pg), .events = POLLIN};
    if (pf.fd < 0)
        return 0;
    int n = poll(&pf, 1, 0);
    return n == 0;
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Server notices go to the debug log instead of stderr. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    char m[512];
    snprintf(m, sizeof m, "%s", msg);
    m[strcspn(m, "\n")] = '\0';
    cm_log_kv(CM_LOG_DEBUG, "postgres notice", "notice", m, (const char *)NULL);
}

struct cm_db_conn *cm_db_acquire(struct cm_db_pool *p, int timeout_ms)
{
    int (*hook)(const char *) = drop_hook;
    if (hook && hook("postgres") == 1) {
        cm_counter_add(p->errors, 1, "connection");
        return NULL;
    }
    struct timespec dl;
    deadline_after(&dl, timeout_ms < 0 ? p->acquire_timeout_ms : timeout_ms);
    struct cm_db_conn *c = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct cm_db_conn *empty = NULL;
        for (int i = 0; i < p->max && !c; i++) {
            if (p->slots[i].in_use)
                continue;
            if (p->slots[i].pg)
                c = &p->slots[i];
            else if (!empty)
                empty = &p->slots[i];
        }
        if (!c)
            c = empty;
        if (c)
            break;
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->mu);
            cm_counter_add(p->errors, 1, "timeout");
            cm_log_kv(CM_LOG_WARN, "database pool exhausted: acquire timed out",
                      (const char *)NULL);
            return NULL;
        }
    }
    c->in_use = 1;
    pthread_mutex_unlock(&p->mu);

    if (c->pg) {
        cm_gauge_add(p->conns, -1, "idle");
        if (!healthy(c->pg)) {
            cm_log_kv(CM_LOG_WARN, "database connection broken; reconnecting", "error",
                      PQerrorMessage(c->pg), (const char *)NULL);
            cm_counter_add(p->errors, 1, "connection");
            PQfinish(c->pg);
            c->pg = NULL;
        }
    }
    if (!c->pg) {
        c->pg = PQconnectdbParams(p->keys, p->values, 1);
        if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
            msg[strcspn(msg, "\n")] = '\0';
            cm_log_kv(CM_LOG_ERROR, "database connect failed", "error", msg, (const char *)NULL);
            cm_counter_add(p->errors, 1, "connection");
            PQfinish(c->pg);
            c->pg = NULL;
            pthread_mutex_lock(&p->mu);
            c->in_use = 0;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        PQsetNoticeProcessor(c->pg, on_notice, NULL);
        c->nprepared = 0; /* a new session has no prepared statements */
    }
    c->sqlstate[0] = '\0';
    c->errmsg[0] = '\0';
    c->hist = p->hist;
    c->errors = p->errors;
    cm_gauge_add(p->conns, 1, "in_use");
    return c;
}

void cm_db_release(struct cm_db_pool *p, struct cm_db_conn *c)
{
    if (!c)
        return;
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK) {
        PGTransactionStatusType ts = PQtransactionStatus(c->pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            PGresult *r = PQexec(c->pg, "ROLLBACK");
            PQclear(r);
            ts = PQtransactionStatus(c->pg);
        }
        if (ts != PQTRANS_IDLE) { /* a result still pending: not reusable */
            PQfinish(c->pg);
            c->pg = NULL;
        }
    } else if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    cm_gauge_add(p->conns, -1, "in_use");
    if (c->pg)
        cm_gauge_add(p->conns, 1, "idle");
    pthread_mutex_lock(&p->mu);
    c->in_use = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void cm_db_pool_stats(struct cm_db_pool *p, int *in_use, int *idle)
{
    int u = 0, i = 0;
    pthread_mutex_lock(&p->mu);
    for (int k = 0; k < p->max; k++) {
        u += p->slots[k].in_use;
        i += !p->slots[k].in_use && p->slots[k].pg;
    }
    pthread_mutex_unlock(&p->mu);
    if (in_use)
        *in_use = u;
    if (idle)
        *idle = i;
}

int cm_db_pool_ping(struct cm_db_pool *p)
{
    struct cm_db_conn *c = cm_db_acquire(p, -1);
    if (!c)
        return -1;
    int rc = cm_db_exec(c, "SELECT 1", 0, NULL, NULL);
    cm_db_release(p, c);
    return rc;
}
