/*
 * Consumer-group (or statically assigned) consumer with manual commits. Offsets become committable
 * only after the handler reports the message's effect durable (librdkafka's
 * offset store with enable.auto.offset.store=false), and are committed
 * only when asked, on revocation and on close. Everything (messages,
 * rebalances, errors) is served on the thread that calls
 * cm_kafka_consumer_poll().
 */
#include <inttypes.h>
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

#define LAG_REFRESH_MS 1000

/* kafka.h's start positions must stay librdkafka's. */
_Static_assert(CM_KAFKA_OFFSET_COMMITTED == RD_KAFKA_OFFSET_STORED, "offset scale");
_Static_assert(CM_KAFKA_OFFSET_BEGINNING == RD_KAFKA_OFFSET_BEGINNING, "offset scale");
_Static_assert(CM_KAFKA_OFFSET_END == RD_KAFKA_OFFSET_END, "offset scale");

struct cm_kafka_consumer {
    rd_kafka_t *rk;
    char group[256];
    atomic_int want_paused;
    int paused; /* applied state; poll thread only */
    cm_kafka_rebalance_fn on_rebalance;
    void *rebalance_ctx;
    int64_t lag_refreshed_ms;
    struct cm_metric *consumed;
    struct cm_metric *lag;
    struct cm_metric *paused_gauge;
    /* Static assignment (cfg->partitions): made by the first poll. */
    int static_mode, static_assigned;
    char **topics; /* NULL-terminated copy */
    int32_t *wanted;
    size_t nwanted; /* 0: every partition */
};

static int (*_Atomic pause_hook)(void);

void cm_kafka_set_pause_hook(int (*fn)(void))
{
    pause_hook = fn;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_lag(struct cm_kafka_consumer *c, const char *topic, int32_t partition, double v)
{
    char p[16];
    snprintf(p, sizeof p, "%" PRId32, partition);
    cm_gauge_set(c->lag, v, topic, p);
}

static void notify(struct cm_kafka_consumer *c, int assigned,
                   rd_kafka_topic_partition_list_t *parts)
{
    if (!c->on_rebalance || parts->cnt == 0)
        return;
    struct cm_kafka_partition *v = calloc((size_t)parts->cnt, sizeof *v);
    if (!v) {
        cm_error("kafka rebalance: out of memory, hook not called");
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        v[i].topic = parts->elems[i].topic;
        v[i].partition = parts->elems[i].partition;
        v[i].offset = CM_KAFKA_OFFSET_COMMITTED;
    }
    c->on_rebalance(c->rebalance_ctx, assigned, v, (size_t)parts->cnt);
    /* The hook's start positions (the two offset scales agree: -1000 is
     * RD_KAFKA_OFFSET_STORED, -2 BEGINNING, -1 END). */
    if (assigned)
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = v[i].offset;
    free(v);
}

static int commit_stored(struct cm_kafka_consumer *c)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return 0;
    cm_log_kv(CM_LOG_ERROR, "kafka commit failed", "group", c->group, "error",
              rd_kafka_err2str(err), (const char *)NULL);
    return -1;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct cm_kafka_consumer *c = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    char n[16];
    snprintf(n, sizeof n, "%d", parts->cnt);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        cm_log_kv(CM_LOG_INFO, "kafka partitions assigned", "group", c->group, "partitions", n,
                  (const char *)NULL);
        notify(c, 1, parts);
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
        if (c->paused)
            rd_kafka_pause_partitions(rk, parts);
        return;
    }
    cm_log_kv(CM_LOG_INFO, "kafka partitions revoked", "group", c->group, "partitions", n,
              (const char *)NULL);
    notify(c, 0, parts);
    /* Hand over exactly where we stopped; the next owner starts there. */
    if (!rd_kafka_assignment_lost(rk))
        commit_stored(c);
    for (int i = 0; i < parts->cnt; i++)
        set_lag(c, parts->elems[i].topic, parts->elems[i].partition, 0);
    if (cooperative)
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    else
        rd_kafka_assign(rk, NULL);
}

/* Results of commits (async ones included), served by the poll. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk, (void)offsets;
    struct cm_kafka_consumer *c = opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        cm_log_kv(CM_LOG_WARN, "kafka commit failed", "group", c->group, "error",
                  rd_kafka_err2str(err), (const char *)NULL);
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
    cm_log_kv(l, msg, "component", "kafka-consumer", "facility", fac, (const char *)NULL);
}

/* "all" -> nwanted 0; "0,3,5" -> those; anything else is an error. */
static int parse_partitions(struct cm_kafka_consumer *c, const char *spec, char *err, size_t errlen)
{
    if (strcmp(spec, "all") == 0)
        return 0;
    size_t cap = 1;
    for (const char *q = spec; *q; q++)
        cap += *q == ',';
    c->wanted = calloc(cap, sizeof *c->wanted);
    if (!c->wanted)
        return -1;
    const char *q = spec;
    for (;;) {
        long v = 0;
        int digits = 0;
        while (*q >= '0' && *q <= '9' && v <= 1000000) {
            v = v * 10 + (*q++ - '0');
            digits++;
        }
        if (!digits || v > 1000000 || (*q && *q != ',')) {
            if (err)
                snprintf(err, errlen,
                         "kafka consumer: partitions must be \"all\" or a list like \"0,3,5\"");
            return -1;
        }
        c->wanted[c->nwanted++] = (int32_t)v;
        if (!*q)
            return 0;
        q++;
    }
}

static int wanted(const struct cm_kafka_consumer *c, int32_t p)
{
    if (c->nwanted == 0)
        return 1;
    for (size_t i = 0; i < c->nwanted; i++)
        if (c->wanted[i] == p)
            return 1;
    return 0;
}

/* The topic's partition count from the broker, or -1. */
static int partition_count(struct cm_kafka_consumer *c, const char *topic)
{
    rd_kafka_topic_t *kt = rd_kafka_topic_new(c->rk, topic, NULL);
    if (!kt)
        return -1;
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(c->rk, 0, kt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && !md->topics[0].err)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(kt);
    return n;
}

/* Assigns the configured partitions; 0, or -1 to try again on a later
 * poll (metadata not available yet). */
static int static_assign(struct cm_kafka_consumer *c)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t t = 0; c->topics[t]; t++) {
        int n = partition_count(c, c->topics[t]);
        if (n <= 0) {
            cm_log_kv(CM_LOG_WARN, "kafka topic metadata unavailable, assignment retried", "group",
                      c->group, "topic", c->topics[t], (const char *)NULL);
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
        for (int32_t p = 0; p < n; p++)
            if (wanted(c, p))
                rd_kafka_topic_partition_list_add(l, c->topics[t], p);
        for (size_t i = 0; i < c->nwanted; i++)
            if (c->wanted[i] >= n) {
                char pn[16];
                snprintf(pn, sizeof pn, "%" PRId32, c->wanted[i]);
                cm_log_kv(CM_LOG_ERROR, "kafka partition does not exist, not assigned", "group",
                          c->group, "topic", c->topics[t], "partition", pn, (const char *)NULL);
            }
    }
    char n[16];
    snprintf(n, sizeof n, "%d", l->cnt);
    cm_log_kv(CM_LOG_INFO, "kafka partitions assigned", "group", c->group, "partitions", n, "mode",
              "static", (const char *)NULL);
    notify(c, 1, l);
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
    if (!e && c->paused)
        rd_kafka_pause_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        cm_log_kv(CM_LOG_ERROR, "kafka assign failed", "group", c->group, "error",
                  rd_kafka_err2str(e), (const char *)NULL);
        return -1;
    }
    c->static_assigned = 1;
    return 0;
}

static void consumer_free(struct cm_kafka_consumer *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->topics && c->topics[i]; i++)
        free(c->topics[i]);
    free(c->topics);
    free(c->wanted);
    free(c);
}

struct cm_kafka_consumer *cm_kafka_consumer_open(const struct cm_kafka_consumer_config *cfg,
                                                 char *err, size_t errlen)
{
    char buf[512];
    struct cm_kafka_consumer *c = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    const char *reset = cfg && cfg->offset_reset ? cfg->offset_reset : "earliest";

    if (!cfg || !cfg->group_id || !*cfg->group_id) {
        if (err)
            snprintf(err, errlen, "kafka consumer: group_id is required");
        return NULL;
    }
    if (!cfg->topics || !cfg->topics[0]) {
        if (err)
            snprintf(err, errlen, "kafka consumer: at least one topic is required");
        return NULL;
    }
    if (strcmp(reset, "earliest") != 0 && strcmp(reset, "latest") != 0) {
        if (err)
            snprintf(err, errlen, "kafka consumer: offset_reset must be earliest or latest");
        return NULL;
    }
    if (strlen(cfg->group_id) >= sizeof c->group) {
        if (err)
            snprintf(err, errlen, "kafka consumer: group_id too long");
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    if (cfg->partitions && *cfg->partitions) {
        c->static_mode = 1;
        if (parse_partitions(c, cfg->partitions, err, errlen) != 0)
            goto fail;
        size_t nt = 0;
        while (cfg->topics[nt])
            nt++;
        c->topics = calloc(nt + 1, sizeof *c->topics);
        if (!c->topics)
            goto fail;
        for (size_t i = 0; i < nt; i++)
            if (!(c->topics[i] = strdup(cfg->topics[i])))
                goto fail;
    }
    conf = cm_kafka_conf_new_internal(&cfg->kafka, err, errlen);
    if (!conf)
        goto fail;
    /* A departed member keeps its partitions for a whole session; librdkafka's
     * 45 s default would stall a restarted service that long. Callers' props win. */
    const char *props = cfg->kafka.props ? cfg->kafka.props : "";
    if ((!strstr(props, "session.timeout.ms") &&
         cm_kafka_conf_set_internal(conf, "session.timeout.ms", "10000", err, errlen) != 0) ||
        (!strstr(props, "heartbeat.interval.ms") &&
         cm_kafka_conf_set_internal(conf, "heartbeat.interval.ms", "1000", err, errlen) != 0))
        goto fail;
    /* After the caller's props: these carry the at-least-once contract. */
    if (cm_kafka_conf_set_internal(conf, "group.id", cfg->group_id, err, errlen) != 0 ||
        cm_kafka_conf_set_internal(conf, "enable.auto.commit", "false", err, errlen) != 0 ||
        cm_kafka_conf_set_internal(conf, "enable.auto.offset.store", "false", err, errlen) != 0 ||
        cm_kafka_conf_set_internal(conf, "auto.offset.reset", reset, err, errlen) != 0)
        goto fail;
    snprintf(c->group, sizeof c->group, "%s", cfg->group_id);
    c->on_rebalance = cfg->on_rebalance;
    c->rebalance_ctx = cfg->rebalance_ctx;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_opaque(conf, c);
    c->consumed =
        cm_metric_counter("kafka_consumed_total", "Kafka messages consumed per topic.", "topic");
    c->lag = cm_metric_gauge("kafka_consumer_lag",
                             "Messages between the consumer group's position and the "
                             "partition's high watermark.",
                             "topic,partition");
    c->paused_gauge = cm_metric_gauge("kafka_consumer_paused",
                                      "1 while the consumer is paused (back-pressure or fault), "
                                      "else 0.",
                                      NULL);
    cm_gauge_add(c->paused_gauge, 0);

    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, buf, sizeof buf);
    if (!c->rk) {
        if (err)
            snprintf(err, errlen, "kafka consumer: %s", buf);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(c->rk);
    if (c->static_mode)
        return c; /* the first poll assigns */

    int nt = 0;
    while (cfg->topics[nt])
        nt++;
    topics = rd_kafka_topic_partition_list_new(nt);
    for (int i = 0; i < nt; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr) {
        if (err)
            snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(kerr));
        rd_kafka_destroy(c->rk);
        goto fail;
    }
    return c;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    consumer_free(c);
    return NULL;
}

static void apply_pause(struct cm_kafka_consumer *c)
{
    int (*hook)(void) = pause_hook;
    int want = atomic_load(&c->want_paused) != 0 || (hook && hook() == 1);
    if (want == c->paused)
        return;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
        if (want)
            rd_kafka_pause_partitions(c->rk, parts);
        else
            rd_kafka_resume_partitions(c->rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    c->paused = want;
    cm_gauge_add(c->paused_gauge, want ? 1 : -1); /* sums over the process's consumers */
    cm_log_kv(CM_LOG_WARN, want ? "kafka consumption paused" : "kafka consumption resumed", "group",
              c->group, (const char *)NULL);
}

static void refresh_lag(struct cm_kafka_consumer *c)
{
    int64_t now = now_ms();
    if (now - c->lag_refreshed_ms < LAG_REFRESH_MS)
        return;
    c->lag_refreshed_ms = now;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return;
    if (rd_kafka_position(c->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t lo = -1, hi = -1;
            /* Cached from fetch responses, no broker round trip; but a paused
             * consumer fetches nothing, so then ask the broker, or the lag
             * would freeze exactly when it grows. */
            int rc = c->paused ? rd_kafka_query_watermark_offsets(c->rk, tp->topic, tp->partition,
                                                                  &lo, &hi, 200)
                               : rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition,
                                                                &lo, &hi);
            /* Nothing cached for this partition (no fetch answered with
             * its watermarks yet): ask, or a value set while paused would
             * stay on the gauge. */
            if (!c->paused && (rc != 0 || hi < 0))
                rc = rd_kafka_query_watermark_offsets(c->rk, tp->topic, tp->partition, &lo, &hi,
                                                      200);
            if (rc != 0 || hi < 0)
                continue;
            int64_t pos = tp->offset >= 0 ? tp->offset : lo;
            if (pos < 0)
                continue;
            set_lag(c, tp->topic, tp->partition, (double)(hi > pos ? hi - pos : 0));
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

int cm_kafka_msg_header(const struct cm_kafka_msg *m, const char *name, const void **value,
                        size_t *len)
{
    rd_kafka_headers_t *h = NULL;
    const rd_kafka_message_t *rm = m ? m->internal : NULL;
    if (!rm || rd_kafka_message_headers(rm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    const void *v;
    size_t n;
    if (rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    *value = v;
    *len = n;
    return 0;
}

/* Copies a header into a C string (truncated to outlen - 1). */
static void header_str(const struct cm_kafka_msg *m, const char *name, char *out, size_t outlen)
{
    const void *v;
    size_t n;
    out[0] = '\0';
    if (cm_kafka_msg_header(m, name, &v, &n) != 0 || !v)
        return;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static void rewind_to(struct cm_kafka_consumer *c, const rd_kafka_message_t *rm)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(rm->rkt), rm->partition)->offset =
        rm->offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
    if (e) {
        cm_log_kv(CM_LOG_ERROR, "kafka seek failed", "group", c->group, "error",
                  rd_kafka_error_string(e), (const char *)NULL);
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

int cm_kafka_consumer_poll(struct cm_kafka_consumer *c, int timeout_ms, cm_kafka_handler_fn fn,
                           void *ctx)
{
    if (c->static_mode && !c->static_assigned && static_assign(c) != 0)
        return -1;
    apply_pause(c);
    refresh_lag(c);
    rd_kafka_message_t *rm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!rm)
        return 0;
    if (rm->err) {
        int rc = rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? 0 : -1;
        if (rc)
            cm_log_kv(CM_LOG_WARN, "kafka consumer error", "group", c->group, "error",
                      rd_kafka_message_errstr(rm), (const char *)NULL);
        rd_kafka_message_destroy(rm);
        return rc;
    }
    rd_kafka_timestamp_type_t tst;
    struct cm_kafka_msg m = {
        .topic = rd_kafka_topic_name(rm->rkt),
        .partition = rm->partition,
        .offset = rm->offset,
        .key = rm->key,
        .key_len = rm->key_len,
        .value = rm->payload,
        .value_len = rm->len,
        .timestamp_ms = rd_kafka_message_timestamp(rm, &tst),
        .internal = rm,
    };

    /* The message's request/trace ids become this thread's log context
     * for the handler, then the previous context comes back. */
    char prev_rid[65], prev_tid[65], rid[65], tp[128], tid[33] = "";
    snprintf(prev_rid, sizeof prev_rid, "%s", cm_log_request_id());
    snprintf(prev_tid, sizeof prev_tid, "%s", cm_log_trace_id());
    header_str(&m, CM_KAFKA_HEADER_REQUEST_ID, rid, sizeof rid);
    header_str(&m, CM_KAFKA_HEADER_TRACEPARENT, tp, sizeof tp);
    if (cm_kafka_trace_from_parent_internal(tp, strlen(tp), tid, sizeof tid) != 0)
        tid[0] = '\0';
    cm_log_set_context(rid[0] ? rid : NULL, tid[0] ? tid : NULL);

    int rc = fn(ctx, &m);

    cm_log_set_context(prev_rid[0] ? prev_rid : NULL, prev_tid[0] ? prev_tid : NULL);
    if (rc == 0) {
        /* stores offset + 1; no partition list to allocate per message */
        rd_kafka_resp_err_t err = rd_kafka_offset_store(rm->rkt, m.partition, m.offset);
        /* _STATE: the partition was revoked inside the handler; its next
         * owner re-reads the message (at-least-once). */
        if (err && err != RD_KAFKA_RESP_ERR__STATE)
            cm_log_kv(CM_LOG_WARN, "kafka offset store failed", "error", rd_kafka_err2str(err),
                      (const char *)NULL);
        cm_counter_add(c->consumed, 1, m.topic);
        rd_kafka_message_destroy(rm);
        return 1;
    }
    rewind_to(c, rm);
    rd_kafka_message_destroy(rm);
    return -1;
}

int cm_kafka_consumer_commit_offset(struct cm_kafka_consumer *c, const char *topic,
                                    int32_t partition, int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next_offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, l, 0);
    if (!err && l->elems[0].err)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        cm_log_kv(CM_LOG_ERROR, "kafka commit failed", "group", c->group, "topic", topic, "error",
                  rd_kafka_err2str(err), (const char *)NULL);
        return -1;
    }
    return 0;
}

int cm_kafka_consumer_commit(struct cm_kafka_consumer *c, const struct cm_kafka_msg *m)
{
    return cm_kafka_consumer_commit_offset(c, m->topic, m->partition, m->offset + 1);
}

int cm_kafka_consumer_commit_done(struct cm_kafka_consumer *c)
{
    return commit_stored(c);
}

int cm_kafka_consumer_commit_done_async(struct cm_kafka_consumer *c)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 1);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return 0;
    cm_log_kv(CM_LOG_ERROR, "kafka commit failed", "group", c->group, "error",
              rd_kafka_err2str(err), (const char *)NULL);
    return -1;
}

void cm_kafka_consumer_set_paused(struct cm_kafka_consumer *c, int paused)
{
    atomic_store(&c->want_paused, paused ? 1 : 0);
}

int cm_kafka_consumer_paused(const struct cm_kafka_consumer *c)
{
    return atomic_load(&((struct cm_kafka_consumer *)c)->want_paused);
}

int cm_kafka_consumer_close(struct cm_kafka_consumer *c)
{
    if (!c)
        return 0;
    rd_kafka_topic_partition_list_t *parts = NULL;
    /* A static owner "revokes" its own partitions: the hook hands over
     * (flush, snapshot) before the final commit, as on a group revocation. */
    if (c->static_assigned && rd_kafka_assignment(c->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        parts) {
        notify(c, 0, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    int rc = commit_stored(c);
    if (c->paused)
        cm_gauge_add(c->paused_gauge, -1);
    if (c->static_assigned)
        rd_kafka_assign(c->rk, NULL);
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk); /* leaves the group */
    if (err)
        cm_log_kv(CM_LOG_WARN, "kafka consumer close", "group", c->group, "error",
                  rd_kafka_err2str(err), (const char *)NULL);
    rd_kafka_destroy(c->rk);
    consumer_free(c);
    return rc;
}
