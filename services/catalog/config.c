/* The catalog's environment (12-factor); see docs/shop.md for the list. */
#include "common/config.h"
#include "common/log.h"
#include "catalog.h"
#include "common/banned.h"

int catalog_config_load(struct catalog_config *c)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "catalog");
    c->port = cm_config_port(&cfg, "PORT", "8085");
    c->database_url = cm_config_url(&cfg, "DATABASE_URL", NULL, "postgres://,postgresql://");
    c->redis_url = cm_config_url(&cfg, "REDIS_URL", NULL, "redis://");
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->migrations_dir = cm_config_string(&cfg, "MIGRATIONS_DIR", "services/catalog/migrations");
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
    return cm_config_finish(&cfg);
}
