#ifndef MATCHING_TESTS_MT_CLIENT_H
#define MATCHING_TESTS_MT_CLIENT_H
/*
 * Kafka helpers for matching's integration test and service benchmark,
 * straight on librdkafka: a producer for commands and a reader that
 * assigns every partition of some topics from the beginning (no consumer
 * group, so no join delay), plus the command-stream generator both use.
 */
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* linger_ms: 0 for latency, a few ms for throughput. NULL on error. */
rd_kafka_t *mtc_producer(const char *brokers, int linger_ms);
/* Produces (copied), retrying while the local queue is full. 0 / -1. */
int mtc_produce(rd_kafka_t *p, const char *topic, const char *key, const void *v, size_t len);
/* Creates topics with nparts partitions (ignores "already exists"). */
int mtc_create_topics(rd_kafka_t *p, const char *const *topics, size_t n, int nparts);

struct mtc_reader;
/* Reads topics (NULL-terminated) from the beginning. NULL on error. */
struct mtc_reader *mtc_reader_open(const char *brokers, const char *const *topics);
/* Calls fn for each message that arrives within timeout_ms (returns after
 * the first empty poll). Returns messages seen. */
typedef void (*mtc_msg_fn)(void *ctx, const char *topic, const void *v, size_t len, int64_t ts_ms);
size_t mtc_reader_poll(struct mtc_reader *r, int timeout_ms, mtc_msg_fn fn, void *ctx);
void mtc_reader_close(struct mtc_reader *r);

/* Deterministic command stream over mtc_markets (BTC-USDT-like rules;
 * ETH-USDT's mid is lower): limit orders near a random-walking mid, cancels of open orders,
 * market orders; with bad=1 a few malformed commands are mixed in. Writes
 * command i (0-based) as JSON into buf (size n); returns its length and the
 * market (key) in *market. */
extern const char *const *mtc_markets; /* default {"BTC-USDT","ETH-USDT"} */
extern int mtc_nmarkets;
extern uint64_t mtc_order_base; /* order id of command 0 (default 1000) */
size_t mtc_command(uint64_t seed, size_t i, int bad, char *buf, size_t n, const char **market);

#endif
