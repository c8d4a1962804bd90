/*
 * The outbox relay: publishes wallet.events rows (written by the SQL
 * functions in the same transaction as the change they describe) to
 * Kafka, keyed by user id, and marks them sent after the delivery report.
 * A crash after publishing repeats an event (at least once); consumers
 * deduplicate by its id ("wal-<outbox id>"). One relay at a time across
 * replicas (advisory lock).
 *
 * The relay polls every OUTBOX_POLL_INTERVAL, and at once when woken by a
 * change whose event should not wait (a release, a withdrawal step);
 * hold.placed leaves with the periodic poll. Each poll is BEGIN, one
 * prepared statement taking the lock and reading the rows from the
 * low-water mark on, one marking them sent, COMMIT (store.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/faults.h"
#include "common/kafka.h"
#include "common/log.h"
#include "store.h"
#include "common/banned.h"

#define BATCH 500
#define KAFKA_WAIT_MS 5000

static struct {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, wake;
    struct cm_kafka_producer *producer;
    struct outbox_mark mark; /* the relay thread's */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static size_t publish(void *ctx, struct outbox_row *rows, size_t n)
{
    (void)ctx;
    if (cm_faults_kafka_paused())
        return 0;
    struct cm_kafka_out *msgs = calloc(n, sizeof *msgs);
    if (!msgs)
        return 0;
    for (size_t i = 0; i < n; i++) {
        msgs[i].topic = wallet_cfg.events_topic;
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
    if (prefix < n)
        cm_warn("outbox: %zu of %zu events not delivered yet (kafka error %d); will retry",
                n - prefix, n, msgs[prefix].err);
    free(msgs);
    return prefix;
}

static void *relay(void *arg)
{
    (void)arg;
    int64_t interval = wallet_cfg.outbox_interval_ms;
    for (;;) {
        pthread_mutex_lock(&g.mu);
        int stop = g.stop;
        g.wake = 0;
        pthread_mutex_unlock(&g.mu);
        if (stop)
            break;
        int n = store_outbox_relay(&g.mark, BATCH, publish, NULL);
        if (n == BATCH)
            continue;
        pthread_mutex_lock(&g.mu);
        if (!g.stop && !g.wake) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ns = until.tv_nsec + (interval % 1000) * 1000000;
            until.tv_sec += (time_t)(interval / 1000 + ns / 1000000000);
            until.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&g.cv, &g.mu, &until);
        }
        pthread_mutex_unlock(&g.mu);
    }
    return NULL;
}

int events_start(void)
{
    struct cm_kafka_config kc = {
        .brokers = wallet_cfg.kafka_brokers, .client_id = "wallet", .props = "linger.ms=2"};
    char err[256];
    g.producer = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!g.producer) {
        cm_error("wallet: kafka producer: %s", err);
        return -1;
    }
    if (pthread_create(&g.thread, NULL, relay, NULL) != 0)
        return -1;
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
}
