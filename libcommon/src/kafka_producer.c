/*
 * Idempotent Kafka producer with per-message delivery reports. A private
 * thread polls librdkafka so delivery callbacks run without the caller's
 * help; cm_kafka_produce_wait() builds the synchronous outbox-relay call on
 * top of the same callbacks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "kafka_internal.h"
#include "common/banned.h"

struct cm_kafka_producer {
    rd_kafka_t *rk;
    pthread_t poller;
    atomic_int stop;
    struct cm_metric *produced;
    struct cm_metric *errors;
};

/* Travels with each message as its librdkafka opaque. */
struct delivery {
    cm_kafka_delivery_fn fn;
    void *opaque;
};

/* Shared by the messages of one cm_kafka_produce_wait() call. It lives on
 * the heap and is freed by whoever drops the last reference, so a delivery
 * that arrives after the caller gave up writes into it harmlessly. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending; /* deliveries not reported yet */
    size_t refs;    /* the caller + each enqueued message */
    struct wait_slot {
        struct waiter *w;
        int err;
        int32_t partition;
        int64_t offset;
    } slots[];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rm, void *conf_opaque)
{
    (void)rk;
    struct cm_kafka_producer *p = conf_opaque;
    struct delivery *d = rm->_private;
    const char *topic = rm->rkt ? rd_kafka_topic_name(rm->rkt) : "";
    /* Both series of a topic exist once it has seen a message, so an
     * error-rate rule reads 0 rather than no data. */
    cm_counter_add(p->errors, rm->err ? 1 : 0, topic);
    cm_counter_add(p->produced, rm->err ? 0 : 1, topic);
    if (d) {
        if (d->fn)
            d->fn(d->opaque, rm->err, rm->err ? rd_kafka_err2str(rm->err) : "", rm->partition,
                  rm->offset);
        free(d);
    }
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
    (void)rk;
    /* syslog levels; transport errors (3) are transient and retried. One
     * KAFKA_PROPS serves producers and consumers, so "consumer property
     * ignored by this producer" (CONFWARN) is expected, not a warning. */
    enum cm_log_level l = level <= 2 ? CM_LOG_ERROR : level <= 4 ? CM_LOG_WARN : CM_LOG_DEBUG;
    if (strcmp(fac, "CONFWARN") == 0)
        l = CM_LOG_DEBUG;
    cm_log_kv(l, msg, "component", "kafka-producer", "facility", fac, (const char *)NULL);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* Transport errors are also logged by on_log; keep the rest. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
        return;
    cm_log_kv(err == RD_KAFKA_RESP_ERR__FATAL ? CM_LOG_ERROR : CM_LOG_WARN, "kafka producer error",
              "error", rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason,
              (const char *)NULL);
}

static void *poll_main(void *arg)
{
    struct cm_kafka_producer *p = arg;
    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, 100);
    return NULL;
}

struct cm_kafka_producer *cm_kafka_producer_open(const struct cm_kafka_config *cfg, char *err,
                                                 size_t errlen)
{
    char buf[512];
    struct cm_kafka_producer *p = calloc(1, sizeof *p);
    rd_kafka_conf_t *conf = NULL;
    if (!p)
        goto fail;
    conf = cm_kafka_conf_new_internal(cfg, err, errlen);
    if (!conf)
        goto fail;
    /* The guarantees first, then the caller's props (already applied) may
     * not weaken them: set again after. */
    if (cm_kafka_conf_set_internal(conf, "enable.idempotence", "true", err, errlen) != 0 ||
        cm_kafka_conf_set_internal(conf, "acks", "all", err, errlen) != 0)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, p);
    p->produced = cm_metric_counter("kafka_produced_total",
                                    "Kafka messages delivered (acknowledged) per topic.", "topic");
    p->errors = cm_metric_counter("kafka_produce_errors_total",
                                  "Kafka messages that failed delivery per topic.", "topic");
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, buf, sizeof buf);
    if (!p->rk) {
        if (err)
            snprintf(err, errlen, "kafka producer: %s", buf);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    if (pthread_create(&p->poller, NULL, poll_main, p) != 0) {
        if (err)
            snprintf(err, errlen, "kafka producer: cannot start poll thread");
        rd_kafka_destroy(p->rk);
        goto fail;
    }
    return p;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    free(p);
    return NULL;
}

int cm_kafka_producer_prepare(struct cm_kafka_producer *p, const char *const *topics,
                              int timeout_ms)
{
    int rc = 0;
    for (size_t i = 0; topics && topics[i]; i++) {
        rd_kafka_topic_t *kt = rd_kafka_topic_new(p->rk, topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err =
            kt ? rd_kafka_metadata(p->rk, 0, kt, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err))
            err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (err) {
            cm_log_kv(CM_LOG_WARN, "kafka topic metadata unavailable", "topic", topics[i], "error",
                      rd_kafka_err2str(err), (const char *)NULL);
            rc = -1;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        if (kt)
            rd_kafka_topic_destroy(kt);
    }
    return rc;
}

int cm_kafka_producer_flush(struct cm_kafka_producer *p, int timeout_ms)
{
    return rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int cm_kafka_producer_close(struct cm_kafka_producer *p, int timeout_ms)
{
    if (!p)
        return 0;
    int rc = 0;
    atomic_store(&p->stop, 1);
    pthread_join(p->poller, NULL);
    if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char n[32];
        snprintf(n, sizeof n, "%d", rd_kafka_outq_len(p->rk));
        cm_log_kv(CM_LOG_ERROR, "kafka producer closed with messages in flight", "messages", n,
                  (const char *)NULL);
        rc = -1;
    }
    /* Fail whatever is left so every delivery callback runs (and frees). */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(p->rk, 0);
    rd_kafka_destroy(p->rk);
    free(p);
    return rc;
}

/* Caller headers, then the log context's request id / traceparent unless
 * the caller set them. */
static rd_kafka_headers_t *build_headers(const struct cm_kafka_out *m)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(m->nheaders + 2);
    int have_rid = 0, have_tp = 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct cm_kafka_header *x = &m->headers[i];
        if (!x->name)
            continue;
        rd_kafka_header_add(h, x->name, -1, x->value, x->value ? (ssize_t)x->len : 0);
        have_rid |= strcmp(x->name, CM_KAFKA_HEADER_REQUEST_ID) == 0;
        have_tp |= strcmp(x->name, CM_KAFKA_HEADER_TRACEPARENT) == 0;
    }
    const char *rid = cm_log_request_id();
    if (!have_rid && rid && *rid)
        rd_kafka_header_add(h, CM_KAFKA_HEADER_REQUEST_ID, -1, rid, -1);
    char tp[64];
    if (!have_tp && cm_kafka_traceparent_internal(cm_log_trace_id(), tp, sizeof tp) == 0)
        rd_kafka_header_add(h, CM_KAFKA_HEADER_TRACEPARENT, -1, tp, -1);
    return h;
}

int cm_kafka_produce(struct cm_kafka_producer *p, const struct cm_kafka_out *m,
                     cm_kafka_delivery_fn fn, void *opaque)
{
    if (!p || !m || !m->topic || !*m->topic)
        return -1;
    struct delivery *d = malloc(sizeof *d);
    if (!d)
        return -1;
    d->fn = fn;
    d->opaque = opaque;
    rd_kafka_headers_t *h = build_headers(m);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(m->topic),
        RD_KAFKA_V_PARTITION(m->partition_set && m->partition >= 0 ? m->partition
                                                                   : RD_KAFKA_PARTITION_UA),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)(uintptr_t)m->key, m->key ? m->key_len : 0),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)m->value, m->value ? m->value_len : 0),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h); /* not consumed on failure */
        free(d);
        cm_counter_add(p->errors, 1, m->topic);
        cm_log_kv(CM_LOG_WARN, "kafka produce failed", "topic", m->topic, "error",
                  rd_kafka_err2str(err), (const char *)NULL);
        return -1;
    }
    return 0;
}

static void waiter_unref_locked(struct waiter *w)
{
    if (--w->refs > 0) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void on_wait_delivery(void *opaque, int err, const char *errstr, int32_t partition,
                             int64_t offset)
{
    (void)errstr;
    struct wait_slot *s = opaque;
    struct waiter *w = s->w;
    pthread_mutex_lock(&w->mu);
    s->err = err;
    s->partition = partition;
    s->offset = offset;
    w->pending--;
    pthread_cond_broadcast(&w->cv);
    waiter_unref_locked(w);
}

size_t cm_kafka_produce_wait(struct cm_kafka_producer *p, struct cm_kafka_out *msgs, size_t n,
                             int timeout_ms)
{
    if (n == 0)
        return 0;
    struct waiter *w = calloc(1, sizeof *w + n * sizeof w->slots[0]);
    if (!w) {
        for (size_t i = 0; i < n; i++)
            msgs[i].err = RD_KAFKA_RESP_ERR__FAIL;
        return 0;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->refs = 1;

    for (size_t i = 0; i < n; i++) {
        struct wait_slot *s = &w->slots[i];
        s->w = w;
        s->err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        s->partition = -1;
        s->offset = -1;
        pthread_mutex_lock(&w->mu);
        w->pending++;
        w->refs++;
        pthread_mutex_unlock(&w->mu);
        if (cm_kafka_produce(p, &msgs[i], on_wait_delivery, s) != 0) {
            pthread_mutex_lock(&w->mu);
            w->pending--;
            w->refs--;
            s->err = RD_KAFKA_RESP_ERR__FAIL;
            pthread_mutex_unlock(&w->mu);
        }
    }

    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    size_t ok = 0;
    pthread_mutex_lock(&w->mu);
    while (w->pending > 0)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0)
            break;
    for (size_t i = 0; i < n; i++) {
        msgs[i].err = w->slots[i].err;
        msgs[i].out_partition = w->slots[i].partition;
        msgs[i].out_offset = w->slots[i].offset;
        ok += msgs[i].err == 0;
    }
    waiter_unref_locked(w);
    return ok;
}
