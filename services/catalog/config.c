/* The catalog's environment (12-factor); see docs/shop.md for the list. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "catalog.h"
#include "common/banned.h"

/* MIGRATIONS_DIR, else the first directory that exists of: the repository
 * layout seen from the working directory (the lab runs binaries from the
 * repository), the install prefix next to the binary (the image:
 * /usr/local/share/catalog/migrations), and the repository seen from
 * build/bin. Static storage: it lives as long as the process. */
static const char *find_migrations(void)
{
    static char path[PATH_MAX + 64];
    const char *env = getenv("MIGRATIONS_DIR");
    if (env && *env)
        return env;
    struct stat st;
    snprintf(path, sizeof path, "services/catalog/migrations");
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return path;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = len > 0 ? (exe[len] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        snprintf(path, sizeof path, "%s/../share/catalog/migrations", exe);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return path;
        snprintf(path, sizeof path, "%s/../../services/catalog/migrations", exe);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return path;
    }
    snprintf(path, sizeof path, "services/catalog/migrations"); /* named in the error */
    return path;
}

int catalog_config_load(struct catalog_config *c)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "catalog");
    c->port = cm_config_port(&cfg, "PORT", "8085");
    c->database_url = cm_config_url(&cfg, "DATABASE_URL", NULL, "postgres://,postgresql://");
    c->redis_url = cm_config_url(&cfg, "REDIS_URL", NULL, "redis://");
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->migrations_dir = find_migrations();
    c->log_level = cm_config_enum(&cfg, "LOG_LEVEL", "info", "debug|info|warn|error");
    c->cache_ttl_ms = cm_config_duration_ms(&cfg, "CACHE_TTL", "60s");
    c->cache_lock_ms = cm_config_duration_ms(&cfg, "CACHE_LOCK_TTL", "1s");
    c->redis_timeout_ms = cm_config_duration_ms(&cfg, "REDIS_TIMEOUT", "200ms");
    c->threads = (unsigned)cm_config_int(&cfg, "HTTP_THREADS", "4", 1, 64);
    c->max_body = (size_t)cm_config_int(&cfg, "MAX_BODY_BYTES", "65536", 1024, 1048576);
    /* A zero lock would let every miss through: keep a floor. */
    if (c->cache_lock_ms < 50)
        c->cache_lock_ms = 50;
    if (c->redis_timeout_ms < 10)
        c->redis_timeout_ms = 10;
    /* Kubernetes: a few seconds of failing readiness before the listener
     * goes, so endpoints are removed first (k8s/base/<name>/configmap.yaml). */
    c->drain_delay_ms = cm_config_duration_ms(&cfg, "DRAIN_DELAY", "0");
    c->drain_timeout_ms = 1000 * cm_config_int(&cfg, "DRAIN_TIMEOUT_SECONDS", "10", 1, 600);
    return cm_config_finish(&cfg);
}
