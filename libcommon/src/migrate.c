/*
 * Migrations runner: NNN_name.sql files applied in version order, each in
 * its own transaction, serialized across replicas by an advisory lock.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/migrate.h"
#include "common/banned.h"

#define MAX_FILE (4L * 1024 * 1024)

struct migration {
    long version;
    char *name; /* file name */
    char *sql;
    char checksum[65];
    int applied;
};

struct run {
    PGconn *pg;
    const char *service;
    struct migration *m;
    size_t n;
};

int cm_migrate_parse_name(const char *file, long *version)
{
    size_t digits = 0, len = file ? strlen(file) : 0;
    while (digits < len && isdigit((unsigned char)file[digits]))
        digits++;
    if (digits == 0 || digits > 9 || digits + 1 >= len || file[digits] != '_' || len < 5 ||
        strcmp(file + len - 4, ".sql") != 0 || digits + 1 == len - 4)
        return -1;
    long v = strtol(file, NULL, 10);
    if (v <= 0)
        return -1;
    *version = v;
    return 0;
}

static int sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc((size_t)MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, (size_t)MAX_FILE + 1, f) : 0;
    int bad = !buf || ferror(f) || n > (size_t)MAX_FILE;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int by_version(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void free_migrations(struct migration *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].sql);
    }
    free(m);
}

static int load_dir(const char *dir, struct migration **out, size_t *count)
{
    DIR *d = opendir(dir);
    struct migration *m = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    if (!d) {
        cm_log_kv(CM_LOG_ERROR, "migrations: cannot open directory", "dir", dir, "error",
                  strerror(errno), (const char *)NULL);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        long v;
        if (cm_migrate_parse_name(e->d_name, &v) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct migration *nm = realloc(m, cap * sizeof *m);
            if (!nm)
                goto fail;
            m = nm;
        }
        char path[4096];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        m[n] = (struct migration){.version = v, .name = strdup(e->d_name)};
        m[n].sql = read_file(path, &len);
        n++;
        if (!m[n - 1].name || !m[n - 1].sql || sha256_hex(m[n - 1].sql, len, m[n - 1].checksum)) {
            cm_log_kv(CM_LOG_ERROR, "migrations: cannot read file (or larger than 4 MiB)", "file",
                      path, (const char *)NULL);
            goto fail;
        }
    }
    closedir(d);
    d = NULL;
    if (n)
        qsort(m, n, sizeof *m, by_version);
    for (size_t i = 1; i < n; i++)
        if (m[i].version == m[i - 1].version) {
            cm_log_kv(CM_LOG_ERROR, "migrations: duplicate version", "file", m[i].name, "other",
                      m[i - 1].name, (const char *)NULL);
            goto fail;
        }
    *out = m;
    *count = n;
    return 0;
fail:
    if (d)
        closedir(d);
    free_migrations(m, n);
    return -1;
}

/* Runs one statement with params; logs and returns NULL on failure. */
static PGresult *q(PGconn *pg, const char *what, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
    msg[strcspn(msg, "\n")] = '\0';
    cm_log_kv(CM_LOG_ERROR, "migrations: statement failed", "step", what, "error", msg,
              (const char *)NULL);
    PQclear(r);
    return NULL;
}

static int ok(PGconn *pg, const char *what, const char *sql, int n, const char *const *params)
{
    PGresult *r = q(pg, what, sql, n, params);
    PQclear(r);
    return r ? 0 : -1;
}

static int verify_applied(struct run *run)
{
    const char *p[] = {run->service};
    PGresult *r = q(run->pg, "read schema_migrations",
                    "SELECT version, name, checksum FROM schema_migrations WHERE service = $1 "
                    "ORDER BY version",
                    1, p);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        long v = strtol(PQgetvalue(r, i, 0), NULL, 10);
        const struct migration *m = NULL;
        for (size_t k = 0; k < run->n && !m; k++)
            if (run->m[k].version == v)
                m = &run->m[k];
        if (!m) {
            cm_log_kv(CM_LOG_WARN, "migrations: applied version has no file", "service",
                      run->service, "name", PQgetvalue(r, i, 1), (const char *)NULL);
            continue;
        }
        if (strcmp(m->checksum, PQgetvalue(r, i, 2)) != 0) {
            cm_log_kv(CM_LOG_ERROR,
                      "migrations: applied file changed (checksum mismatch); refusing to run",
                      "service", run->service, "file", m->name, "applied_checksum",
                      PQgetvalue(r, i, 2), "file_checksum", m->checksum, (const char *)NULL);
            rc = -1;
        }
    }
    for (size_t k = 0; k < run->n; k++)
        for (int i = 0; i < PQntuples(r); i++)
            if (strtol(PQgetvalue(r, i, 0), NULL, 10) == run->m[k].version)
                run->m[k].applied = 1;
    PQclear(r);
    return rc;
}

static int apply_one(struct run *run, const struct migration *m)
{
    char ver[32];
    snprintf(ver, sizeof ver, "%ld", m->version);
    const char *p[] = {run->service, ver, m->name, m->checksum};
    if (ok(run->pg, "begin", "BEGIN", 0, NULL) != 0)
        return -1;
    /* The file is trusted, versioned SQL (several statements): PQexec is
     * the one way to run it; nothing is spliced into it. */
    PGresult *r = PQexec(run->pg, m->sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(run->pg));
        msg[strcspn(msg, "\n")] = '\0';
        cm_log_kv(CM_LOG_ERROR, "migrations: file failed; rolled back", "service", run->service,
                  "file", m->name, "error", msg, (const char *)NULL);
        PQclear(r);
        PQclear(PQexec(run->pg, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    if (ok(run->pg, "record",
           "INSERT INTO schema_migrations (service, version, name, checksum) "
           "VALUES ($1, $2::bigint, $3, $4)",
           4, p) != 0 ||
        ok(run->pg, "commit", "COMMIT", 0, NULL) != 0) {
        PQclear(PQexec(run->pg, "ROLLBACK"));
        return -1;
    }
    cm_log_kv(CM_LOG_INFO, "migration applied", "service", run->service, "file", m->name,
              (const char *)NULL);
    return 0;
}

static uint64_t fnv1a(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = a; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    for (const char *s = b; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int cm_migrate_run_conn(PGconn *pg, const char *dir, const char *service, const char *schema)
{
    struct run run = {.pg = pg, .service = service};
    int rc = -1, locked = 0;
    char key[32], *ident = NULL;
    if (!pg || PQstatus(pg) != CONNECTION_OK || !dir || !service || !*service) {
        cm_log_kv(CM_LOG_ERROR, "migrations: bad arguments or no connection", (const char *)NULL);
        return -1;
    }
    if (load_dir(dir, &run.m, &run.n) != 0)
        return -1;

    /* One lock per schema: replicas of a service, and services sharing a
     * schema, take turns (schema_migrations is created under it too). */
    snprintf(key, sizeof key, "%" PRId64,
             (int64_t)fnv1a("cm_migrate/", schema && *schema ? schema : ""));
    const char *kp[] = {key};
    if (ok(pg, "lock", "SELECT pg_advisory_lock($1::bigint)", 1, kp) != 0)
        goto out;
    locked = 1;

    if (schema && *schema) {
        ident = PQescapeIdentifier(pg, schema, strlen(schema));
        if (!ident)
            goto out;
        char ddl[512], path[600];
        /* An identifier cannot be a parameter; PQescapeIdentifier quotes it. */
        snprintf(ddl, sizeof ddl, "CREATE SCHEMA IF NOT EXISTS %s", ident);
        snprintf(path, sizeof path, "%s, public", ident);
        const char *pp[] = {path};
        if (ok(pg, "create schema", ddl, 0, NULL) != 0 ||
            ok(pg, "search_path", "SELECT set_config('search_path', $1, false)", 1, pp) != 0)
            goto out;
    }
    if (ok(pg, "create table",
           "CREATE TABLE IF NOT EXISTS schema_migrations ("
           " service text NOT NULL,"
           " version bigint NOT NULL,"
           " name text NOT NULL,"
           " checksum text NOT NULL,"
           " applied_at timestamptz NOT NULL DEFAULT now(),"
           " PRIMARY KEY (service, version))",
           0, NULL) != 0)
        goto out;
    if (verify_applied(&run) != 0)
        goto out;
    int applied = 0;
    for (size_t i = 0; i < run.n; i++) {
        if (run.m[i].applied)
            continue;
        if (apply_one(&run, &run.m[i]) != 0)
            goto out;
        applied++;
    }
    char na[16];
    snprintf(na, sizeof na, "%d", applied);
    cm_log_kv(CM_LOG_INFO, "migrations up to date", "service", service, "applied", na,
              (const char *)NULL);
    rc = 0;
out:
    if (locked)
        ok(pg, "unlock", "SELECT pg_advisory_unlock($1::bigint)", 1, kp);
    PQfreemem(ident);
    free_migrations(run.m, run.n);
    return rc;
}

/* NOTICEs ("already exists, skipping") are expected on every run. */
static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    cm_log_kv(CM_LOG_DEBUG, "postgres notice", "notice", msg, (const char *)NULL);
}

int cm_migrate_run(const char *url, const char *dir, const char *service, const char *schema)
{
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {url, "migrate", NULL};
    if (!url || !*url) {
        cm_log_kv(CM_LOG_ERROR, "migrations: database url is required", (const char *)NULL);
        return -1;
    }
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", pg ? PQerrorMessage(pg) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        cm_log_kv(CM_LOG_ERROR, "migrations: cannot connect", "error", msg, (const char *)NULL);
        PQfinish(pg);
        return -1;
    }
    PQsetNoticeProcessor(pg, quiet_notice, NULL);
    int rc = cm_migrate_run_conn(pg, dir, service, schema);
    PQfinish(pg);
    return rc;
}
