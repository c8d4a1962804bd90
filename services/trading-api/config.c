/* trading-api's environment (12-factor); docs/trading.md lists it. */
#include "common/config.h"
#include "trading.h"
#include "common/banned.h"

struct trading_config trading_cfg;

int trading_config_load(struct trading_config *c)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "trading-api");
    c->port = cm_config_port(&cfg, "PORT", "8081");
    c->database_url = cm_config_url(&cfg, "DATABASE_URL", NULL, "postgres://,postgresql://");
    c->redis_url = cm_config_url(&cfg, "REDIS_URL", NULL, "redis://");
    c->kafka_brokers = cm_config_string(&cfg, "KAFKA_BROKERS", NULL);
    c->kafka_props = cm_config_string(&cfg, "KAFKA_PROPS", "");
    /* The read model's consumer waits for fills: devkafka holds an empty
     * fetch for the whole fetch.wait.max.ms, which the lab's KAFKA_PROPS
     * sets to 10 ms for every service; this hop wants less. */
    c->consumer_props = cm_config_string(&cfg, "TRADING_CONSUMER_PROPS", "fetch.wait.max.ms=2");
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->migrations_dir = cm_config_string(&cfg, "MIGRATIONS_DIR", "services/trading-api/migrations");
    c->risk_url = cm_config_url(&cfg, "RISK_URL", "http://127.0.0.1:8084", "http://,https://");
    c->wallet_url = cm_config_url(&cfg, "WALLET_URL", "http://127.0.0.1:8083", "http://,https://");
    c->matching_url =
        cm_config_url(&cfg, "MATCHING_URL", "http://127.0.0.1:8082", "http://,https://");
    c->commands_topic = cm_config_string(&cfg, "COMMANDS_TOPIC", "exchange.orders.commands");
    c->events_topic = cm_config_string(&cfg, "EVENTS_TOPIC", "exchange.orders.events");
    c->trades_topic = cm_config_string(&cfg, "TRADES_TOPIC", "exchange.trades");
    c->group_id = cm_config_string(&cfg, "KAFKA_GROUP", "trading-api");
    c->risk_timeout_ms = cm_config_duration_ms(&cfg, "RISK_TIMEOUT", "150ms");
    c->wallet_timeout_ms = cm_config_duration_ms(&cfg, "WALLET_TIMEOUT", "1s");
    c->matching_timeout_ms = cm_config_duration_ms(&cfg, "MATCHING_TIMEOUT", "300ms");
    c->risk_fail_mode = cm_config_enum(&cfg, "RISK_FAIL_MODE", "closed", "closed|open");
    c->breaker_open_ms = cm_config_duration_ms(&cfg, "BREAKER_OPEN", "5s");
    c->threads = (unsigned)cm_config_int(&cfg, "HTTP_THREADS", "16", 1, 256);
    c->db_pool = (int)cm_config_int(&cfg, "DB_POOL", "16", 1, 256);
    c->consumer_enabled = cm_config_bool(&cfg, "CONSUMER_ENABLED", "true");
    c->test_crash = cm_config_string(&cfg, "TRADING_TEST_CRASH", "");
    if (c->risk_timeout_ms < 1)
        c->risk_timeout_ms = 1;
    if (c->wallet_timeout_ms < 1)
        c->wallet_timeout_ms = 1;
    if (c->matching_timeout_ms < 1)
        c->matching_timeout_ms = 1;
    return cm_config_finish(&cfg);
}
