/*
 * The read model: one consumer thread (group KAFKA_GROUP, default
 * "trading-api") on exchange.orders.events and exchange.trades.
 *
 * Idempotency: matching gives every event a per-market seq. Each topic is
 * in seq order per market (one partition per market), but the two topics
 * interleave freely, so the last applied seq is kept per (market, topic)
 * and stored in the same transaction as the effect; an event at or below
 * it is a duplicate and is skipped. A database failure returns -1: the
 * partition is rewound and the event comes again.
 *
 * Applied trades are also pushed to the SSE subscribers of their market.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/decimal.h"
#include "common/kafka.h"
#include "common/log.h"
#include "trading.h"
#include "common/banned.h"

static struct cm_kafka_consumer *consumer;
static pthread_t thread;
static volatile int stopping;
static int started;

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

static int on_order_event(const cJSON *j, const struct market *m)
{
    struct order_event e = {.market = m->symbol,
                            .type = sget(j, "type"),
                            .order_id = sget(j, "order_id"),
                            .reason = sget(j, "reason"),
                            .command = sget(j, "command")};
    if (!e.type || seq_of(j, &e.seq) < 0)
        return -2;
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
        return -2;
    if (dec(j, "filled_quantity", m->base_scale, &e.filled_qty) == 0 &&
        dec(j, "filled_quote", m->quote_scale, &e.filled_quote) == 0)
        e.has_filled = 1;
    int rc = store_apply_order_event(&e);
    return rc == ST_OK || rc == ST_EXISTS ? 0 : -1;
}

static int on_trade(const cJSON *j, const struct market *m)
{
    struct trade_event t = {.market = m->symbol,
                            .id = sget(j, "id"),
                            .ts = sget(j, "ts"),
                            .taker_side = sget(j, "taker_side"),
                            .taker_order_id = sget(j, "taker_order_id"),
                            .maker_order_id = sget(j, "maker_order_id")};
    uint64_t tid, mid;
    if (!t.id || !t.ts || !t.taker_side || seq_of(j, &t.seq) < 0 ||
        parse_ts_us(t.ts, &t.ts_us) < 0 || parse_uint_id(t.taker_order_id, &tid) < 0 ||
        parse_uint_id(t.maker_order_id, &mid) < 0 ||
        dec(j, "price", m->quote_scale, &t.price) < 0 ||
        dec(j, "quantity", m->base_scale, &t.qty) < 0 ||
        dec(j, "quote_amount", m->quote_scale, &t.quote) < 0)
        return -2;
    int rc = store_apply_trade(&t);
    if (rc == ST_OK) {
        struct trade_row row = {.seq = t.seq, .price = t.price, .qty = t.qty, .quote = t.quote};
        snprintf(row.id, sizeof row.id, "%s", t.id);
        snprintf(row.ts, sizeof row.ts, "%s", t.ts);
        snprintf(row.taker_side, sizeof row.taker_side, "%s", t.taker_side);
        char *s = trade_stream_json(m, &row);
        if (s)
            stream_publish(m->symbol, "trade", t.seq, s);
        free(s);
    }
    return rc == ST_OK || rc == ST_EXISTS ? 0 : -1;
}

static int handle(void *ctx, const struct cm_kafka_msg *msg)
{
    (void)ctx;
    cJSON *j = cJSON_ParseWithLength(msg->value, msg->value_len);
    const struct market *m =
        j ? market_find(trading_markets, trading_nmarkets, sget(j, "market")) : NULL;
    int rc = -2;
    if (m) {
        if (strcmp(msg->topic, trading_cfg.trades_topic) == 0)
            rc = on_trade(j, m);
        else
            rc = on_order_event(j, m);
    }
    if (rc == -2) /* malformed or foreign: log and move on, never block the partition */
        cm_warn("trading-api: skipping unreadable event on %s[%d]@%lld", msg->topic,
                (int)msg->partition, (long long)msg->offset);
    cJSON_Delete(j);
    return rc == -1 ? -1 : 0;
}

static void *run(void *arg)
{
    (void)arg;
    struct timespec last, now;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (!stopping) {
        if (cm_kafka_consumer_poll(consumer, 100, handle, NULL) < 0)
            usleep(200 * 1000); /* database down: do not spin on the rewind */
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
    cm_kafka_consumer_close(consumer);
    consumer = NULL;
    started = 0;
}

int events_ready(void)
{
    return started;
}
