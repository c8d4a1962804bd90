#ifndef RISK_H
#define RISK_H
/*
 * The risk service (docs/risk.md): one process-wide engine (engine.h)
 * behind a rwlock, fed by the consumer thread (events.c), read by the
 * HTTP handlers; actions (actions.c) turn hits into alerts, webhooks and
 * Redis block keys; store.c owns Redis (blocks, snapshots).
 */
#include <pthread.h>
#include <stdint.h>

#include "common/http_server.h"
#include "engine.h"

#define RISK_VERSION "0.1.0"

struct risk_config {
    int port;
    int threads;
    const char *admin_token;
    const char *redis_url;
    const char *kafka_brokers;
    const char *kafka_props;
    char consumer_props[1024]; /* RISK_KAFKA_CONSUMER_PROPS then KAFKA_PROPS */
    const char *group_id;
    const char *topic_orders, *topic_trades, *topic_wallet, *topic_alerts;
    const char *rules_file;
    int64_t block_ttl_ms;
    const char *webhook_url; /* "" = no webhook */
    int webhook_retries;
    int64_t webhook_timeout_ms;
    int64_t webhook_backoff_ms;
    int webhook_queue;
    const char *snapshot_key;
    int64_t snapshot_interval_ms;
};

extern struct risk_config risk_cfg;

/* config.c: 0, or -1 after printing the problems (main exits 2). */
int risk_config_load(struct risk_config *c);

/* The engine and its lock (main.c). Writers: consumer thread, reloads,
 * unblock; readers: pre-trade and admin handlers. */
extern struct risk_engine *risk_engine;
extern pthread_rwlock_t risk_lock;
int64_t risk_now_ms(void);

/* Metrics (names from observability/metrics-contract.json). */
struct risk_metrics {
    struct cm_metric *rule_hits;     /* {rule,action} */
    struct cm_metric *decisions;     /* {decision} */
    struct cm_metric *decision_time; /* histogram */
    struct cm_metric *users_blocked; /* counter */
    struct cm_metric *blocked_users; /* gauge */
    struct cm_metric *webhook_fail;  /* counter */
    struct cm_metric *events;        /* risk_events_total{result} */
    struct cm_metric *webhook_sent;  /* risk_webhook_deliveries_total */
};
extern struct risk_metrics risk_m;
void risk_metrics_init(void);

/* store.c: Redis. */
int store_open(const char *url);
void store_close(void);
int store_ping(void);
/* SET risk:blocked:<id> {"rule","reason","until"} PX ttl. 0 / -1. */
int store_block(uint64_t user, const char *rule, const char *reason, int64_t ttl_ms,
                int64_t until_ms);
/* DEL risk:blocked:<id>: 0 / -1. */
int store_unblock(uint64_t user);
/* The snapshot text: 1 found (*out malloc'd), 0 none, -1 error. */
int store_snapshot_get(char **out, size_t *len);
/* One SET: state and offsets move together. 0 / -1. */
int store_snapshot_put(const char *text, size_t len);

/* actions.c: alerts (Kafka + webhook thread), blocks. */
int actions_start(void);
void actions_stop(void);
/* Called by the consumer thread for each hit, after the engine lock is
 * released. Never blocks on the webhook. */
void actions_fire(const struct risk_hit *h);
/* The action label of risk_rule_hits_total: "block", "would_block" or
 * "alert" (static string). */
const char *actions_label(enum risk_action a);
/* Admin unblock: Redis key removed and user.unblocked published. 0 / -1. */
int actions_unblock(uint64_t user, const char *by);
/* Slack incoming-webhook body for a hit (caller frees); exposed for tests. */
char *actions_slack_body(const struct risk_hit *h);

/* events.c: the consumer thread (stream, snapshots, SIGHUP reloads). */
int events_start(void);
void events_stop(void);
/* State changed outside the stream (unblock): the next snapshot writes it. */
void events_mark_dirty(void);
/* Asks the consumer thread to reload the rules (signal-safe). */
void events_request_reload(void);
/* Reloads now: 0, or -1 keeping the old rules (the reason is logged). */
int risk_reload_rules(void);

/* routes.c */
extern const struct cm_http_route risk_routes[];
extern const size_t risk_nroutes;

/* handlers */
void handle_pretrade(struct cm_http_req *r);
void handle_admin_rules(struct cm_http_req *r);
void handle_admin_user(struct cm_http_req *r);
void handle_admin_unblock(struct cm_http_req *r);

#endif
