/* See mt_client.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_client.h"

#include "common/banned.h"

static rd_kafka_conf_t *conf(const char *brokers)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[256];
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof err);
    return c;
}

rd_kafka_t *mtc_producer(const char *brokers, int linger_ms)
{
    rd_kafka_conf_t *c = conf(brokers);
    if (!c)
        return NULL;
    char err[256], v[16];
    snprintf(v, sizeof v, "%d", linger_ms);
    rd_kafka_conf_set(c, "linger.ms", v, err, sizeof err);
    rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof err);
    /* one request in flight: messages queue up behind it and go out as
     * one batch per partition, and the mock broker's fetch cost grows
     * with the batches a partition holds (docs/kafka.md) */
    rd_kafka_conf_set(c, "max.in.flight", "1", err, sizeof err);
    rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", err, sizeof err);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!p)
        fprintf(stderr, "producer: %s\n", err);
    return p;
}

int mtc_produce(rd_kafka_t *p, const char *topic, const char *key, const void *v, size_t len)
{
    for (int tries = 0; tries < 10000; tries++) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)v, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return -1;
        rd_kafka_poll(p, 10);
    }
    return -1;
}

int mtc_create_topics(rd_kafka_t *p, const char *const *topics, size_t n, int nparts)
{
    char err[256];
    rd_kafka_NewTopic_t *nt[16];
    if (n > 16)
        return -1;
    for (size_t i = 0; i < n; i++)
        nt[i] = rd_kafka_NewTopic_new(topics[i], nparts, 1, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_CreateTopics(p, nt, n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    int rc = ev ? 0 : -1;
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(nt, n);
    return rc;
}

struct mtc_reader {
    rd_kafka_t *rk;
};

struct mtc_reader *mtc_reader_open(const char *brokers, const char *const *topics)
{
    rd_kafka_conf_t *c = conf(brokers);
    if (!c)
        return NULL;
    char err[256];
    rd_kafka_conf_set(c, "group.id", "mtc-reader", err, sizeof err);
    rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err);
    /* the mock broker answers an empty fetch only after this wait, even
     * when data arrives meanwhile: it is the reader's share of latency */
    rd_kafka_conf_set(c, "fetch.wait.max.ms", "1", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk)
        return NULL;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t t = 0; topics[t]; t++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *kt = rd_kafka_topic_new(rk, topics[t], NULL);
        int parts = 0;
        for (int tries = 0; tries < 50 && !parts; tries++) {
            if (rd_kafka_metadata(rk, 0, kt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (md->topic_cnt == 1 && !md->topics[0].err)
                    parts = md->topics[0].partition_cnt;
                rd_kafka_metadata_destroy(md);
            }
            if (!parts) {
                struct timespec ts = {0, 100000000};
                nanosleep(&ts, NULL);
            }
        }
        rd_kafka_topic_destroy(kt);
        if (!parts) {
            fprintf(stderr, "reader: topic %s has no metadata\n", topics[t]);
            rd_kafka_topic_partition_list_destroy(l);
            rd_kafka_destroy(rk);
            return NULL;
        }
        for (int p = 0; p < parts; p++)
            rd_kafka_topic_partition_list_add(l, topics[t], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    struct mtc_reader *r = calloc(1, sizeof *r);
    if (!r) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    r->rk = rk;
    return r;
}

size_t mtc_reader_poll(struct mtc_reader *r, int timeout_ms, mtc_msg_fn fn, void *ctx)
{
    size_t n = 0;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, n ? 0 : timeout_ms);
        if (!m)
            return n;
        if (!m->err) {
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            fn(ctx, rd_kafka_topic_name(m->rkt), m->payload, m->len, ts);
            n++;
        }
        rd_kafka_message_destroy(m);
        if (n >= 100000)
            return n;
    }
}

void mtc_reader_close(struct mtc_reader *r)
{
    if (!r)
        return;
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    free(r);
}

/* ---- the command stream ----------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static const char *const default_markets[] = {"BTC-USDT", "ETH-USDT"};
const char *const *mtc_markets = default_markets;
int mtc_nmarkets = 2;
uint64_t mtc_order_base = 1000;

size_t mtc_command(uint64_t seed, size_t i, int bad, char *buf, size_t n, const char **market)
{
    uint64_t r = mix(seed ^ mix(i));
    int m = mtc_nmarkets == 2 ? (int)(r & 1) : (int)((r >> 56) % (uint64_t)mtc_nmarkets);
    *market = mtc_markets[m];
    /* prices in whole cents around 30000.00 (BTC) / 2000.00 (ETH) */
    int64_t mid = strcmp(*market, "ETH-USDT") == 0 ? 200000 : 3000000;
    int64_t off = (int64_t)((r >> 8) % 41) - 20; /* cents from mid */
    int side = (int)((r >> 16) & 1);
    int kind = (int)((r >> 20) % 100);
    uint64_t order = mtc_order_base + i; /* unique per command */
    uint64_t user = 1 + order % 50;
    const char *ts = "2026-11-21T12:00:00.123456Z";
    int len;
    if (bad && i % 997 == 500) {
        len = snprintf(buf, n, "{not json at all %zu", i);
    } else if (bad && i % 997 == 600) { /* bad price: rejected(invalid) */
        len = snprintf(buf, n,
                       "{\"type\":\"order.place\",\"version\":1,\"id\":\"c%zu\",\"ts\":\"%s\","
                       "\"market\":\"%s\",\"order_id\":\"%llu\",\"user_id\":\"%llu\","
                       "\"side\":\"buy\",\"order_type\":\"limit\",\"price\":\"1e5\","
                       "\"quantity\":\"0.00100000\",\"time_in_force\":\"GTC\",\"post_only\":false}",
                       i, ts, *market, (unsigned long long)order, (unsigned long long)user);
    } else if (bad && i % 997 == 700) { /* unknown market: skipped */
        *market = "DOGE-USDT";
        len = snprintf(buf, n,
                       "{\"type\":\"order.cancel\",\"version\":1,\"id\":\"c%zu\",\"ts\":\"%s\","
                       "\"market\":\"DOGE-USDT\",\"order_id\":\"5\",\"user_id\":\"5\"}",
                       i, ts);
    } else if (kind < 35 && i > 10) { /* cancel an earlier order of the stream */
        uint64_t back = 1 + (r >> 40) % (i < 200 ? i : 200);
        len = snprintf(buf, n,
                       "{\"type\":\"order.cancel\",\"version\":1,\"id\":\"c%zu\",\"ts\":\"%s\","
                       "\"market\":\"%s\",\"order_id\":\"%llu\",\"user_id\":\"%llu\"}",
                       i, ts, *market, (unsigned long long)(order - back),
                       (unsigned long long)(1 + (order - back) % 50));
    } else if (kind < 40) { /* market order by quantity */
        len = snprintf(buf, n,
                       "{\"type\":\"order.place\",\"version\":1,\"id\":\"c%zu\",\"ts\":\"%s\","
                       "\"market\":\"%s\",\"order_id\":\"%llu\",\"user_id\":\"%llu\","
                       "\"side\":\"%s\",\"order_type\":\"market\",\"quantity\":\"0.00%d00000\","
                       "\"time_in_force\":\"IOC\",\"post_only\":false}",
                       i, ts, *market, (unsigned long long)order, (unsigned long long)user,
                       side ? "sell" : "buy", 1 + (int)((r >> 44) % 9));
    } else { /* limit GTC near the mid: buys below, sells above, some crossing */
        int64_t p = side ? mid + off + 3 : mid - off - 3;
        len =
            snprintf(buf, n,
                     "{\"type\":\"order.place\",\"version\":1,\"id\":\"c%zu\",\"ts\":\"%s\","
                     "\"market\":\"%s\",\"order_id\":\"%llu\",\"user_id\":\"%llu\","
                     "\"side\":\"%s\",\"order_type\":\"limit\",\"price\":\"%lld.%02lld0000\","
                     "\"quantity\":\"0.00%d00000\",\"time_in_force\":\"GTC\",\"post_only\":false}",
                     i, ts, *market, (unsigned long long)order, (unsigned long long)user,
                     side ? "sell" : "buy", (long long)(p / 100), (long long)(p % 100),
                     1 + (int)((r >> 44) % 9));
    }
    return len < 0 || (size_t)len >= n ? 0 : (size_t)len;
}
