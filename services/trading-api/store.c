/*
 * trading-api's PostgreSQL and Redis access. Every SQL statement is a
 * constant with $n parameters; handlers never see libpq.
 *
 * Idempotency of POST /v1/orders: order_requests holds one row per (user,
 * client_order_id) with the order id taken when the key is first seen.
 * Concurrent identical requests find the same id; the commit transaction
 * locks that row, so exactly one order (and one outbox row) is written,
 * and the wallet's hold, idempotent by order id, happens once.
 * store_internal_order takes the same lock before it declares an order
 * that does not exist abandoned, so the wallet never releases the hold of
 * an order that is being committed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/db.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/migrate.h"
#include "common/redis.h"
#include "trading.h"
#include "common/banned.h"

static struct cm_db_pool *pool;
static struct cm_redis *redis;

/* ---- prepared statements ------------------------------------------------
 *
 * The statements of the order path (reserve, place, read one order), the
 * read model (one statement per batch of events) and the relay are parsed and
 * planned once per connection, not on every call: parse/plan was a large
 * part of PostgreSQL's CPU per order (bench/trading.sh with
 * TRADING_BENCH_PGSS=1, perf). libcommon's cm_db_query is PQexecParams
 * (the unnamed statement, parsed each time), so these run through libpq on
 * the pooled connection (cm_db_pg), outside transactions only, and feed
 * libcommon's series (db_query_duration_seconds, db_errors_total{kind}).
 *
 * Which connection has which statement: a table of (PGconn, backend pid)
 * -> bit set. A reconnected slot has another backend, so it prepares
 * again; should a statement still be missing (SQLSTATE 26000), it is
 * prepared and run once more. */
enum {
    SQL_RESERVE,
    SQL_PLACE,
    SQL_ORDER_GET,
    SQL_ORDER_EVENT,
    SQL_TRADE,
    SQL_APPLY_EVENTS,
    SQL_APPLY_TRADES,
    SQL_APPLY_BOTH,
    SQL_OUTBOX_TAKE,
    SQL_OUTBOX_PUBLISHED,
    SQL_COUNT
};

struct stmt {
    const char *name, *sql;
    int nparams;
};
static const struct stmt stmts[SQL_COUNT];

#define PREP_SLOTS 320
static struct {
    const PGconn *pg;
    int pid;
    unsigned prepared; /* bit per statement */
} prep[PREP_SLOTS];
static pthread_mutex_t prep_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cm_metric *m_db_hist, *m_db_errors;

static unsigned *prep_bits(PGconn *pg)
{
    int pid = PQbackendPID(pg);
    size_t free_slot = PREP_SLOTS;
    for (size_t i = 0; i < PREP_SLOTS; i++) {
        if (prep[i].pg == pg && prep[i].pid == pid)
            return &prep[i].prepared;
        if (prep[i].pg == pg || (!prep[i].pg && free_slot == PREP_SLOTS))
            free_slot = i; /* the slot's earlier backend, or an empty one */
    }
    if (free_slot == PREP_SLOTS)
        return NULL;
    prep[free_slot].pg = pg;
    prep[free_slot].pid = pid;
    prep[free_slot].prepared = 0;
    return &prep[free_slot].prepared;
}

static int is_prepared(PGconn *pg, int id)
{
    pthread_mutex_lock(&prep_mu);
    unsigned *b = prep_bits(pg);
    int yes = b && (*b & (1u << id));
    pthread_mutex_unlock(&prep_mu);
    return yes;
}

static void set_prepared(PGconn *pg, int id, int yes)
{
    pthread_mutex_lock(&prep_mu);
    unsigned *b = prep_bits(pg);
    if (b)
        *b = yes ? (*b | (1u << id)) : (*b & ~(1u << id));
    pthread_mutex_unlock(&prep_mu);
}

static int prepare(PGconn *pg, int id)
{
    PGresult *r = PQprepare(pg, stmts[id].name, stmts[id].sql, stmts[id].nparams, NULL);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        cm_error("trading-api: cannot prepare %s: %s", stmts[id].name,
                 r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
    PQclear(r);
    if (ok)
        set_prepared(pg, id, 1);
    return ok ? 0 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int result_ok(const PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Runs statement id with text parameters on c: like cm_db_query (the
 * result, caller PQclear()s; NULL on error, logged and counted). Inside a
 * transaction it is cm_db_query (a failed EXECUTE would abort it). */
static PGresult *run(struct cm_db_conn *c, int id, const char *const *params)
{
    PGconn *pg = cm_db_pg(c);
    if (!pg || PQtransactionStatus(pg) != PQTRANS_IDLE)
        return cm_db_query(c, stmts[id].sql, stmts[id].nparams, params);
    double t0 = now_s();
    if (!is_prepared(pg, id) && prepare(pg, id) < 0)
        return cm_db_query(c, stmts[id].sql, stmts[id].nparams, params);
    PGresult *r = PQexecPrepared(pg, stmts[id].name, stmts[id].nparams, params, NULL, NULL, 0);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!result_ok(r) && state && strcmp(state, "26000") == 0) {
        /* Not there after all (the table was wrong about this backend). */
        PQclear(r);
        set_prepared(pg, id, 0);
        if (prepare(pg, id) < 0)
            return NULL;
        r = PQexecPrepared(pg, stmts[id].name, stmts[id].nparams, params, NULL, NULL, 0);
        state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    }
    cm_histogram_observe(m_db_hist, now_s() - t0);
    if (result_ok(r))
        return r;
    const char *kind = PQstatus(pg) != CONNECTION_OK ? "connection"
                       : !state                      ? "query"
                       : strcmp(state, CM_DB_SERIALIZATION_FAILURE) == 0 ||
                               strcmp(state, CM_DB_DEADLOCK_DETECTED) == 0
                           ? "serialization"
                       : strcmp(state, "57014") == 0 ? "timeout"
                                                     : "query";
    cm_counter_add(m_db_errors, 1, kind);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
    msg[strcspn(msg, "\n")] = 0;
    cm_warn("trading-api: %s failed: %s %s", stmts[id].name, state ? state : "", msg);
    PQclear(r);
    return NULL;
}

int store_open(const char *url, const char *migrations_dir, int npool)
{
    char err[256];
    if (cm_migrate_run(url, migrations_dir, "trading-api", NULL) < 0)
        return -1;
    struct cm_db_pool_config pc = {.url = url,
                                   .max_conns = npool,
                                   .acquire_timeout_ms = 2000,
                                   .statement_timeout_ms = 5000,
                                   .application_name = "trading-api"};
    pool = cm_db_pool_open(&pc, err, sizeof err);
    /* The pool registered these families; same names, same series. */
    m_db_hist = cm_metric_histogram("db_query_duration_seconds",
                                    "PostgreSQL query duration, seconds.", NULL, NULL, 0);
    m_db_errors = cm_metric_counter(
        "db_errors_total", "PostgreSQL errors by kind (connection, query, serialization, timeout).",
        "kind");
    if (!pool) {
        cm_error("trading-api: database: %s", err);
        return -1;
    }
    struct cm_redis_config rc = {.url = trading_cfg.redis_url,
                                 .connect_timeout_ms = 200,
                                 .command_timeout_ms = 200,
                                 .pool_size = 8};
    redis = cm_redis_open(&rc, err, sizeof err);
    if (!redis) {
        cm_error("trading-api: redis: %s", err);
        return -1;
    }
    return 0;
}

void store_close(void)
{
    cm_db_pool_close(pool);
    pool = NULL;
    cm_redis_close(redis);
    redis = NULL;
}

int store_ping(void)
{
    return cm_db_pool_ping(pool);
}

static int64_t i64(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void str(PGresult *r, int row, int col, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

int store_load_markets(struct market *out, size_t max, size_t *n)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return ST_ERR;
    PGresult *r = cm_db_query(c,
                              "SELECT symbol, base, quote, base_scale, quote_scale, tick, lot, "
                              "min_qty, max_qty, min_price, max_price, band_bps, status "
                              "FROM markets ORDER BY symbol",
                              0, NULL);
    cm_db_release(pool, c);
    if (!r)
        return ST_ERR;
    *n = 0;
    for (int i = 0; i < PQntuples(r) && *n < max; i++) {
        struct market *m = &out[(*n)++];
        memset(m, 0, sizeof *m);
        str(r, i, 0, m->symbol, sizeof m->symbol);
        str(r, i, 1, m->base, sizeof m->base);
        str(r, i, 2, m->quote, sizeof m->quote);
        m->base_scale = (int)i64(r, i, 3);
        m->quote_scale = (int)i64(r, i, 4);
        m->tick = i64(r, i, 5);
        m->lot = i64(r, i, 6);
        m->min_qty = i64(r, i, 7);
        m->max_qty = i64(r, i, 8);
        m->min_price = i64(r, i, 9);
        m->max_price = i64(r, i, 10);
        m->band_bps = (int)i64(r, i, 11);
        m->trading = strcmp(PQgetvalue(r, i, 12), "trading") == 0;
    }
    PQclear(r);
    return ST_OK;
}

#define ORDER_COLS                                                                                 \
    "id, user_id, client_order_id, market, side, type, time_in_force, post_only, stp, price, "     \
    "quantity, quote_amount, status, reject_reason, end_reason, filled_quantity, filled_quote, "   \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "                \
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define TERMINAL_STATUSES "('filled', 'cancelled', 'expired', 'rejected')"

/* A batch of one event (common at a steady pace: one fetch, one event)
 * takes these smaller statements, the ones from before the batches: for a
 * single row the batch statements take about twice their execution time.
 * ADVANCE_CTE advances applied_seq (market $1, stream, seq $2) unless it
 * is there already; the effect of the same statement reads it. */
#define ADVANCE_CTE(stream)                                                                        \
    "WITH a AS (INSERT INTO applied_seq (market, stream, seq) VALUES ($1, '" stream "', "          \
    "$2::bigint) ON CONFLICT (market, stream) DO UPDATE SET seq = EXCLUDED.seq "                   \
    "WHERE applied_seq.seq < EXCLUDED.seq RETURNING 1) "

/* The read model's batch (store_apply_batch) is one statement, so one
 * transaction: order events and trades as parallel arrays in arrival
 * order, each (market, stream) strictly increasing in seq (the caller
 * drops the rest: a one-by-one apply would skip them too). Events only,
 * trades only, or both: three statements from the same parts, so a batch
 * of one kind does not pay for the other's.
 *  - ADVANCE: per (market, stream) the batch's highest seq advances
 *    applied_seq; prev_seq returns the seq before it (read and written
 *    under the row lock of the upsert). No row back: nothing is new.
 *  - An event applies when its seq is above prev_seq: exactly the events a
 *    one-by-one apply would not skip.
 *  - EV_APPLY folds each order's applied events in arrival order into one
 *    source row (UPDATE ... FROM with two rows for one target would take
 *    either one): nothing after the first terminal event counts; the
 *    status is the last one that is not "open" ("open" only moves a
 *    pending order), the fills the last ones given, the reason the
 *    terminal event's. Then one UPDATE, skipping finished orders.
 *  - TR_APPLY inserts the applied trades; TR_APPLIED is their 1-based
 *    positions (for the SSE feed). */
#define EV_ROWS(mk, seq, id, st, fq, fqt, why)                                                     \
    "ev AS (SELECT * FROM unnest(" mk "::text[], " seq "::bigint[], " id "::bigint[], " st         \
    "::text[], " fq "::bigint[], " fqt "::bigint[], " why "::text[]) WITH ORDINALITY "             \
    "AS e(market, seq, order_id, status, fq, fqt, reason, n))"
#define TR_ROWS(mk, seq, id, ts, tsus, price, qty, quote, side, taker, maker)                      \
    "tr AS (SELECT * FROM unnest(" mk "::text[], " seq "::bigint[], " id "::text[], " ts           \
    "::text[], " tsus "::bigint[], " price "::bigint[], " qty "::bigint[], " quote                 \
    "::bigint[], " side "::text[], " taker "::bigint[], " maker "::bigint[]) WITH ORDINALITY "     \
    "AS t(market, seq, id, ts, ts_us, price, qty, quote, side, taker, maker, n))"
#define ADVANCE(rows)                                                                              \
    "a AS (INSERT INTO applied_seq AS s (market, stream, seq) SELECT market, stream, max(seq) "    \
    "FROM (" rows ") x GROUP BY market, stream ORDER BY market, stream "                           \
    "ON CONFLICT (market, stream) DO UPDATE SET prev_seq = s.seq, seq = EXCLUDED.seq "             \
    "WHERE s.seq < EXCLUDED.seq RETURNING market, stream, prev_seq)"
#define EV_APPLY                                                                                   \
    "c AS (SELECT ev.*, min(n) FILTER (WHERE status IN " TERMINAL_STATUSES ") "                    \
    "  OVER (PARTITION BY order_id) AS last_n FROM ev "                                            \
    "  JOIN a ON a.market = ev.market AND a.stream = 'events' "                                    \
    "  WHERE ev.seq > a.prev_seq AND order_id IS NOT NULL AND status IS NOT NULL), "               \
    "f AS (SELECT order_id, "                                                                      \
    "  COALESCE((array_agg(status ORDER BY n DESC) FILTER (WHERE status <> 'open'))[1], "          \
    "    'open') AS status, "                                                                      \
    "  (array_agg(fq ORDER BY n DESC) FILTER (WHERE fq IS NOT NULL))[1] AS fq, "                   \
    "  (array_agg(fqt ORDER BY n DESC) FILTER (WHERE fqt IS NOT NULL))[1] AS fqt, "                \
    "  (array_agg(reason ORDER BY n DESC))[1] AS reason "                                          \
    "  FROM c WHERE last_n IS NULL OR n <= last_n GROUP BY order_id), "                            \
    "u AS (UPDATE orders o SET status = CASE "                                                     \
    "  WHEN f.status = 'open' AND o.status <> 'pending' THEN o.status ELSE f.status END, "         \
    "  filled_quantity = COALESCE(f.fq, o.filled_quantity), "                                      \
    "  filled_quote = COALESCE(f.fqt, o.filled_quote), "                                           \
    "  reject_reason = CASE WHEN f.status = 'rejected' THEN f.reason ELSE o.reject_reason END, "   \
    "  end_reason = CASE WHEN f.status IN ('cancelled', 'expired') THEN f.reason "                 \
    "    ELSE o.end_reason END, updated_at = now() "                                               \
    "  FROM f WHERE o.id = f.order_id AND o.status NOT IN " TERMINAL_STATUSES ")"
#define TR_APPLY                                                                                   \
    "trn AS (SELECT tr.* FROM tr JOIN a ON a.market = tr.market AND a.stream = 'trades' "          \
    "  WHERE tr.seq > a.prev_seq), "                                                               \
    "t AS (INSERT INTO trades (market, seq, id, ts, ts_us, price, quantity, quote_amount, "        \
    "  taker_side, taker_order_id, maker_order_id) "                                               \
    "  SELECT market, seq, id, ts, ts_us, price, qty, quote, side, taker, maker FROM trn "         \
    "  ON CONFLICT DO NOTHING)"
#define TR_APPLIED "COALESCE((SELECT array_agg(n ORDER BY n) FROM trn), '{}')"

static const struct stmt stmts[SQL_COUNT] = {
    [SQL_RESERVE] = {"trading_reserve",
                     "INSERT INTO order_requests (user_id, client_order_id, order_id, "
                     "fingerprint) VALUES ($1, $2, nextval('order_id_seq'), $3) "
                     "ON CONFLICT (user_id, client_order_id) DO NOTHING "
                     "RETURNING order_id",
                     3},
    /* Lock the reservation if it is still ours, insert the order, and the
     * outbox row with the next outbox id spliced into the command's id. */
    [SQL_PLACE] =
        {"trading_place",
         "WITH req AS (SELECT 1 FROM order_requests WHERE user_id = $2 AND client_order_id = $3 "
         "  AND order_id = $1::bigint AND NOT abandoned FOR UPDATE), "
         "ins AS (INSERT INTO orders (id, user_id, client_order_id, market, side, type, "
         "  time_in_force, post_only, stp, price, quantity, quote_amount) "
         "  SELECT $1::bigint, $2, $3, $4, $5, $6, $7, $8::boolean, $9, $10::bigint, "
         "  $11::bigint, $12::bigint FROM req ON CONFLICT DO NOTHING RETURNING " ORDER_COLS "), "
         "ob AS (INSERT INTO outbox (id, market, payload) "
         "  SELECT s.n, $4, replace($13, '\"id\":\"trading-api:@\"', "
         "    '\"id\":\"trading-api:' || s.n || '\"') "
         "  FROM ins, LATERAL (SELECT nextval('outbox_id_seq') AS n) s) "
         "SELECT * FROM ins",
         13},
    [SQL_ORDER_GET] = {"trading_order_get",
                       "SELECT " ORDER_COLS " FROM orders WHERE id = $1::bigint "
                       "AND ($2::text IS NULL OR user_id = $2)",
                       2},
    /* One event alone: the effect runs only if the seq moved. $3 NULL: only
     * the seq moves (a rejected cancel, cancel_all). Returns the trades
     * applied, as the batch statements do: none. */
    [SQL_ORDER_EVENT] =
        {"trading_order_event",
         ADVANCE_CTE(
             "events") ", u AS (UPDATE orders SET status = CASE "
                       "  WHEN $4 = 'open' AND status <> 'pending' THEN status ELSE $4 END, "
                       "filled_quantity = COALESCE($5::bigint, filled_quantity), "
                       "filled_quote = COALESCE($6::bigint, filled_quote), "
                       "reject_reason = CASE WHEN $4 = 'rejected' THEN $7 ELSE "
                       "reject_reason END, "
                       "end_reason = CASE WHEN $4 IN ('cancelled', 'expired') THEN $7 ELSE "
                       "end_reason END, updated_at = now() "
                       "WHERE id = $3::bigint AND EXISTS (SELECT 1 FROM a) "
                       "AND status NOT IN " TERMINAL_STATUSES ") "
                       "SELECT '{}'::bigint[]",
         7},
    /* One trade alone: returns {1} when applied now, {} when seen before. */
    [SQL_TRADE] = {"trading_trade",
                   ADVANCE_CTE("trades") ", t AS (INSERT INTO trades (market, seq, id, ts, ts_us, "
                                         "price, quantity, quote_amount, taker_side, "
                                         "taker_order_id, maker_order_id) SELECT $1, $2::bigint, "
                                         "$3, $4, $5::bigint, $6::bigint, $7::bigint, $8::bigint, "
                                         "$9, $10::bigint, $11::bigint FROM a "
                                         "ON CONFLICT DO NOTHING) "
                                         "SELECT CASE WHEN EXISTS (SELECT 1 FROM a) "
                                         "THEN '{1}'::bigint[] ELSE '{}' END",
                   11},
    [SQL_APPLY_EVENTS] =
        {"trading_apply_events",
         "WITH " EV_ROWS("$1", "$2", "$3", "$4", "$5", "$6", "$7") ", " ADVANCE(
             "SELECT market, 'events' AS stream, seq FROM ev") ", " EV_APPLY
                                                               " SELECT '{}'::bigint[]",
         7},
    [SQL_APPLY_TRADES] = {"trading_apply_trades",
                          "WITH " TR_ROWS("$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9",
                                          "$10",
                                          "$11") ", " ADVANCE("SELECT market, 'trades' AS stream, "
                                                              "seq FROM tr") ", " TR_APPLY
                                                                             " SELECT " TR_APPLIED,
                          11},
    [SQL_APPLY_BOTH] = {"trading_apply_both",
                        "WITH " EV_ROWS("$1", "$2", "$3", "$4", "$5", "$6", "$7") ", " TR_ROWS(
                            "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16", "$17",
                            "$18") ", " ADVANCE("SELECT market, 'events' AS stream, seq FROM ev "
                                                "UNION ALL SELECT market, 'trades', seq FROM "
                                                "tr") ", " EV_APPLY ", " TR_APPLY
                                                      " SELECT " TR_APPLIED,
                        18},
    /* Marks the previous batch's acknowledged rows ($2) published and
     * takes the next unpublished rows, counting the attempt, in one
     * statement; attempts as they were before it. Not in id order
     * (RETURNING): store_outbox_fetch sorts. */
    [SQL_OUTBOX_TAKE] = {"trading_outbox_take",
                         "WITH p AS (UPDATE outbox SET published_at = now() "
                         "WHERE id = ANY($2::bigint[])) "
                         "UPDATE outbox o SET attempts = o.attempts + 1 FROM "
                         "(SELECT id FROM outbox WHERE published_at IS NULL "
                         "AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1::int) n "
                         "WHERE o.id = n.id "
                         "RETURNING o.id, o.market, o.payload, o.attempts - 1",
                         2},
    [SQL_OUTBOX_PUBLISHED] = {"trading_outbox_published",
                              "UPDATE outbox SET published_at = now() "
                              "WHERE id = ANY($1::bigint[])",
                              1},
};

static void row_of(PGresult *r, int i, struct order_row *o)
{
    memset(o, 0, sizeof *o);
    o->id = (uint64_t)i64(r, i, 0);
    str(r, i, 1, o->user_id, sizeof o->user_id);
    str(r, i, 2, o->client_order_id, sizeof o->client_order_id);
    str(r, i, 3, o->market, sizeof o->market);
    o->side = strcmp(PQgetvalue(r, i, 4), "sell") == 0 ? SIDE_SELL : SIDE_BUY;
    o->type = strcmp(PQgetvalue(r, i, 5), "market") == 0 ? OT_MARKET : OT_LIMIT;
    const char *tif = PQgetvalue(r, i, 6);
    o->tif = strcmp(tif, "IOC") == 0 ? TIF_IOC : strcmp(tif, "FOK") == 0 ? TIF_FOK : TIF_GTC;
    o->post_only = PQgetvalue(r, i, 7)[0] == 't';
    str(r, i, 8, o->stp, sizeof o->stp);
    o->has_price = !PQgetisnull(r, i, 9);
    o->price = i64(r, i, 9);
    o->has_qty = !PQgetisnull(r, i, 10);
    o->qty = i64(r, i, 10);
    o->has_quote = !PQgetisnull(r, i, 11);
    o->quote = i64(r, i, 11);
    str(r, i, 12, o->status, sizeof o->status);
    str(r, i, 13, o->reject_reason, sizeof o->reject_reason);
    str(r, i, 14, o->end_reason, sizeof o->end_reason);
    o->filled_qty = i64(r, i, 15);
    o->filled_quote = i64(r, i, 16);
    str(r, i, 17, o->created_at, sizeof o->created_at);
    str(r, i, 18, o->updated_at, sizeof o->updated_at);
}

/* ---- reservations and placement ---------------------------------------- */

int store_reserve(const char *user, const char *coid, const char *fp, uint64_t *order_id,
                  char *fp_out, size_t fpsz)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return ST_ERR;
    int rc = ST_ERR;
    const char *p[] = {user, coid, fp};
    PGresult *r = run(c, SQL_RESERVE, p);
    if (!r)
        goto done;
    if (PQntuples(r) == 1) {
        *order_id = (uint64_t)i64(r, 0, 0);
        rc = ST_OK;
        goto done;
    }
    PQclear(r);
    /* The key exists: renew it if the wallet abandoned it, else report it. */
    r = cm_db_query(c,
                    "UPDATE order_requests SET order_id = nextval('order_id_seq'), "
                    "fingerprint = $3, abandoned = false, created_at = now() "
                    "WHERE user_id = $1 AND client_order_id = $2 AND abandoned "
                    "RETURNING order_id",
                    3, p);
    if (!r)
        goto done;
    if (PQntuples(r) == 1) {
        *order_id = (uint64_t)i64(r, 0, 0);
        rc = ST_OK;
        goto done;
    }
    PQclear(r);
    r = cm_db_query(c,
                    "SELECT order_id, fingerprint FROM order_requests "
                    "WHERE user_id = $1 AND client_order_id = $2",
                    2, p);
    if (!r || PQntuples(r) != 1)
        goto done;
    *order_id = (uint64_t)i64(r, 0, 0);
    str(r, 0, 1, fp_out, fpsz);
    rc = ST_EXISTS;
done:
    PQclear(r);
    cm_db_release(pool, c);
    return rc;
}

void store_unreserve(const char *user, const char *coid, uint64_t order_id)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return;
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, order_id);
    const char *p[] = {user, coid, id};
    cm_db_exec(c,
               "DELETE FROM order_requests WHERE user_id = $1 AND client_order_id = $2 "
               "AND order_id = $3 AND NOT EXISTS (SELECT 1 FROM orders WHERE id = $3)",
               3, p, NULL);
    cm_db_release(pool, c);
}

static int next_outbox_id(struct cm_db_conn *c, char *event_id, size_t n, char *id, size_t idn)
{
    PGresult *r = cm_db_query(c, "SELECT nextval('outbox_id_seq')", 0, NULL);
    if (!r)
        return -1;
    snprintf(id, idn, "%s", PQgetvalue(r, 0, 0));
    snprintf(event_id, n, "trading-api:%s", id);
    PQclear(r);
    return 0;
}

static int insert_outbox(struct cm_db_conn *c, const char *id, const char *market,
                         const char *payload)
{
    const char *p[] = {id, market, payload};
    return cm_db_exec(c, "INSERT INTO outbox (id, market, payload) VALUES ($1, $2, $3)", 3, p,
                      NULL);
}

struct place_ctx {
    const struct order_req *o;
    const char *user, *fp;
    uint64_t order_id;
    struct order_row *row;
};

static int place_tx(struct cm_db_conn *c, void *ctx)
{
    struct place_ctx *pc = ctx;
    const struct order_req *o = pc->o;
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, pc->order_id);
    const char *k[] = {pc->user, o->client_order_id, id, pc->fp};
    PGresult *r = cm_db_query(c,
                              "SELECT order_id, abandoned FROM order_requests "
                              "WHERE user_id = $1 AND client_order_id = $2 FOR UPDATE",
                              2, k);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    int mine = found && (uint64_t)i64(r, 0, 0) == pc->order_id && PQgetvalue(r, 0, 1)[0] == 'f';
    PQclear(r);
    if (found && !mine)
        return ST_ABANDONED;
    if (!found) {
        /* A concurrent twin gave the key up after a refusal: take it back. */
        long n = 0;
        if (cm_db_exec(c,
                       "INSERT INTO order_requests (user_id, client_order_id, order_id, "
                       "fingerprint) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                       4, k, &n) < 0)
            return -1;
        if (n != 1)
            return ST_ABANDONED;
    }
    char price[24], qty[24], quote[24];
    snprintf(price, sizeof price, "%lld", (long long)o->price);
    snprintf(qty, sizeof qty, "%lld", (long long)o->qty);
    snprintf(quote, sizeof quote, "%lld", (long long)o->quote);
    const char *p[] = {id,
                       pc->user,
                       o->client_order_id,
                       o->m->symbol,
                       side_name(o->side),
                       type_name(o->type),
                       tif_name(o->tif),
                       o->post_only ? "true" : "false",
                       o->stp,
                       o->has_price ? price : NULL,
                       o->has_qty ? qty : NULL,
                       o->has_quote ? quote : NULL};
    PGresult *r2 = cm_db_query(c,
                               "INSERT INTO orders (id, user_id, client_order_id, market, side, "
                               "type, time_in_force, post_only, stp, price, quantity, "
                               "quote_amount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                               "$11, $12) ON CONFLICT DO NOTHING RETURNING " ORDER_COLS,
                               12, p);
    if (!r2)
        return -1;
    int inserted = PQntuples(r2) == 1;
    if (inserted)
        row_of(r2, 0, pc->row);
    PQclear(r2);
    if (!inserted)
        return ST_EXISTS;
    char event_id[48], oid[24];
    if (next_outbox_id(c, event_id, sizeof event_id, oid, sizeof oid) < 0)
        return -1;
    char *payload = place_command_json(o, pc->user, pc->order_id, event_id);
    int rc = payload ? insert_outbox(c, oid, o->m->symbol, payload) : -1;
    free(payload);
    return rc;
}

/* The common case in one statement (SQL_PLACE: one round trip, no
 * BEGIN/COMMIT). 1 placed, 0 anything else (the transaction below sorts it
 * out), -1 error. */
static int place_fast(const struct order_req *o, const char *user, uint64_t order_id,
                      struct order_row *out)
{
    char id[24], price[24], qty[24], quote[24];
    snprintf(id, sizeof id, "%" PRIu64, order_id);
    snprintf(price, sizeof price, "%lld", (long long)o->price);
    snprintf(qty, sizeof qty, "%lld", (long long)o->qty);
    snprintf(quote, sizeof quote, "%lld", (long long)o->quote);
    char *payload = place_command_json(o, user, order_id, "trading-api:@");
    if (!payload)
        return -1;
    const char *p[] = {id,
                       user,
                       o->client_order_id,
                       o->m->symbol,
                       side_name(o->side),
                       type_name(o->type),
                       tif_name(o->tif),
                       o->post_only ? "true" : "false",
                       o->stp,
                       o->has_price ? price : NULL,
                       o->has_qty ? qty : NULL,
                       o->has_quote ? quote : NULL,
                       payload};
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c) {
        free(payload);
        return -1;
    }
    PGresult *r = run(c, SQL_PLACE, p);
    cm_db_release(pool, c);
    free(payload);
    if (!r)
        return -1;
    int placed = PQntuples(r) == 1;
    if (placed)
        row_of(r, 0, out);
    PQclear(r);
    return placed;
}

int store_place(const struct order_req *o, const char *user, uint64_t order_id, const char *fp,
                struct order_row *out)
{
    int fast = place_fast(o, user, order_id, out);
    if (fast == 1)
        return ST_OK;
    struct place_ctx pc = {.o = o, .user = user, .fp = fp, .order_id = order_id, .row = out};
    struct cm_db_error err;
    int rc = cm_db_tx(pool, place_tx, &pc, 2, &err);
    if (rc < 0)
        cm_error("trading-api: placing order %" PRIu64 " failed: %s %s", order_id, err.sqlstate,
                 err.message);
    return rc;
}

/* ---- reading orders ---------------------------------------------------- */

int store_order_get(uint64_t id, const char *user, struct order_row *out)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return ST_ERR;
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRIu64, id);
    const char *p[] = {ids, user};
    PGresult *r = run(c, SQL_ORDER_GET, p);
    cm_db_release(pool, c);
    if (!r)
        return ST_ERR;
    int rc = PQntuples(r) == 1 ? ST_OK : ST_NONE;
    if (rc == ST_OK)
        row_of(r, 0, out);
    PQclear(r);
    return rc;
}

static int terminal(const char *status)
{
    return strcmp(status, "filled") == 0 || strcmp(status, "cancelled") == 0 ||
           strcmp(status, "expired") == 0 || strcmp(status, "rejected") == 0;
}

struct cancel_ctx {
    uint64_t id;
    const char *user, *market;
    struct order_row *row;
    long open_orders;
};

static int cancel_tx(struct cm_db_conn *c, void *ctx)
{
    struct cancel_ctx *cc = ctx;
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRIu64, cc->id);
    const char *p[] = {ids, cc->user};
    PGresult *r = cm_db_query(
        c, "SELECT " ORDER_COLS " FROM orders WHERE id = $1 AND user_id = $2 FOR UPDATE", 2, p);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ST_NONE;
    }
    row_of(r, 0, cc->row);
    PQclear(r);
    if (terminal(cc->row->status))
        return ST_CONFLICT;
    char event_id[48], oid[24];
    if (next_outbox_id(c, event_id, sizeof event_id, oid, sizeof oid) < 0)
        return -1;
    char *payload = cancel_command_json(cc->row->market, cc->user, cc->id, event_id);
    int rc = payload ? insert_outbox(c, oid, cc->row->market, payload) : -1;
    free(payload);
    return rc;
}

int store_cancel(uint64_t id, const char *user, struct order_row *out)
{
    struct cancel_ctx cc = {.id = id, .user = user, .row = out};
    return cm_db_tx(pool, cancel_tx, &cc, 2, NULL);
}

static int cancel_all_tx(struct cm_db_conn *c, void *ctx)
{
    struct cancel_ctx *cc = ctx;
    const char *p[] = {cc->user, cc->market};
    PGresult *r = cm_db_query(c,
                              "SELECT count(*) FROM orders WHERE user_id = $1 AND market = $2 "
                              "AND status IN ('pending', 'open', 'partially_filled')",
                              2, p);
    if (!r)
        return -1;
    cc->open_orders = (long)i64(r, 0, 0);
    PQclear(r);
    char event_id[48], oid[24];
    if (next_outbox_id(c, event_id, sizeof event_id, oid, sizeof oid) < 0)
        return -1;
    char *payload = cancel_command_json(cc->market, cc->user, 0, event_id);
    int rc = payload ? insert_outbox(c, oid, cc->market, payload) : -1;
    free(payload);
    return rc;
}

int store_cancel_all(const char *market, const char *user, long *open_orders)
{
    struct cancel_ctx cc = {.user = user, .market = market};
    int rc = cm_db_tx(pool, cancel_all_tx, &cc, 2, NULL);
    *open_orders = cc.open_orders;
    return rc;
}

int store_orders_list(const char *user, const char *market, const char *status, uint64_t before_id,
                      int limit, struct order_row **rows, size_t *n)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return ST_ERR;
    char before[24], lim[16];
    snprintf(before, sizeof before, "%" PRIu64, before_id);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {user, market, status, before, lim};
    PGresult *r = cm_db_query(
        c,
        "SELECT " ORDER_COLS " FROM orders WHERE user_id = $1 "
        "AND ($2::text IS NULL OR market = $2) "
        "AND ($3::text IS NULL OR status = $3 "
        "     OR ($3 = 'active' AND status IN ('pending', 'open', 'partially_filled')) "
        "     OR ($3 = 'closed' AND status IN ('filled', 'cancelled', 'expired', 'rejected'))) "
        "AND ($4::bigint = 0 OR id < $4::bigint) ORDER BY id DESC LIMIT $5::int",
        5, p);
    cm_db_release(pool, c);
    if (!r)
        return ST_ERR;
    *n = (size_t)PQntuples(r);
    *rows = calloc(*n ? *n : 1, sizeof **rows);
    if (!*rows) {
        PQclear(r);
        return ST_ERR;
    }
    for (size_t i = 0; i < *n; i++)
        row_of(r, (int)i, &(*rows)[i]);
    PQclear(r);
    return ST_OK;
}

int store_internal_order(uint64_t id, struct order_row *out)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return ST_ERR;
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRIu64, id);
    const char *p[] = {ids};
    int rc = ST_ERR;
    PGresult *r = NULL;
    if (cm_db_exec(c, "BEGIN", 0, NULL, NULL) < 0)
        goto done;
    /* Wait for a placement holding the key (it locks this row first). */
    r = cm_db_query(c, "SELECT 1 FROM order_requests WHERE order_id = $1 FOR UPDATE", 1, p);
    if (!r)
        goto done;
    PQclear(r);
    r = cm_db_query(c, "SELECT " ORDER_COLS " FROM orders WHERE id = $1", 1, p);
    if (!r)
        goto done;
    if (PQntuples(r) == 1) {
        row_of(r, 0, out);
        rc = ST_OK;
    } else if (cm_db_exec(c, "UPDATE order_requests SET abandoned = true WHERE order_id = $1", 1, p,
                          NULL) == 0) {
        rc = ST_NONE;
    }
    if (rc != ST_ERR && cm_db_exec(c, "COMMIT", 0, NULL, NULL) < 0)
        rc = ST_ERR;
done:
    PQclear(r);
    cm_db_release(pool, c); /* rolls back what was left open */
    return rc;
}

/* ---- outbox ------------------------------------------------------------ */

#define RELAY_LOCK_KEY "7413001"

int store_relay_lock(struct cm_db_conn **out)
{
    struct cm_db_conn *c = cm_db_acquire(pool, 1000);
    if (!c)
        return -1;
    PGresult *r = cm_db_query(c, "SELECT pg_try_advisory_lock(" RELAY_LOCK_KEY ")", 0, NULL);
    int got = r && PQgetvalue(r, 0, 0)[0] == 't';
    int rc = r ? got : -1;
    PQclear(r);
    if (got)
        *out = c;
    else
        cm_db_release(pool, c);
    return rc;
}

void store_relay_unlock(struct cm_db_conn *c)
{
    if (!c)
        return;
    cm_db_exec(c, "SELECT pg_advisory_unlock(" RELAY_LOCK_KEY ")", 0, NULL, NULL);
    cm_db_release(pool, c);
}

static int by_id(const void *a, const void *b)
{
    const struct outbox_row *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* "{1,2,3}": ids as a PostgreSQL bigint[] literal (caller frees), or NULL. */
static char *id_array(const int64_t *ids, size_t n)
{
    struct cm_buf b;
    cm_buf_init(&b, 0);
    cm_buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++)
        cm_buf_printf(&b, "%s%lld", i ? "," : "", (long long)ids[i]);
    cm_buf_puts(&b, "}");
    size_t len;
    return cm_buf_detach(&b, &len);
}

int store_outbox_fetch(struct cm_db_conn *c, int max, const int64_t *published, size_t npublished,
                       struct outbox_row **rows, size_t *n)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", max);
    char *done = id_array(published, npublished);
    if (!done)
        return -1;
    const char *p[] = {lim, done};
    PGresult *r = run(c, SQL_OUTBOX_TAKE, p);
    free(done);
    if (!r)
        return -1;
    *n = (size_t)PQntuples(r);
    *rows = calloc(*n ? *n : 1, sizeof **rows);
    if (!*rows) {
        PQclear(r);
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        struct outbox_row *o = &(*rows)[i];
        o->id = i64(r, (int)i, 0);
        str(r, (int)i, 1, o->market, sizeof o->market);
        o->payload = strdup(PQgetvalue(r, (int)i, 2));
        o->attempts = (int)i64(r, (int)i, 3);
        if (!o->payload) {
            PQclear(r);
            store_outbox_free(*rows, i);
            return -1;
        }
    }
    PQclear(r);
    qsort(*rows, *n, sizeof **rows, by_id);
    return 0;
}

void store_outbox_free(struct outbox_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        free(rows[i].payload);
    free(rows);
}

int store_outbox_mark(struct cm_db_conn *c, const int64_t *ids, size_t n, enum outbox_mark m)
{
    if (n == 0)
        return 0;
    char *arr = id_array(ids, n);
    const char *p[] = {arr};
    int rc = -1;
    if (arr && m == MARK_PUBLISHED) {
        PGresult *r = run(c, SQL_OUTBOX_PUBLISHED, p);
        rc = r ? 0 : -1;
        PQclear(r);
    } else if (arr) {
        rc = cm_db_exec(c, "UPDATE outbox SET attempts = 0 WHERE id = ANY($1::bigint[])", 1, p,
                        NULL);
    }
    free(arr);
    return rc;
}

int store_outbox_stats(long *pending, double *oldest_age_s)
{
    struct cm_db_conn *c = cm_db_acquire(pool, 500);
    if (!c)
        return -1;
    PGresult *r =
        cm_db_query(c,
                    "SELECT count(*), COALESCE((EXTRACT(EPOCH FROM now() - min(created_at)) "
                    "* 1000)::bigint, 0) FROM outbox WHERE published_at IS NULL",
                    0, NULL);
    cm_db_release(pool, c);
    if (!r)
        return -1;
    *pending = (long)i64(r, 0, 0);
    *oldest_age_s = (double)i64(r, 0, 1) / 1000.0;
    PQclear(r);
    return 0;
}

/* ---- read model -------------------------------------------------------- */

/* Array literals for the batch statement: bigint[] "{1,NULL,3}" and text[]
 * with every element quoted ("{\"a\",NULL}", '"' and '\' escaped). The
 * values are the events' own (ids, timestamps, reasons): they travel as
 * parameters, never as SQL. Each returns 0 or -1 (buffer): one element
 * missing would shift its array against the others, so any failure drops
 * the whole statement. */
static int arr_put(struct cm_buf *b, size_t i, const char *s)
{
    return cm_buf_puts(b, i ? "," : "{") < 0 || cm_buf_puts(b, s) < 0 ? -1 : 0;
}

static int arr_i64(struct cm_buf *b, size_t i, int64_t v)
{
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)v);
    return arr_put(b, i, n);
}

static int arr_text(struct cm_buf *b, size_t i, const char *s)
{
    if (!s)
        return arr_put(b, i, "NULL");
    if (arr_put(b, i, "\"") < 0)
        return -1;
    for (const char *p = s; *p; p++)
        if (((*p == '"' || *p == '\\') && cm_buf_append(b, "\\", 1) < 0) ||
            cm_buf_append(b, p, 1) < 0)
            return -1;
    return cm_buf_puts(b, "\"");
}

/* A decimal id already checked by the caller (parse_uint_id, <= INT64_MAX). */
static int arr_id(struct cm_buf *b, size_t i, const char *id)
{
    return arr_put(b, i, id ? id : "NULL");
}

enum { EV_MARKET, EV_SEQ, EV_ORDER, EV_STATUS, EV_FQ, EV_FQT, EV_REASON, EV_N };
enum {
    TR_MARKET,
    TR_SEQ,
    TR_ID,
    TR_TS,
    TR_TSUS,
    TR_PRICE,
    TR_QTY,
    TR_QUOTE,
    TR_SIDE,
    TR_TAKER,
    TR_MAKER,
    TR_N
};

/* Whether seq is above every earlier one of its (market, stream) in the
 * batch, remembering it: one (market, max seq) slot per market seen. */
struct seq_max {
    const char *market;
    int64_t seq;
};

static int newer(struct seq_max *t, size_t *n, const char *market, int64_t seq)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(t[i].market, market) != 0)
            continue;
        if (seq <= t[i].seq)
            return 0;
        t[i].seq = seq;
        return 1;
    }
    t[*n].market = market;
    t[(*n)++].seq = seq;
    return 1;
}

/* The parameters of SQL_ORDER_EVENT / SQL_TRADE for one event into p
 * (numbers formatted into buf); returns the statement. */
static int one_event(const struct order_event *x, char (*buf)[24], const char **p)
{
    int change = x->order_id && x->status; /* else only the seq moves */
    snprintf(buf[0], sizeof buf[0], "%lld", (long long)x->seq);
    snprintf(buf[1], sizeof buf[1], "%lld", (long long)x->filled_qty);
    snprintf(buf[2], sizeof buf[2], "%lld", (long long)x->filled_quote);
    const char *v[EV_N] = {x->market,
                           buf[0],
                           change ? x->order_id : NULL,
                           change ? x->status : NULL,
                           x->has_filled ? buf[1] : NULL,
                           x->has_filled ? buf[2] : NULL,
                           x->reason};
    memcpy(p, v, sizeof v);
    return SQL_ORDER_EVENT;
}

static int one_trade(const struct trade_event *x, char (*buf)[24], const char **p)
{
    const int64_t n[] = {x->seq, x->ts_us, x->price, x->qty, x->quote};
    for (size_t i = 0; i < 5; i++)
        snprintf(buf[i], sizeof buf[i], "%lld", (long long)n[i]);
    const char *v[TR_N] = {x->market,        buf[0], x->id,  x->ts,         buf[1],
                           buf[2],           buf[3], buf[4], x->taker_side, x->taker_order_id,
                           x->maker_order_id};
    memcpy(p, v, sizeof v);
    return SQL_TRADE;
}

/* The whole batch is one statement (SQL_APPLY_*), hence one transaction
 * and one round trip: the seqs and the effects commit together or not at
 * all. An event at or below an earlier one of its (market, stream) in the
 * batch is dropped here (applied one by one, it would be skipped). */
int store_apply_batch(const struct order_event *ev, size_t nev, const struct trade_event *tr,
                      size_t ntr, unsigned char *trade_applied)
{
    struct cm_buf a[EV_N + TR_N];
    for (size_t k = 0; k < EV_N + TR_N; k++)
        cm_buf_init(&a[k], 0);
    struct cm_buf *e = a, *t = a + EV_N;
    struct seq_max *seen = calloc(nev + ntr + 1, sizeof *seen);
    size_t *pos = calloc(ntr + 1, sizeof *pos); /* array position -> index in tr */
    size_t nseen = 0, ke = 0, kt = 0, last_e = 0;
    int bad = !seen || !pos;
    for (size_t i = 0; !bad && i < nev; i++) {
        const struct order_event *x = &ev[i];
        if (!newer(seen, &nseen, x->market, x->seq))
            continue;
        int change = x->order_id && x->status; /* else only the seq moves */
        bad |= arr_text(&e[EV_MARKET], ke, x->market);
        bad |= arr_i64(&e[EV_SEQ], ke, x->seq);
        bad |= arr_id(&e[EV_ORDER], ke, change ? x->order_id : NULL);
        bad |= arr_text(&e[EV_STATUS], ke, change ? x->status : NULL);
        if (x->has_filled) {
            bad |= arr_i64(&e[EV_FQ], ke, x->filled_qty);
            bad |= arr_i64(&e[EV_FQT], ke, x->filled_quote);
        } else {
            bad |= arr_put(&e[EV_FQ], ke, "NULL");
            bad |= arr_put(&e[EV_FQT], ke, "NULL");
        }
        bad |= arr_text(&e[EV_REASON], ke, x->reason);
        last_e = i;
        ke++;
    }
    size_t nev_seen = nseen;
    for (size_t i = 0; !bad && i < ntr; i++) {
        const struct trade_event *x = &tr[i];
        /* trades have their own seq stream: slots after the events' */
        size_t n2 = nseen - nev_seen;
        int fresh = newer(seen + nev_seen, &n2, x->market, x->seq);
        nseen = nev_seen + n2;
        if (!fresh)
            continue;
        bad |= arr_text(&t[TR_MARKET], kt, x->market);
        bad |= arr_i64(&t[TR_SEQ], kt, x->seq);
        bad |= arr_text(&t[TR_ID], kt, x->id);
        bad |= arr_text(&t[TR_TS], kt, x->ts);
        bad |= arr_i64(&t[TR_TSUS], kt, x->ts_us);
        bad |= arr_i64(&t[TR_PRICE], kt, x->price);
        bad |= arr_i64(&t[TR_QTY], kt, x->qty);
        bad |= arr_i64(&t[TR_QUOTE], kt, x->quote);
        bad |= arr_text(&t[TR_SIDE], kt, x->taker_side);
        bad |= arr_id(&t[TR_TAKER], kt, x->taker_order_id);
        bad |= arr_id(&t[TR_MAKER], kt, x->maker_order_id);
        pos[kt++] = i;
    }
    const char *p[EV_N + TR_N];
    for (size_t k = 0; k < EV_N + TR_N; k++) {
        bad |= cm_buf_puts(&a[k], a[k].len ? "}" : "{}");
        p[k] = a[k].data;
    }
    memset(trade_applied, 0, ntr);
    int rc = ST_ERR;
    if (!bad && ke == 0 && kt == 0) {
        rc = ST_OK; /* only duplicates of each other: nothing to do */
        goto done;
    }
    int id = ke && kt ? SQL_APPLY_BOTH : ke ? SQL_APPLY_EVENTS : SQL_APPLY_TRADES;
    char one[6][24];
    if (ke + kt == 1)
        id = ke ? one_event(&ev[last_e], one, p) : one_trade(&tr[pos[0]], one, p + EV_N);
    struct cm_db_conn *c = bad ? NULL : cm_db_acquire(pool, -1);
    PGresult *r = c ? run(c, id, id == SQL_APPLY_TRADES || id == SQL_TRADE ? p + EV_N : p) : NULL;
    cm_db_release(pool, c);
    if (r) {
        /* "{1,3}": the array positions of the applied trades, 1-based. */
        for (const char *q = PQgetvalue(r, 0, 0); *q;) {
            char *end;
            long long n = strtoll(q, &end, 10);
            if (end == q) {
                q++;
                continue;
            }
            if (n >= 1 && (unsigned long long)n <= kt)
                trade_applied[pos[n - 1]] = 1;
            q = end;
        }
        rc = ST_OK;
    }
    PQclear(r);
done:
    for (size_t k = 0; k < EV_N + TR_N; k++)
        cm_buf_release(&a[k]);
    free(seen);
    free(pos);
    return rc;
}

/* ---- market data ------------------------------------------------------- */

static int trades_query(const char *sql, const char *market, int64_t seq, int limit,
                        struct trade_row **rows, size_t *n);

int store_trades_list(const char *market, int64_t before_seq, int limit, struct trade_row **rows,
                      size_t *n)
{
    return trades_query("SELECT seq, ts_us, price, quantity, quote_amount, id, ts, "
                        "taker_side FROM trades WHERE market = $1 "
                        "AND ($2::bigint = 0 OR seq < $2::bigint) "
                        "ORDER BY seq DESC LIMIT $3::int",
                        market, before_seq, limit, rows, n);
}

int store_trades_after(const char *market, int64_t after_seq, int limit, struct trade_row **rows,
                       size_t *n)
{
    return trades_query("SELECT seq, ts_us, price, quantity, quote_amount, id, ts, "
                        "taker_side FROM trades WHERE market = $1 AND seq > $2::bigint "
                        "ORDER BY seq LIMIT $3::int",
                        market, after_seq, limit, rows, n);
}

static int trades_query(const char *sql, const char *market, int64_t seq, int limit,
                        struct trade_row **rows, size_t *n)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return ST_ERR;
    char before[24], lim[16];
    snprintf(before, sizeof before, "%lld", (long long)seq);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {market, before, lim};
    PGresult *r = cm_db_query(c, sql, 3, p);
    cm_db_release(pool, c);
    if (!r)
        return ST_ERR;
    *n = (size_t)PQntuples(r);
    *rows = calloc(*n ? *n : 1, sizeof **rows);
    if (!*rows) {
        PQclear(r);
        return ST_ERR;
    }
    for (size_t i = 0; i < *n; i++) {
        struct trade_row *t = &(*rows)[i];
        t->seq = i64(r, (int)i, 0);
        t->ts_us = i64(r, (int)i, 1);
        t->price = i64(r, (int)i, 2);
        t->qty = i64(r, (int)i, 3);
        t->quote = i64(r, (int)i, 4);
        str(r, (int)i, 5, t->id, sizeof t->id);
        str(r, (int)i, 6, t->ts, sizeof t->ts);
        str(r, (int)i, 7, t->taker_side, sizeof t->taker_side);
    }
    PQclear(r);
    return ST_OK;
}

int store_trades_range(const char *market, int64_t from_us, int64_t to_us, size_t max,
                       struct trade_pt **pts, size_t *n)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return ST_ERR;
    char from[24], to[24], lim[24];
    snprintf(from, sizeof from, "%lld", (long long)from_us);
    snprintf(to, sizeof to, "%lld", (long long)to_us);
    snprintf(lim, sizeof lim, "%zu", max);
    const char *p[] = {market, from, to, lim};
    PGresult *r = cm_db_query(c,
                              "SELECT ts_us, price, quantity, quote_amount FROM trades "
                              "WHERE market = $1 AND ts_us >= $2::bigint AND ts_us < $3::bigint "
                              "ORDER BY ts_us, seq LIMIT $4::bigint",
                              4, p);
    cm_db_release(pool, c);
    if (!r)
        return ST_ERR;
    *n = (size_t)PQntuples(r);
    *pts = calloc(*n ? *n : 1, sizeof **pts);
    if (!*pts) {
        PQclear(r);
        return ST_ERR;
    }
    for (size_t i = 0; i < *n; i++) {
        struct trade_pt *t = &(*pts)[i];
        int64_t us = i64(r, (int)i, 0);
        t->ts_ms = us >= 0 ? us / 1000 : -((-us + 999) / 1000);
        t->price = i64(r, (int)i, 1);
        t->qty = i64(r, (int)i, 2);
        t->quote = i64(r, (int)i, 3);
    }
    PQclear(r);
    return ST_OK;
}

int store_user_blocked(const char *user)
{
    char key[64];
    snprintf(key, sizeof key, "risk:blocked:%s", user);
    char *val = NULL;
    size_t len = 0;
    int rc = cm_redis_get(redis, key, &val, &len);
    free(val);
    if (rc < 0) {
        /* Risk's pre-trade check also refuses blocked users; the Redis key
         * is the fast path, so an outage of Redis does not stop trading. */
        cm_warn("trading-api: redis unavailable, block check skipped for user %s", user);
        return 0;
    }
    return rc == 1;
}
