#ifndef COMMON_MIGRATE_H
#define COMMON_MIGRATE_H
/*
 * Schema migrations: ordered SQL files NNN_name.sql from a directory,
 * applied once each and recorded in a schema_migrations table
 * (service, version, name, checksum, applied_at).
 *
 * - Each file runs in its own transaction with its bookkeeping row, so a
 *   failing file leaves neither its changes nor its row (statements that
 *   cannot run in a transaction, e.g. CREATE INDEX CONCURRENTLY, are not
 *   supported).
 * - Several replicas may run it at once: a session advisory lock keyed on
 *   (schema, service) lets one apply while the others wait, then find
 *   everything applied.
 * - An applied file whose SHA-256 changed is refused (-1, nothing applied):
 *   released migrations are immutable; write a new file instead.
 * - schema (optional): the migrations and schema_migrations live in this
 *   schema (created if missing; first on the search_path while they run),
 *   so services sharing one database stay apart.
 *
 * Files are read whole, up to 4 MiB each. Versions must be unique. Errors
 * are logged with the file and the server's message.
 *
 * Thread-safety: cm_migrate_run may run in several threads or processes at
 * once (that is the point of the lock); cm_migrate_run_conn uses the
 * caller's connection, which no other thread may use meanwhile.
 */
#include <libpq-fe.h>

/* Opens its own connection to url (postgres:// URL or conninfo). 0 / -1. */
int cm_migrate_run(const char *url, const char *dir, const char *service, const char *schema);
/* Same on a caller's connection (borrowed; must be idle, not in a
 * transaction). Leaves search_path changed when schema is given. */
int cm_migrate_run_conn(PGconn *conn, const char *dir, const char *service, const char *schema);

/* Parses "NNN_name.sql" -> version (NNN, 1..2^31-1). 0, or -1 when the file
 * name is not a migration. Exposed for tests. */
int cm_migrate_parse_name(const char *file, long *version);

#endif
