/* The risk service's environment (12-factor); docs/risk.md lists it. */
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "risk.h"
#include "common/banned.h"

struct risk_config risk_cfg;

int risk_config_load(struct risk_config *c)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "risk");
    c->port = cm_config_port(&cfg, "PORT", "8084");
    c->threads = (int)cm_config_int(&cfg, "HTTP_THREADS", "2", 1, 64);
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->redis_url = cm_config_url(&cfg, "REDIS_URL", NULL, "redis://");
    c->kafka_brokers = cm_config_string(&cfg, "KAFKA_BROKERS", NULL);
    c->kafka_props = cm_config_string(&cfg, "KAFKA_PROPS", "");
    /* The mock broker holds a fetch for fetch.wait.max.ms when a partition
     * has little data: short waits and a deep prefetch queue keep the
     * stream at full speed across 20 partitions. */
    const char *cprops = cm_config_string(&cfg, "RISK_KAFKA_CONSUMER_PROPS",
                                          "fetch.wait.max.ms=10;queued.min.messages=200000");
    c->group_id = cm_config_string(&cfg, "RISK_GROUP", "risk");
    c->topic_orders = cm_config_string(&cfg, "RISK_TOPIC_ORDERS", "exchange.orders.events");
    c->topic_trades = cm_config_string(&cfg, "RISK_TOPIC_TRADES", "exchange.trades");
    c->topic_wallet = cm_config_string(&cfg, "RISK_TOPIC_WALLET", "wallet.events");
    c->topic_alerts = cm_config_string(&cfg, "RISK_TOPIC_ALERTS", "risk.alerts");
    c->rules_file = cm_config_string(&cfg, "RISK_RULES_FILE", "services/risk/rules.json");
    c->block_ttl_ms = cm_config_duration_ms(&cfg, "RISK_BLOCK_TTL", "15m");
    c->webhook_url = cm_config_string(&cfg, "RISK_WEBHOOK_URL", "");
    c->webhook_retries = (int)cm_config_int(&cfg, "RISK_WEBHOOK_RETRIES", "3", 0, 10);
    c->webhook_timeout_ms = cm_config_duration_ms(&cfg, "RISK_WEBHOOK_TIMEOUT", "2s");
    c->webhook_backoff_ms = cm_config_duration_ms(&cfg, "RISK_WEBHOOK_BACKOFF", "200ms");
    c->webhook_queue = (int)cm_config_int(&cfg, "RISK_WEBHOOK_QUEUE", "1000", 1, 1000000);
    c->snapshot_key = cm_config_string(&cfg, "RISK_SNAPSHOT_KEY", "risk:snapshot");
    c->snapshot_interval_ms = cm_config_duration_ms(&cfg, "RISK_SNAPSHOT_INTERVAL", "5s");
    if (c->kafka_brokers && !*c->kafka_brokers)
        c->kafka_brokers = NULL;
    int rc = cm_config_finish(&cfg);
    if (rc == 0)
        snprintf(c->consumer_props, sizeof c->consumer_props, "%s%s%s", cprops,
                 *cprops && *c->kafka_props ? ";" : "", c->kafka_props);
    if (rc == 0 && !c->kafka_brokers) {
        fprintf(stderr, "risk: config: KAFKA_BROKERS is required but empty\n");
        return -1;
    }
    if (rc == 0 &&
        (c->block_ttl_ms < 1000 || c->snapshot_interval_ms < 10 || c->webhook_timeout_ms < 1)) {
        fprintf(stderr, "risk: config: RISK_BLOCK_TTL must be >= 1s, RISK_SNAPSHOT_INTERVAL "
                        ">= 10ms, RISK_WEBHOOK_TIMEOUT > 0\n");
        return -1;
    }
    if (rc == 0 && *c->webhook_url && strncmp(c->webhook_url, "http://", 7) != 0 &&
        strncmp(c->webhook_url, "https://", 8) != 0) {
        fprintf(stderr, "risk: config: RISK_WEBHOOK_URL must start with http:// or https://\n");
        return -1;
    }
    return rc;
}
