#ifndef COMMON_KAFKA_H
#define COMMON_KAFKA_H
/*
 * Kafka producer and consumer-group consumer over librdkafka (docs/kafka.md).
 *
 * Producer: idempotent (enable.idempotence=true, acks=all). Every message
 * carries the caller's headers plus, from the calling thread's log context,
 * "x-request-id" and a W3C "traceparent" (when the trace id is 32 hex
 * digits). Delivery reports arrive on the producer's own poll thread.
 * Metrics: kafka_produced_total{topic}, kafka_produce_errors_total{topic}.
 *
 * Consumer: manual commits only (enable.auto.commit=false). A message is
 * "done" when the handler returns 0; done offsets are committed by
 * cm_kafka_consumer_commit*() and by cm_kafka_consumer_close(), never
 * before. Metrics: kafka_consumed_total{topic},
 * kafka_consumer_lag{topic,partition} (high watermark - position, refreshed
 * about once a second from the poll loop), kafka_consumer_paused (the
 * number of paused consumers in the process: 1 while the one is paused).
 *
 * Thread-safety: a producer may be used from any number of threads. A
 * consumer belongs to the one thread that polls it; only
 * cm_kafka_consumer_set_paused() may be called from other threads.
 */
#include <stddef.h>
#include <stdint.h>

#define CM_KAFKA_HEADER_REQUEST_ID "x-request-id"
#define CM_KAFKA_HEADER_TRACEPARENT "traceparent"

/* Connection settings shared by producers and consumers. Borrowed for the
 * duration of the open call only. */
struct cm_kafka_config {
    const char *brokers;   /* required: "host:port[,host:port...]" (KAFKA_BROKERS) */
    const char *client_id; /* optional; default "exchange-lab" */
    /* Optional extra librdkafka properties, "key=value" pairs separated by
     * ';' or newlines, e.g. "linger.ms=5;socket.timeout.ms=10000". They are
     * applied last, so they can override the defaults (except the
     * guarantees above: auto-commit stays off). */
    const char *props;
};

struct cm_kafka_header {
    const char *name;
    const void *value; /* borrowed; may be NULL (null header value) */
    size_t len;
};

/* Parses props into (key, value) calls of fn; returns 0, or -1 with a
 * message in err when an entry is not key=value. Exposed for tests. */
int cm_kafka_props_parse(const char *props,
                         int (*fn)(void *ctx, const char *key, const char *value), void *ctx,
                         char *err, size_t errlen);

/* ---- producer ---------------------------------------------------------- */

struct cm_kafka_producer;

/* Result of one delivery: err is 0 on success, else a librdkafka error code
 * (rd_kafka_resp_err_t) with errstr describing it. */
typedef void (*cm_kafka_delivery_fn)(void *opaque, int err, const char *errstr, int32_t partition,
                                     int64_t offset);

/* Returns NULL on invalid configuration, with the reason in err (if not
 * NULL). Does not wait for the brokers. Caller owns the producer. */
struct cm_kafka_producer *cm_kafka_producer_open(const struct cm_kafka_config *cfg, char *err,
                                                 size_t errlen);
/* Waits up to timeout_ms for outstanding deliveries (their callbacks still
 * run), then frees. Returns 0 when everything was delivered, -1 when
 * messages were still in flight (they are lost). NULL is a no-op. */
int cm_kafka_producer_close(struct cm_kafka_producer *p, int timeout_ms);

/* One outgoing message. Data is copied by the produce calls. The result
 * fields are written by cm_kafka_produce_wait(). Zero-initialised, a
 * message goes to the partition its key hashes to (the normal use). */
struct cm_kafka_out {
    const char *topic;
    /* A fixed partition, honoured only when partition_set is 1 and
     * partition >= 0 (CM_KAFKA_PARTITION_ANY also means by key hash). */
    int32_t partition;
    int partition_set;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const struct cm_kafka_header *headers;
    size_t nheaders;
    /* results (cm_kafka_produce_wait) */
    int err; /* 0 delivered; else rd_kafka_resp_err_t */
    int32_t out_partition;
    int64_t out_offset;
};
#define CM_KAFKA_PARTITION_ANY (-1)

/* Enqueues one message. fn (may be NULL) is called exactly once with
 * opaque, from the producer's poll thread, when the message is delivered
 * or finally fails; it is not called when this returns -1 (enqueue failed:
 * queue full, unknown topic, bad arguments). Returns 0 or -1. */
int cm_kafka_produce(struct cm_kafka_producer *p, const struct cm_kafka_out *m,
                     cm_kafka_delivery_fn fn, void *opaque);

/* Outbox relays: produces msgs[0..n) in order and waits until each one is
 * delivered or failed or timeout_ms passes; fills each message's err,
 * out_partition, out_offset (err RD_KAFKA_RESP_ERR__TIMED_OUT for those
 * still in flight). Returns the number of delivered messages, so n means
 * all went through; messages after the first failure may still have been
 * delivered (check each). */
size_t cm_kafka_produce_wait(struct cm_kafka_producer *p, struct cm_kafka_out *msgs, size_t n,
                             int timeout_ms);

/* Learns the topics' partitions and leaders now (one metadata request
 * each), so the first message to each goes out at once: librdkafka 2.0.2
 * otherwise holds the first message to a topic it has not seen for up to
 * ~1 s. Call at start-up for the topics a service produces to. 0, or -1
 * when some topic's metadata did not come (logged; producing still works,
 * only the first message waits). */
int cm_kafka_producer_prepare(struct cm_kafka_producer *p, const char *const *topics,
                              int timeout_ms);

/* Waits for everything produced so far; 0, or -1 on timeout. */
int cm_kafka_producer_flush(struct cm_kafka_producer *p, int timeout_ms);

/* ---- consumer ---------------------------------------------------------- */

struct cm_kafka_consumer;

/* A received message; everything is borrowed and valid only during the
 * handler call. */
struct cm_kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t timestamp_ms; /* -1 when unknown */
    const void *internal; /* rd_kafka_message_t */
};

/* Finds a header by name (last one wins): 0 with value and len borrowed from
 * the message, or -1 when absent. */
int cm_kafka_msg_header(const struct cm_kafka_msg *m, const char *name, const void **value,
                        size_t *len);

/* Start positions a rebalance hook may choose (else a real offset >= 0). */
#define CM_KAFKA_OFFSET_COMMITTED (-1000) /* the group's committed offset (default) */
#define CM_KAFKA_OFFSET_BEGINNING (-2)
#define CM_KAFKA_OFFSET_END (-1)

struct cm_kafka_partition {
    const char *topic; /* borrowed for the callback's duration */
    int32_t partition;
    /* On assignment: where consumption starts, CM_KAFKA_OFFSET_COMMITTED
     * unless the hook changes it (e.g. a snapshot's last offset + 1). */
    int64_t offset;
};

/* Called on the polling thread. assigned=1: these partitions are now ours
 * (load snapshots here, and set parts[i].offset to resume right after
 * them; consumption starts after return); assigned=0: they are being
 * taken away (done offsets are committed right after return; offset is
 * ignored). */
typedef void (*cm_kafka_rebalance_fn)(void *ctx, int assigned, struct cm_kafka_partition *parts,
                                      size_t n);

/* Handles one message. Return 0 when its effect is durable (the offset
 * becomes committable); -1 to have it delivered again: the partition is
 * rewound to this message and cm_kafka_consumer_poll() returns -1 (back off
 * before polling again, or a lasting outage becomes a hot loop). */
typedef int (*cm_kafka_handler_fn)(void *ctx, const struct cm_kafka_msg *m);

struct cm_kafka_consumer_config {
    struct cm_kafka_config kafka;
    const char *group_id;               /* required */
    const char *const *topics;          /* required, NULL-terminated */
    const char *offset_reset;           /* "earliest" (default) or "latest" */
    cm_kafka_rebalance_fn on_rebalance; /* optional */
    void *rebalance_ctx;
    /* Optional static assignment instead of the group protocol, for
     * single-owner consumers (matching): NULL or "" subscribes through the
     * group; "all" assigns every partition of every topic; "0,3,5" those
     * partitions of every topic (absent ones are logged and skipped). The
     * assignment is made by the first poll (one metadata request, up to
     * 2 s) and calls on_rebalance(assigned=1) like a group assignment;
     * close calls it with assigned=0. No join, no rebalance, no session:
     * a restarted process resumes at once, and nothing stops two processes
     * from reading the same partitions (the operator owns that). group_id
     * still names the committed offsets. */
    const char *partitions;
};

/* Subscribes (the group join happens in the first polls; about 3 s on the
 * local mock broker), or prepares the static assignment. Returns NULL with
 * err on bad configuration. */
struct cm_kafka_consumer *cm_kafka_consumer_open(const struct cm_kafka_consumer_config *cfg,
                                                 char *err, size_t errlen);

/* Waits up to timeout_ms for one message and hands it to fn with the log
 * context (request id, trace id) taken from its headers. Returns 1 when a
 * message was handled, 0 when none came (timeout, paused, partition EOF),
 * -1 when the handler failed or a consumer error occurred (logged). */
int cm_kafka_consumer_poll(struct cm_kafka_consumer *c, int timeout_ms, cm_kafka_handler_fn fn,
                           void *ctx);

/* Commits (synchronously) m's offset + 1 for its partition. 0 or -1. */
int cm_kafka_consumer_commit(struct cm_kafka_consumer *c, const struct cm_kafka_msg *m);
/* Commits next_offset (the offset of the next message to read). */
int cm_kafka_consumer_commit_offset(struct cm_kafka_consumer *c, const char *topic,
                                    int32_t partition, int64_t next_offset);
/* Commits every handled ("done") offset; 0 also when there was nothing. */
int cm_kafka_consumer_commit_done(struct cm_kafka_consumer *c);
/* The same without waiting for the broker: for consumers whose state does
 * not come from the committed offsets (matching's snapshots), so a batch
 * does not pay a commit round trip. A failure is logged by a later poll;
 * close still commits synchronously. 0, or -1 if it could not be sent. */
int cm_kafka_consumer_commit_done_async(struct cm_kafka_consumer *c);

/* Stops (1) or resumes (0) fetching on every assigned partition; the group
 * membership is kept alive by the poll loop. Safe from any thread; takes
 * effect on the next poll. */
void cm_kafka_consumer_set_paused(struct cm_kafka_consumer *c, int paused);
int cm_kafka_consumer_paused(const struct cm_kafka_consumer *c);
/* Process-wide pause source consulted on every poll in addition to the
 * flag above, e.g. cm_kafka_set_pause_hook(cm_faults_kafka_paused) so the
 * kafka_pause fault pauses every consumer. NULL removes it. */
void cm_kafka_set_pause_hook(int (*fn)(void));

/* Commits done offsets, leaves the group (partitions are revoked, so the
 * rebalance hook runs; with a static assignment the hook runs first, then
 * the commit), frees. 0, or -1 if the final commit failed. NULL is
 * a no-op. */
int cm_kafka_consumer_close(struct cm_kafka_consumer *c);

#endif
