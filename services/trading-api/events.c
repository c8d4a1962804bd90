/*
 * The read model: one consumer thread (group KAFKA_GROUP, default
 * "trading-api") on exchange.orders.events and exchange.trades.
 *
 * Batches: the messages of one poll (whatever is already fetched, up to
 * BATCH of each kind) are applied together by store_apply_batch, one
 * statement and so one transaction and one round trip for the lot,
 * instead of one per event. The handler only collects; its offsets become
 * "done" in libcommon's offset store at once, but they are committed only
 * after the batch is applied: commits happen between a successful apply
 * and the next poll, and the rebalance hook applies the batch before
 * revoked partitions are committed and handed over. A database failure
 * retries the same batch (back-off up to 1 s); nothing is rewound, so
 * nothing is skipped or applied twice.
 *
 * Idempotency: matching gives every event a per-market seq. Each topic is
 * in seq order per market (one partition per market), but the two topics
 * interleave freely, so the last applied seq is kept per (market, topic)
 * and stored in the same transaction as the effect; an event at or below
 * it is a duplicate and is skipped (store_apply_batch, also within a
 * batch).
 *
 * Trades applied now (not seen before) are pushed to the SSE subscribers
 * of their market once the batch has committed.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/decimal.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/utf8.h"
#include "trading.h"
#include "common/banned.h"

/* Messages of each kind per transaction. A poll's worth is usually a few;
 * the cap bounds the statement after a backlog (restart, outage). */
#define BATCH 256

static struct cm_kafka_consumer *consumer;
static pthread_t thread;
static volatile int stopping;
static int started;

/* The batch being collected (consumer thread only). Strings in ev/tr are
 * borrowed from docs, freed after the apply. */
static struct {
    struct order_event ev[BATCH];
    struct trade_event tr[BATCH];
    const struct market *trm[BATCH];
    unsigned char applied[BATCH];
    cJSON *docs[2 * BATCH];
    size_t nev, ntr, ndocs;
} b;

static const char *sget(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static int seq_of(const cJSON *o, int64_t *seq)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "seq");
    if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > 9007199254740991.0)
        return -1;
    *seq = (int64_t)it->valuedouble;
    return 0;
}

static int dec(const cJSON *o, const char *name, int scale, int64_t *out)
{
    return cm_decimal_from_json(cJSON_GetObjectItemCaseSensitive(o, name), scale, 0, out);
}

/* An order id the orders table can hold (bigint). */
static int id_ok(const char *s)
{
    uint64_t v;
    return parse_uint_id(s, &v) == 0 && v <= INT64_MAX;
}

/* Text stored as is: NULL, or UTF-8 PostgreSQL accepts (else the batch
 * would fail on every retry). */
static int text_ok(const char *s)
{
    return !s || cm_utf8_chars(s) >= 0;
}

/* Adds an order event to the batch: 0, or -1 when unreadable. */
static int on_order_event(const cJSON *j, const struct market *m)
{
    struct order_event e = {.market = m->symbol,
                            .type = sget(j, "type"),
                            .order_id = sget(j, "order_id"),
                            .reason = sget(j, "reason"),
                            .command = sget(j, "command")};
    if (!e.type || seq_of(j, &e.seq) < 0 || (e.order_id && !id_ok(e.order_id)) ||
        !text_ok(e.reason))
        return -1;
    if (strcmp(e.type, "order.accepted") == 0)
        e.status = "open";
    else if (strcmp(e.type, "order.partially_filled") == 0)
        e.status = "partially_filled";
    else if (strcmp(e.type, "order.filled") == 0)
        e.status = "filled";
    else if (strcmp(e.type, "order.cancelled") == 0)
        e.status = "cancelled";
    else if (strcmp(e.type, "order.expired") == 0)
        e.status = "expired";
    else if (strcmp(e.type, "order.rejected") == 0)
        e.status = e.command && strcmp(e.command, "place") == 0 ? "rejected" : NULL;
    else
        return -1;
    if (dec(j, "filled_quantity", m->base_scale, &e.filled_qty) == 0 &&
        dec(j, "filled_quote", m->quote_scale, &e.filled_quote) == 0)
        e.has_filled = 1;
    b.ev[b.nev++] = e;
    return 0;
}

/* Adds a trade to the batch: 0, or -1 when unreadable. */
static int on_trade(const cJSON *j, const struct market *m)
{
    struct trade_event t = {.market = m->symbol,
                            .id = sget(j, "id"),
                            .ts = sget(j, "ts"),
                            .taker_side = sget(j, "taker_side"),
                            .taker_order_id = sget(j, "taker_order_id"),
                            .maker_order_id = sget(j, "maker_order_id")};
    if (!t.id || !t.ts || !t.taker_side || !text_ok(t.id) || !text_ok(t.taker_side) ||
        seq_of(j, &t.seq) < 0 || parse_ts_us(t.ts, &t.ts_us) < 0 || !id_ok(t.taker_order_id) ||
        !id_ok(t.maker_order_id) || dec(j, "price", m->quote_scale, &t.price) < 0 ||
        dec(j, "quantity", m->base_scale, &t.qty) < 0 ||
        dec(j, "quote_amount", m->quote_scale, &t.quote) < 0)
        return -1;
    b.trm[b.ntr] = m;
    b.tr[b.ntr++] = t;
    return 0;
}

/* Collects one message into the batch; never fails (see the top). */
static int handle(void *ctx, const struct cm_kafka_msg *msg)
{
    (void)ctx;
    cJSON *j = cJSON_ParseWithLength(msg->value, msg->value_len);
    const struct market *m =
        j ? market_find(trading_markets, trading_nmarkets, sget(j, "market")) : NULL;
    int rc = -1;
    if (m) {
        if (strcmp(msg->topic, trading_cfg.trades_topic) == 0)
            rc = on_trade(j, m);
        else
            rc = on_order_event(j, m);
    }
    if (rc < 0) { /* malformed or foreign: log and move on, never block the partition */
        cm_warn("trading-api: skipping unreadable event on %s[%d]@%lld", msg->topic,
                (int)msg->partition, (long long)msg->offset);
        cJSON_Delete(j);
    } else {
        b.docs[b.ndocs++] = j;
    }
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void publish_trades(void)
{
    for (size_t i = 0; i < b.ntr; i++) {
        if (!b.applied[i])
            continue;
        const struct trade_event *t = &b.tr[i];
        struct trade_row row = {.seq = t->seq, .price = t->price, .qty = t->qty, .quote = t->quote};
        snprintf(row.id, sizeof row.id, "%s", t->id);
        snprintf(row.ts, sizeof row.ts, "%s", t->ts);
        snprintf(row.taker_side, sizeof row.taker_side, "%s", t->taker_side);
        char *s = trade_stream_json(b.trm[i], &row);
        if (s)
            stream_publish(t->market, "trade", t->seq, s);
        free(s);
    }
}

/* Applies the batch, retrying until it is applied; then its offsets may
 * be committed. 0, or -1 when stopping first (the batch is kept). */
static int flush(void)
{
    if (b.nev || b.ntr) {
        for (int backoff = 50;; backoff = backoff < 1000 ? backoff * 2 : 1000) {
            if (store_apply_batch(b.ev, b.nev, b.tr, b.ntr, b.applied) == ST_OK)
                break;
            if (stopping)
                return -1;
            sleep_ms(backoff);
        }
        cm_counter_add(trading_m.read_batches, 1);
        cm_counter_add(trading_m.read_messages, (double)(b.nev + b.ntr));
        publish_trades();
    }
    for (size_t i = 0; i < b.ndocs; i++)
        cJSON_Delete(b.docs[i]);
    b.nev = b.ntr = b.ndocs = 0;
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
        cm_error("trading-api: cannot apply the read model batch before a rebalance; exiting");
        _exit(1);
    }
}

static void *run(void *arg)
{
    (void)arg;
    struct timespec last, now;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (!stopping) {
        int rc = cm_kafka_consumer_poll(consumer, 100, handle, NULL);
        /* Drain what is already fetched, up to a full batch. */
        while (rc == 1 && b.nev < BATCH && b.ntr < BATCH && !stopping)
            rc = cm_kafka_consumer_poll(consumer, 0, handle, NULL);
        if (flush() < 0)
            break;
        if (rc < 0)
            sleep_ms(100); /* consumer error (logged): do not spin */
        /* Every done offset is applied here (until the next poll). */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec != last.tv_sec) {
            cm_kafka_consumer_commit_done(consumer);
            last = now;
        }
    }
    return NULL;
}

int events_start(void)
{
    static const char *topics[3];
    topics[0] = trading_cfg.events_topic;
    topics[1] = trading_cfg.trades_topic;
    topics[2] = NULL;
    char err[256], props[2048];
    /* Users wait for their fills: an empty fetch must not sit at the
     * broker for librdkafka's default 500 ms. TRADING_CONSUMER_PROPS
     * (default fetch.wait.max.ms=2) comes after KAFKA_PROPS, so it wins. */
    snprintf(props, sizeof props, "fetch.wait.max.ms=10%s%s%s%s",
             trading_cfg.kafka_props[0] ? ";" : "", trading_cfg.kafka_props,
             trading_cfg.consumer_props[0] ? ";" : "", trading_cfg.consumer_props);
    struct cm_kafka_consumer_config cc = {
        .kafka = {.brokers = trading_cfg.kafka_brokers, .client_id = "trading-api", .props = props},
        .group_id = trading_cfg.group_id,
        .topics = topics,
        .on_rebalance = on_rebalance,
    };
    consumer = cm_kafka_consumer_open(&cc, err, sizeof err);
    if (!consumer) {
        cm_error("trading-api: kafka consumer: %s", err);
        return -1;
    }
    if (pthread_create(&thread, NULL, run, NULL) != 0) {
        cm_kafka_consumer_close(consumer);
        consumer = NULL;
        return -1;
    }
    started = 1;
    return 0;
}

void events_stop(void)
{
    if (!started)
        return;
    stopping = 1;
    pthread_join(thread, NULL);
    /* close commits the done offsets: with a batch still unapplied (the
     * database was down until the end), leave without, so it comes again. */
    if (b.nev || b.ntr)
        cm_error("trading-api: read model batch not applied at exit; it will be redelivered");
    else
        cm_kafka_consumer_close(consumer);
    consumer = NULL;
    started = 0;
}

int events_ready(void)
{
    return started;
}
