/*
 * order: shop orders. Table of contents: configuration, store, catalog
 * client, event relay, HTTP, run until a signal, then stop in reverse.
 */
#include <stdio.h>

#include "common/health.h"
#include "common/http_server.h"
#include "common/log.h"
#include "order.h"
#include "common/service.h"
#include "common/banned.h"

const char *order_events_topic;

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
    struct order_config cfg;
    if (order_config_load(&cfg) < 0)
        return 2;
    /* Log level from LOG_LEVEL, process metrics, fault hooks, tracing. */
    if (cm_service_init("order", CM_LAB_VERSION) < 0)
        return 2;
    order_events_topic = cfg.events_topic;

    if (store_open(cfg.database_url, cfg.migrations_dir, cfg.db_conns) < 0) {
        cm_error("order: cannot open the database");
        return 1;
    }
    if (catalog_client_open(cfg.catalog_url, cfg.catalog_timeout_ms, cfg.catalog_breaker_open_ms) <
            0 ||
        events_start(&cfg) < 0) {
        catalog_client_close();
        store_close();
        return 1;
    }

    struct cm_http_config http;
    cm_http_config_init(&http);
    http.service = "order";
    http.port = cfg.port;
    http.threads = cfg.threads;
    http.max_body = cfg.max_body;
    http.admin_token = cfg.admin_token;
    http.drain_delay_ms = (int)cfg.drain_delay_ms;
    http.drain_timeout_ms = (int)cfg.drain_timeout_ms;
    struct cm_http_server *srv = cm_http_server_new(&http, order_routes, order_nroutes);
    int rc = 1;
    if (!srv || cm_health_add_check(srv, "postgres", check_postgres, NULL, 2000) < 0 ||
        cm_http_server_start(srv) < 0) {
        cm_error("order: cannot start HTTP on port %d", cfg.port);
    } else {
        cm_info("order: listening on port %d", cm_http_server_port(srv));
        rc = cm_http_server_run_until_signal(srv) == 0 ? 0 : 1;
    }
    cm_http_server_free(srv);
    events_stop();
    catalog_client_close();
    store_close();
    return rc;
}
