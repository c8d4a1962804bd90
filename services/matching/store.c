/*
 * Snapshots in PostgreSQL (migrations/001_snapshots.sql). Parameterized
 * SQL only; the book bytes travel as a binary bytea parameter (no hex
 * doubling of a 60 MB book), everything else as text.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/db.h"
#include "common/log.h"
#include "matching.h"
#include "common/banned.h"

static struct cm_db_pool *pool;

int store_open(const char *url)
{
    char err[256];
    struct cm_db_pool_config cfg = {.url = url, .max_conns = 3, .application_name = "matching"};
    pool = cm_db_pool_open(&cfg, err, sizeof err);
    if (!pool) {
        cm_error("matching: database: %s", err);
        return -1;
    }
    return 0;
}

void store_close(void)
{
    cm_db_pool_close(pool);
    pool = NULL;
}

int store_ping(void)
{
    return cm_db_pool_ping(pool);
}

struct put {
    const char *topic;
    const int32_t *parts;
    const int64_t *next;
    size_t nparts;
    const struct store_book *books;
    size_t nbooks;
};

static int put_tx(struct cm_db_conn *c, void *ctx)
{
    const struct put *p = ctx;
    for (size_t i = 0; i < p->nparts; i++) {
        char part[16], next[24];
        snprintf(part, sizeof part, "%" PRId32, p->parts[i]);
        snprintf(next, sizeof next, "%" PRId64, p->next[i]);
        const char *params[] = {p->topic, part, next};
        if (cm_db_exec(c,
                       "INSERT INTO matching_offsets (topic, partition, next_offset) "
                       "VALUES ($1, $2, $3) ON CONFLICT (topic, partition) DO UPDATE "
                       "SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                       3, params, NULL) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->nbooks; i++) {
        const struct store_book *b = &p->books[i];
        char part[16], seq[24];
        snprintf(part, sizeof part, "%" PRId32, b->partition);
        snprintf(seq, sizeof seq, "%" PRIu64, b->seq);
        const char *values[] = {p->topic, b->market, part, seq, (const char *)b->data};
        int lengths[] = {0, 0, 0, 0, (int)b->len};
        int formats[] = {0, 0, 0, 0, 1};
        PGresult *r =
            PQexecParams(cm_db_pg(c),
                         "INSERT INTO matching_books (topic, market, partition, seq, snapshot) "
                         "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (topic, market) DO UPDATE "
                         "SET partition = EXCLUDED.partition, seq = EXCLUDED.seq, "
                         "snapshot = EXCLUDED.snapshot, updated_at = now()",
                         5, NULL, values, lengths, formats, 0);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            cm_error("matching: snapshot of %s not written: %s", b->market,
                     PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            return -1;
    }
    mt_crash_point(MT_CRASH_SNAPSHOT);
    return 0;
}

int store_snapshot_put(const char *topic, const int32_t *parts, const int64_t *next_offsets,
                       size_t nparts, const struct store_book *books, size_t nbooks)
{
    struct put p = {topic, parts, next_offsets, nparts, books, nbooks};
    struct cm_db_error err;
    if (cm_db_tx(pool, put_tx, &p, 2, &err) != 0) {
        cm_error("matching: snapshot transaction failed: %s %s", err.sqlstate, err.message);
        return -1;
    }
    return 0;
}

int store_partition_get(const char *topic, int32_t partition, int64_t *next)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return -1;
    char part[16];
    snprintf(part, sizeof part, "%" PRId32, partition);
    const char *params[] = {topic, part};
    PGresult *r = cm_db_query(
        c, "SELECT next_offset FROM matching_offsets WHERE topic = $1 AND partition = $2", 2,
        params);
    int rc = -1;
    if (r) {
        rc = 1;
        if (PQntuples(r) == 1 && sscanf(PQgetvalue(r, 0, 0), "%" SCNd64, next) == 1)
            rc = 0;
        PQclear(r);
    } else {
        cm_error("matching: reading the offset of partition %d: %s", partition, cm_db_errmsg(c));
    }
    cm_db_release(pool, c);
    return rc;
}

int store_books_load(const char *topic, int32_t partition, store_book_fn fn, void *ctx)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return -1;
    char part[16];
    snprintf(part, sizeof part, "%" PRId32, partition);
    const char *params[] = {topic, part};
    /* Binary results: the bytea arrives as raw bytes. */
    PGresult *r = PQexecParams(cm_db_pg(c),
                               "SELECT market, partition, snapshot FROM matching_books "
                               "WHERE topic = $1 AND ($2::int < 0 OR partition = $2::int)",
                               2, NULL, params, NULL, NULL, 1);
    int rc = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        cm_error("matching: loading books: %s", PQresultErrorMessage(r));
        goto out;
    }
    rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        uint32_t be;
        if (PQgetlength(r, i, 1) != 4) {
            rc = -1;
            break;
        }
        memcpy(&be, PQgetvalue(r, i, 1), 4);
        rc = fn(ctx, PQgetvalue(r, i, 0), (int32_t)ntohl(be), (const uint8_t *)PQgetvalue(r, i, 2),
                (size_t)PQgetlength(r, i, 2));
    }
out:
    PQclear(r);
    cm_db_release(pool, c);
    return rc;
}
