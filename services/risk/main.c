/*
 * risk: real-time risk on the Kafka stream, pre-trade decisions, alerts
 * and blocks (docs/risk.md). Table of contents: configuration, rules,
 * metrics, Redis, snapshot + consumer, actions, HTTP; run until a signal,
 * then stop in reverse (the consumer writes a last snapshot).
 */
#include <stdio.h>
#include <time.h>

#include "common/health.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/service.h"
#include "risk.h"
#include "common/banned.h"

struct risk_engine *risk_engine;
pthread_rwlock_t risk_lock = PTHREAD_RWLOCK_INITIALIZER;
struct risk_metrics risk_m;

int64_t risk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void collect(void *ctx)
{
    (void)ctx;
    pthread_rwlock_rdlock(&risk_lock);
    size_t n = risk_engine ? risk_engine_blocked_count(risk_engine, risk_now_ms()) : 0;
    pthread_rwlock_unlock(&risk_lock);
    cm_gauge_set(risk_m.blocked_users, (double)n);
}

void risk_metrics_init(void)
{
    static const double buckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                     0.001,   0.0025,   0.005,   0.01,   0.05,    0.25};
    risk_m.rule_hits = cm_metric_counter(
        "risk_rule_hits_total",
        "Rule matches by rule id and action (alert, reject, block, would_block).", "rule,action");
    risk_m.decisions = cm_metric_counter(
        "risk_decisions_total", "Pre-trade decisions by outcome: allow or reject.", "decision");
    risk_m.decision_time = cm_metric_histogram("risk_decision_duration_seconds",
                                               "Pre-trade decision time inside risk, seconds.",
                                               NULL, buckets, sizeof buckets / sizeof *buckets);
    risk_m.users_blocked = cm_metric_counter(
        "risk_users_blocked_total",
        "Users blocked (simulation mode counts nothing here; see would_block hits).", NULL);
    risk_m.blocked_users =
        cm_metric_gauge("risk_blocked_users", "Users blocked right now (live block keys).", NULL);
    risk_m.webhook_fail = cm_metric_counter(
        "risk_webhook_failures_total", "Alert webhook deliveries that failed after retries.", NULL);
    risk_m.events = cm_metric_counter(
        "risk_events_total",
        "Stream events by result: applied, duplicate (at or below the applied offset), ignored "
        "(a type risk does not use), malformed.",
        "result");
    risk_m.webhook_sent = cm_metric_counter("risk_webhook_deliveries_total",
                                            "Alert webhook deliveries that succeeded.", NULL);
    cm_counter_add(risk_m.decisions, 0, "allow");
    cm_counter_add(risk_m.decisions, 0, "reject");
    cm_counter_add(risk_m.users_blocked, 0);
    cm_counter_add(risk_m.webhook_fail, 0);
    cm_counter_add(risk_m.webhook_sent, 0);
    /* One series per rule of the file at 0, so dashboards and the
     * recording rules see the family before the first hit. */
    const struct risk_rules *rules = risk_engine_rules(risk_engine);
    for (size_t i = 0; rules && i < rules->n; i++)
        cm_counter_add(risk_m.rule_hits, 0, rules->v[i].id, actions_label(rules->v[i].action));
    const char *res[] = {"applied", "duplicate", "ignored", "malformed"};
    for (size_t i = 0; i < 4; i++)
        cm_counter_add(risk_m.events, 0, res[i]);
    cm_metrics_on_collect(collect, NULL);
}

static int check_redis(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (store_ping() == 0)
        return 0;
    snprintf(msg, msglen, "redis unreachable");
    return -1;
}

int main(void)
{
    if (cm_service_init("risk", RISK_VERSION) < 0 || risk_config_load(&risk_cfg) < 0)
        return 2;
    char err[512];
    struct risk_rules *rules =
        risk_rules_load(risk_cfg.rules_file, risk_cfg.block_ttl_ms / 1000, err, sizeof err);
    if (!rules) {
        fprintf(stderr, "risk: config: RISK_RULES_FILE %s\n", err);
        return 2;
    }
    risk_engine = risk_engine_new(rules);
    if (!risk_engine)
        return 1;
    cm_info("risk: %zu rules from %s", risk_engine_rules(risk_engine)->n, risk_cfg.rules_file);
    risk_metrics_init();

    int rc = 1;
    struct cm_http_server *srv = NULL;
    if (store_open(risk_cfg.redis_url) < 0 || actions_start() < 0 || events_start() < 0)
        goto stop;

    struct cm_http_config http;
    cm_http_config_init(&http);
    http.service = "risk";
    http.port = risk_cfg.port;
    http.threads = (unsigned)risk_cfg.threads;
    http.max_body = 16384;
    http.admin_token = risk_cfg.admin_token;
    srv = cm_http_server_new(&http, risk_routes, risk_nroutes);
    if (!srv || cm_health_add_check(srv, "redis", check_redis, NULL, 2000) < 0 ||
        cm_http_server_start(srv) < 0) {
        cm_error("risk: cannot start HTTP on port %d", risk_cfg.port);
        goto stop;
    }
    cm_info("risk: listening on port %d", cm_http_server_port(srv));
    rc = cm_http_server_run_until_signal(srv) == 0 ? 0 : 1;
stop:
    cm_http_server_free(srv);
    events_stop();
    actions_stop();
    store_close();
    risk_engine_free(risk_engine);
    return rc;
}
