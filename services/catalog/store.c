/*
 * The catalog's PostgreSQL store. Every query is parameterized.
 *
 * Connections: one per thread (HTTP workers are a fixed pool, so this is a
 * fixed pool too), opened on first use and reset when the server went
 * away; store_close() closes them all. (Written before common/db.h
 * landed; a thread-owned connection needs no pool hand-off on the hot
 * path.) Migrations: common/migrate.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/migrate.h"
#include "catalog.h"
#include "common/banned.h"

#define MAX_CONNS 128

static char *g_url;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static PGconn *g_conns[MAX_CONNS];
static size_t g_nconns;
static _Thread_local PGconn *t_conn;

/* The thread's connection, (re)connected as needed; NULL when the
 * database is unreachable (logged). */
static PGconn *db(void)
{
    if (t_conn && PQstatus(t_conn) == CONNECTION_OK)
        return t_conn;
    if (t_conn) {
        PQreset(t_conn);
        if (PQstatus(t_conn) == CONNECTION_OK)
            return t_conn;
        cm_error("postgres: reconnect failed: %s", PQerrorMessage(t_conn));
        return NULL;
    }
    PGconn *c = PQconnectdb(g_url);
    if (PQstatus(c) != CONNECTION_OK) {
        cm_error("postgres: connect failed: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    pthread_mutex_lock(&g_lock);
    if (g_nconns < MAX_CONNS) {
        g_conns[g_nconns++] = c;
        t_conn = c;
    }
    pthread_mutex_unlock(&g_lock);
    if (!t_conn) {
        cm_error("postgres: more than %d threads", MAX_CONNS);
        PQfinish(c);
    }
    return t_conn;
}

/* Runs a statement; returns the result when its status is ok_status, else
 * logs, clears and returns NULL with the SQLSTATE (or "") in state. */
static PGresult *q(PGconn *c, ExecStatusType ok_status, char state[6], const char *sql, int n,
                   const char *const *params)
{
    if (state)
        state[0] = '\0';
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == ok_status)
        return res;
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && st)
        snprintf(state, 6, "%s", st);
    /* constraint violations are the caller's answer, not an incident */
    if (!st || strncmp(st, "23", 2) != 0)
        cm_error("postgres: %s", PQerrorMessage(c));
    PQclear(res);
    return NULL;
}

static int cmd(PGconn *c, const char *sql)
{
    PGresult *res = q(c, PGRES_COMMAND_OK, NULL, sql, 0, NULL);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

static void rollback(PGconn *c)
{
    PGresult *res = PQexec(c, "ROLLBACK");
    PQclear(res);
}

int store_open(const char *url, const char *migrations_dir)
{
    g_url = strdup(url);
    if (!g_url)
        return -1;
    if (cm_migrate_run(g_url, migrations_dir, "catalog", NULL) < 0)
        return -1;
    return db() ? 0 : -1;
}

void store_close(void)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_nconns; i++)
        PQfinish(g_conns[i]);
    g_nconns = 0;
    pthread_mutex_unlock(&g_lock);
    t_conn = NULL;
    free(g_url);
    g_url = NULL;
}

int store_ping(void)
{
    /* Readiness checks run on threads of their own: a short-lived
     * connection keeps them off the per-thread registry. */
    PGconn *c = PQconnectdb(g_url);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *res = PQexec(c, "SELECT 1");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

/* ---- products */
#define PRODUCT_COLS                                                                               \
    "id, name, description, COALESCE(category_id, 0), price_cents, stock, "                        \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "                \
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void product_release(struct product *p)
{
    free(p->description);
    p->description = NULL;
}

static int row_product(const PGresult *res, int row, struct product *p)
{
    p->id = col_i64(res, row, 0);
    snprintf(p->name, sizeof p->name, "%s", PQgetvalue(res, row, 1));
    p->description = strdup(PQgetvalue(res, row, 2));
    p->category_id = col_i64(res, row, 3);
    p->price_cents = col_i64(res, row, 4);
    p->stock = col_i64(res, row, 5);
    snprintf(p->created_at, sizeof p->created_at, "%s", PQgetvalue(res, row, 6));
    snprintf(p->updated_at, sizeof p->updated_at, "%s", PQgetvalue(res, row, 7));
    return p->description ? 0 : -1;
}

/* Maps a failed write's SQLSTATE to the store's answers. */
static int write_error(const char state[6])
{
    if (strcmp(state, "23503") == 0)
        return STORE_BAD_REF;
    if (strcmp(state, "23505") == 0)
        return STORE_CONFLICT;
    return -1;
}

/* A single-row result into out, or STORE_NOT_FOUND. */
static int one_product(PGresult *res, struct product *out)
{
    int rc = STORE_NOT_FOUND;
    if (PQntuples(res) == 1)
        rc = row_product(res, 0, out);
    PQclear(res);
    return rc;
}

int store_product_get(int64_t id, struct product *out)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    PGresult *res =
        q(c, PGRES_TUPLES_OK, NULL, "SELECT " PRODUCT_COLS " FROM products WHERE id = $1", 1, p);
    return res ? one_product(res, out) : -1;
}

int store_product_list(const struct product_query *qr, struct product **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    PGconn *c = db();
    if (!c)
        return -1;
    char after[24], cat[24], lim[16];
    snprintf(after, sizeof after, "%lld", (long long)qr->after_id);
    snprintf(cat, sizeof cat, "%lld", (long long)qr->category_id);
    snprintf(lim, sizeof lim, "%d", qr->limit);
    const char *p[4] = {after, qr->category_id ? cat : NULL, qr->pattern, lim};
    /* The category filter takes the whole subtree (a recursive walk down
     * parent_id; the tree has no cycles: a parent exists before its child
     * and categories are never re-parented). */
    PGresult *res = q(c, PGRES_TUPLES_OK, NULL,
                      "WITH RECURSIVE tree AS ("
                      "  SELECT id FROM categories WHERE id = $2::bigint"
                      "  UNION ALL SELECT c.id FROM categories c JOIN tree t ON c.parent_id = t.id)"
                      " SELECT " PRODUCT_COLS " FROM products"
                      " WHERE id > $1::bigint"
                      "   AND ($2::bigint IS NULL OR category_id IN (SELECT id FROM tree))"
                      "   AND ($3::text IS NULL OR name ILIKE $3::text ESCAPE '\\')"
                      " ORDER BY id LIMIT $4::int",
                      4, p);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    if (rows > 0) {
        *items = calloc((size_t)rows, sizeof **items);
        if (!*items) {
            PQclear(res);
            return -1;
        }
        int bad = 0;
        for (int i = 0; i < rows; i++)
            bad |= row_product(res, i, &(*items)[i]);
        if (bad) {
            for (int i = 0; i < rows; i++)
                product_release(&(*items)[i]);
            free(*items);
            *items = NULL;
            PQclear(res);
            return -1;
        }
    }
    *n = (size_t)rows;
    PQclear(res);
    return 0;
}

int store_product_create(const struct product_input *in, struct product *out)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char price[24], stock[24], cat[24], state[6];
    snprintf(price, sizeof price, "%lld", (long long)in->price_cents);
    snprintf(stock, sizeof stock, "%lld", (long long)in->stock);
    snprintf(cat, sizeof cat, "%lld", (long long)in->category_id);
    const char *p[5] = {in->name, in->description, in->category_id ? cat : NULL, price, stock};
    PGresult *res = q(c, PGRES_TUPLES_OK, state,
                      "INSERT INTO products (name, description, category_id, price_cents, stock)"
                      " VALUES ($1, $2, $3::bigint, $4::bigint, $5::int) RETURNING " PRODUCT_COLS,
                      5, p);
    return res ? one_product(res, out) : write_error(state);
}

int store_product_update(int64_t id, const struct product_input *in, struct product *out)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char ids[24], price[24], stock[24], cat[24], state[6];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    snprintf(price, sizeof price, "%lld", (long long)in->price_cents);
    snprintf(stock, sizeof stock, "%lld", (long long)in->stock);
    snprintf(cat, sizeof cat, "%lld", (long long)in->category_id);
    /* Absent fields are NULL parameters and keep their value; category_id
     * may legitimately become NULL, hence its own flag. */
    const char *p[7] = {ids,
                        in->has & PF_NAME ? in->name : NULL,
                        in->has & PF_DESC ? in->description : NULL,
                        in->has & PF_PRICE ? price : NULL,
                        in->has & PF_STOCK ? stock : NULL,
                        in->has & PF_CATEGORY ? "t" : "f",
                        in->category_id ? cat : NULL};
    PGresult *res = q(c, PGRES_TUPLES_OK, state,
                      "UPDATE products SET name = COALESCE($2, name),"
                      " description = COALESCE($3, description),"
                      " price_cents = COALESCE($4::bigint, price_cents),"
                      " stock = COALESCE($5::int, stock),"
                      " category_id = CASE WHEN $6::bool THEN $7::bigint ELSE category_id END,"
                      " updated_at = now() WHERE id = $1::bigint RETURNING " PRODUCT_COLS,
                      7, p);
    return res ? one_product(res, out) : write_error(state);
}

int store_product_delete(int64_t id)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    PGresult *res =
        q(c, PGRES_COMMAND_OK, NULL, "DELETE FROM products WHERE id = $1::bigint", 1, p);
    if (!res)
        return -1;
    int rc = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : STORE_NOT_FOUND;
    PQclear(res);
    return rc;
}

/* ---- categories */
static void row_category(const PGresult *res, int row, struct category *cat)
{
    cat->id = col_i64(res, row, 0);
    snprintf(cat->name, sizeof cat->name, "%s", PQgetvalue(res, row, 1));
    cat->parent_id = col_i64(res, row, 2);
}

int store_category_list(struct category **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    PGconn *c = db();
    if (!c)
        return -1;
    PGresult *res =
        q(c, PGRES_TUPLES_OK, NULL,
          "SELECT id, name, COALESCE(parent_id, 0) FROM categories ORDER BY id", 0, NULL);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    if (rows > 0) {
        *items = calloc((size_t)rows, sizeof **items);
        if (!*items) {
            PQclear(res);
            return -1;
        }
        for (int i = 0; i < rows; i++)
            row_category(res, i, &(*items)[i]);
    }
    *n = (size_t)rows;
    PQclear(res);
    return 0;
}

int store_category_create(const struct category_input *in, struct category *out)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char parent[24], state[6];
    snprintf(parent, sizeof parent, "%lld", (long long)in->parent_id);
    const char *p[2] = {in->name, in->parent_id ? parent : NULL};
    PGresult *res = q(c, PGRES_TUPLES_OK, state,
                      "INSERT INTO categories (name, parent_id) VALUES ($1, $2::bigint)"
                      " RETURNING id, name, COALESCE(parent_id, 0)",
                      2, p);
    if (!res)
        return write_error(state);
    row_category(res, 0, out);
    PQclear(res);
    return 0;
}

int store_category_get(int64_t id, struct category *out)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    PGresult *res =
        q(c, PGRES_TUPLES_OK, NULL,
          "SELECT id, name, COALESCE(parent_id, 0) FROM categories WHERE id = $1::bigint", 1, p);
    if (!res)
        return -1;
    int rc = STORE_NOT_FOUND;
    if (PQntuples(res) == 1) {
        row_category(res, 0, out);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int store_category_update(int64_t id, const struct category_input *in, struct category *out)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char ids[24], parent[24], state[6];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    snprintf(parent, sizeof parent, "%lld", (long long)in->parent_id);
    const char *p[3] = {ids, in->name, in->parent_id ? parent : NULL};
    /* The new parent must not be the category or below it: walking up from
     * the parent must never meet the category (the tree stays a tree). The
     * table lock (re-parenting is rare) keeps two concurrent moves from
     * closing a cycle between them; readers are not blocked. */
    if (cmd(c, "BEGIN") < 0)
        return -1;
    PGresult *res =
        q(c, PGRES_COMMAND_OK, NULL, "LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE", 0, NULL);
    if (!res)
        goto fail;
    PQclear(res);
    res = q(c, PGRES_TUPLES_OK, state,
            "WITH RECURSIVE up AS ("
            "  SELECT id, parent_id FROM categories WHERE id = $3::bigint"
            "  UNION ALL SELECT c.id, c.parent_id FROM categories c JOIN up ON c.id = up.parent_id)"
            " UPDATE categories SET name = $2, parent_id = $3::bigint WHERE id = $1::bigint"
            "   AND NOT EXISTS (SELECT 1 FROM up WHERE up.id = $1::bigint)"
            " RETURNING id, name, COALESCE(parent_id, 0)",
            3, p);
    if (!res) {
        rollback(c);
        return write_error(state);
    }
    int rc = 0;
    if (PQntuples(res) == 1) {
        row_category(res, 0, out);
    } else {
        /* nothing updated: no such category, or a cycle */
        PQclear(res);
        res = q(c, PGRES_TUPLES_OK, NULL, "SELECT 1 FROM categories WHERE id = $1::bigint", 1, p);
        if (!res)
            goto fail;
        rc = PQntuples(res) == 1 ? STORE_BAD_REF : STORE_NOT_FOUND;
    }
    PQclear(res);
    if (cmd(c, "COMMIT") < 0)
        return -1;
    return rc;
fail:
    rollback(c);
    return -1;
}

int store_category_delete(int64_t id)
{
    PGconn *c = db();
    if (!c)
        return -1;
    char ids[24], state[6];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[1] = {ids};
    /* Products and subcategories reference it: the foreign keys refuse. */
    PGresult *res =
        q(c, PGRES_COMMAND_OK, state, "DELETE FROM categories WHERE id = $1::bigint", 1, p);
    if (!res)
        return strcmp(state, "23503") == 0 ? STORE_CONFLICT : -1;
    int rc = strcmp(PQcmdTuples(res), "1") == 0 ? 0 : STORE_NOT_FOUND;
    PQclear(res);
    return rc;
}

/* ---- stock reservations */
static int cmp_item(const void *a, const void *b)
{
    const struct stock_item *x = a, *y = b;
    return (x->product_id > y->product_id) - (x->product_id < y->product_id);
}

static int items_to_json(const struct reserve_input *in, struct cm_buf *b)
{
    int rc = cm_buf_puts(b, "[");
    for (size_t i = 0; i < in->nitems && rc == 0; i++)
        rc = cm_buf_printf(b, "%s{\"product_id\":%lld,\"quantity\":%lld,\"unit_price_cents\":%lld}",
                           i ? "," : "", (long long)in->items[i].product_id,
                           (long long)in->items[i].quantity,
                           (long long)in->items[i].unit_price_cents);
    return rc < 0 ? -1 : cm_buf_puts(b, "]");
}

static int items_from_json(const char *text, struct reserve_input *in)
{
    cJSON *arr = cJSON_Parse(text);
    const cJSON *it;
    in->nitems = 0;
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return -1;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (in->nitems >= RESERVE_MAX_ITEMS)
            break;
        struct stock_item *si = &in->items[in->nitems++];
        si->product_id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "product_id"));
        si->quantity = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "quantity"));
        si->unit_price_cents =
            (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "unit_price_cents"));
    }
    cJSON_Delete(arr);
    return 0;
}

int store_stock_reserve(struct reserve_input *in, int *replayed, int64_t *bad_product,
                        int64_t *available)
{
    *replayed = 0;
    PGconn *c = db();
    if (!c)
        return -1;
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)in->order_id);
    const char *p1[1] = {oid};
    if (cmd(c, "BEGIN") < 0)
        return -1;
    /* Claims the order id first: a concurrent retry of the same order
     * waits here for our commit, then replays it. */
    PGresult *res = q(c, PGRES_TUPLES_OK, NULL,
                      "INSERT INTO stock_reservations (order_id, status, items)"
                      " VALUES ($1::bigint, 'reserved', '[]') ON CONFLICT (order_id) DO NOTHING"
                      " RETURNING order_id",
                      1, p1);
    if (!res)
        goto fail;
    int claimed = PQntuples(res) == 1;
    PQclear(res);
    if (!claimed) {
        res = q(c, PGRES_TUPLES_OK, NULL,
                "SELECT status, items::text FROM stock_reservations WHERE order_id = $1::bigint", 1,
                p1);
        if (!res || PQntuples(res) != 1) {
            if (res)
                PQclear(res);
            goto fail;
        }
        int released = strcmp(PQgetvalue(res, 0, 0), "released") == 0;
        int bad = items_from_json(PQgetvalue(res, 0, 1), in);
        PQclear(res);
        rollback(c);
        if (bad < 0)
            return -1;
        *replayed = 1;
        return released ? STORE_CONFLICT : 0;
    }
    /* Rows are locked in product id order so two orders never deadlock. */
    qsort(in->items, in->nitems, sizeof in->items[0], cmp_item);
    for (size_t i = 0; i < in->nitems; i++) {
        char pid[24], qty[24];
        snprintf(pid, sizeof pid, "%lld", (long long)in->items[i].product_id);
        snprintf(qty, sizeof qty, "%lld", (long long)in->items[i].quantity);
        const char *p2[2] = {pid, qty};
        /* Conditional decrement: never below zero even before the CHECK. */
        res = q(c, PGRES_TUPLES_OK, NULL,
                "UPDATE products SET stock = stock - $2::int, updated_at = now()"
                " WHERE id = $1::bigint AND stock >= $2::int RETURNING price_cents",
                2, p2);
        if (!res)
            goto fail;
        if (PQntuples(res) == 1) {
            in->items[i].unit_price_cents = col_i64(res, 0, 0);
            PQclear(res);
            continue;
        }
        PQclear(res);
        res =
            q(c, PGRES_TUPLES_OK, NULL, "SELECT stock FROM products WHERE id = $1::bigint", 1, p2);
        if (!res)
            goto fail;
        int exists = PQntuples(res) == 1;
        *bad_product = in->items[i].product_id;
        *available = exists ? col_i64(res, 0, 0) : 0;
        PQclear(res);
        rollback(c);
        return exists ? STORE_OUT_OF_STOCK : STORE_NO_PRODUCT;
    }
    struct cm_buf items;
    cm_buf_init(&items, 1u << 16);
    if (items_to_json(in, &items) < 0) {
        cm_buf_release(&items);
        goto fail;
    }
    const char *p3[2] = {oid, items.data};
    res = q(c, PGRES_COMMAND_OK, NULL,
            "UPDATE stock_reservations SET items = $2::jsonb WHERE order_id = $1::bigint", 2, p3);
    cm_buf_release(&items);
    if (!res)
        goto fail;
    PQclear(res);
    if (cmd(c, "COMMIT") < 0)
        return -1;
    return 0;
fail:
    rollback(c);
    return -1;
}

int store_stock_release(struct reserve_input *in, int *released)
{
    *released = 0;
    PGconn *c = db();
    if (!c)
        return -1;
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)in->order_id);
    const char *p1[1] = {oid};
    if (cmd(c, "BEGIN") < 0)
        return -1;
    PGresult *res = q(c, PGRES_TUPLES_OK, NULL,
                      "UPDATE stock_reservations SET status = 'released', released_at = now()"
                      " WHERE order_id = $1::bigint AND status = 'reserved' RETURNING items::text",
                      1, p1);
    if (!res)
        goto fail;
    if (PQntuples(res) == 0) {
        PQclear(res);
        res = q(c, PGRES_TUPLES_OK, NULL,
                "SELECT items::text FROM stock_reservations WHERE order_id = $1::bigint", 1, p1);
        if (!res)
            goto fail;
        int rc = STORE_NOT_FOUND;
        if (PQntuples(res) == 1 && items_from_json(PQgetvalue(res, 0, 0), in) == 0)
            rc = 0; /* released before: same answer, nothing moves */
        PQclear(res);
        rollback(c);
        return rc;
    }
    int bad = items_from_json(PQgetvalue(res, 0, 0), in);
    PQclear(res);
    if (bad < 0)
        goto fail;
    qsort(in->items, in->nitems, sizeof in->items[0], cmp_item);
    for (size_t i = 0; i < in->nitems; i++) {
        char pid[24], qty[24];
        snprintf(pid, sizeof pid, "%lld", (long long)in->items[i].product_id);
        snprintf(qty, sizeof qty, "%lld", (long long)in->items[i].quantity);
        const char *p2[2] = {pid, qty};
        /* A product deleted meanwhile has no stock to return: 0 rows. */
        res = q(c, PGRES_COMMAND_OK, NULL,
                "UPDATE products SET stock = stock + $2::int, updated_at = now()"
                " WHERE id = $1::bigint",
                2, p2);
        if (!res)
            goto fail;
        PQclear(res);
    }
    if (cmd(c, "COMMIT") < 0)
        return -1;
    *released = 1;
    return 0;
fail:
    rollback(c);
    return -1;
}
