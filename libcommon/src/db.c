/*
 * Parameterized statements, error capture (SQLSTATE) and transactions with
 * retry on serialization failure and deadlock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/db.h"
#include "common/log.h"
#include "common/metrics.h"
#include "db_internal.h"
#include "common/banned.h"

int cm_db_is_retryable(const char *s)
{
    return s &&
           (strcmp(s, CM_DB_SERIALIZATION_FAILURE) == 0 || strcmp(s, CM_DB_DEADLOCK_DETECTED) == 0);
}

static const char *error_kind(const char *sqlstate, int connection_bad)
{
    if (connection_bad)
        return "connection";
    if (!sqlstate || !*sqlstate)
        return "query";
    if (strcmp(sqlstate, CM_DB_SERIALIZATION_FAILURE) == 0)
        return "serialization";
    if (strcmp(sqlstate, CM_DB_DEADLOCK_DETECTED) == 0)
        return "serialization"; /* both are retryable conflicts */
    if (strcmp(sqlstate, "57014") == 0)
        return "timeout";
    return "query";
}

void cm_db_set_error_internal(struct cm_db_conn *c, const char *sqlstate, const char *msg)
{
    /* Inside a failed transaction every later statement fails with 25P02;
     * the first error is the one that explains what happened. */
    if (sqlstate && strcmp(sqlstate, "25P02") == 0 && c->sqlstate[0])
        return;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", sqlstate ? sqlstate : "");
    snprintf(c->errmsg, sizeof c->errmsg, "%s", msg ? msg : "");
    c->errmsg[strcspn(c->errmsg, "\n")] = '\0';
    if (c->errors)
        cm_counter_add(c->errors, 1, error_kind(c->sqlstate, PQstatus(c->pg) != CONNECTION_OK));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Clears the last error unless inside a failed transaction (where the
 * first error is the one that explains it). */
static void clear_error(struct cm_db_conn *c)
{
    if (PQtransactionStatus(c->pg) != PQTRANS_INERROR) {
        c->sqlstate[0] = '\0';
        c->errmsg[0] = '\0';
    }
}

/* The result when it succeeded; else records the error, frees r, NULL. */
static PGresult *finish(struct cm_db_conn *c, PGresult *r, double t0)
{
    if (c->hist)
        cm_histogram_observe(c->hist, now_s() - t0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    if (r)
        cm_db_set_error_internal(c, PQresultErrorField(r, PG_DIAG_SQLSTATE),
                                 PQresultErrorMessage(r));
    else
        cm_db_set_error_internal(c, NULL, PQerrorMessage(c->pg));
    PQclear(r);
    return NULL;
}

PGresult *cm_db_query(struct cm_db_conn *c, const char *sql, int nparams, const char *const *params)
{
    if (!c || !c->pg || !sql || nparams < 0 || (nparams > 0 && !params))
        return NULL;
    clear_error(c);
    double t0 = now_s();
    return finish(c, PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0), t0);
}

PGresult *cm_db_query_prepared(struct cm_db_conn *c, const char *name, const char *sql, int nparams,
                               const char *const *params)
{
    if (!c || !c->pg || !name || !*name || !sql || nparams < 0 || (nparams > 0 && !params))
        return NULL;
    int i = 0;
    while (i < c->nprepared && strcmp(c->prepared[i], name) != 0)
        i++;
    if (i == c->nprepared) {
        if (c->nprepared == CM_DB_PREPARED_MAX)
            return cm_db_query(c, sql, nparams, params);
        clear_error(c);
        double t0 = now_s();
        PGresult *r = finish(c, PQprepare(c->pg, name, sql, nparams, NULL), t0);
        if (!r)
            return NULL;
        PQclear(r);
        c->prepared[c->nprepared++] = name;
    }
    clear_error(c);
    double t0 = now_s();
    PGresult *r = finish(c, PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0), t0);
    if (!r && strcmp(c->sqlstate, "26000") == 0) {
        /* The session lost its prepared statements (DISCARD ALL, a
         * pooler): forget them all and run this one unprepared. */
        c->nprepared = 0;
        return cm_db_query(c, sql, nparams, params);
    }
    return r;
}

int cm_db_exec(struct cm_db_conn *c, const char *sql, int nparams, const char *const *params,
               long *affected)
{
    PGresult *r = cm_db_query(c, sql, nparams, params);
    if (!r)
        return -1;
    if (affected) {
        const char *t = PQcmdTuples(r);
        *affected = *t ? strtol(t, NULL, 10) : 0;
    }
    PQclear(r);
    return 0;
}

const char *cm_db_sqlstate(const struct cm_db_conn *c)
{
    return c ? c->sqlstate : "";
}
const char *cm_db_errmsg(const struct cm_db_conn *c)
{
    return c ? c->errmsg : "";
}
PGconn *cm_db_pg(struct cm_db_conn *c)
{
    return c ? c->pg : NULL;
}

static const char *begin_sql(enum cm_db_isolation iso)
{
    switch (iso) {
    case CM_DB_SERIALIZABLE: return "BEGIN ISOLATION LEVEL SERIALIZABLE";
    case CM_DB_REPEATABLE_READ: return "BEGIN ISOLATION LEVEL REPEATABLE READ";
    default: return "BEGIN ISOLATION LEVEL READ COMMITTED";
    }
}

static void backoff(int attempt)
{
    int ms = 5 << (attempt < 5 ? attempt : 5); /* 5, 10, 20 ... 160 ms */
    ms += rand() % (ms + 1);                   /* jitter: conflicting peers spread out */
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int cm_db_tx_iso(struct cm_db_pool *pool, enum cm_db_isolation iso, cm_db_tx_fn fn, void *ctx,
                 int max_retries, struct cm_db_error *err)
{
    struct cm_metric *retries =
        cm_metric_counter("db_tx_retries_total",
                          "Transactions retried after a serialization failure or deadlock.", NULL);
    if (err)
        memset(err, 0, sizeof *err);
    for (int attempt = 0;; attempt++) {
        struct cm_db_conn *c = cm_db_acquire(pool, -1);
        if (!c) {
            if (err)
                snprintf(err->message, sizeof err->message, "no database connection");
            return -1;
        }
        int rc = cm_db_exec(c, begin_sql(iso), 0, NULL, NULL), committing = 0;
        if (rc == 0) {
            rc = fn(c, ctx);
            if (rc == 0) {
                committing = 1;
                if (cm_db_exec(c, "COMMIT", 0, NULL, NULL) != 0)
                    rc = -1;
            }
        }
        /* A connection lost before COMMIT was sent left nothing behind, so
         * running again is safe; lost during COMMIT, the outcome is unknown
         * and the caller must decide. */
        int lost = rc == -1 && !committing && PQstatus(c->pg) != CONNECTION_OK;
        char state[6], msg[256];
        snprintf(state, sizeof state, "%s", c->sqlstate);
        snprintf(msg, sizeof msg, "%s", c->errmsg);
        cm_db_release(pool, c); /* rolls back whatever is still open */
        if (rc == 0)
            return 0;
        if (rc == -1 && (cm_db_is_retryable(state) || lost) && attempt < max_retries) {
            cm_counter_add(retries, 1);
            backoff(attempt);
            continue;
        }
        if (err) {
            snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state);
            snprintf(err->message, sizeof err->message, "%s", msg);
        }
        return rc;
    }
}

int cm_db_tx(struct cm_db_pool *pool, cm_db_tx_fn fn, void *ctx, int max_retries,
             struct cm_db_error *err)
{
    return cm_db_tx_iso(pool, cm_db_pool_isolation_internal(pool), fn, ctx, max_retries, err);
}
