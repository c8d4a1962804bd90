/*
 * Kafka producer and consumer against devkafka (TEST_KAFKA_BROKERS): a
 * real Kafka-protocol broker in another process. Group joins on the mock
 * broker take about 3 s each, so the whole story (delivery, headers,
 * commits surviving a restart, redelivery, pause, lag) runs in one test
 * with two joins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <fcntl.h>
#include <librdkafka/rdkafka.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/banned.h"

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run through tests/run.sh (the integration fixture)", name);
    return v;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct seen {
    int n;
    int64_t offsets[64];
    char values[64][16];
    char request_id[65];
    char header_h1[32];
    char traceparent[128];
    char ctx_request_id[65];
    int fail_next; /* handler returns -1 once */
    int assigned, revoked;
    int64_t start_at;
};

static void copy_header(const struct cm_kafka_msg *m, const char *name, char *out, size_t n)
{
    const void *v;
    size_t len;
    out[0] = '\0';
    if (cm_kafka_msg_header(m, name, &v, &len) == 0 && len < n) {
        memcpy(out, v, len);
        out[len] = '\0';
    }
}

static int handler(void *ctx, const struct cm_kafka_msg *m)
{
    struct seen *s = ctx;
    if (s->fail_next) {
        s->fail_next = 0;
        return -1;
    }
    if (s->n >= 64)
        return -1;
    s->offsets[s->n] = m->offset;
    snprintf(s->values[s->n], sizeof s->values[0], "%.*s", (int)m->value_len,
             (const char *)m->value);
    if (s->n == 0) {
        copy_header(m, CM_KAFKA_HEADER_REQUEST_ID, s->request_id, sizeof s->request_id);
        copy_header(m, CM_KAFKA_HEADER_TRACEPARENT, s->traceparent, sizeof s->traceparent);
        copy_header(m, "h1", s->header_h1, sizeof s->header_h1);
        snprintf(s->ctx_request_id, sizeof s->ctx_request_id, "%s", cm_log_request_id());
    }
    s->n++;
    return 0;
}

static void on_rebalance(void *ctx, int assigned, struct cm_kafka_partition *p, size_t n)
{
    struct seen *s = ctx;
    /* start_at > 0: resume partition 0 there, as a snapshot would. */
    for (size_t i = 0; assigned && s->start_at > 0 && i < n; i++)
        if (p[i].partition == 0) {
            assert_int_equal(p[i].offset, CM_KAFKA_OFFSET_COMMITTED);
            p[i].offset = s->start_at;
        }
    if (assigned)
        s->assigned += (int)n;
    else
        s->revoked += (int)n;
}

/* Polls until the handler has seen `want` messages or the deadline passes. */
static void poll_until(struct cm_kafka_consumer *c, struct seen *s, int want, int deadline_ms)
{
    int64_t end = now_ms() + deadline_ms;
    while (s->n < want && now_ms() < end)
        cm_kafka_consumer_poll(c, 100, handler, s);
}

static void round_trip_commit_restart(void **state)
{
    (void)state;
    const char *brokers = need_env("TEST_KAFKA_BROKERS");
    char topic[128], group[128], err[512];
    snprintf(topic, sizeof topic, "itest.kafka.%ld.%ld", (long)getpid(), (long)time(NULL));
    snprintf(group, sizeof group, "itest-group-%ld", (long)getpid());
    /* The mock broker keeps a closed member until its session times out
     * (docs/kafka.md), so the restarted consumer's join waits that long. */
    const char *props = getenv("ITEST_KAFKA_PROPS");
    struct cm_kafka_config kc = {
        .brokers = brokers,
        .client_id = "itest-kafka",
        .props = props ? props : "session.timeout.ms=6000;heartbeat.interval.ms=500",
    };

    /* Produce 10 to partition 0 with a request id in the log context. */
    struct cm_kafka_producer *p = cm_kafka_producer_open(&kc, err, sizeof err);
    assert_non_null(p);
    cm_log_set_context("req-itest-1", "0af7651916cd43dd8448eb211c80319c");
    struct cm_kafka_header h = {"h1", "v1", 2};
    struct cm_kafka_out out[10];
    char vals[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(vals[i], sizeof vals[i], "m%d", i + 1);
        out[i] = (struct cm_kafka_out){.topic = topic,
                                       .partition = 0,
                                       .partition_set = 1,
                                       .key = "k",
                                       .key_len = 1,
                                       .value = vals[i],
                                       .value_len = strlen(vals[i]),
                                       .headers = &h,
                                       .nheaders = 1};
    }
    assert_int_equal(cm_kafka_produce_wait(p, out, 10, 10000), 10);
    cm_log_set_context(NULL, NULL);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(out[i].err, 0);
        assert_int_equal(out[i].out_partition, 0);
        assert_int_equal(out[i].out_offset, i);
    }
    struct cm_metric *produced =
        cm_metric_counter("kafka_produced_total", "Messages delivered to Kafka.", "topic");
    double v = 0;
    assert_int_equal(cm_metric_value(produced, &v, topic), 0);
    assert_true(v >= 10);

    /* Consumer 1: handle 5, commit the 5th, close. */
    const char *topics[] = {topic, NULL};
    struct seen s1 = {0};
    struct cm_kafka_consumer_config cc = {.kafka = kc,
                                          .group_id = group,
                                          .topics = topics,
                                          .on_rebalance = on_rebalance,
                                          .rebalance_ctx = &s1};
    struct cm_kafka_consumer *c = cm_kafka_consumer_open(&cc, err, sizeof err);
    assert_non_null(c);
    /* Meanwhile (the joins overlap) another group whose rebalance hook
     * starts partition 0 at offset 8, as after loading a snapshot. */
    char group_b[160];
    snprintf(group_b, sizeof group_b, "%s-snap", group);
    struct seen s3 = {.start_at = 8};
    struct cm_kafka_consumer_config cc3 = cc;
    cc3.group_id = group_b;
    cc3.rebalance_ctx = &s3;
    struct cm_kafka_consumer *c3 = cm_kafka_consumer_open(&cc3, err, sizeof err);
    assert_non_null(c3);
    int64_t end = now_ms() + 20000;
    while ((s1.n < 5 || s3.n < 2) && now_ms() < end) {
        if (s1.n < 5)
            cm_kafka_consumer_poll(c, 50, handler, &s1);
        cm_kafka_consumer_poll(c3, 50, handler, &s3);
    }
    assert_int_equal(s1.n, 5);
    assert_int_equal(s3.n, 2);
    assert_string_equal(s3.values[0], "m9");
    assert_int_equal(s3.offsets[1], 9);
    assert_int_equal(cm_kafka_consumer_close(c3), 0);
    assert_true(s1.assigned >= 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(s1.offsets[i], i);
    assert_string_equal(s1.values[0], "m1");
    assert_string_equal(s1.request_id, "req-itest-1");
    assert_string_equal(s1.ctx_request_id, "req-itest-1");
    assert_string_equal(s1.header_h1, "v1");
    assert_true(strncmp(s1.traceparent, "00-0af7651916cd43dd8448eb211c80319c-", 36) == 0);
    assert_string_equal(cm_log_request_id(), ""); /* context restored after the handler */
    assert_int_equal(cm_kafka_consumer_commit_offset(c, topic, 0, s1.offsets[4] + 1), 0);
    assert_int_equal(cm_kafka_consumer_close(c), 0);
    assert_true(s1.revoked >= 1);

    /* Consumer 2, same group: starts at m6; a failed handler gets it again. */
    struct seen s2 = {.fail_next = 1};
    cc.rebalance_ctx = &s2;
    c = cm_kafka_consumer_open(&cc, err, sizeof err);
    assert_non_null(c);
    end = now_ms() + 20000;
    int rc = 0;
    while (rc != -1 && now_ms() < end)
        rc = cm_kafka_consumer_poll(c, 100, handler, &s2);
    assert_int_equal(rc, -1);
    poll_until(c, &s2, 5, 10000);
    assert_int_equal(s2.n, 5);
    assert_string_equal(s2.values[0], "m6");
    assert_int_equal(s2.offsets[0], 5);
    assert_string_equal(s2.values[4], "m10");

    /* Paused: a new message stays unread until resumed. */
    cm_kafka_consumer_set_paused(c, 1);
    cm_kafka_consumer_poll(c, 100, handler, &s2);
    struct cm_metric *paused = cm_metric_gauge("kafka_consumer_paused", "x", NULL);
    assert_int_equal(cm_metric_value(paused, &v), 0);
    assert_true(v == 1);
    struct cm_kafka_out extra = {
        .topic = topic, .partition_set = 1, .value = "m11", .value_len = 3};
    assert_int_equal(cm_kafka_produce_wait(p, &extra, 1, 10000), 1);
    poll_until(c, &s2, 6, 1500);
    assert_int_equal(s2.n, 5);
    /* ...and the lag shows it while paused (no fetches refresh watermarks). */
    struct cm_metric *paused_lag = cm_metric_gauge(
        "kafka_consumer_lag", "Messages between the partition's high watermark and our position.",
        "topic,partition");
    int64_t lag_end = now_ms() + 5000;
    double lv = 0;
    while (now_ms() < lag_end && !(cm_metric_value(paused_lag, &lv, topic, "0") == 0 && lv >= 1))
        cm_kafka_consumer_poll(c, 100, handler, &s2);
    assert_true(lv >= 1);
    assert_int_equal(s2.n, 5);
    cm_kafka_consumer_set_paused(c, 0);
    poll_until(c, &s2, 6, 10000);
    assert_int_equal(s2.n, 6);
    assert_string_equal(s2.values[5], "m11");
    assert_int_equal(cm_metric_value(paused, &v), 0);
    assert_true(v == 0);

    /* Lag is exported per partition and reaches 0 once caught up. */
    struct cm_metric *lag = cm_metric_gauge(
        "kafka_consumer_lag", "Messages between the partition's high watermark and our position.",
        "topic,partition");
    end = now_ms() + 5000;
    int lag_ok = 0;
    while (!lag_ok && now_ms() < end) {
        cm_kafka_consumer_poll(c, 100, handler, &s2);
        lag_ok = cm_metric_value(lag, &v, topic, "0") == 0 && v == 0;
    }
    assert_true(lag_ok);

    assert_int_equal(cm_kafka_consumer_close(c), 0);
    assert_int_equal(cm_kafka_producer_close(p, 5000), 0);
}

/* Reads a whole small file into buf (NUL-terminated); 0 when non-empty. */
static int read_small(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return got > 0 ? 0 : -1;
}

/* Sends one control command to devkafka; the reply goes to out. */
static void control(int port, const char *cmd, char *out, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_true(write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd));
    size_t len = 0;
    ssize_t r;
    while (len < n - 1 && (r = read(fd, out + len, n - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
}

/* A private devkafka (TEST_BIN_DIR) with its fault controls: injected
 * produce errors are retried without duplicates, a broker outage delays
 * delivery until it is back, and SIGTERM ends it cleanly. */
static void devkafka_fault_controls(void **state)
{
    (void)state;
    const char *bin_dir = need_env("TEST_BIN_DIR"), *tmp = need_env("TEST_TMPDIR");
    char bin[1024], boot[1024], ctl[1024], brokers[256], port_s[16], reply[256], err[512];
    snprintf(bin, sizeof bin, "%s/devkafka", bin_dir);
    snprintf(boot, sizeof boot, "%s/faults.bootstrap", tmp);
    snprintf(ctl, sizeof ctl, "%s/faults.control", tmp);
    unlink(boot);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(bin, "devkafka", "--no-default-topics", "--topic", "faults.t:1", "--bootstrap-file",
              boot, "--control-file", ctl, (char *)NULL);
        _exit(127);
    }
    int64_t end = now_ms() + 10000;
    while (read_small(boot, brokers, sizeof brokers) != 0 && now_ms() < end)
        usleep(20000); /* polling a file with a deadline */
    assert_int_equal(read_small(boot, brokers, sizeof brokers), 0);
    assert_int_equal(read_small(ctl, port_s, sizeof port_s), 0);
    int port = (int)strtol(port_s, NULL, 10);

    struct cm_kafka_config kc = {.brokers = brokers, .props = "retry.backoff.ms=20"};
    struct cm_kafka_producer *p = cm_kafka_producer_open(&kc, err, sizeof err);
    assert_non_null(p);
    struct cm_kafka_out m[5];
    for (int i = 0; i < 5; i++)
        m[i] = (struct cm_kafka_out){
            .topic = "faults.t", .partition_set = 1, .value = "x", .value_len = 1};
    assert_int_equal(cm_kafka_produce_wait(p, m, 5, 10000), 5);

    control(port, "error-push Produce 3 NOT_LEADER_FOR_PARTITION\n", reply, sizeof reply);
    assert_string_equal(reply, "ok\n");
    assert_int_equal(cm_kafka_produce_wait(p, m, 5, 10000), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(m[i].out_offset, 5 + i); /* retried, not duplicated */

    control(port, "GET /broker-down/1 HTTP/1.0\r\n\r\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "200 OK"));
    assert_int_equal(cm_kafka_produce_wait(p, m, 1, 500), 0);
    assert_int_equal(m[0].err, RD_KAFKA_RESP_ERR__TIMED_OUT);
    control(port, "broker-up 1\n", reply, sizeof reply);
    assert_string_equal(reply, "ok\n");
    assert_int_equal(cm_kafka_producer_flush(p, 10000), 0); /* the waiting one got through */
    assert_int_equal(cm_kafka_produce_wait(p, m, 1, 10000), 1);
    assert_int_equal(m[0].out_offset, 11);

    /* Zero-initialised messages are partitioned by key: a key always
     * lands on the same partition, and distinct keys spread out. */
    control(port, "topic-create faults.k 4\n", reply, sizeof reply);
    assert_string_equal(reply, "ok\n");
    static const char *keys[] = {"BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT",
                                 "ADA-USDT", "DOT-USDT", "BTC-USDT", "ETH-USDT"};
    struct cm_kafka_out k[8];
    for (int i = 0; i < 8; i++)
        k[i] = (struct cm_kafka_out){.topic = "faults.k",
                                     .key = keys[i],
                                     .key_len = strlen(keys[i]),
                                     .value = "v",
                                     .value_len = 1};
    assert_int_equal(cm_kafka_produce_wait(p, k, 8, 10000), 8);
    assert_int_equal(k[6].out_partition, k[0].out_partition);
    assert_int_equal(k[7].out_partition, k[1].out_partition);
    int spread = 0;
    for (int i = 1; i < 6; i++)
        spread |= k[i].out_partition != k[0].out_partition;
    assert_true(spread);

    control(port, "broker-down 7\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "error"));
    control(port, "bogus\n", reply, sizeof reply);
    assert_non_null(strstr(reply, "unknown command"));
    assert_int_equal(cm_kafka_producer_close(p, 5000), 0);

    kill(pid, SIGTERM);
    int status = -1;
    end = now_ms() + 10000;
    while (waitpid(pid, &status, WNOHANG) == 0 && now_ms() < end)
        usleep(20000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(access(boot, F_OK), -1); /* removed on a clean exit */
}

/* A statically assigned consumer (no group join): every partition or a
 * chosen few, the hook's start offsets honoured, done offsets committed
 * under the group id (sync on close, async on demand), the hook called on
 * close, and a bad partition list refused. */
static int nparts; /* of the static test's topic */

struct part_seen {
    int n;
    int32_t parts[64];
    int64_t offsets[64];
    int assigned, revoked;
};

static int part_handler(void *ctx, const struct cm_kafka_msg *m)
{
    struct part_seen *s = ctx;
    if (s->n >= 64)
        return -1;
    s->parts[s->n] = m->partition;
    s->offsets[s->n] = m->offset;
    s->n++;
    return 0;
}

static void part_rebalance(void *ctx, int assigned, struct cm_kafka_partition *p, size_t n)
{
    struct part_seen *s = ctx;
    for (size_t i = 0; i < n; i++) {
        assert_true(p[i].partition >= 0 && p[i].partition < nparts);
        if (assigned && p[i].partition == 1)
            p[i].offset = 2; /* as a snapshot would: skip the first two */
    }
    if (assigned)
        s->assigned += (int)n;
    else
        s->revoked += (int)n;
}

static void part_poll_until(struct cm_kafka_consumer *c, struct part_seen *s, int want,
                            int deadline_ms)
{
    int64_t end = now_ms() + deadline_ms;
    while (s->n < want && now_ms() < end)
        cm_kafka_consumer_poll(c, 50, part_handler, s);
}

static void static_assignment(void **state)
{
    (void)state;
    const char *brokers = need_env("TEST_KAFKA_BROKERS");
    char topic[128], group[128], err[512];
    snprintf(topic, sizeof topic, "itest.static.%ld.%ld", (long)getpid(), (long)time(NULL));
    snprintf(group, sizeof group, "itest-static-%ld", (long)getpid());
    struct cm_kafka_config kc = {.brokers = brokers, .client_id = "itest-static"};

    /* The topic: auto-created by a first produce (the mock's default
     * partition count), then 3 messages in each partition. */
    struct cm_kafka_producer *p = cm_kafka_producer_open(&kc, err, sizeof err);
    assert_non_null(p);
    struct cm_kafka_out first = {
        .topic = topic, .partition = 0, .partition_set = 1, .value = "v", .value_len = 1};
    assert_int_equal(cm_kafka_produce_wait(p, &first, 1, 10000), 1);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_t *kt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 0, kt, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
    nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(kt);
    rd_kafka_destroy(rk);
    assert_true(nparts >= 2 && nparts <= 8);
    const char *const known[] = {topic, NULL};
    assert_int_equal(cm_kafka_producer_prepare(p, known, 5000), 0);
    struct cm_kafka_out out[24];
    int nout = 3 * nparts - 1; /* partition 0 has its first already */
    for (int i = 0; i < nout; i++)
        out[i] = (struct cm_kafka_out){.topic = topic,
                                       .partition = (i + 1) % nparts,
                                       .partition_set = 1,
                                       .value = "v",
                                       .value_len = 1};
    assert_int_equal(cm_kafka_produce_wait(p, out, (size_t)nout, 10000), (size_t)nout);

    /* Every partition; partition 1 starts at offset 2 (the hook). */
    const char *topics[] = {topic, NULL};
    struct part_seen a = {0};
    struct cm_kafka_consumer_config cc = {.kafka = kc,
                                          .group_id = group,
                                          .topics = topics,
                                          .on_rebalance = part_rebalance,
                                          .rebalance_ctx = &a,
                                          .partitions = "all"};
    struct cm_kafka_consumer *c = cm_kafka_consumer_open(&cc, err, sizeof err);
    assert_non_null(c);
    part_poll_until(c, &a, 3 * nparts - 2, 10000);
    assert_int_equal(a.n, 3 * nparts - 2);
    assert_int_equal(a.assigned, nparts);
    int per[8] = {0};
    for (int i = 0; i < a.n; i++) {
        per[a.parts[i]]++;
        if (a.parts[i] == 1)
            assert_int_equal(a.offsets[i], 2);
    }
    for (int i = 0; i < nparts; i++)
        assert_int_equal(per[i], i == 1 ? 1 : 3);
    assert_int_equal(cm_kafka_consumer_commit_done_async(c), 0);
    assert_int_equal(cm_kafka_consumer_close(c), 0); /* hook, then a sync commit */
    assert_int_equal(a.revoked, nparts);

    /* Only partition 2, same group: resumes after the committed offset, so
     * only what arrives now is read; partition 0's new message is not ours. */
    struct part_seen b = {0};
    cc.rebalance_ctx = &b;
    cc.partitions = "2";
    c = cm_kafka_consumer_open(&cc, err, sizeof err);
    assert_non_null(c);
    struct cm_kafka_out more[2] = {
        {.topic = topic, .partition = 0, .partition_set = 1, .value = "x", .value_len = 1},
        {.topic = topic, .partition = 2, .partition_set = 1, .value = "y", .value_len = 1},
    };
    assert_int_equal(cm_kafka_produce_wait(p, more, 2, 10000), 2);
    part_poll_until(c, &b, 1, 10000);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.assigned, 1);
    assert_int_equal(b.parts[0], 2);
    assert_int_equal(b.offsets[0], 3);
    part_poll_until(c, &b, 2, 500); /* nothing else comes */
    assert_int_equal(b.n, 1);
    assert_int_equal(cm_kafka_consumer_close(c), 0);
    assert_int_equal(b.revoked, 1);

    /* A malformed list is a configuration error. */
    cc.partitions = "1,x";
    assert_null(cm_kafka_consumer_open(&cc, err, sizeof err));
    assert_non_null(strstr(err, "partitions"));
    cm_kafka_producer_close(p, 5000);
}

int main(void)
{
    cm_log_init("itest_kafka", getenv("ITEST_DEBUG") ? CM_LOG_DEBUG : CM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(static_assignment),
        cmocka_unit_test(round_trip_commit_restart),
        cmocka_unit_test(devkafka_fault_controls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
