/* SQL for accounts and refresh tokens. Parameterized statements only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db.h"
#include "common/log.h"
#include "common/migrate.h"
#include "gateway.h"
#include "common/banned.h"

static struct cm_db_pool *pool;

#define USER_COLS                                                                                  \
    "id::text, email, password_hash, array_to_string(roles, ','), "                                \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

int store_open(const char *url, const char *migrations_dir, int max_conns)
{
    char err[256];
    if (cm_migrate_run(url, migrations_dir, "gateway", NULL) < 0)
        return -1;
    struct cm_db_pool_config pc = {.url = url,
                                   .max_conns = max_conns,
                                   .application_name = "gateway",
                                   .statement_timeout_ms = 5000};
    pool = cm_db_pool_open(&pc, err, sizeof err);
    if (!pool) {
        cm_error("gateway: database: %s", err);
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

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static void fill_user(PGresult *res, int row, struct store_user *u)
{
    copy(u->id, sizeof u->id, PQgetvalue(res, row, 0));
    copy(u->email, sizeof u->email, PQgetvalue(res, row, 1));
    copy(u->password_hash, sizeof u->password_hash, PQgetvalue(res, row, 2));
    copy(u->roles, sizeof u->roles, PQgetvalue(res, row, 3));
    copy(u->created_at, sizeof u->created_at, PQgetvalue(res, row, 4));
}

int store_user_create(const char *email, const char *hash, struct store_user *out)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return STORE_ERR;
    const char *p[] = {email, hash};
    PGresult *res = cm_db_query(
        c, "INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING " USER_COLS, 2, p);
    int rc = STORE_OK;
    if (!res)
        rc = strcmp(cm_db_sqlstate(c), CM_DB_UNIQUE_VIOLATION) == 0 ? STORE_CONFLICT : STORE_ERR;
    else
        fill_user(res, 0, out);
    if (rc == STORE_ERR)
        cm_error("gateway: create user: %s", cm_db_errmsg(c));
    PQclear(res);
    cm_db_release(pool, c);
    return rc;
}

int store_user_by_email(const char *email, struct store_user *out)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return STORE_ERR;
    const char *p[] = {email};
    PGresult *res = cm_db_query(c, "SELECT " USER_COLS " FROM users WHERE email = $1", 1, p);
    int rc = !res ? STORE_ERR : PQntuples(res) == 0 ? STORE_NOTFOUND : STORE_OK;
    if (rc == STORE_OK)
        fill_user(res, 0, out);
    if (rc == STORE_ERR)
        cm_error("gateway: find user: %s", cm_db_errmsg(c));
    PQclear(res);
    cm_db_release(pool, c);
    return rc;
}

int store_refresh_issue(const char *uid, const char *hash, int64_t ttl_s)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return STORE_ERR;
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
    const char *p[] = {uid, hash, ttl};
    int rc = cm_db_exec(c,
                        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) "
                        "VALUES ($1::bigint, nextval('refresh_families'), $2, "
                        "now() + make_interval(secs => $3::bigint))",
                        3, p, NULL);
    if (rc < 0)
        cm_error("gateway: issue refresh token: %s", cm_db_errmsg(c));
    cm_db_release(pool, c);
    return rc < 0 ? STORE_ERR : STORE_OK;
}

struct rotate {
    const char *old_hash, *new_hash;
    char ttl[32];
    struct store_user *user;
    int outcome;
};

static int rotate_tx(struct cm_db_conn *c, void *ctx)
{
    struct rotate *r = ctx;
    const char *p1[] = {r->old_hash};
    PGresult *res = cm_db_query(c,
                                "SELECT t.id::text, t.family_id::text, t.user_id::text, "
                                "(t.used_at IS NOT NULL), (t.revoked_at IS NOT NULL), "
                                "(t.expires_at <= now()) FROM refresh_tokens t "
                                "WHERE t.token_hash = $1 FOR UPDATE",
                                1, p1);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        r->outcome = STORE_NOTFOUND;
        return 0;
    }
    char id[24], family[24], uid[24];
    copy(id, sizeof id, PQgetvalue(res, 0, 0));
    copy(family, sizeof family, PQgetvalue(res, 0, 1));
    copy(uid, sizeof uid, PQgetvalue(res, 0, 2));
    int used = PQgetvalue(res, 0, 3)[0] == 't';
    int revoked = PQgetvalue(res, 0, 4)[0] == 't';
    int expired = PQgetvalue(res, 0, 5)[0] == 't';
    PQclear(res);
    if (revoked || expired) {
        r->outcome = STORE_REVOKED;
        return 0;
    }
    if (used) {
        /* Reuse of a rotated token: someone holds a copy. Kill the family
         * (committed: the outcome is a business result, not an error). */
        const char *p[] = {family};
        if (cm_db_exec(c,
                       "UPDATE refresh_tokens SET revoked_at = now() "
                       "WHERE family_id = $1::bigint AND revoked_at IS NULL",
                       1, p, NULL) < 0)
            return -1;
        r->outcome = STORE_REUSED;
        return 0;
    }
    const char *p2[] = {id};
    if (cm_db_exec(c, "UPDATE refresh_tokens SET used_at = now() WHERE id = $1::bigint", 1, p2,
                   NULL) < 0)
        return -1;
    const char *p3[] = {uid, family, r->new_hash, r->ttl};
    if (cm_db_exec(c,
                   "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) "
                   "VALUES ($1::bigint, $2::bigint, $3, now() + make_interval(secs => $4::bigint))",
                   4, p3, NULL) < 0)
        return -1;
    const char *p4[] = {uid};
    res = cm_db_query(c, "SELECT " USER_COLS " FROM users WHERE id = $1::bigint", 1, p4);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        r->outcome = STORE_NOTFOUND;
        return 0;
    }
    fill_user(res, 0, r->user);
    PQclear(res);
    r->outcome = STORE_OK;
    return 0;
}

int store_refresh_rotate(const char *old_hash, const char *new_hash, int64_t ttl_s,
                         struct store_user *user)
{
    struct rotate r = {.old_hash = old_hash, .new_hash = new_hash, .user = user};
    snprintf(r.ttl, sizeof r.ttl, "%lld", (long long)ttl_s);
    struct cm_db_error err;
    if (cm_db_tx(pool, rotate_tx, &r, 3, &err) != 0) {
        cm_error("gateway: rotate refresh token: %s", err.message);
        return STORE_ERR;
    }
    return r.outcome;
}

int store_refresh_revoke(const char *hash)
{
    struct cm_db_conn *c = cm_db_acquire(pool, -1);
    if (!c)
        return STORE_ERR;
    const char *p[] = {hash};
    int rc =
        cm_db_exec(c,
                   "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL "
                   "AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
                   1, p, NULL);
    if (rc < 0)
        cm_error("gateway: revoke refresh token: %s", cm_db_errmsg(c));
    cm_db_release(pool, c);
    return rc < 0 ? STORE_ERR : STORE_OK;
}
