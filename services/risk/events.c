/*
 * The consumer thread: exchange.orders.events, exchange.trades and
 * wallet.events in one consumer group, applied to the engine in offset
 * order per partition; rule hits go to actions.c.
 *
 * Restart without double counting: every RISK_SNAPSHOT_INTERVAL (and at
 * shutdown) the whole state, applied offsets included, is written to
 * Redis in one SET. At start the snapshot is restored, and when the
 * group assigns a partition consumption resumes right after the
 * snapshot's offset for it (a partition it does not know, from the start
 * of the log); events at or below an applied offset are
 * ignored by the engine anyway (a replayed duplicate counts nothing).
 * Kafka commits follow each snapshot, as a fallback only.
 *
 * SIGHUP sets a flag; this thread reloads the rules at its next turn
 * (at most one poll timeout later).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "risk.h"
#include "common/banned.h"

static pthread_t thread;
static int running;
static volatile sig_atomic_t stop_flag, reload_flag;
static struct cm_kafka_consumer *consumer;
/* State changed since the last snapshot (consumer thread, admin unblock). */
static atomic_int dirty;

void events_mark_dirty(void)
{
    dirty = 1;
}

void events_request_reload(void)
{
    reload_flag = 1;
}

int risk_reload_rules(void)
{
    char err[512];
    struct risk_rules *r =
        risk_rules_load(risk_cfg.rules_file, risk_cfg.block_ttl_ms / 1000, err, sizeof err);
    if (!r) {
        cm_error("risk: rules reload failed, keeping the old rules: %s", err);
        return -1;
    }
    size_t n = r->n;
    pthread_rwlock_wrlock(&risk_lock);
    risk_engine_set_rules(risk_engine, r);
    pthread_rwlock_unlock(&risk_lock);
    cm_info("risk: rules reloaded from %s (%zu rules)", risk_cfg.rules_file, n);
    return 0;
}

static void snapshot(int commit)
{
    size_t len = 0;
    /* The consumer thread is the only state writer besides unblock and
     * reloads, which the read lock keeps out while we copy. A change after
     * the copy marks the state dirty again. */
    dirty = 0;
    pthread_rwlock_rdlock(&risk_lock);
    char *text = risk_engine_snapshot(risk_engine, &len);
    pthread_rwlock_unlock(&risk_lock);
    if (!text) {
        dirty = 1;
        cm_error("risk: cannot render the snapshot");
        return;
    }
    if (store_snapshot_put(text, len) < 0) {
        dirty = 1;
        cm_warn("risk: snapshot not written (redis); retrying at the next interval");
    } else {
        if (commit && consumer)
            cm_kafka_consumer_commit_done(consumer);
    }
    free(text);
}

static int handle(void *ctx, const struct cm_kafka_msg *m)
{
    (void)ctx;
    struct risk_hits hits;
    hits.n = 0;
    cJSON *ev = cJSON_ParseWithLength(m->value, m->value_len);
    int64_t now = risk_now_ms();
    pthread_rwlock_wrlock(&risk_lock);
    int rc = risk_engine_apply(risk_engine, m->topic, m->partition, m->offset,
                               cJSON_IsObject(ev) ? ev : NULL, now, &hits);
    pthread_rwlock_unlock(&risk_lock);
    cJSON_Delete(ev);
    static const char *const names[] = {"applied", "duplicate", "ignored"};
    cm_counter_add(risk_m.events, 1, rc >= 0 && rc <= 2 ? names[rc] : "malformed");
    if (rc == RISK_MALFORMED)
        cm_warn("risk: malformed event skipped (%s[%d]@%" PRId64 ")", m->topic, m->partition,
                m->offset);
    for (size_t i = 0; i < hits.n; i++)
        actions_fire(&hits.v[i]);
    dirty = 1;
    return 0;
}

static void on_rebalance(void *ctx, int assigned, struct cm_kafka_partition *parts, size_t n)
{
    (void)ctx;
    if (!assigned) {
        snapshot(0); /* the consumer commits right after this hook */
        return;
    }
    pthread_rwlock_rdlock(&risk_lock);
    for (size_t i = 0; i < n; i++) {
        /* A partition the state has never seen is rebuilt from its start
         * (the oldest the log still holds), also when the snapshot was lost:
         * the group's committed offsets never run ahead of a snapshot. */
        int64_t next = risk_engine_next_offset(risk_engine, parts[i].topic, parts[i].partition);
        parts[i].offset = next >= 0 ? next : CM_KAFKA_OFFSET_BEGINNING;
    }
    pthread_rwlock_unlock(&risk_lock);
    cm_info("risk: %zu partitions assigned", n);
}

static void *consume_main(void *arg)
{
    (void)arg;
    int64_t last_snap = risk_now_ms();
    while (!stop_flag) {
        if (reload_flag) {
            reload_flag = 0;
            risk_reload_rules();
        }
        if (cm_kafka_consumer_poll(consumer, 100, handle, NULL) < 0) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        int64_t now = risk_now_ms();
        if (dirty && now - last_snap >= risk_cfg.snapshot_interval_ms) {
            pthread_rwlock_wrlock(&risk_lock);
            size_t pruned = risk_engine_prune(risk_engine);
            pthread_rwlock_unlock(&risk_lock);
            if (pruned)
                cm_debug("risk: %zu idle user pairs pruned", pruned);
            snapshot(1);
            last_snap = now;
        }
    }
    if (dirty)
        snapshot(1);
    return NULL;
}

static void on_sighup(int sig)
{
    (void)sig;
    reload_flag = 1;
}

int events_start(void)
{
    /* Restore the snapshot before joining the group: the rebalance hook
     * resumes each partition right after the state's offsets. */
    char *text = NULL;
    size_t len = 0;
    int got = store_snapshot_get(&text, &len);
    if (got < 0) {
        cm_error("risk: cannot read the snapshot from redis");
        return -1;
    }
    if (got == 1) {
        pthread_rwlock_wrlock(&risk_lock);
        int rc = risk_engine_restore(risk_engine, text, len);
        pthread_rwlock_unlock(&risk_lock);
        if (rc < 0)
            cm_error("risk: snapshot %s unreadable; rebuilding from the log",
                     risk_cfg.snapshot_key);
        else
            cm_info("risk: state restored from %s (%zu bytes)", risk_cfg.snapshot_key, len);
    }
    free(text);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sighup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);

    const char *topics[] = {risk_cfg.topic_orders, risk_cfg.topic_trades, risk_cfg.topic_wallet,
                            NULL};
    struct cm_kafka_consumer_config cc = {
        .kafka = {.brokers = risk_cfg.kafka_brokers,
                  .client_id = "risk",
                  .props = risk_cfg.consumer_props},
        .group_id = risk_cfg.group_id,
        .topics = topics,
        .offset_reset = "earliest",
        .on_rebalance = on_rebalance,
    };
    char err[256];
    consumer = cm_kafka_consumer_open(&cc, err, sizeof err);
    if (!consumer) {
        cm_error("risk: kafka consumer: %s", err);
        return -1;
    }
    stop_flag = 0;
    if (pthread_create(&thread, NULL, consume_main, NULL) != 0) {
        cm_kafka_consumer_close(consumer);
        consumer = NULL;
        return -1;
    }
    running = 1;
    return 0;
}

void events_stop(void)
{
    if (!running)
        return;
    stop_flag = 1;
    pthread_join(thread, NULL);
    running = 0;
    cm_kafka_consumer_close(consumer);
    consumer = NULL;
}
