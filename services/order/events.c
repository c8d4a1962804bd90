/*
 * The relay thread: publishes the outbox (status-change events) to Kafka
 * and Redis pub/sub, and pays the stock releases owed to the catalog.
 *
 * Why an outbox: the event row commits with the status change, so a crash
 * between the two cannot lose an event; the relay marks rows sent only
 * after Kafka's delivery report, so a crash after publishing repeats the
 * event (at least once; consumers dedupe by the event's id). Rows are
 * published in id order and marking stops at the first failure, so one
 * order's events keep their order.
 *
 * Redis pub/sub has no delivery guarantee at all (a subscriber that is
 * not connected misses the message), so it is published best effort right
 * after Kafka confirmed the row; Kafka is the record.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "common/faults.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "order.h"
#include "common/banned.h"

#define BATCH 100
#define RELEASE_BATCH 20
#define KAFKA_WAIT_MS 5000

static struct {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, wake;
    int64_t interval_ms;
    struct cm_kafka_producer *producer;
    redisContext *redis;
    char redis_host[256];
    int redis_port;
    const char *channel;
    struct cm_metric *orders, *published, *publish_errors;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

void orders_count(enum order_status s)
{
    cm_counter_add(g.orders, 1, status_name(s));
}

static int parse_redis_url(const char *url)
{
    const char *p = url + strlen("redis://");
    const char *at = strchr(p, '@');
    if (at)
        p = at + 1;
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    size_t hl = colon ? (size_t)(colon - p) : slash ? (size_t)(slash - p) : strlen(p);
    if (hl == 0 || hl >= sizeof g.redis_host)
        return -1;
    memcpy(g.redis_host, p, hl);
    g.redis_host[hl] = '\0';
    g.redis_port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || port < 1 || port > 65535)
            return -1;
        g.redis_port = (int)port;
    }
    return 0;
}

static void redis_publish(const struct outbox_row *row)
{
    if (cm_faults_dependency_dropped("redis"))
        return;
    /* A connection kept from before a Redis restart fails on its first
     * command: reconnect and publish again, once. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = !g.redis;
        if (!g.redis) {
            struct timeval tv = {0, 500000};
            g.redis = redisConnectWithTimeout(g.redis_host, g.redis_port, tv);
            if (!g.redis || g.redis->err || redisSetTimeout(g.redis, tv) != REDIS_OK) {
                if (g.redis)
                    redisFree(g.redis);
                g.redis = NULL;
                break;
            }
        }
        redisReply *r = redisCommand(g.redis, "PUBLISH %s %s", g.channel, row->payload);
        if (r) {
            cm_counter_add(g.published, 1, "redis");
            freeReplyObject(r);
            return;
        }
        redisFree(g.redis);
        g.redis = NULL;
        if (fresh)
            break;
    }
    cm_counter_add(g.publish_errors, 1, "redis");
}

/* Publishes rows in order; returns how many from the start were delivered. */
static size_t publish(void *ctx, struct outbox_row *rows, size_t n)
{
    (void)ctx;
    if (cm_faults_kafka_paused())
        return 0;
    struct cm_kafka_out *msgs = calloc(n, sizeof *msgs);
    if (!msgs)
        return 0;
    for (size_t i = 0; i < n; i++) {
        msgs[i].topic = rows[i].topic;
        msgs[i].partition = CM_KAFKA_PARTITION_ANY;
        msgs[i].key = rows[i].key;
        msgs[i].key_len = strlen(rows[i].key);
        msgs[i].value = rows[i].payload;
        msgs[i].value_len = strlen(rows[i].payload);
    }
    cm_kafka_produce_wait(g.producer, msgs, n, KAFKA_WAIT_MS);
    size_t prefix = 0;
    while (prefix < n && msgs[prefix].err == 0)
        prefix++;
    if (prefix < n) {
        cm_warn("outbox: %zu of %zu events not delivered yet (kafka error %d); will retry",
                n - prefix, n, msgs[prefix].err);
        cm_counter_add(g.publish_errors, 1, "kafka");
    }
    cm_counter_add(g.published, (double)prefix, "kafka");
    free(msgs);
    for (size_t i = 0; i < prefix; i++)
        redis_publish(&rows[i]);
    return prefix;
}

static void pay_releases(void)
{
    int64_t ids[RELEASE_BATCH];
    size_t n;
    if (store_release_due(ids, RELEASE_BATCH, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        store_release_done(ids[i], catalog_release(ids[i]) == CAT_OK);
}

static void *relay(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g.mu);
        int stop = g.stop;
        g.wake = 0;
        pthread_mutex_unlock(&g.mu);
        if (stop)
            break;
        int n = store_outbox_relay(BATCH, publish, NULL);
        pay_releases();
        if (n == BATCH)
            continue; /* more waiting */
        pthread_mutex_lock(&g.mu);
        if (!g.stop && !g.wake) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ns = until.tv_nsec + (g.interval_ms % 1000) * 1000000;
            until.tv_sec += (time_t)(g.interval_ms / 1000 + ns / 1000000000);
            until.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&g.cv, &g.mu, &until);
        }
        pthread_mutex_unlock(&g.mu);
    }
    store_relay_release(); /* another replica may take over at once */
    return NULL;
}

int events_start(const struct order_config *cfg)
{
    g.orders =
        cm_metric_counter("shop_orders_total",
                          "Shop order status changes, creation included, by new status.", "status");
    for (int s = 0; s < ST_COUNT; s++)
        cm_counter_add(g.orders, 0, status_name((enum order_status)s));
    g.published = cm_metric_counter("shop_order_events_published_total",
                                    "Status-change events published, by sink.", "sink");
    g.publish_errors = cm_metric_counter("shop_order_events_publish_errors_total",
                                         "Failed event publications, by sink.", "sink");
    /* zero series: dashboards and the metrics contract see them at once */
    cm_counter_add(g.published, 0, "kafka");
    cm_counter_add(g.published, 0, "redis");
    cm_counter_add(g.publish_errors, 0, "kafka");
    cm_counter_add(g.publish_errors, 0, "redis");
    g.channel = cfg->status_channel;
    g.interval_ms = cfg->relay_interval_ms;
    if (parse_redis_url(cfg->redis_url) < 0) {
        cm_error("order: bad REDIS_URL");
        return -1;
    }
    /* linger.ms=1: the relay waits for each batch, so do not hold it back;
     * KAFKA_PROPS comes last and may override it. */
    char props[2048];
    snprintf(props, sizeof props, "linger.ms=1%s%s", *cfg->kafka_props ? ";" : "",
             cfg->kafka_props);
    struct cm_kafka_config kc = {
        .brokers = cfg->kafka_brokers, .client_id = "order", .props = props};
    char err[256];
    g.producer = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!g.producer) {
        cm_error("order: kafka producer: %s", err);
        return -1;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&g.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&g.thread, NULL, relay, NULL) != 0) {
        cm_kafka_producer_close(g.producer, 0);
        g.producer = NULL;
        return -1;
    }
    g.started = 1;
    return 0;
}

void events_wake(void)
{
    pthread_mutex_lock(&g.mu);
    g.wake = 1;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

void events_stop(void)
{
    if (!g.started)
        return;
    pthread_mutex_lock(&g.mu);
    g.stop = 1;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(g.thread, NULL);
    g.started = 0;
    cm_kafka_producer_close(g.producer, 2000);
    g.producer = NULL;
    if (g.redis)
        redisFree(g.redis);
    g.redis = NULL;
    pthread_cond_destroy(&g.cv);
}
