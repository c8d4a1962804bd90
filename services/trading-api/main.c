/*
 * trading-api: orders, the outbox to matching, the read model of
 * matching's events and market data (docs/trading.md).
 * Table of contents: configuration, stores, upstreams, the relay and
 * consumer threads, HTTP, run until a signal, close in reverse.
 */
#include <stdio.h>

#include "common/health.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/service.h"
#include "trading.h"
#include "common/banned.h"

struct market trading_markets[MAX_MARKETS];
size_t trading_nmarkets;
struct trading_metrics trading_m;

void trading_metrics_init(void)
{
    trading_m.orders = cm_metric_counter(
        "trading_orders_total",
        "Order placements by result: accepted, duplicate, rejected_risk, rejected_funds, "
        "invalid, error.",
        "result");
    trading_m.outbox_pending = cm_metric_gauge(
        "trading_outbox_pending", "Outbox rows written but not yet published to Kafka.", NULL);
    trading_m.outbox_age =
        cm_metric_gauge("trading_outbox_oldest_age_seconds",
                        "Age of the oldest unpublished outbox row, seconds (0 when empty).", NULL);
    trading_m.read_batches =
        cm_metric_counter("trading_read_model_batches_total",
                          "Read model batches applied (one transaction each).", NULL);
    trading_m.read_messages = cm_metric_counter(
        "trading_read_model_messages_total",
        "Order events and trades in the applied read model batches (duplicates included).", NULL);
    cm_counter_add(trading_m.read_batches, 0);
    cm_counter_add(trading_m.read_messages, 0);
    cm_gauge_set(trading_m.outbox_pending, 0);
    cm_gauge_set(trading_m.outbox_age, 0);
}

/* libcommon registers these families lazily and without series until the
 * first error; dashboards and alerts read them, so start them at 0 (same
 * names, types and labels as libcommon's). */
static void zero_series(void)
{
    static const char *const kinds[] = {"connection", "query", "serialization", "timeout"};
    struct cm_metric *e = cm_metric_counter(
        "db_errors_total", "PostgreSQL errors by kind (connection, query, serialization, timeout).",
        "kind");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        cm_counter_add(e, 0, kinds[i]);
    cm_counter_add(cm_metric_counter("db_tx_retries_total",
                                     "Transactions retried after a serialization failure or "
                                     "deadlock.",
                                     NULL),
                   0);
    cm_counter_add(cm_metric_counter("kafka_produced_total",
                                     "Kafka messages delivered (acknowledged) per topic.", "topic"),
                   0, trading_cfg.commands_topic);
    cm_counter_add(cm_metric_counter("kafka_produce_errors_total",
                                     "Kafka messages that failed delivery per topic.", "topic"),
                   0, trading_cfg.commands_topic);
}

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
    if (cm_service_init("trading-api", TRADING_VERSION) < 0 ||
        trading_config_load(&trading_cfg) < 0)
        return 2;
    trading_metrics_init();

    if (store_open(trading_cfg.database_url, trading_cfg.migrations_dir, trading_cfg.db_pool) < 0 ||
        store_load_markets(trading_markets, MAX_MARKETS, &trading_nmarkets) != ST_OK) {
        cm_error("trading-api: cannot open the database");
        store_close();
        return 1;
    }
    if (upstream_open() < 0 || relay_start() < 0 ||
        (trading_cfg.consumer_enabled && events_start() < 0) || stream_start() < 0) {
        cm_error("trading-api: cannot start upstream clients or Kafka");
        return 1;
    }

    zero_series();

    struct cm_http_config http;
    cm_http_config_init(&http);
    http.service = "trading-api";
    http.port = trading_cfg.port;
    http.threads = trading_cfg.threads; /* handlers wait on SQL and HTTP */
    http.max_body = 65536;
    http.admin_token = trading_cfg.admin_token;
    struct cm_http_server *srv = cm_http_server_new(&http, trading_routes, trading_nroutes);
    if (!srv || cm_health_add_check(srv, "postgres", check_postgres, NULL, 2000) < 0 ||
        cm_http_server_start(srv) < 0) {
        cm_error("trading-api: cannot start HTTP on port %d", trading_cfg.port);
        cm_http_server_free(srv);
        return 1;
    }
    cm_info("trading-api: listening on port %d", cm_http_server_port(srv));

    int rc = cm_http_server_run_until_signal(srv);
    stream_stop();
    cm_http_server_free(srv);
    events_stop();
    relay_stop();
    upstream_close();
    store_close();
    return rc == 0 ? 0 : 1;
}
