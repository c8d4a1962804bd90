#ifndef COMMON_DB_H
#define COMMON_DB_H
/*
 * PostgreSQL access: a fixed-size connection pool, parameterized queries
 * and transactions that retry on serialization failure / deadlock.
 *
 * SQL is always a constant string with $1..$n placeholders; values travel
 * as text parameters (PQexecParams), never spliced into the SQL.
 *
 * Errors: every failing call leaves the SQLSTATE (e.g. "23505" unique
 * violation -> HTTP 409) and the server's message on the connection
 * (cm_db_sqlstate / cm_db_errmsg), or in the struct cm_db_error that
 * cm_db_tx fills, so callers branch on the code, not on message text.
 *
 * Metrics: db_pool_connections{state="in_use"|"idle"},
 * db_query_duration_seconds, db_errors_total{kind="connection"|"query"|
 * "serialization"|"timeout"}, db_tx_retries_total.
 *
 * Thread-safety: the pool is thread-safe; a struct cm_db_conn belongs to
 * the thread that acquired it until it is released.
 */
#include <libpq-fe.h>
#include <stddef.h>

#define CM_DB_UNIQUE_VIOLATION "23505"
#define CM_DB_FOREIGN_KEY_VIOLATION "23503"
#define CM_DB_CHECK_VIOLATION "23514"
#define CM_DB_SERIALIZATION_FAILURE "40001"
#define CM_DB_DEADLOCK_DETECTED "40P01"

enum cm_db_isolation {
    CM_DB_READ_COMMITTED = 0,
    CM_DB_REPEATABLE_READ,
    CM_DB_SERIALIZABLE,
};

struct cm_db_error {
    char sqlstate[6]; /* "" when the failure was not the server's (connection, timeout) */
    char message[256];
};

struct cm_db_pool_config {
    const char *url;                /* required: postgres:// URL or conninfo string */
    int max_conns;                  /* default 8 */
    int acquire_timeout_ms;         /* default 5000 */
    int connect_timeout_s;          /* default 5 */
    int statement_timeout_ms;       /* 0: server default */
    enum cm_db_isolation isolation; /* for cm_db_tx; default READ COMMITTED */
    const char *application_name;   /* optional (shows in pg_stat_activity) */
};

struct cm_db_pool;
struct cm_db_conn;

/* Validates the URL (no connection yet: connections open on demand, so a
 * service can start before its database). NULL with err on bad config.
 * Caller owns the pool. */
struct cm_db_pool *cm_db_pool_open(const struct cm_db_pool_config *cfg, char *err, size_t errlen);
/* Closes every connection; all must have been released. NULL is a no-op. */
void cm_db_pool_close(struct cm_db_pool *pool);

/* Borrows a healthy connection (broken ones are reconnected), waiting up
 * to timeout_ms (< 0: the pool's acquire_timeout_ms) for a free slot.
 * NULL on timeout or when the database is unreachable (logged). */
struct cm_db_conn *cm_db_acquire(struct cm_db_pool *pool, int timeout_ms);
/* Returns the connection. A connection left inside a transaction is rolled
 * back; a broken one is dropped and replaced later. NULL is a no-op. */
void cm_db_release(struct cm_db_pool *pool, struct cm_db_conn *c);

/* Counts for /readyz and tests. */
void cm_db_pool_stats(struct cm_db_pool *pool, int *in_use, int *idle);
/* Runs SELECT 1 on a pooled connection: 0 or -1 (readiness checks). */
int cm_db_pool_ping(struct cm_db_pool *pool);

/* Runs sql with text parameters (params[i] NULL means SQL NULL). Returns
 * the result (caller PQclear()s it) when the status is COMMAND_OK or
 * TUPLES_OK; NULL on error, with SQLSTATE and message on c. */
PGresult *cm_db_query(struct cm_db_conn *c, const char *sql, int nparams,
                      const char *const *params);
/* Like cm_db_query, through a statement prepared once per connection:
 * the first call on a pooled connection prepares sql under name, later
 * ones only bind and execute it (no parsing, analysis or planning: for hot
 * paths). name must be a string literal (kept, not copied) always paired
 * with the same sql. Up to 16 names per connection; further ones run
 * unprepared, as does a statement the session lost (SQLSTATE 26000). */
PGresult *cm_db_query_prepared(struct cm_db_conn *c, const char *name, const char *sql, int nparams,
                               const char *const *params);
/* Like cm_db_query for statements whose rows are not needed: 0 or -1;
 * *affected (may be NULL) gets PQcmdTuples as a number. */
int cm_db_exec(struct cm_db_conn *c, const char *sql, int nparams, const char *const *params,
               long *affected);

/* Last error on c: SQLSTATE ("" if none or not from the server) and text. */
const char *cm_db_sqlstate(const struct cm_db_conn *c);
const char *cm_db_errmsg(const struct cm_db_conn *c);
/* The underlying libpq connection (borrowed), for COPY, notifications... */
PGconn *cm_db_pg(struct cm_db_conn *c);

/* Transaction body: returns 0 to commit; any other value rolls back and is
 * returned by cm_db_tx (use -1 for database errors, other values for
 * business outcomes). It may run several times: keep side effects outside
 * the database (Kafka, HTTP) out of it. */
typedef int (*cm_db_tx_fn)(struct cm_db_conn *c, void *ctx);

/* Runs fn between BEGIN ISOLATION LEVEL <iso> and COMMIT on a pooled
 * connection. When fn returns -1 or COMMIT fails with SQLSTATE 40001 or
 * 40P01, or the connection was lost before COMMIT, rolls back and runs
 * again on a (new) connection, up to max_retries more times (with a short
 * jittered backoff; counted in db_tx_retries_total). A connection lost
 * during COMMIT is not retried: the outcome is unknown. Returns 0 when
 * committed, fn's nonzero value, or -1; err (may be NULL) gets the last
 * database error. cm_db_tx uses the pool's configured isolation. */
int cm_db_tx(struct cm_db_pool *pool, cm_db_tx_fn fn, void *ctx, int max_retries,
             struct cm_db_error *err);
int cm_db_tx_iso(struct cm_db_pool *pool, enum cm_db_isolation iso, cm_db_tx_fn fn, void *ctx,
                 int max_retries, struct cm_db_error *err);

/* Fault injection: while fn("postgres") returns 1, cm_db_acquire fails as
 * if the database were unreachable. NULL removes the hook. */
void cm_db_set_drop_hook(int (*fn)(const char *dep));

/* True (1) when sqlstate is 40001 or 40P01. */
int cm_db_is_retryable(const char *sqlstate);

#endif
