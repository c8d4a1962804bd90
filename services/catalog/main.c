/*
 * catalog: products, categories and stock for the shop demo.
 * Table of contents: configuration, stores, HTTP, run until a signal.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/health.h"
#include "common/http_server.h"
#include "common/log.h"
#include "catalog.h"
#include "common/service.h"
#include "common/banned.h"

static int check_postgres(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (store_ping() == 0)
        return 0;
    snprintf(msg, msglen, "postgres unreachable");
    return -1;
}

int main(void)
{
    struct catalog_config cfg;
    if (catalog_config_load(&cfg) < 0)
        return 2;
    /* Log level from LOG_LEVEL, process metrics, fault hooks, tracing. */
    if (cm_service_init("catalog", CM_LAB_VERSION) < 0)
        return 2;

    if (store_open(cfg.database_url, cfg.migrations_dir) < 0) {
        cm_error("catalog: cannot open the database");
        return 1;
    }
    if (cache_open(cfg.redis_url, cfg.cache_ttl_ms, cfg.cache_lock_ms, cfg.redis_timeout_ms) < 0)
        return 2;

    struct cm_http_config http;
    cm_http_config_init(&http);
    http.service = "catalog";
    http.port = cfg.port;
    http.threads = cfg.threads;
    http.max_body = cfg.max_body;
    http.admin_token = cfg.admin_token;
    http.drain_delay_ms = (int)cfg.drain_delay_ms;
    http.drain_timeout_ms = (int)cfg.drain_timeout_ms;
    struct cm_http_server *srv = cm_http_server_new(&http, catalog_routes, catalog_nroutes);
    /* Redis is not a readiness dependency: reads work (slower) without it. */
    if (!srv || cm_health_add_check(srv, "postgres", check_postgres, NULL, 2000) < 0 ||
        cm_http_server_start(srv) < 0) {
        cm_error("catalog: cannot start HTTP on port %d", cfg.port);
        cm_http_server_free(srv);
        store_close();
        return 1;
    }
    cm_info("catalog: listening on port %d", cm_http_server_port(srv));

    int rc = cm_http_server_run_until_signal(srv);
    cm_http_server_free(srv);
    cache_close();
    store_close();
    return rc == 0 ? 0 : 1;
}
