#ifndef COMMON_DB_INTERNAL_H
#define COMMON_DB_INTERNAL_H
/* Shared by db.c and db_pool.c; not a public API. */
#include <libpq-fe.h>

#include "common/db.h"
#include "common/metrics.h"

#define CM_DB_PREPARED_MAX 16

struct cm_db_conn {
    PGconn *pg; /* NULL: slot not connected */
    /* Statements prepared on pg by cm_db_query_prepared (the callers'
     * name literals); emptied whenever pg is (re)connected. */
    const char *prepared[CM_DB_PREPARED_MAX];
    int nprepared;
    int in_use;       /* borrowed (or being connected) */
    char sqlstate[6]; /* last error, "" if none */
    char errmsg[256];
    struct cm_metric *hist;   /* db_query_duration_seconds */
    struct cm_metric *errors; /* db_errors_total{kind} */
};

enum cm_db_isolation cm_db_pool_isolation_internal(const struct cm_db_pool *pool);

/* Records an error on c (sqlstate may be NULL) and counts it by kind. */
void cm_db_set_error_internal(struct cm_db_conn *c, const char *sqlstate, const char *msg);

#endif
