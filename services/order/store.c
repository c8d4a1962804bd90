/*
 * The order service's PostgreSQL store (common/db.h pool; parameterized
 * SQL only). Status changes write their event to the outbox in the same
 * transaction, so an event exists if and only if its change committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db.h"
#include "common/log.h"
#include "common/migrate.h"
#include "order.h"
#include "common/banned.h"

static struct cm_db_pool *g_pool;
/* The relay's own connection (a pool of one): it holds the session
 * advisory lock that makes it the only relay across replicas. Used only by
 * the relay thread. */
static struct cm_db_pool *g_relay_pool;
static struct cm_db_conn *g_relay_conn;

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define ORDER_COLS                                                                                 \
    "id, user_id, status, total_cents, shipping_address::text, " TS("created_at") ", " TS(         \
        "updated_at") ", request_fingerprint"

int store_open(const char *url, const char *migrations_dir, int conns)
{
    if (cm_migrate_run(url, migrations_dir, "order", NULL) < 0)
        return -1;
    struct cm_db_pool_config cfg = {.url = url,
                                    .max_conns = conns,
                                    .acquire_timeout_ms = 5000,
                                    .statement_timeout_ms = 10000,
                                    .application_name = "order"};
    char err[256];
    g_pool = cm_db_pool_open(&cfg, err, sizeof err);
    cfg.max_conns = 1;
    cfg.application_name = "order-relay";
    g_relay_pool = g_pool ? cm_db_pool_open(&cfg, err, sizeof err) : NULL;
    if (!g_pool || !g_relay_pool) {
        cm_error("order: database pool: %s", err);
        cm_db_pool_close(g_pool);
        g_pool = NULL;
        return -1;
    }
    return 0;
}

void store_close(void)
{
    store_relay_release();
    cm_db_pool_close(g_relay_pool);
    g_relay_pool = NULL;
    cm_db_pool_close(g_pool);
    g_pool = NULL;
}

int store_ping(void)
{
    return cm_db_pool_ping(g_pool);
}

void order_release(struct order *o)
{
    free(o->shipping_address);
    o->shipping_address = NULL;
}

static int64_t i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int row_order(const PGresult *res, int row, struct order *o)
{
    o->id = i64(res, row, 0);
    snprintf(o->user_id, sizeof o->user_id, "%s", PQgetvalue(res, row, 1));
    int st = status_parse(PQgetvalue(res, row, 2));
    o->status = st < 0 ? ST_PENDING : (enum order_status)st;
    o->total_cents = i64(res, row, 3);
    o->shipping_address = strdup(PQgetvalue(res, row, 4));
    snprintf(o->created_at, sizeof o->created_at, "%s", PQgetvalue(res, row, 5));
    snprintf(o->updated_at, sizeof o->updated_at, "%s", PQgetvalue(res, row, 6));
    snprintf(o->fingerprint, sizeof o->fingerprint, "%s", PQgetvalue(res, row, 7));
    o->nitems = 0;
    return o->shipping_address ? 0 : -1;
}

static void row_item(const PGresult *res, int row, struct order_item *it)
{
    it->product_id = i64(res, row, 0);
    snprintf(it->name, sizeof it->name, "%s", PQgetvalue(res, row, 1));
    it->quantity = i64(res, row, 2);
    it->unit_price_cents = i64(res, row, 3);
    it->line_total_cents = i64(res, row, 4);
}

/* Loads one order (by the WHERE of sql, one parameter) with its items. */
static int load_order(struct cm_db_conn *c, const char *sql, int np, const char *const *p,
                      struct order *out)
{
    memset(out, 0, sizeof *out);
    PGresult *res = cm_db_query(c, sql, np, p);
    if (!res)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    int rc = row_order(res, 0, out);
    PQclear(res);
    if (rc < 0)
        return -1;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)out->id);
    const char *p1[1] = {id};
    res = cm_db_query(c,
                      "SELECT product_id, name, quantity, unit_price_cents, line_total_cents"
                      " FROM order_items WHERE order_id = $1::bigint ORDER BY line",
                      1, p1);
    if (!res) {
        order_release(out);
        return -1;
    }
    for (int i = 0; i < PQntuples(res) && out->nitems < ORDER_MAX_ITEMS; i++)
        row_item(res, i, &out->items[out->nitems++]);
    PQclear(res);
    return 0;
}

int store_next_order_id(int64_t *id)
{
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    PGresult *res = cm_db_query(c, "SELECT nextval('orders_id_seq')", 0, NULL);
    int rc = -1;
    if (res) {
        *id = i64(res, 0, 0);
        PQclear(res);
        rc = 0;
    }
    cm_db_release(g_pool, c);
    return rc;
}

int store_find_by_key(const char *user_id, const char *key, struct order *out)
{
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    const char *p[2] = {user_id, key};
    int rc = load_order(
        c, "SELECT " ORDER_COLS " FROM orders WHERE user_id = $1 AND idempotency_key = $2", 2, p,
        out);
    cm_db_release(g_pool, c);
    return rc;
}

int store_get_order(int64_t id, struct order *out)
{
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    int rc = load_order(c, "SELECT " ORDER_COLS " FROM orders WHERE id = $1::bigint", 1, p, out);
    cm_db_release(g_pool, c);
    return rc;
}

int store_list_user_orders(const char *user_id, int64_t before_id, int limit, order_visit_fn fn,
                           void *ctx, size_t *n, int64_t *last_id)
{
    *n = 0;
    *last_id = 0;
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    char before[24], lim[24];
    snprintf(before, sizeof before, "%lld", (long long)before_id);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[3] = {user_id, before, lim};
    int rc = -1;
    PGresult *items = NULL;
    struct order *o = NULL;
    PGresult *res = cm_db_query(c,
                                "SELECT " ORDER_COLS " FROM orders WHERE user_id = $1"
                                " AND ($2::bigint = 0 OR id < $2::bigint)"
                                " ORDER BY id DESC LIMIT $3::int",
                                3, p);
    if (!res)
        goto out;
    /* Then the items of exactly those orders, ordered like them, so each
     * order's lines are a contiguous run walked alongside. */
    struct cm_buf ids; /* "{9,7,4}" */
    cm_buf_init(&ids, 1u << 20);
    int brc = cm_buf_puts(&ids, "{");
    for (int i = 0; i < PQntuples(res); i++)
        brc |= cm_buf_printf(&ids, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
    brc |= cm_buf_puts(&ids, "}");
    const char *p2[1] = {ids.data};
    items = brc ? NULL
                : cm_db_query(c,
                              "SELECT product_id, name, quantity, unit_price_cents,"
                              " line_total_cents, order_id FROM order_items"
                              " WHERE order_id = ANY($1::bigint[]) ORDER BY order_id DESC, line",
                              1, p2);
    cm_buf_release(&ids);
    o = calloc(1, sizeof *o); /* one order at a time: pages may be large */
    if (!items || !o)
        goto out;
    int rows = PQntuples(res), nitems = PQntuples(items), k = 0;
    for (int i = 0; i < rows; i++) {
        if (row_order(res, i, o) < 0)
            goto out;
        while (k < nitems && i64(items, k, 5) > o->id) /* defensive: lines come in order */
            k++;
        for (; k < nitems && i64(items, k, 5) == o->id; k++)
            if (o->nitems < ORDER_MAX_ITEMS)
                row_item(items, k, &o->items[o->nitems++]);
        int frc = fn(ctx, o);
        *last_id = o->id;
        order_release(o);
        if (frc < 0)
            goto out;
        *n = (size_t)i + 1;
    }
    rc = 0;
out:
    free(o);
    if (items)
        PQclear(items);
    if (res)
        PQclear(res);
    cm_db_release(g_pool, c);
    return rc;
}

/* Appends the status-change event of order o to the outbox. */
static int outbox_add(struct cm_db_conn *c, const char *topic, const struct order *o, int from,
                      enum order_status to)
{
    char event_id[37], ts[32], key[24];
    event_id_new(event_id);
    utc_now(ts);
    snprintf(key, sizeof key, "%lld", (long long)o->id);
    struct cm_buf b;
    cm_buf_init(&b, 1u << 16);
    if (event_render(&b, event_id, ts, o->id, o->user_id, from, to, o->total_cents) < 0) {
        cm_buf_release(&b);
        return -1;
    }
    const char *p[3] = {topic, key, b.data};
    int rc =
        cm_db_exec(c, "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)", 3, p, NULL);
    cm_buf_release(&b);
    return rc;
}

struct create_ctx {
    const struct order *o;
    const char *key;
    const char *topic;
};

static int create_tx(struct cm_db_conn *c, void *ctx)
{
    const struct create_ctx *x = ctx;
    const struct order *o = x->o;
    char id[24], total[24];
    snprintf(id, sizeof id, "%lld", (long long)o->id);
    snprintf(total, sizeof total, "%lld", (long long)o->total_cents);
    const char *p[6] = {id, o->user_id, total, o->shipping_address, x->key, o->fingerprint};
    if (cm_db_exec(c,
                   "INSERT INTO orders (id, user_id, status, total_cents, shipping_address,"
                   " idempotency_key, request_fingerprint)"
                   " VALUES ($1::bigint, $2, 'pending', $3::bigint, $4::jsonb, $5, $6)",
                   6, p, NULL) < 0)
        return strcmp(cm_db_sqlstate(c), CM_DB_UNIQUE_VIOLATION) == 0 ? STORE_DUPLICATE : -1;
    for (size_t i = 0; i < o->nitems; i++) {
        const struct order_item *it = &o->items[i];
        char line[24], pid[24], qty[24], price[24], lt[24];
        snprintf(line, sizeof line, "%zu", i + 1);
        snprintf(pid, sizeof pid, "%lld", (long long)it->product_id);
        snprintf(qty, sizeof qty, "%lld", (long long)it->quantity);
        snprintf(price, sizeof price, "%lld", (long long)it->unit_price_cents);
        snprintf(lt, sizeof lt, "%lld", (long long)it->line_total_cents);
        const char *pi[7] = {id, line, pid, it->name, qty, price, lt};
        if (cm_db_exec(c,
                       "INSERT INTO order_items (order_id, line, product_id, name, quantity,"
                       " unit_price_cents, line_total_cents) VALUES ($1::bigint, $2::int,"
                       " $3::bigint, $4, $5::int, $6::bigint, $7::bigint)",
                       7, pi, NULL) < 0)
            return -1;
    }
    /* The order exists now: the release held before reserving is void. */
    const char *pd[1] = {id};
    if (cm_db_exec(c, "DELETE FROM stock_releases WHERE order_id = $1::bigint", 1, pd, NULL) < 0)
        return -1;
    return outbox_add(c, x->topic, o, -1, ST_PENDING);
}

int store_create_order(const struct order *o, const char *idempotency_key, const char *topic)
{
    struct create_ctx x = {o, idempotency_key, topic};
    struct cm_db_error err;
    int rc = cm_db_tx(g_pool, create_tx, &x, 2, &err);
    if (rc == -1)
        cm_error("order: create failed: %s %s", err.sqlstate, err.message);
    return rc;
}

struct status_ctx {
    int64_t id;
    enum order_status to;
    const char *user_id;
    int is_admin;
    const char *topic;
    enum order_status from;
    struct order *out;
};

static int status_tx(struct cm_db_conn *c, void *ctx)
{
    struct status_ctx *x = ctx;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)x->id);
    const char *p[1] = {id};
    /* FOR UPDATE: concurrent changes of one order queue up here, so each
     * sees the status the previous one left. */
    PGresult *res = cm_db_query(c,
                                "SELECT user_id, status, total_cents FROM orders"
                                " WHERE id = $1::bigint FOR UPDATE",
                                1, p);
    if (!res)
        return -1;
    if (PQntuples(res) != 1 || (!x->is_admin && strcmp(PQgetvalue(res, 0, 0), x->user_id) != 0)) {
        PQclear(res);
        return STORE_NOT_FOUND; /* someone else's order is nobody's business */
    }
    int from = status_parse(PQgetvalue(res, 0, 1));
    struct order o = {.id = x->id, .total_cents = i64(res, 0, 2)};
    snprintf(o.user_id, sizeof o.user_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (from < 0)
        return -1;
    x->from = (enum order_status)from;
    if (!may_request(x->is_admin, x->to))
        return STORE_FORBIDDEN;
    if ((enum order_status)from == x->to)
        return STORE_SAME;
    if (!transition_allowed((enum order_status)from, x->to))
        return STORE_ILLEGAL;
    const char *p2[2] = {id, status_name(x->to)};
    if (cm_db_exec(c, "UPDATE orders SET status = $2, updated_at = now() WHERE id = $1::bigint", 2,
                   p2, NULL) < 0 ||
        outbox_add(c, x->topic, &o, from, x->to) < 0)
        return -1;
    if (x->to == ST_CANCELLED &&
        cm_db_exec(c,
                   "INSERT INTO stock_releases (order_id) VALUES ($1::bigint)"
                   " ON CONFLICT (order_id) DO NOTHING",
                   1, p, NULL) < 0)
        return -1;
    return 0;
}

int store_set_status(int64_t id, enum order_status to, const char *user_id, int is_admin,
                     const char *topic, enum order_status *from, struct order *out)
{
    struct status_ctx x = {id, to, user_id, is_admin, topic, ST_PENDING, out};
    struct cm_db_error err;
    int rc = cm_db_tx(g_pool, status_tx, &x, 3, &err);
    if (rc == -1)
        cm_error("order: status change failed: %s %s", err.sqlstate, err.message);
    *from = x.from;
    if (rc == 0 || rc == STORE_SAME) {
        int lrc = store_get_order(id, out);
        if (lrc != 0)
            return -1;
    }
    return rc;
}

/* ---- stock releases owed to the catalog */
int store_release_hold(int64_t order_id, int delay_s)
{
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    char id[24], delay[16];
    snprintf(id, sizeof id, "%lld", (long long)order_id);
    snprintf(delay, sizeof delay, "%d", delay_s);
    const char *p[2] = {id, delay};
    int rc = cm_db_exec(c,
                        "INSERT INTO stock_releases (order_id, next_attempt_at)"
                        " VALUES ($1::bigint, now() + $2::int * interval '1 second')"
                        " ON CONFLICT (order_id) DO NOTHING",
                        2, p, NULL);
    cm_db_release(g_pool, c);
    return rc;
}

int store_release_due(int64_t *ids, size_t max, size_t *n)
{
    *n = 0;
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", max);
    const char *p[1] = {lim};
    PGresult *res = cm_db_query(c,
                                "SELECT order_id FROM stock_releases WHERE done_at IS NULL"
                                " AND next_attempt_at <= now() ORDER BY next_attempt_at"
                                " LIMIT $1::int",
                                1, p);
    cm_db_release(g_pool, c);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res) && *n < max; i++)
        ids[(*n)++] = i64(res, i, 0);
    PQclear(res);
    return 0;
}

int store_release_done(int64_t order_id, int ok)
{
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)order_id);
    const char *p[1] = {id};
    /* failures back off exponentially, capped at a minute */
    int rc = cm_db_exec(c,
                        ok ? "UPDATE stock_releases SET done_at = now(), attempts = attempts + 1"
                             " WHERE order_id = $1::bigint"
                           : "UPDATE stock_releases SET attempts = attempts + 1,"
                             " next_attempt_at = now() + least(power(2, attempts), 60)"
                             " * interval '1 second' WHERE order_id = $1::bigint",
                        1, p, NULL);
    cm_db_release(g_pool, c);
    return rc;
}

/* ---- outbox */
void store_relay_release(void)
{
    /* the session ends with the connection's return only if it is broken;
     * unlock explicitly so another replica can take over at once */
    if (g_relay_conn) {
        cm_db_exec(g_relay_conn, "SELECT pg_advisory_unlock(hashtext('order.outbox'))", 0, NULL,
                   NULL);
        cm_db_release(g_relay_pool, g_relay_conn);
        g_relay_conn = NULL;
    }
}

/* The relay connection holding the lock, or NULL (another replica relays,
 * or the database is unreachable). */
static struct cm_db_conn *relay_conn(void)
{
    if (g_relay_conn)
        return g_relay_conn;
    struct cm_db_conn *c = cm_db_acquire(g_relay_pool, 1000);
    if (!c)
        return NULL;
    PGresult *res =
        cm_db_query(c, "SELECT pg_try_advisory_lock(hashtext('order.outbox'))", 0, NULL);
    int mine = res && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (res)
        PQclear(res);
    if (!mine) {
        cm_db_release(g_relay_pool, c);
        return NULL;
    }
    g_relay_conn = c;
    return c;
}

int store_outbox_relay(size_t max, outbox_publish_fn fn, void *ctx)
{
    /* No transaction is held while publishing: the session lock (not a
     * transaction) keeps this the only relay, and rows are marked sent in
     * a statement of their own after the delivery reports. */
    struct cm_db_conn *c = relay_conn();
    if (!c)
        return 0;
    int rc = -1;
    struct outbox_row *rows = NULL;
    size_t n = 0;
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", max);
    const char *p[1] = {lim};
    PGresult *res = cm_db_query(c,
                                "SELECT id, topic, key, payload FROM outbox WHERE sent_at IS NULL"
                                " ORDER BY id LIMIT $1::int",
                                1, p);
    if (!res)
        goto out;
    int rows_n = PQntuples(res);
    if (rows_n == 0) {
        rc = 0;
        goto out;
    }
    rows = calloc((size_t)rows_n, sizeof *rows);
    if (!rows)
        goto out;
    for (int i = 0; i < rows_n; i++) {
        rows[i].id = i64(res, i, 0);
        snprintf(rows[i].topic, sizeof rows[i].topic, "%s", PQgetvalue(res, i, 1));
        snprintf(rows[i].key, sizeof rows[i].key, "%s", PQgetvalue(res, i, 2));
        rows[i].payload = strdup(PQgetvalue(res, i, 3));
        n = (size_t)i + 1;
        if (!rows[i].payload)
            goto out;
    }
    PQclear(res);
    res = NULL;
    size_t delivered = fn(ctx, rows, n);
    if (delivered > 0) {
        /* Exactly the rows published: a row with a smaller id may commit
         * after this batch was read (ids are taken before commit). */
        struct cm_buf ids;
        cm_buf_init(&ids, 1u << 16);
        int brc = cm_buf_puts(&ids, "{");
        for (size_t i = 0; i < delivered; i++)
            brc |= cm_buf_printf(&ids, "%s%lld", i ? "," : "", (long long)rows[i].id);
        brc |= cm_buf_puts(&ids, "}");
        const char *p2[1] = {ids.data};
        int urc =
            brc ? -1
                : cm_db_exec(c, "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", 1,
                             p2, NULL);
        cm_buf_release(&ids);
        if (urc < 0)
            goto out; /* published but not marked: sent again later (at least once) */
    }
    rc = (int)delivered;
out:
    if (res)
        PQclear(res);
    for (size_t i = 0; i < n; i++)
        free(rows[i].payload);
    free(rows);
    /* after an error drop the connection: a broken session has lost the
     * lock anyway; a live one gives it up and the next round retakes it */
    if (rc < 0)
        store_relay_release();
    return rc;
}
