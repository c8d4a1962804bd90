/*
 * wallet: ledger, holds, settlement, deposits, withdrawals. Table of
 * contents: configuration, store (migrations), metrics, settlement
 * consumer, outbox relay, withdrawal workers, ticker, HTTP; run until a
 * signal, then stop in reverse.
 *
 * The wallet holds no key material: signing happens in wallet-signer
 * behind SIGNER_SOCKET. The signer's secrets may be in this process's
 * environment in the local lab (it hands every variable to every
 * service); they are wiped before anything else runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/health.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "store.h"
#include "wallet.h"
#include "common/service.h"
#include "common/banned.h"

extern char **environ;

struct wallet_metrics wallet_m;

/* Overwrites the value in place (so /proc/self/environ and memory no
 * longer hold it), then removes the variable. */
static void wipe_env(const char *name)
{
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            memset(*e + n + 1, 0, strlen(*e + n + 1));
    unsetenv(name);
}

void wallet_metrics_init(void)
{
    static const double delay_buckets[] = {0.05, 0.1, 0.25, 0.5, 1,   5,    15,
                                           30,   60,  120,  300, 600, 1800, 3600};
    wallet_m.holds = cm_metric_counter(
        "wallet_holds_total",
        "Hold requests by result: placed, duplicate, insufficient_funds, error.", "result");
    wallet_m.settlements =
        cm_metric_counter("wallet_settlements_total",
                          "Trades settled by result: applied, duplicate, error.", "result");
    wallet_m.settlement_lag = cm_metric_gauge(
        "wallet_settlement_lag_seconds",
        "Age of the oldest trade not yet settled (now minus trade ts), seconds; 0 when caught up.",
        NULL);
    wallet_m.withdrawals = cm_metric_counter(
        "wallet_withdrawals_total",
        "Withdrawals that reached an end or a gate: completed, failed, rejected, pending_approval.",
        "result");
    wallet_m.queue_delay = cm_metric_histogram(
        "wallet_withdrawal_queue_delay_seconds", "Withdrawal request to broadcast, seconds.", NULL,
        delay_buckets, sizeof delay_buckets / sizeof delay_buckets[0]);
    wallet_m.queue_depth = cm_metric_gauge("wallet_withdrawal_queue_depth",
                                           "Withdrawals queued and not yet broadcast.", NULL);
    const char *hr[] = {"placed", "duplicate", "insufficient_funds", "error"};
    for (size_t i = 0; i < 4; i++)
        cm_counter_add(wallet_m.holds, 0, hr[i]);
    const char *sr[] = {"applied", "duplicate", "error"};
    for (size_t i = 0; i < 3; i++)
        cm_counter_add(wallet_m.settlements, 0, sr[i]);
    const char *wr[] = {"completed", "failed", "rejected", "pending_approval"};
    for (size_t i = 0; i < 4; i++)
        cm_counter_add(wallet_m.withdrawals, 0, wr[i]);
    cm_gauge_set(wallet_m.settlement_lag, 0);
    cm_gauge_set(wallet_m.queue_depth, 0);
    signer_metrics_init();
}

static int check_postgres(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (store_ping() == 0)
        return 0;
    snprintf(msg, msglen, "postgres unreachable");
    return -1;
}

static struct cm_redis *g_redis_probe;

static int check_redis(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (cm_redis_ping(g_redis_probe) == 0)
        return 0;
    snprintf(msg, msglen, "redis unreachable");
    return -1;
}

int main(void)
{
    wipe_env("SIGNER_KEK");
    wipe_env("SIGNER_KEY_FILE");
    if (wallet_config_load(&wallet_cfg) < 0)
        return 2;
    struct wallet_config *cfg = &wallet_cfg;
    /* Log level from LOG_LEVEL, process metrics, fault hooks, tracing. */
    if (cm_service_init("wallet", CM_LAB_VERSION) < 0)
        return 2;
    wallet_metrics_init();

    if (store_open(cfg->database_url, cfg->migrations_dir, cfg->db_conns) < 0) {
        cm_error("wallet: cannot open the database");
        return 1;
    }
    struct cm_redis_config rc_cfg = {.url = cfg->redis_url, .pool_size = 2};
    char err[256];
    g_redis_probe = cm_redis_open(&rc_cfg, err, sizeof err);
    if (!g_redis_probe) {
        cm_error("wallet: redis: %s", err);
        store_close();
        return 1;
    }
    int rc = 1;
    struct cm_http_server *srv = NULL;
    if (events_start() < 0 || settle_start() < 0 || withdraw_start() < 0 || ticker_start() < 0)
        goto stop;

    struct cm_http_config http;
    cm_http_config_init(&http);
    http.service = "wallet";
    http.port = cfg->port;
    http.threads = cfg->threads;
    http.max_body = 16384;
    http.admin_token = cfg->admin_token;
    srv = cm_http_server_new(&http, wallet_routes, wallet_nroutes);
    if (!srv || cm_health_add_check(srv, "postgres", check_postgres, NULL, 2000) < 0 ||
        cm_health_add_check(srv, "redis", check_redis, NULL, 2000) < 0 ||
        cm_http_server_start(srv) < 0) {
        cm_error("wallet: cannot start HTTP on port %d", cfg->port);
        goto stop;
    }
    cm_info("wallet: listening on port %d", cm_http_server_port(srv));
    rc = cm_http_server_run_until_signal(srv) == 0 ? 0 : 1;
stop:
    cm_http_server_free(srv);
    ticker_stop();
    withdraw_stop();
    settle_stop();
    events_stop();
    cm_redis_close(g_redis_probe);
    store_close();
    return rc;
}
