/*
 * The ticker thread: the chain mock's confirmations (DEPOSIT_TICK), the
 * withdrawal sweeper, the signer health gauge, the queue depth gauge, and
 * the reconciliation of stranded holds.
 *
 * Stranded holds: an order hold that no trade or order event mentioned
 * for HOLD_RECONCILE_AFTER belongs to an order that may never have
 * reached matching (trading-api crashed between the hold and its outbox).
 * The wallet asks trading-api (GET TRADING_API_URL/internal/orders/{id}):
 * 404 -> the order is unknown: release (reason "reconciled"); 200 -> it
 * is live: keep it and stop asking; anything else (connection error,
 * timeout, 5xx) -> keep it and ask again later. Without TRADING_API_URL
 * a stranded hold is released.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/log.h"
#include "common/metrics.h"
#include "store.h"
#include "common/banned.h"

static struct {
    pthread_t thread;
    int started;
    atomic_int stop;
    struct cm_http_client *trading;
} g;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reconcile(void)
{
    char ids[100][ID_MAX + 1];
    size_t n = 0;
    if (store_stranded_holds(wallet_cfg.hold_reconcile_after_ms, ids, 100, &n) < 0)
        return;
    for (size_t i = 0; i < n && !atomic_load(&g.stop); i++) {
        int release = 1;
        if (g.trading) {
            char path[128];
            snprintf(path, sizeof path, "/internal/orders/%.64s", ids[i]);
            struct cm_http_response resp;
            int rc = cm_http_client_get(g.trading, path, &resp);
            release = rc == 0 && resp.status == 404;
            if (rc == 0 && resp.status == 200)
                store_mark_hold_seen(ids[i]);
            cm_http_response_release(&resp);
        }
        if (!release)
            continue;
        char w[16];
        if (store_release_hold(ids[i], "reconciled", w, sizeof w) == 0 &&
            strcmp(w, "released") == 0) {
            cm_log_kv(CM_LOG_WARN, "stranded hold released", "hold_id", ids[i], (const char *)NULL);
            events_wake();
        }
    }
}

static void *run(void *arg)
{
    (void)arg;
    int64_t next_tick = 0, next_reconcile = mono_ms() + wallet_cfg.hold_reconcile_interval_ms;
    int64_t next_sweep = 0, next_gauges = 0;
    while (!atomic_load(&g.stop)) {
        int64_t now = mono_ms();
        if (now >= next_tick) {
            int credited = 0;
            if (store_tick_deposits(500, &credited) == 0)
                events_wake();
            next_tick = now + wallet_cfg.deposit_tick_ms;
        }
        if (now >= next_sweep) {
            withdraw_sweep();
            next_sweep = now + 1000;
        }
        if (now >= next_gauges) {
            int64_t depth;
            if (store_queue_depth(&depth) == 0)
                cm_gauge_set(wallet_m.queue_depth, (double)depth);
            signer_ping();
            next_gauges = now + 2000;
        }
        if (now >= next_reconcile) {
            reconcile();
            next_reconcile = mono_ms() + wallet_cfg.hold_reconcile_interval_ms;
        }
        usleep(20000);
    }
    return NULL;
}

int ticker_start(void)
{
    if (wallet_cfg.trading_api_url[0]) {
        struct cm_http_client_config hc = {.name = "trading-api",
                                           .base_url = wallet_cfg.trading_api_url,
                                           .timeout_ms = 1000,
                                           .max_retries = CM_HTTP_CLIENT_NO_RETRY,
                                           .breaker_off = 1};
        g.trading = cm_http_client_new(&hc);
        if (!g.trading)
            return -1;
    }
    if (pthread_create(&g.thread, NULL, run, NULL) != 0)
        return -1;
    g.started = 1;
    return 0;
}

void ticker_stop(void)
{
    if (!g.started)
        return;
    atomic_store(&g.stop, 1);
    pthread_join(g.thread, NULL);
    g.started = 0;
    cm_http_client_free(g.trading);
    g.trading = NULL;
}
