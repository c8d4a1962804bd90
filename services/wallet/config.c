/* The wallet's environment (12-factor); docs/wallet.md lists every variable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/decimal.h"
#include "wallet.h"
#include "common/banned.h"

struct wallet_config wallet_cfg;

/* WITHDRAW_<WHAT>_<ASSET> as a decimal at the asset's scale, if set. */
static void asset_amount(struct cm_config *cfg, const char *what, struct wallet_asset *a,
                         int64_t *dst, int allow_zero)
{
    char name[64];
    snprintf(name, sizeof name, "WITHDRAW_%s_%s", what, a->code);
    const char *v = cm_config_string(cfg, name, "");
    if (!*v)
        return;
    int64_t x;
    if (cm_decimal_parse(v, a->scale, 0, &x) != 0 || (!allow_zero && x == 0)) {
        if (cfg->nerrors < CM_CONFIG_MAX_ERRORS)
            snprintf(cfg->errors[cfg->nerrors++], sizeof cfg->errors[0],
                     "%s must be a positive decimal with at most %d decimals, got \"%.40s\"", name,
                     a->scale, v);
        return;
    }
    *dst = x;
}

int wallet_config_load(struct wallet_config *c)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "wallet");
    c->port = cm_config_port(&cfg, "PORT", "8083");
    c->database_url = cm_config_url(&cfg, "DATABASE_URL", NULL, "postgres://,postgresql://");
    c->redis_url = cm_config_url(&cfg, "REDIS_URL", NULL, "redis://");
    c->kafka_brokers = cm_config_string(&cfg, "KAFKA_BROKERS", NULL);
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->migrations_dir = cm_config_string(&cfg, "MIGRATIONS_DIR", "services/wallet/migrations");
    c->signer_socket = cm_config_string(&cfg, "SIGNER_SOCKET", NULL);
    c->trading_api_url = cm_config_string(&cfg, "TRADING_API_URL", "");
    c->trades_topic = cm_config_string(&cfg, "WALLET_TRADES_TOPIC", "exchange.trades");
    c->orders_topic = cm_config_string(&cfg, "WALLET_ORDERS_TOPIC", "exchange.orders.events");
    c->events_topic = cm_config_string(&cfg, "WALLET_EVENTS_TOPIC", "wallet.events");
    c->group_id = cm_config_string(&cfg, "WALLET_CONSUMER_GROUP", "wallet-settlement");
    /* A SIGKILLed member holds its partitions until its session times out:
     * keep that short so a restarted wallet resumes settling quickly. */
    c->kafka_consumer_props =
        cm_config_string(&cfg, "WALLET_KAFKA_CONSUMER_PROPS",
                         "session.timeout.ms=6000;heartbeat.interval.ms=500;fetch.wait.max.ms=10;"
                         "queued.min.messages=20000");
    c->withdraw_stream = cm_config_string(&cfg, "WITHDRAW_STREAM", "wallet:withdrawals");
    c->withdraw_group = cm_config_string(&cfg, "WITHDRAW_GROUP", "wallet-workers");
    c->log_level = cm_config_enum(&cfg, "LOG_LEVEL", "info", "debug|info|warn|error");
    c->threads = (unsigned)cm_config_int(&cfg, "HTTP_THREADS", "4", 1, 64);
    c->db_conns = (int)cm_config_int(&cfg, "DB_POOL_SIZE", "16", 4, 100);
    c->maker_fee_bps = cm_config_int(&cfg, "MAKER_FEE_BPS", "10", 0, 1000);
    c->taker_fee_bps = cm_config_int(&cfg, "TAKER_FEE_BPS", "20", 0, 1000);
    c->deposit_confirmations = cm_config_int(&cfg, "DEPOSIT_CONFIRMATIONS", "3", 1, 1000);
    c->deposit_tick_ms = cm_config_duration_ms(&cfg, "DEPOSIT_TICK", "1s");
    c->hold_reconcile_after_ms = cm_config_duration_ms(&cfg, "HOLD_RECONCILE_AFTER", "5m");
    c->hold_reconcile_interval_ms = cm_config_duration_ms(&cfg, "HOLD_RECONCILE_INTERVAL", "30s");
    c->settle_batch = cm_config_int(&cfg, "SETTLE_BATCH", "2000", 1, 20000);
    c->withdraw_workers = cm_config_int(&cfg, "WITHDRAW_WORKERS", "4", 1, 16);
    c->withdraw_claim_idle_ms = cm_config_duration_ms(&cfg, "WITHDRAW_CLAIM_IDLE", "10s");
    c->outbox_interval_ms = cm_config_duration_ms(&cfg, "OUTBOX_POLL_INTERVAL", "200ms");
    for (size_t i = 0; i < WALLET_MAX_ASSETS; i++) {
        struct wallet_asset *a = &wallet_assets[i];
        asset_amount(&cfg, "FEE", a, &a->withdraw_fee, 1);
        asset_amount(&cfg, "DAILY_LIMIT", a, &a->daily_limit, 0);
        asset_amount(&cfg, "APPROVAL_ABOVE", a, &a->approval_threshold, 0);
    }
    if (c->deposit_tick_ms < 10)
        c->deposit_tick_ms = 10;
    if (c->outbox_interval_ms < 5)
        c->outbox_interval_ms = 5;
    if (c->hold_reconcile_interval_ms < 100)
        c->hold_reconcile_interval_ms = 100;
    if (c->withdraw_claim_idle_ms < 100)
        c->withdraw_claim_idle_ms = 100;
    return cm_config_finish(&cfg);
}
