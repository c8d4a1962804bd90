/*
 * matching: the order books of every market (core/book.h) behind Kafka
 * (docs/matching.md). Table of contents: configuration, markets, metrics,
 * migrations, snapshots + consumer, HTTP; run until a signal, then stop in
 * reverse (the consumer delivers what it applied and writes a last
 * snapshot).
 */
#include <stdio.h>
#include <time.h>

#include "common/health.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/migrate.h"
#include "common/service.h"
#include "matching.h"
#include "common/banned.h"

struct mt_metrics mt_m;
static int64_t started_ms;

int64_t mt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void collect(void *ctx)
{
    (void)ctx;
    int64_t now = mt_now_ms();
    for (size_t i = 0; i < mt_nmarkets; i++) {
        int64_t at = __atomic_load_n(&mt_markets[i].snap_ok_ms, __ATOMIC_RELAXED);
        cm_gauge_set(mt_m.snap_age, (double)(now - (at ? at : started_ms)) / 1000.0,
                     mt_markets[i].symbol);
    }
}

static void metrics_init(void)
{
    static const double lat[] = {0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005,
                                 0.0001,   0.00025,   0.0005,   0.001,   0.005,    0.025};
    mt_m.commands = cm_metric_counter(
        "matching_commands_total",
        "Commands applied per market; type is place, cancel or cancel_all, result is accepted, "
        "rejected, duplicate or skipped (malformed beyond an answer, unknown market).",
        "market,type,result");
    mt_m.latency = cm_metric_histogram(
        "matching_match_latency_seconds",
        "Time from command consumed to its events handed to the producer, seconds.", "market", lat,
        sizeof lat / sizeof *lat);
    mt_m.depth = cm_metric_gauge("matching_book_depth",
                                 "Resting orders in the book per market and side (bid, ask).",
                                 "market,side");
    mt_m.trades =
        cm_metric_counter("matching_trades_total", "Trades (fills) produced per market.", "market");
    mt_m.produced = cm_metric_counter(
        "matching_events_produced_total",
        "Order events produced per market and event type (accepted, rejected, filled, "
        "partially_filled, cancelled, expired).",
        "market,type");
    mt_m.snap_age =
        cm_metric_gauge("matching_snapshot_age_seconds",
                        "Seconds since the market's last successful snapshot.", "market");
    mt_m.snap_time = cm_metric_histogram("matching_snapshot_duration_seconds",
                                         "Time to write one snapshot, seconds.", NULL, NULL, 0);
    mt_m.snap_fail = cm_metric_counter("matching_snapshot_failures_total",
                                       "Snapshots that failed to write.", NULL);
    cm_counter_add(mt_m.snap_fail, 0);
    for (size_t i = 0; i < mt_nmarkets; i++) {
        const char *s = mt_markets[i].symbol;
        cm_counter_add(mt_m.trades, 0, s);
        cm_gauge_set(mt_m.depth, 0, s, "bid");
        cm_gauge_set(mt_m.depth, 0, s, "ask");
        cm_counter_add(mt_m.commands, 0, s, "place", "accepted");
        cm_counter_add(mt_m.commands, 0, s, "place", "rejected");
    }
    cm_metrics_on_collect(collect, NULL);
}

static int check_postgres(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (store_ping() == 0)
        return 0;
    snprintf(msg, msglen, "postgres unreachable");
    return -1;
}

static int check_kafka(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (events_kafka_ok())
        return 0;
    snprintf(msg, msglen, "events not delivered to kafka");
    return -1;
}

static int check_books(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (events_books_loaded())
        return 0;
    snprintf(msg, msglen, "books loading");
    return -1;
}

int main(void)
{
    started_ms = mt_now_ms();
    if (cm_service_init("matching", MATCHING_VERSION) < 0 || mt_config_load(&mt_cfg) < 0)
        return 2;
    char err[512];
    if (mt_markets_load(mt_cfg.markets_file, mt_cfg.order_capacity, err, sizeof err) < 0) {
        fprintf(stderr, "matching: config: MATCHING_MARKETS_FILE %s\n", err);
        return 2;
    }
    cm_info("matching: %zu markets from %s", mt_nmarkets, mt_cfg.markets_file);
    metrics_init();

    int rc = 1;
    struct cm_http_server *srv = NULL;
    if (cm_migrate_run(mt_cfg.database_url, mt_cfg.migrations_dir, "matching", NULL) < 0 ||
        store_open(mt_cfg.database_url) < 0 || events_start() < 0)
        goto stop;

    struct cm_http_config http;
    cm_http_config_init(&http);
    http.service = "matching";
    http.port = mt_cfg.port;
    http.threads = (unsigned)mt_cfg.threads;
    http.max_body = 4096;
    http.admin_token = mt_cfg.admin_token;
    srv = cm_http_server_new(&http, mt_routes, mt_nroutes);
    if (!srv || cm_health_add_check(srv, "postgres", check_postgres, NULL, 2000) < 0 ||
        cm_health_add_check(srv, "kafka", check_kafka, NULL, 1000) < 0 ||
        cm_health_add_check(srv, "books", check_books, NULL, 1000) < 0 ||
        cm_http_server_start(srv) < 0) {
        cm_error("matching: cannot start HTTP on port %d", mt_cfg.port);
        goto stop;
    }
    cm_info("matching: listening on port %d", cm_http_server_port(srv));
    rc = cm_http_server_run_until_signal(srv) == 0 ? 0 : 1;
stop:
    cm_http_server_free(srv);
    events_stop();
    if (events_failed())
        rc = 1;
    store_close();
    mt_markets_free();
    return rc;
}
