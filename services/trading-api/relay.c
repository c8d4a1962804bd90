/*
 * Outbox relay: one background thread publishes unpublished outbox rows to
 * exchange.orders.commands (key = market) in id order and marks them
 * published once the broker acknowledged them (cm_kafka_produce_wait).
 *
 * Order: rows are read in id order and produced in that order by one
 * idempotent producer, one batch in flight at a time, so each market's
 * partition receives its commands in commit order. A batch runs under a
 * transaction-scoped advisory lock, so two replicas never interleave.
 * A row whose delivery failed stays unpublished and is retried; rows are
 * marked only for their own acknowledgement (at-least-once: a crash after
 * the broker acknowledged and before the mark publishes the row again).
 *
 * Wake-ups: handlers call relay_kick() after a commit; without one the
 * relay still looks every 200 ms (rows left by a crashed process are
 * published after restart).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "trading.h"
#include "common/banned.h"

#define BATCH 256

static struct cm_kafka_producer *producer;
static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int kicked, stopping, started;

void relay_kick(void)
{
    pthread_mutex_lock(&mu);
    kicked = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static void publish(void *ctx, struct outbox_row *rows, size_t n, int *published)
{
    (void)ctx;
    struct cm_kafka_out *msgs = calloc(n, sizeof *msgs);
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++) {
        msgs[i].topic = trading_cfg.commands_topic;
        msgs[i].key = rows[i].market;
        msgs[i].key_len = strlen(rows[i].market);
        msgs[i].value = rows[i].payload;
        msgs[i].value_len = strlen(rows[i].payload);
    }
    size_t ok = cm_kafka_produce_wait(producer, msgs, n, 5000);
    for (size_t i = 0; i < n; i++)
        published[i] = msgs[i].err == 0;
    if (ok < n)
        cm_warn("trading-api: relay: %zu of %zu commands not delivered, will retry", n - ok, n);
    free(msgs);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *run(void *arg)
{
    (void)arg;
    int64_t last_stats = 0;
    for (;;) {
        int n = store_outbox_relay(BATCH, publish, NULL);
        int64_t now = mono_ms();
        if (now - last_stats >= 1000) {
            long pending;
            double age;
            if (store_outbox_stats(&pending, &age) == 0) {
                cm_gauge_set(trading_m.outbox_pending, (double)pending);
                cm_gauge_set(trading_m.outbox_age, age);
            }
            last_stats = now;
        }
        pthread_mutex_lock(&mu);
        if (stopping) {
            pthread_mutex_unlock(&mu);
            break;
        }
        if (n < BATCH && !kicked) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            /* A failing database or broker: back off a little longer. */
            long wait_ms = n < 0 ? 500 : 200;
            until.tv_nsec += wait_ms * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&cv, &mu, &until);
        }
        kicked = 0;
        int stop = stopping;
        pthread_mutex_unlock(&mu);
        if (stop)
            break;
    }
    /* One last pass so what was committed before the signal goes out. */
    store_outbox_relay(BATCH, publish, NULL);
    return NULL;
}

int relay_start(void)
{
    char err[256];
    struct cm_kafka_config kc = {.brokers = trading_cfg.kafka_brokers,
                                 .client_id = "trading-api-relay",
                                 .props = trading_cfg.kafka_props};
    producer = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!producer) {
        cm_error("trading-api: kafka producer: %s", err);
        return -1;
    }
    if (pthread_create(&thread, NULL, run, NULL) != 0) {
        cm_kafka_producer_close(producer, 0);
        producer = NULL;
        return -1;
    }
    started = 1;
    return 0;
}

void relay_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    cm_kafka_producer_close(producer, 5000);
    producer = NULL;
    started = 0;
}
