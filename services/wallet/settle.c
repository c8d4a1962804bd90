/*
 * Settlement: one consumer (group WALLET_CONSUMER_GROUP) on exchange.trades
 * and exchange.orders.events. Messages are gathered into a batch (up to
 * SETTLE_BATCH, or whatever arrived by the time the consumer has nothing
 * more) and applied in one transaction by store_settle(): every trade and
 * order end event id is recorded in processed_events with its effects, so
 * redelivery after a crash changes nothing (order.accepted and
 * partially_filled only mark the hold seen, idempotent by itself).
 * Offsets are committed only after the batch committed; the rebalance
 * hook flushes the batch before partitions go.
 *
 * A batch that cannot apply (a trade whose hold is missing or too small,
 * a market the wallet does not know...) is retried one event at a time;
 * an event that still cannot apply is recorded as rejected (logged, and
 * counted as wallet_settlements_total{result="error"}) so it does not
 * block the partition forever. A database outage is retried with a
 * back-off, never skipped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "store.h"
#include "common/banned.h"

static struct {
    pthread_t thread;
    int started;
    atomic_int stop;
    struct cm_kafka_consumer *consumer;
    struct trade *trades;
    size_t nt;
    struct order_event *events;
    size_t ne;
    size_t cap;
    int64_t last_ts_ms;
} g;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void count(const char *result, size_t n)
{
    if (n)
        cm_counter_add(wallet_m.settlements, (double)n, result);
}

/* Applies one event alone; records it as rejected when it cannot apply.
 * 0, or -1 on a database outage (retry later). */
static int apply_one(const struct trade *t, const struct order_event *e, size_t *released)
{
    size_t applied = 0, dups = 0, rel = 0;
    int rc = store_settle(t, t ? 1 : 0, e, e ? 1 : 0, &applied, &dups, &rel);
    if (rc == STORE_OK) {
        *released += rel;
        if (t) {
            count("applied", applied);
            count("duplicate", dups);
        }
        return 0;
    }
    if (rc == STORE_POISON) {
        const char *id = t ? t->id : e->id;
        cm_log_kv(CM_LOG_ERROR, "settlement: event cannot apply; recorded as rejected", "event_id",
                  id, "kind", t ? "trade" : e->type, (const char *)NULL);
        if (t)
            count("error", 1);
        return store_reject_event(id, t ? "trade" : e->type);
    }
    return -1;
}

/* Applies the batch; returns 0 once it is durable, -1 when stopping first. */
static int flush(void)
{
    if (g.nt == 0 && g.ne == 0)
        return 0;
    size_t released = 0;
    for (int backoff = 50;; backoff = backoff < 2000 ? backoff * 2 : 2000) {
        size_t applied = 0, dups = 0;
        released = 0;
        int rc = store_settle(g.trades, g.nt, g.events, g.ne, &applied, &dups, &released);
        if (rc == STORE_OK) {
            count("applied", applied);
            count("duplicate", dups);
            break;
        }
        if (rc == STORE_POISON) {
            int failed = 0;
            released = 0;
            for (size_t i = 0; i < g.nt && !failed; i++)
                failed = apply_one(&g.trades[i], NULL, &released) < 0;
            for (size_t i = 0; i < g.ne && !failed; i++)
                failed = apply_one(NULL, &g.events[i], &released) < 0;
            if (!failed)
                break;
        }
        if (atomic_load(&g.stop))
            return -1;
        sleep_ms(backoff);
    }
    if (g.last_ts_ms > 0) {
        int64_t lag = now_ms() - g.last_ts_ms;
        cm_gauge_set(wallet_m.settlement_lag, lag > 0 ? (double)lag / 1000.0 : 0);
    }
    g.nt = g.ne = 0;
    if (g.consumer)
        cm_kafka_consumer_commit_done(g.consumer);
    /* Only releases write outbox rows here (hold.released); a batch of
     * trades and order.accepted alone would wake the relay for nothing
     * (1,673 relay polls per 10,000 orders in the trading bench). */
    if (released > 0)
        events_wake();
    return 0;
}

static int on_message(void *ctx, const struct cm_kafka_msg *m)
{
    (void)ctx;
    char err[128];
    if (strcmp(m->topic, wallet_cfg.trades_topic) == 0) {
        struct trade *t = &g.trades[g.nt];
        if (trade_parse(m->value, m->value_len, t, err, sizeof err) < 0) {
            char ref[160];
            snprintf(ref, sizeof ref, "%s:%d:%lld", m->topic, (int)m->partition,
                     (long long)m->offset);
            cm_log_kv(CM_LOG_ERROR, "settlement: malformed trade skipped", "ref", ref, "reason",
                      err, (const char *)NULL);
            count("error", 1);
            return 0;
        }
        g.nt++;
        if (t->ts_ms > 0)
            g.last_ts_ms = t->ts_ms;
    } else {
        struct order_event *e = &g.events[g.ne];
        if (order_event_parse(m->value, m->value_len, e, err, sizeof err) < 0) {
            cm_log_kv(CM_LOG_WARN, "settlement: malformed order event skipped", "reason", err,
                      (const char *)NULL);
            return 0;
        }
        if (e->relevant)
            g.ne++;
    }
    return 0;
}

static void on_rebalance(void *ctx, int assigned, struct cm_kafka_partition *parts, size_t n)
{
    (void)ctx;
    (void)parts;
    (void)n;
    if (!assigned && flush() < 0) {
        /* Done offsets are committed right after this hook: leaving now
         * keeps the unapplied batch uncommitted, so it is redelivered. */
        cm_error("settlement: cannot apply the batch before a rebalance; exiting");
        _exit(1);
    }
}

static void *run(void *arg)
{
    (void)arg;
    while (!atomic_load(&g.stop)) {
        int rc = cm_kafka_consumer_poll(g.consumer, 100, on_message, NULL);
        if (rc < 0) {
            sleep_ms(100);
            continue;
        }
        if (rc == 0) {
            if (flush() < 0)
                break;
            if (g.nt == 0)
                cm_gauge_set(wallet_m.settlement_lag, 0);
            continue;
        }
        /* Drain what is already here, up to a full batch. */
        while (g.nt < g.cap && g.ne < g.cap && !atomic_load(&g.stop)) {
            rc = cm_kafka_consumer_poll(g.consumer, 0, on_message, NULL);
            if (rc <= 0)
                break;
        }
        if (flush() < 0)
            break;
    }
    return NULL;
}

int settle_start(void)
{
    g.cap = (size_t)wallet_cfg.settle_batch;
    g.trades = calloc(g.cap + 1, sizeof *g.trades);
    g.events = calloc(g.cap + 1, sizeof *g.events);
    if (!g.trades || !g.events)
        return -1;
    static const char *topics[3];
    topics[0] = wallet_cfg.trades_topic;
    topics[1] = wallet_cfg.orders_topic;
    topics[2] = NULL;
    struct cm_kafka_consumer_config cc = {
        .kafka = {.brokers = wallet_cfg.kafka_brokers,
                  .client_id = "wallet",
                  .props = wallet_cfg.kafka_consumer_props},
        .group_id = wallet_cfg.group_id,
        .topics = topics,
        .offset_reset = "earliest",
        .on_rebalance = on_rebalance,
    };
    char err[256];
    g.consumer = cm_kafka_consumer_open(&cc, err, sizeof err);
    if (!g.consumer) {
        cm_error("wallet: kafka consumer: %s", err);
        return -1;
    }
    if (pthread_create(&g.thread, NULL, run, NULL) != 0)
        return -1;
    g.started = 1;
    return 0;
}

void settle_stop(void)
{
    if (!g.started)
        return;
    atomic_store(&g.stop, 1);
    pthread_join(g.thread, NULL);
    g.started = 0;
    if (g.nt == 0 && g.ne == 0)
        cm_kafka_consumer_close(g.consumer); /* else: leave uncommitted, redelivered */
    g.consumer = NULL;
    free(g.trades);
    free(g.events);
}
