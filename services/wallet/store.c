/*
 * The wallet's PostgreSQL store (common/db.h pool, parameterized SQL only).
 * See store.h; the SQL functions called here are in
 * migrations/002_functions.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/db.h"
#include "common/decimal.h"
#include "common/log.h"
#include "common/migrate.h"
#include "store.h"
#include "common/banned.h"

static struct cm_db_pool *g_pool;

int store_open(const char *url, const char *migrations_dir, int conns)
{
    if (cm_migrate_run(url, migrations_dir, "wallet", NULL) < 0)
        return -1;
    struct cm_db_pool_config cfg = {.url = url,
                                    .max_conns = conns,
                                    .acquire_timeout_ms = 5000,
                                    .statement_timeout_ms = 30000,
                                    .application_name = "wallet"};
    char err[256];
    g_pool = cm_db_pool_open(&cfg, err, sizeof err);
    if (!g_pool) {
        cm_error("wallet: database pool: %s", err);
        return -1;
    }
    return 0;
}

void store_close(void)
{
    cm_db_pool_close(g_pool);
    g_pool = NULL;
}

int store_ping(void)
{
    return cm_db_pool_ping(g_pool);
}

struct cm_db_pool *store_pool(void)
{
    return g_pool;
}

/* One statement returning one text cell (a result word or a JSON
 * document). STORE_OK with a copy in *out (malloc'd), STORE_NONE when no
 * row / NULL, STORE_ERR with sqlstate. name: prepared once per pooled
 * connection under that name (hot paths), or NULL. */
static int one_text_named(const char *name, const char *sql, int n, const char *const *p,
                          char **out, char sqlstate[6])
{
    *out = NULL;
    if (sqlstate)
        sqlstate[0] = '\0';
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return STORE_ERR;
    PGresult *res = name ? cm_db_query_prepared(c, name, sql, n, p) : cm_db_query(c, sql, n, p);
    int rc = STORE_ERR;
    if (!res) {
        if (sqlstate)
            snprintf(sqlstate, 6, "%s", cm_db_sqlstate(c));
        if (!cm_db_sqlstate(c)[0] || strcmp(cm_db_sqlstate(c), CM_DB_UNIQUE_VIOLATION) != 0)
            cm_warn("wallet: query failed: %s", cm_db_errmsg(c));
    } else if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
        rc = STORE_NONE;
    } else {
        *out = strdup(PQgetvalue(res, 0, 0));
        rc = *out ? STORE_OK : STORE_ERR;
    }
    PQclear(res);
    cm_db_release(g_pool, c);
    return rc;
}

static int one_text(const char *sql, int n, const char *const *p, char **out, char sqlstate[6])
{
    return one_text_named(NULL, sql, n, p, out, sqlstate);
}

static int word_named(const char *name, const char *sql, int n, const char *const *p, char *w,
                      size_t wn, char sqlstate[6])
{
    char *out;
    int rc = one_text_named(name, sql, n, p, &out, sqlstate);
    if (rc != STORE_OK) {
        free(out);
        return -1;
    }
    snprintf(w, wn, "%s", out);
    free(out);
    return 0;
}

static int word(const char *sql, int n, const char *const *p, char *w, size_t wn, char sqlstate[6])
{
    return word_named(NULL, sql, n, p, w, wn, sqlstate);
}

#define I64(buf, v) snprintf(buf, sizeof buf, "%lld", (long long)(v))

int store_place_hold(const char *hold, const char *user, const char *asset, int64_t amount,
                     const char *amount_text, const char *purpose, const char *ref, char *w,
                     size_t n, char sqlstate[6])
{
    char a[24];
    I64(a, amount);
    const char *p[7] = {hold, user, asset, a, amount_text, purpose, ref};
    /* Prepared: the hot path of every order (parse, analysis and planning
     * were a fifth of PostgreSQL's CPU per hold). */
    return word_named("wallet_hold_place",
                      "SELECT wallet_hold_place($1, $2, $3, $4::bigint, $5, $6, $7)", 7, p, w, n,
                      sqlstate);
}

int store_release_hold(const char *hold, const char *reason, char *w, size_t n)
{
    const char *p[2] = {hold, reason};
    return word("SELECT wallet_release_hold($1, $2)", 2, p, w, n, NULL);
}

int store_create_deposit(const char *user, const char *key, const char *asset, int64_t amount,
                         const char *tx, int required, char *w, size_t n, char sqlstate[6])
{
    char a[24], r[16];
    I64(a, amount);
    I64(r, required);
    const char *p[6] = {user, key, asset, a, tx, r};
    return word("SELECT wallet_create_deposit($1, $2, $3, $4::bigint, $5, $6::int)", 6, p, w, n,
                sqlstate);
}

int store_credit_deposit(const char *id, char *w, size_t n)
{
    const char *p[1] = {id};
    return word("SELECT wallet_credit_deposit($1)", 1, p, w, n, NULL);
}

int store_request_withdrawal(const char *user, const char *key, const struct wallet_asset *as,
                             int64_t amount, const char *address, char *w, size_t n,
                             char sqlstate[6])
{
    char a[24], f[24], l[24], t[24];
    I64(a, amount);
    I64(f, as->withdraw_fee);
    I64(l, as->daily_limit);
    I64(t, as->approval_threshold);
    const char *p[8] = {user, key, as->code, a, f, address, l, t};
    return word("SELECT wallet_request_withdrawal($1, $2, $3, $4::bigint, $5::bigint, $6,"
                " $7::bigint, $8::bigint)",
                8, p, w, n, sqlstate);
}

int store_approve_withdrawal(const char *id, char *w, size_t n)
{
    const char *p[2] = {id, "admin"};
    return word("SELECT wallet_approve_withdrawal($1, $2)", 2, p, w, n, NULL);
}

int store_address_add(const char *user, const char *asset, const char *address)
{
    const char *p[3] = {user, asset, address};
    char w[16];
    return word("INSERT INTO withdrawal_addresses (user_id, asset, address) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING 'added'",
                3, p, w, sizeof w, NULL) == 0
               ? 0
               : -1;
}

/* ---- JSON documents */

#define TS(col) "wallet_ts(" col ")"

static int json_doc(const char *sql, int n, const char *const *p, char **json)
{
    int rc = one_text(sql, n, p, json, NULL);
    return rc;
}

int store_hold_json(const char *hold, char **json)
{
    const char *p[1] = {hold};
    return json_doc(
        "SELECT json_build_object('hold_id', hold_id, 'user_id', user_id, 'asset', asset,"
        " 'amount', wallet_fmt(amount, asset), 'remaining', wallet_fmt(remaining, asset),"
        " 'status', CASE status WHEN 'released' THEN 'released' ELSE 'active' END,"
        " 'purpose', purpose, 'ref_id', ref_id, 'created_at', " TS(
            "created_at") ")::text"
                          " FROM holds WHERE hold_id = $1",
        1, p, json);
}

int store_balances_json(const char *user, char **json)
{
    const char *p[1] = {user};
    return json_doc(
        "SELECT json_build_object('balances', coalesce(json_agg(json_build_object("
        " 'asset', asset, 'available', wallet_fmt(available, asset),"
        " 'held', wallet_fmt(held, asset), 'total', wallet_fmt(available + held, asset))"
        " ORDER BY asset), '[]'::json))::text"
        " FROM accounts WHERE owner = $1 AND kind = 'user'",
        1, p, json);
}

/* One item per (journal entry, asset) of the user's accounts: the change
 * of the user's total (a hold or a release moves between buckets: 0). */
int store_ledger_json(const char *user, const char *asset, int64_t before, int limit, char **json)
{
    char b[24], l[16];
    I64(b, before > 0 ? before : INT64_MAX);
    I64(l, limit);
    const char *p[4] = {user, asset, b, l};
    return json_doc(
        "WITH page AS ("
        "  SELECT e.id AS entry_id, e.kind, e.ref_id, e.created_at, a.asset, min(p.id) AS pid,"
        "         sum(p.amount)::bigint AS amount"
        "    FROM accounts a JOIN postings p ON p.account_id = a.id"
        "    JOIN journal_entries e ON e.id = p.entry_id"
        "   WHERE a.owner = $1 AND a.kind = 'user' AND ($2::text IS NULL OR a.asset = $2)"
        "     AND p.entry_id < $3::bigint"
        "   GROUP BY e.id, a.asset ORDER BY e.id DESC LIMIT $4::int + 1)"
        "SELECT json_build_object("
        " 'items', coalesce((SELECT json_agg(json_build_object('id', 'p' || pid,"
        "   'entry_id', 'je_' || entry_id, 'asset', asset, 'amount', wallet_fmt(amount, asset),"
        "   'kind', CASE kind WHEN 'trade' THEN 'trade' ELSE kind END, 'ref_id', ref_id,"
        "   'ts', " TS("created_at") ") ORDER BY entry_id DESC)"
                                     "   FROM (SELECT * FROM page ORDER BY entry_id DESC LIMIT "
                                     "$4::int) x), '[]'::json),"
                                     " 'next_cursor', (SELECT CASE WHEN count(*) > $4::int"
                                     "   THEN (SELECT min(entry_id) FROM (SELECT entry_id FROM "
                                     "page ORDER BY entry_id DESC"
                                     "         LIMIT $4::int) y)::text END FROM page))::text",
        4, p, json);
}

#define DEPOSIT_JSON                                                                               \
    "json_build_object('id', id, 'asset', asset, 'amount', wallet_fmt(amount, asset),"             \
    " 'tx_hash', tx_hash, 'status', status, 'confirmations', LEAST(confirmations,"                 \
    " required_confirmations), 'required_confirmations', required_confirmations,"                  \
    " 'created_at', " TS("created_at") ", 'credited_at', " TS("credited_at") ")"

int store_deposit_json(const char *id, const char *user, char **json)
{
    const char *p[2] = {id, user};
    return json_doc("SELECT json_strip_nulls(" DEPOSIT_JSON ")::text FROM deposits"
                    " WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)",
                    2, p, json);
}

int store_deposits_json(const char *user, int64_t before, int limit, char **json)
{
    char b[24], l[16];
    I64(b, before > 0 ? before : INT64_MAX);
    I64(l, limit);
    const char *p[3] = {user, b, l};
    return json_doc(
        "WITH page AS (SELECT * FROM deposits WHERE user_id = $1 AND seq < $2::bigint"
        "              ORDER BY seq DESC LIMIT $3::int + 1)"
        "SELECT json_build_object("
        " 'items', coalesce((SELECT json_agg(json_strip_nulls(" DEPOSIT_JSON ") ORDER BY seq DESC)"
        "   FROM (SELECT * FROM page ORDER BY seq DESC LIMIT $3::int) x), '[]'::json),"
        " 'next_cursor', (SELECT CASE WHEN count(*) > $3::int THEN (SELECT min(seq) FROM"
        "   (SELECT seq FROM page ORDER BY seq DESC LIMIT $3::int) y)::text END FROM page))::text",
        3, p, json);
}

int store_withdrawal_json(const char *id, const char *user, char **json)
{
    const char *p[2] = {id, user};
    return json_doc(
        "SELECT json_strip_nulls(json_build_object('id', id, 'asset', asset,"
        " 'amount', wallet_fmt(amount, asset), 'fee', wallet_fmt(fee, asset),"
        " 'address', address, 'status', status, 'tx_hash', tx_hash,"
        " 'failure_reason', failure_reason, 'created_at', " TS(
            "created_at") ","
                          " 'updated_at', " TS("updated_at") "))::text"
                                                             " FROM withdrawals WHERE id = $1 AND "
                                                             "($2::text IS NULL OR user_id = $2)",
        2, p, json);
}

/* ---- settlement */

/* A small open-addressing string map (ids, "owner\x1fasset" keys) for one
 * batch: index of the first item with that key. */
struct smap {
    char **keys;
    size_t *vals;
    size_t cap;
};

static int smap_init(struct smap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < n * 2 + 1)
        m->cap *= 2;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return m->keys && m->vals ? 0 : -1;
}

static void smap_release(struct smap *m)
{
    if (m->keys)
        for (size_t i = 0; i < m->cap; i++)
            free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Finds key; when absent inserts it with val. Returns the slot's value, or
 * (size_t)-1 on allocation failure. *added says which. */
static size_t smap_get(struct smap *m, const char *key, size_t val, int *added)
{
    size_t i = fnv(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) {
            *added = 0;
            return m->vals[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = strdup(key);
    if (!m->keys[i])
        return (size_t)-1;
    m->vals[i] = val;
    *added = 1;
    return val;
}

/* Text array literal {"a","b"}: our ids and owners never hold quotes or
 * backslashes (validated), so quoting is enough. */
static int arr_str(struct cm_buf *b, const char *s, int first)
{
    return cm_buf_printf(b, "%s\"%s\"", first ? "{" : ",", s);
}

static int arr_i64(struct cm_buf *b, int64_t v, int first)
{
    return cm_buf_printf(b, "%s%lld", first ? "{" : ",", (long long)v);
}

static int arr_end(struct cm_buf *b, int empty)
{
    return cm_buf_puts(b, empty ? "{}" : "}");
}

struct delta {
    char owner[USER_ID_MAX + 10];
    const char *asset;
    int64_t avail, held;
};
struct hold_use {
    const char *hold, *user, *asset;
    int64_t amount;
};

/* cm_db_exec through a statement prepared once per connection. Settlement
 * runs its statements for every batch, and batches on the order path hold
 * a few events: parsing and planning them each time was about half of a
 * small batch's PostgreSQL time (pgbench, a 3-trade batch: 1.0 ms simple,
 * 0.45 ms prepared). Their generic plans are index nested loops for any
 * batch size (the unnest row estimate is small). */
static int exec_prepared(struct cm_db_conn *c, const char *name, const char *sql, int n,
                         const char *const *p, long *affected)
{
    PGresult *res = cm_db_query_prepared(c, name, sql, n, p);
    if (!res)
        return -1;
    if (affected) {
        const char *t = PQcmdTuples(res);
        *affected = *t ? strtol(t, NULL, 10) : 0;
    }
    PQclear(res);
    return 0;
}

struct settle_ctx {
    const struct trade *t;
    size_t nt;
    const struct order_event *ev;
    size_t ne;
    size_t applied, dups;
    size_t released; /* holds released (each wrote a hold.released outbox row) */
    int poison;
};

#define NBUF 12

static int settle_tx(struct cm_db_conn *c, void *arg)
{
    struct settle_ctx *x = arg;
    x->applied = x->dups = x->released = 0;
    x->poison = 0;
    int rc = -1;
    struct cm_buf b[NBUF];
    for (int i = 0; i < NBUF; i++)
        cm_buf_init(&b[i], 0);
    struct smap seen = {0}, accts = {0}, holds = {0};
    unsigned char *fresh = calloc(x->nt + 1, 1);
    struct delta *d = calloc(x->nt * TRADE_MAX_LEGS + 1, sizeof *d);
    struct hold_use *hu = calloc(x->nt * 2 + 1, sizeof *hu);
    size_t nd = 0, nh = 0, nfresh = 0;
    PGresult *res = NULL;
    if (!fresh || !d || !hu || smap_init(&seen, x->nt) < 0 ||
        smap_init(&accts, x->nt * TRADE_MAX_LEGS) < 0 || smap_init(&holds, x->nt * 2 + x->ne) < 0)
        goto out;

    if (x->nt > 0) {
        /* 1. Which trades are new (first of their id in this batch, and not
         *    processed before). */
        for (size_t i = 0; i < x->nt; i++)
            arr_str(&b[0], x->t[i].id, i == 0);
        arr_end(&b[0], 0);
        const char *p1[1] = {b[0].data};
        res = cm_db_query_prepared(c, "settle_processed",
                                   "INSERT INTO processed_events (event_id, kind)"
                                   " SELECT DISTINCT unnest($1::text[]), 'trade'"
                                   " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                                   1, p1);
        if (!res)
            goto out;
        for (int r = 0; r < PQntuples(res); r++) {
            int added;
            smap_get(&seen, PQgetvalue(res, r, 0), 1, &added);
        }
        PQclear(res);
        res = NULL;
        struct smap once = {0};
        if (smap_init(&once, x->nt) < 0)
            goto out;
        for (size_t i = 0; i < x->nt; i++) {
            int added;
            smap_get(&seen, x->t[i].id, 0, &added);
            if (added) { /* not returned: processed already */
                x->dups++;
                continue;
            }
            smap_get(&once, x->t[i].id, i, &added);
            if (!added) {
                x->dups++;
                continue;
            }
            fresh[i] = 1;
            nfresh++;
        }
        smap_release(&once);
    }

    if (nfresh > 0) {
        /* 2. Postings and balance deltas, computed here. */
        int first_p = 1;
        size_t ie = 0;
        for (size_t i = 0; i < x->nt; i++) {
            if (!fresh[i])
                continue;
            const struct trade *t = &x->t[i];
            struct leg legs[TRADE_MAX_LEGS];
            int64_t buy_use, sell_use;
            int nl = trade_legs(t, wallet_cfg.maker_fee_bps, wallet_cfg.taker_fee_bps, legs,
                                &buy_use, &sell_use);
            if (nl < 0) {
                x->poison = 1;
                goto out;
            }
            for (int k = 0; k < nl; k++) {
                char key[96];
                snprintf(key, sizeof key, "%s\x1f%s", legs[k].owner, legs[k].asset);
                int added;
                size_t j = smap_get(&accts, key, nd, &added);
                if (j == (size_t)-1)
                    goto out;
                if (added) {
                    snprintf(d[nd].owner, sizeof d[nd].owner, "%s", legs[k].owner);
                    d[nd].asset = legs[k].asset;
                    nd++;
                }
                if (legs[k].held)
                    d[j].held += legs[k].amount;
                else
                    d[j].avail += legs[k].amount;
                /* postings: entry index, owner, asset, bucket, amount */
                arr_i64(&b[1], (int64_t)ie, first_p);
                arr_str(&b[2], legs[k].owner, first_p);
                arr_str(&b[3], legs[k].asset, first_p);
                arr_str(&b[4], legs[k].held ? "held" : "available", first_p);
                arr_i64(&b[5], legs[k].amount, first_p);
                first_p = 0;
            }
            const char *ho[2] = {trade_buyer_order(t), trade_seller_order(t)};
            const char *hu_user[2] = {trade_buyer(t), trade_seller(t)};
            const char *hu_asset[2] = {t->m->quote, t->m->base};
            int64_t use[2] = {buy_use, sell_use};
            for (int k = 0; k < 2; k++) {
                int added;
                size_t j = smap_get(&holds, ho[k], nh, &added);
                if (j == (size_t)-1)
                    goto out;
                if (added)
                    hu[nh++] = (struct hold_use){ho[k], hu_user[k], hu_asset[k], 0};
                else if (strcmp(hu[j].user, hu_user[k]) != 0 ||
                         strcmp(hu[j].asset, hu_asset[k]) != 0) {
                    x->poison = 1; /* one order id used as buyer and seller */
                    goto out;
                }
                if (cm_money_add(hu[j].amount, use[k], &hu[j].amount) < 0) {
                    x->poison = 1;
                    goto out;
                }
            }
            arr_str(&b[6], t->id, ie == 0);
            ie++;
        }
        arr_end(&b[1], 0);
        arr_end(&b[2], 0);
        arr_end(&b[3], 0);
        arr_end(&b[4], 0);
        arr_end(&b[5], 0);
        arr_end(&b[6], 0);

        /* 3. Holds: consumed by the trades; each must exist, belong to
         *    that user and asset, be unreleased and cover the amount
         *    (CHECK remaining >= 0). */
        for (size_t j = 0; j < nh; j++) {
            arr_str(&b[7], hu[j].hold, j == 0);
            arr_str(&b[8], hu[j].user, j == 0);
            arr_str(&b[9], hu[j].asset, j == 0);
            arr_i64(&b[10], hu[j].amount, j == 0);
        }
        arr_end(&b[7], 0);
        arr_end(&b[8], 0);
        arr_end(&b[9], 0);
        arr_end(&b[10], 0);
        const char *ph[4] = {b[7].data, b[8].data, b[9].data, b[10].data};
        long n = 0;
        if (exec_prepared(c, "settle_holds",
                          "UPDATE holds h SET remaining = h.remaining - u.amt,"
                          " consumed = h.consumed + u.amt, seen = true, updated_at = now()"
                          " FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])"
                          "   AS u(id, usr, asset, amt)"
                          " WHERE h.hold_id = u.id AND h.user_id = u.usr AND h.asset = u.asset"
                          "   AND h.status <> 'released'",
                          4, ph, &n) < 0) {
            if (strcmp(cm_db_sqlstate(c), CM_DB_CHECK_VIOLATION) == 0)
                x->poison = 1;
            goto out;
        }
        if ((size_t)n != nh) {
            x->poison = 1;
            goto out;
        }

        /* 4. Accounts: create the receiving ones, apply the deltas (CHECKs
         *    refuse a negative balance). */
        struct cm_buf ao, aa, av, ah;
        cm_buf_init(&ao, 0);
        cm_buf_init(&aa, 0);
        cm_buf_init(&av, 0);
        cm_buf_init(&ah, 0);
        for (size_t j = 0; j < nd; j++) {
            arr_str(&ao, d[j].owner, j == 0);
            arr_str(&aa, d[j].asset, j == 0);
            arr_i64(&av, d[j].avail, j == 0);
            arr_i64(&ah, d[j].held, j == 0);
        }
        arr_end(&ao, nd == 0);
        arr_end(&aa, nd == 0);
        arr_end(&av, nd == 0);
        arr_end(&ah, nd == 0);
        const char *pa[4] = {ao.data, aa.data, av.data, ah.data};
        int ok = exec_prepared(c, "settle_accounts_new",
                               "INSERT INTO accounts (owner, asset)"
                               " SELECT o, a FROM unnest($1::text[], $2::text[]) AS u(o, a)"
                               " ORDER BY 1, 2 ON CONFLICT (owner, asset) DO NOTHING",
                               2, pa, NULL) == 0 &&
                 exec_prepared(c, "settle_accounts",
                               "UPDATE accounts a SET available = a.available + u.av,"
                               " held = a.held + u.hd, updated_at = now()"
                               " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])"
                               "   AS u(o, asset, av, hd)"
                               " WHERE a.owner = u.o AND a.asset = u.asset",
                               4, pa, &n) == 0;
        cm_buf_release(&ao);
        cm_buf_release(&aa);
        cm_buf_release(&av);
        cm_buf_release(&ah);
        if (!ok) {
            if (strcmp(cm_db_sqlstate(c), CM_DB_CHECK_VIOLATION) == 0)
                x->poison = 1;
            goto out;
        }

        /* 5. One journal entry per trade (ids drawn first), its postings. */
        char cnt[24];
        I64(cnt, (int64_t)ie);
        const char *pc[1] = {cnt};
        res = cm_db_query_prepared(
            c, "settle_entry_ids",
            "SELECT nextval('journal_entries_id_seq') FROM generate_series(1, $1::int)", 1, pc);
        if (!res || (size_t)PQntuples(res) != ie)
            goto out;
        for (int r = 0; r < PQntuples(res); r++)
            cm_buf_printf(&b[11], "%s%s", r ? "," : "{", PQgetvalue(res, r, 0));
        arr_end(&b[11], 0);
        PQclear(res);
        res = NULL;
        const char *pe[2] = {b[11].data, b[6].data};
        if (exec_prepared(c, "settle_entries",
                          "INSERT INTO journal_entries (id, kind, ref_id)"
                          " SELECT i, 'trade', r FROM unnest($1::bigint[], $2::text[]) AS u(i, r)",
                          2, pe, NULL) < 0)
            goto out;
        const char *pp[6] = {b[11].data, b[1].data, b[2].data, b[3].data, b[4].data, b[5].data};
        if (exec_prepared(
                c, "settle_postings",
                "INSERT INTO postings (entry_id, account_id, asset, bucket, amount)"
                " SELECT ($1::bigint[])[u.ix + 1], a.id, u.asset, u.bucket, u.amt"
                " FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])"
                "   AS u(ix, o, asset, bucket, amt)"
                " JOIN accounts a ON a.owner = u.o AND a.asset = u.asset",
                6, pp, NULL) < 0)
            goto out;
        x->applied += nfresh;
    }

    /* 6. Order events, then the closing holds the trades completed: one
     *    statement for the whole batch (migration 010, same results as
     *    one call per event; it returns how many holds it released). */
    if (x->ne > 0 || nh > 0) {
        struct cm_buf ei, et, eo, ex, er;
        cm_buf_init(&ei, 0);
        cm_buf_init(&et, 0);
        cm_buf_init(&eo, 0);
        cm_buf_init(&ex, 0);
        cm_buf_init(&er, 0);
        for (size_t i = 0; i < x->ne; i++) {
            const struct order_event *e = &x->ev[i];
            arr_str(&ei, e->id, i == 0);
            arr_str(&et, e->type, i == 0);
            arr_str(&eo, e->order_id, i == 0);
            arr_i64(&ex, e->expected, i == 0);
            if (e->end_reason)
                arr_str(&er, e->end_reason, i == 0);
            else
                cm_buf_puts(&er, i == 0 ? "{NULL" : ",NULL");
        }
        arr_end(&ei, x->ne == 0);
        arr_end(&et, x->ne == 0);
        arr_end(&eo, x->ne == 0);
        arr_end(&ex, x->ne == 0);
        arr_end(&er, x->ne == 0);
        const char *pv[6] = {ei.data, et.data, eo.data,
                             ex.data, er.data, nh > 0 ? b[7].data : NULL};
        res = cm_db_query_prepared(c, "wallet_order_events",
                                   "SELECT wallet_order_events($1::text[], $2::text[], $3::text[],"
                                   " $4::bigint[], $5::text[], $6::text[])",
                                   6, pv);
        cm_buf_release(&ei);
        cm_buf_release(&et);
        cm_buf_release(&eo);
        cm_buf_release(&ex);
        cm_buf_release(&er);
        if (!res || PQntuples(res) != 1)
            goto out;
        x->released = (size_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        res = NULL;
    }
    rc = 0;
out:
    if (res)
        PQclear(res);
    if (rc != 0 && !x->poison && cm_db_sqlstate(c)[0] == '2')
        x->poison = 1; /* integrity (23xxx) or data (22xxx): not transient */
    for (int i = 0; i < NBUF; i++)
        cm_buf_release(&b[i]);
    smap_release(&seen);
    smap_release(&accts);
    smap_release(&holds);
    free(fresh);
    free(d);
    free(hu);
    if (rc != 0 && x->poison)
        return STORE_POISON;
    return rc;
}

int store_settle(const struct trade *t, size_t nt, const struct order_event *ev, size_t ne,
                 size_t *applied, size_t *dups, size_t *released)
{
    struct settle_ctx x = {.t = t, .nt = nt, .ev = ev, .ne = ne};
    struct cm_db_error err;
    int rc = cm_db_tx(g_pool, settle_tx, &x, 5, &err);
    if (rc == STORE_POISON || (rc == -1 && err.sqlstate[0] == '2')) {
        /* The deferred balance check fails at COMMIT: also not transient. */
        return STORE_POISON;
    }
    if (rc != 0) {
        cm_warn("wallet: settlement batch failed: %s %s", err.sqlstate, err.message);
        return STORE_ERR;
    }
    *applied = x.applied;
    *dups = x.dups;
    *released = x.released;
    return STORE_OK;
}

int store_reject_event(const char *event_id, const char *kind)
{
    const char *p[2] = {event_id, kind};
    char w[16];
    return word("INSERT INTO processed_events (event_id, kind, outcome) VALUES ($1, $2, 'rejected')"
                " ON CONFLICT (event_id) DO NOTHING RETURNING 'ok'",
                2, p, w, sizeof w, NULL) == 0
               ? 0
               : -1;
}

/* ---- withdrawals */

int store_withdrawal_load(const char *id, struct withdrawal_row *w)
{
    memset(w, 0, sizeof *w);
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return STORE_ERR;
    const char *p[1] = {id};
    PGresult *res = cm_db_query(c,
                                "SELECT id, user_id, asset, wallet_fmt(amount, asset), address,"
                                " status, coalesce(signature, '') FROM withdrawals WHERE id = $1",
                                1, p);
    int rc = STORE_ERR;
    if (res && PQntuples(res) == 1) {
        snprintf(w->id, sizeof w->id, "%s", PQgetvalue(res, 0, 0));
        snprintf(w->user_id, sizeof w->user_id, "%s", PQgetvalue(res, 0, 1));
        snprintf(w->asset, sizeof w->asset, "%s", PQgetvalue(res, 0, 2));
        snprintf(w->amount, sizeof w->amount, "%s", PQgetvalue(res, 0, 3));
        snprintf(w->address, sizeof w->address, "%s", PQgetvalue(res, 0, 4));
        snprintf(w->status, sizeof w->status, "%s", PQgetvalue(res, 0, 5));
        snprintf(w->signature, sizeof w->signature, "%s", PQgetvalue(res, 0, 6));
        rc = STORE_OK;
    } else if (res) {
        rc = STORE_NONE;
    }
    PQclear(res);
    cm_db_release(g_pool, c);
    return rc;
}

int store_withdrawal_step(const char *sql, int n, const char *const *params, char *w, size_t wn)
{
    return word(sql, n, params, w, wn, NULL);
}

static int id_list(const char *sql, int np, const char *const *p, char ids[][ID_MAX + 1],
                   size_t max, size_t *n)
{
    *n = 0;
    struct cm_db_conn *c = cm_db_acquire(g_pool, -1);
    if (!c)
        return -1;
    PGresult *res = cm_db_query(c, sql, np, p);
    int rc = -1;
    if (res) {
        for (int r = 0; r < PQntuples(res) && *n < max; r++)
            snprintf(ids[(*n)++], ID_MAX + 1, "%s", PQgetvalue(res, r, 0));
        rc = 0;
    }
    PQclear(res);
    cm_db_release(g_pool, c);
    return rc;
}

int store_unqueued_withdrawals(int64_t age_ms, char ids[][ID_MAX + 1], size_t max, size_t *n)
{
    char a[24], m[24];
    I64(a, age_ms);
    I64(m, (int64_t)max);
    const char *p[2] = {a, m};
    return id_list("SELECT id FROM withdrawals WHERE status IN ('requested', 'approved', 'queued',"
                   " 'signed', 'broadcast')"
                   " AND updated_at < clock_timestamp() - $1::bigint * interval '1 millisecond'"
                   " ORDER BY created_at LIMIT $2::int",
                   2, p, ids, max, n);
}

int store_queue_depth(int64_t *n)
{
    char *out;
    int rc = one_text("SELECT count(*) FROM withdrawals WHERE status IN ('requested', 'approved',"
                      " 'queued', 'signed')",
                      0, NULL, &out, NULL);
    if (rc != STORE_OK)
        return -1;
    *n = strtoll(out, NULL, 10);
    free(out);
    return 0;
}

int store_tick_deposits(int max, int *credited)
{
    char m[16], *out;
    I64(m, max);
    const char *p[1] = {m};
    if (one_text("SELECT wallet_tick_deposits($1::int)", 1, p, &out, NULL) != STORE_OK)
        return -1;
    *credited = (int)strtol(out, NULL, 10);
    free(out);
    return 0;
}

int store_stranded_holds(int64_t age_ms, char ids[][ID_MAX + 1], size_t max, size_t *n)
{
    char a[24], m[24];
    I64(a, age_ms);
    I64(m, (int64_t)max);
    const char *p[2] = {a, m};
    return id_list("SELECT hold_id FROM holds WHERE status = 'active' AND NOT seen"
                   " AND purpose = 'order'"
                   " AND created_at < now() - $1::bigint * interval '1 millisecond'"
                   " ORDER BY created_at LIMIT $2::int",
                   2, p, ids, max, n);
}

int store_mark_hold_seen(const char *hold)
{
    const char *p[1] = {hold};
    char w[8];
    return word("UPDATE holds SET seen = true WHERE hold_id = $1 RETURNING 'ok'", 1, p, w, sizeof w,
                NULL);
}

/* ---- outbox */

struct relay_ctx {
    const struct outbox_mark *m;
    size_t max;
    outbox_publish_fn fn;
    void *ctx;
    int marked;
    int locked;
    uint64_t horizon; /* xmin of the poll's snapshot */
    int64_t bound;    /* lowest id possibly unsent after this poll (INT64_MAX: none) */
    int have_pair;    /* the marking transaction's (last id, xid) */
    int64_t pair_last;
    uint64_t pair_xid;
};

static int relay_tx(struct cm_db_conn *c, void *arg)
{
    struct relay_ctx *x = arg;
    x->marked = x->locked = x->have_pair = 0;
    char from[24], m[24];
    I64(from, x->m->from);
    I64(m, (int64_t)x->max);
    const char *p[2] = {from, m};
    /* Lock and rows in one round trip (migration 009). */
    PGresult *res = cm_db_query_prepared(c, "wallet_outbox_poll",
                                         "SELECT horizon::text, id, topic, key, payload FROM "
                                         "wallet_outbox_poll($1::bigint, $2::int)",
                                         2, p);
    if (!res)
        return -1;
    int n = PQntuples(res);
    if (n == 0) { /* another replica's relay holds the lock */
        PQclear(res);
        return 0;
    }
    x->locked = 1;
    x->horizon = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    if (PQgetisnull(res, 0, 1))
        n = 0;
    x->bound = INT64_MAX;
    if (n == 0) {
        PQclear(res);
        return 0;
    }
    struct outbox_row *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) {
        PQclear(res);
        return -1;
    }
    for (int r = 0; r < n; r++) {
        rows[r].id = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        snprintf(rows[r].topic, sizeof rows[r].topic, "%s", PQgetvalue(res, r, 2));
        snprintf(rows[r].key, sizeof rows[r].key, "%s", PQgetvalue(res, r, 3));
        rows[r].payload = PQgetvalue(res, r, 4);
    }
    size_t done = x->fn(x->ctx, rows, (size_t)n);
    /* Rows past the limit were not read: the first of them is above the
     * last row returned. */
    if (done < (size_t)n)
        x->bound = rows[done].id;
    else if ((size_t)n >= x->max)
        x->bound = rows[n - 1].id + 1;
    int rc = 0;
    if (done > 0) {
        struct cm_buf ids;
        cm_buf_init(&ids, 0);
        for (size_t i = 0; i < done; i++)
            arr_i64(&ids, rows[i].id, i == 0);
        arr_end(&ids, 0);
        const char *pm[1] = {ids.data};
        PGresult *mr = cm_db_query_prepared(
            c, "wallet_outbox_mark",
            "SELECT marked, last_id, relay_xid::text FROM wallet_outbox_mark($1::bigint[])", 1, pm);
        cm_buf_release(&ids);
        if (!mr || PQntuples(mr) != 1) {
            rc = -1;
        } else {
            x->marked = (int)strtol(PQgetvalue(mr, 0, 0), NULL, 10);
            if (!PQgetisnull(mr, 0, 1) && !PQgetisnull(mr, 0, 2)) {
                x->have_pair = 1;
                x->pair_last = strtoll(PQgetvalue(mr, 0, 1), NULL, 10);
                x->pair_xid = strtoull(PQgetvalue(mr, 0, 2), NULL, 10);
            }
        }
        PQclear(mr);
    }
    free(rows);
    PQclear(res);
    return rc;
}

/* After a committed poll: every pair whose transaction ended before the
 * poll's snapshot settles the ids up to its last_id (all visible to the
 * poll, hence returned unless the limit cut them off: bound). */
static void mark_advance(struct outbox_mark *m, const struct relay_ctx *x)
{
    size_t k = 0;
    while (k < m->npairs && m->pairs[k].xid < x->horizon)
        k++;
    if (k > 0) {
        int64_t settled = m->pairs[k - 1].last_id + 1;
        if (settled > x->bound)
            settled = x->bound;
        if (settled > m->from)
            m->from = settled;
        memmove(m->pairs, m->pairs + k, (m->npairs - k) * sizeof m->pairs[0]);
        m->npairs -= k;
    }
    if (x->have_pair) {
        /* Full (a long transaction holds the horizon back): the newest
         * pair replaces the last one; the older ones settle first. */
        size_t at = m->npairs < OUTBOX_PAIRS ? m->npairs++ : OUTBOX_PAIRS - 1;
        m->pairs[at].last_id = x->pair_last;
        m->pairs[at].xid = x->pair_xid;
    }
}

int store_outbox_relay(struct outbox_mark *m, size_t max, outbox_publish_fn fn, void *ctx)
{
    struct relay_ctx x = {.m = m, .max = max, .fn = fn, .ctx = ctx};
    if (cm_db_tx(g_pool, relay_tx, &x, 0, NULL) != 0)
        return -1;
    if (x.locked)
        mark_advance(m, &x);
    return x.marked;
}
