/*
 * Outbox relay: one background thread publishes unpublished outbox rows to
 * exchange.orders.commands (key = market) in id order and marks them
 * published once the broker acknowledged them (cm_kafka_produce_wait).
 *
 * Leadership: only the relay holding a session advisory lock publishes
 * (store_relay_lock), on the connection that holds it; when its process
 * dies the session and the lock go, and another replica's relay takes
 * over. So one batch is in flight at a time across replicas, produced in
 * id order by one idempotent producer: each market's partition receives
 * its commands in commit order.
 *
 * No duplicates after a crash: the relay counts an attempt on the rows it
 * takes, in the statement that reads them (committed before anything is
 * produced). An unpublished row with attempts > 0
 * may already be on Kafka, its relay having died between the broker's
 * acknowledgement and the mark. For such rows the relay first reads the
 * tail of the topic (librdkafka directly: libcommon's consumer is a group
 * consumer) and marks the ones it finds published instead of producing
 * them again. When Kafka cannot be read, the suspect rows wait.
 *
 * Wake-ups: handlers call relay_kick() after a commit; without one the
 * relay still looks every 200 ms.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "trading.h"
#include "common/banned.h"

#define BATCH 256
/* Messages read back per partition when looking for suspect rows: the
 * unacknowledged batch of a dead relay is among the last BATCH. */
#define SCAN_TAIL 4096

static struct cm_kafka_producer *producer;
static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int kicked, stopping, started;
/* Acknowledged rows not marked yet: when another batch follows at once,
 * the next take marks them in its own statement (one round trip fewer per
 * batch). Relay thread only. */
static int64_t unmarked[BATCH];
static size_t nunmarked;

void relay_kick(void)
{
    pthread_mutex_lock(&mu);
    kicked = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_prop(void *ctx, const char *key, const char *value)
{
    char err[256];
    /* Producer-only or group-only keys are fine to skip for this reader. */
    rd_kafka_conf_set(ctx, key, value, err, sizeof err);
    return 0;
}

/* The outbox id of a command ("id":"trading-api:<n>"), or -1. */
static int64_t command_outbox_id(const void *payload, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(payload, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    int64_t out = -1;
    static const char prefix[] = "trading-api:";
    if (cJSON_IsString(id) && strncmp(id->valuestring, prefix, sizeof prefix - 1) == 0)
        out = strtoll(id->valuestring + sizeof prefix - 1, NULL, 10);
    cJSON_Delete(j);
    return out;
}

/* Reads the last SCAN_TAIL messages of every partition of the commands
 * topic and sets found[i] for each ids[i] seen. 0, or -1 when Kafka could
 * not be read to the end (nothing can be concluded). */
static int scan_topic(const int64_t *ids, size_t n, int *found)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (trading_cfg.kafka_props[0])
        cm_kafka_props_parse(trading_cfg.kafka_props, set_prop, conf, err, sizeof err);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", trading_cfg.kafka_brokers, err, sizeof err) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "trading-api-relay-scan", err, sizeof err) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    int rc = -1;
    const char *topic = trading_cfg.commands_topic;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    int64_t *high = NULL;
    int *done = NULL;
    if (!rkt || rd_kafka_metadata(rk, 0, rkt, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err)
        goto out;
    int np = md->topics[0].partition_cnt, left = 0;
    high = calloc((size_t)np + 1, sizeof *high);
    done = calloc((size_t)np + 1, sizeof *done);
    if (!high || !done)
        goto out;
    for (int p = 0; p < np; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            goto out;
        high[p] = hi;
        int64_t start = hi - SCAN_TAIL > lo ? hi - SCAN_TAIL : lo;
        if (start >= hi) {
            done[p] = 1;
            continue;
        }
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = start;
        left++;
    }
    if (left > 0 && rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    int64_t deadline = mono_ms() + 10000;
    while (left > 0 && mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        int p = m->partition;
        if (p >= 0 && p < np && !done[p]) {
            if (!m->err) {
                int64_t id = command_outbox_id(m->payload, m->len);
                for (size_t i = 0; i < n && id > 0; i++)
                    if (ids[i] == id)
                        found[i] = 1;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                (!m->err && m->offset + 1 >= high[p])) {
                done[p] = 1;
                left--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rc = left == 0 ? 0 : -1;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_destroy(parts);
    free(high);
    free(done);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (rc < 0)
        cm_warn("trading-api: relay: could not read %s back; suspect rows wait", topic);
    return rc;
}

/* Rows with attempts > 0 may be on Kafka already: those found there are
 * marked published and skipped; when Kafka cannot be read back, every row
 * from the first suspect on is skipped (order is kept). 0 / -1 (database). */
static int settle_suspects(struct cm_db_conn *c, const struct outbox_row *rows, size_t n, int *skip)
{
    size_t first = n;
    for (size_t i = n; i-- > 0;)
        if (rows[i].attempts > 0)
            first = i;
    if (first == n)
        return 0;
    int64_t *ids = calloc(n, sizeof *ids);
    int *found = calloc(n, sizeof *found);
    int rc = -1;
    if (!ids || !found)
        goto out;
    for (size_t i = 0; i < n; i++)
        ids[i] = rows[i].attempts > 0 ? rows[i].id : -1;
    if (scan_topic(ids, n, found) < 0) {
        for (size_t i = first; i < n; i++)
            skip[i] = 1;
        rc = 0;
        goto out;
    }
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
        if (found[i]) {
            skip[i] = 1;
            ids[nf++] = rows[i].id;
        }
    if (store_outbox_mark(c, ids, nf, MARK_PUBLISHED) < 0)
        goto out;
    if (nf > 0)
        cm_warn("trading-api: relay: %zu commands were already on Kafka (a relay died before "
                "marking them): not produced again",
                nf);
    rc = 0;
out:
    free(ids);
    free(found);
    return rc;
}

/* One batch: -1 on a database error (the lease is given up), else the
 * number of rows read. */
static int cycle(struct cm_db_conn *c)
{
    struct outbox_row *rows = NULL;
    size_t n = 0;
    if (store_outbox_fetch(c, BATCH, unmarked, nunmarked, &rows, &n) < 0)
        return -1;
    nunmarked = 0;
    if (n == 0) {
        store_outbox_free(rows, n);
        return 0;
    }
    int rc = -1;
    int *skip = calloc(n, sizeof *skip);
    struct cm_kafka_out *msgs = calloc(n, sizeof *msgs);
    int64_t *ids = calloc(n, sizeof *ids), *sent = calloc(n, sizeof *sent);
    int64_t *not_sent = calloc(n, sizeof *not_sent);
    if (!skip || !msgs || !ids || !sent || !not_sent || settle_suspects(c, rows, n, skip) < 0)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        ids[k] = rows[i].id;
        msgs[k].topic = trading_cfg.commands_topic;
        msgs[k].key = rows[i].market;
        msgs[k].key_len = strlen(rows[i].market);
        msgs[k].value = rows[i].payload;
        msgs[k].value_len = strlen(rows[i].payload);
        k++;
    }
    size_t ok = k ? cm_kafka_produce_wait(producer, msgs, k, 5000) : 0;
    size_t np = 0, nn = 0;
    for (size_t i = 0; i < k; i++) {
        if (msgs[i].err == 0)
            sent[np++] = ids[i];
        /* A timeout may still be delivered: only a refusal is "not sent". */
        else if (msgs[i].err != RD_KAFKA_RESP_ERR__TIMED_OUT &&
                 msgs[i].err != RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
            not_sent[nn++] = ids[i];
    }
    if (ok < k)
        cm_warn("trading-api: relay: %zu of %zu commands not delivered, will retry", k - ok, k);
    if (ok > 0 && strcmp(trading_cfg.test_crash, "after_publish") == 0) {
        cm_warn("trading-api: TRADING_TEST_CRASH=after_publish: killing myself");
        raise(SIGKILL); /* acknowledged by the broker, not marked */
    }
    /* Another batch right away (a full one, or a commit kicked meanwhile):
     * its take marks these; else mark them now, before sleeping. A crash
     * in between leaves them unmarked with attempts > 0: found on Kafka
     * by the next relay, never produced twice. */
    pthread_mutex_lock(&mu);
    int again = (kicked || n == BATCH) && !stopping;
    pthread_mutex_unlock(&mu);
    if (again) {
        memcpy(unmarked, sent, np * sizeof *sent);
        nunmarked = np;
    } else if (store_outbox_mark(c, sent, np, MARK_PUBLISHED) < 0) {
        goto out;
    }
    if (store_outbox_mark(c, not_sent, nn, MARK_NOT_SENT) < 0)
        goto out;
    rc = (int)n;
out:
    free(skip);
    free(msgs);
    free(ids);
    free(sent);
    free(not_sent);
    store_outbox_free(rows, n);
    return rc;
}

static void *run(void *arg)
{
    (void)arg;
    int64_t last_stats = 0;
    struct cm_db_conn *lease = NULL;
    for (;;) {
        int n = 0;
        if (!lease && store_relay_lock(&lease) <= 0) {
            lease = NULL;
            n = -1;
        }
        if (lease && (n = cycle(lease)) < 0) {
            store_relay_unlock(lease);
            lease = NULL;
        }
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
        if (!stopping && n < BATCH && !kicked) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            /* Not the leader, or a failing database or broker: look less often. */
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
    if (lease || store_relay_lock(&lease) > 0) {
        cycle(lease);
        if (nunmarked > 0 && store_outbox_mark(lease, unmarked, nunmarked, MARK_PUBLISHED) == 0)
            nunmarked = 0;
        store_relay_unlock(lease);
    }
    return NULL;
}

int relay_start(void)
{
    char err[256], props[1024];
    /* A command waits for the whole batch's acknowledgement: keep the
     * producer's linger short (KAFKA_PROPS, applied after, may override). */
    snprintf(props, sizeof props, "linger.ms=1%s%s", trading_cfg.kafka_props[0] ? ";" : "",
             trading_cfg.kafka_props);
    struct cm_kafka_config kc = {
        .brokers = trading_cfg.kafka_brokers, .client_id = "trading-api-relay", .props = props};
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
