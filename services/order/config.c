/* The order service's environment (12-factor); docs/shop.md lists it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "order.h"
#include "common/banned.h"

/* MIGRATIONS_DIR, else the first directory that exists of: the repository
 * layout seen from the working directory (the lab runs binaries from the
 * repository), the install prefix next to the binary (the image:
 * /usr/local/share/order/migrations), and the repository seen from
 * build/bin. Static storage: it lives as long as the process. */
static const char *find_migrations(void)
{
    static char path[PATH_MAX + 64];
    const char *env = getenv("MIGRATIONS_DIR");
    if (env && *env)
        return env;
    struct stat st;
    snprintf(path, sizeof path, "services/order/migrations");
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return path;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = len > 0 ? (exe[len] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        snprintf(path, sizeof path, "%s/../share/order/migrations", exe);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return path;
        snprintf(path, sizeof path, "%s/../../services/order/migrations", exe);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return path;
    }
    snprintf(path, sizeof path, "services/order/migrations"); /* named in the error */
    return path;
}

int order_config_load(struct order_config *c)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "order");
    c->port = cm_config_port(&cfg, "PORT", "8086");
    c->database_url = cm_config_url(&cfg, "DATABASE_URL", NULL, "postgres://,postgresql://");
    c->redis_url = cm_config_url(&cfg, "REDIS_URL", NULL, "redis://");
    c->kafka_brokers = cm_config_string(&cfg, "KAFKA_BROKERS", NULL);
    c->kafka_props = cm_config_string(&cfg, "KAFKA_PROPS", "");
    c->catalog_url = cm_config_url(&cfg, "CATALOG_URL", NULL, "http://,https://");
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->migrations_dir = find_migrations();
    c->events_topic = cm_config_string(&cfg, "ORDER_EVENTS_TOPIC", "shop.orders.events");
    c->status_channel = cm_config_string(&cfg, "ORDER_STATUS_CHANNEL", "orders:status");
    c->log_level = cm_config_enum(&cfg, "LOG_LEVEL", "info", "debug|info|warn|error");
    c->catalog_timeout_ms = cm_config_duration_ms(&cfg, "CATALOG_TIMEOUT", "2s");
    c->catalog_breaker_open_ms = cm_config_duration_ms(&cfg, "CATALOG_BREAKER_OPEN", "10s");
    c->relay_interval_ms = cm_config_duration_ms(&cfg, "OUTBOX_POLL_INTERVAL", "500ms");
    c->threads = (unsigned)cm_config_int(&cfg, "HTTP_THREADS", "8", 1, 64);
    c->db_conns = (int)cm_config_int(&cfg, "DB_POOL_SIZE", "12", 2, 100);
    c->max_body = (size_t)cm_config_int(&cfg, "MAX_BODY_BYTES", "65536", 1024, 1048576);
    if (c->catalog_timeout_ms < 10)
        c->catalog_timeout_ms = 10;
    if (c->catalog_breaker_open_ms < 100)
        c->catalog_breaker_open_ms = 100;
    if (c->relay_interval_ms < 10)
        c->relay_interval_ms = 10;
    /* Kubernetes: a few seconds of failing readiness before the listener
     * goes, so endpoints are removed first (k8s/base/<name>/configmap.yaml). */
    c->drain_delay_ms = cm_config_duration_ms(&cfg, "DRAIN_DELAY", "0");
    c->drain_timeout_ms = 1000 * cm_config_int(&cfg, "DRAIN_TIMEOUT_SECONDS", "10", 1, 600);
    return cm_config_finish(&cfg);
}
