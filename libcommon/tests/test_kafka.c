/* Kafka configuration and validation paths that need no broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/banned.h"

struct kv {
    int n;
    char keys[8][64];
    char values[8][64];
};

static int collect(void *ctx, const char *k, const char *v)
{
    struct kv *kv = ctx;
    snprintf(kv->keys[kv->n], sizeof kv->keys[0], "%s", k);
    snprintf(kv->values[kv->n], sizeof kv->values[0], "%s", v);
    kv->n++;
    return 0;
}

static void props_parse_ok(void **state)
{
    (void)state;
    struct kv kv = {0};
    char err[256];
    assert_int_equal(cm_kafka_props_parse(" linger.ms = 5 ;;\nbootstrap.servers=a:1,b:2;x.y=a=b;",
                                          collect, &kv, err, sizeof err),
                     0);
    assert_int_equal(kv.n, 3);
    assert_string_equal(kv.keys[0], "linger.ms");
    assert_string_equal(kv.values[0], "5");
    assert_string_equal(kv.values[1], "a:1,b:2");
    assert_string_equal(kv.keys[2], "x.y");
    assert_string_equal(kv.values[2], "a=b");
    kv.n = 0;
    assert_int_equal(cm_kafka_props_parse(NULL, collect, &kv, err, sizeof err), 0);
    assert_int_equal(cm_kafka_props_parse("", collect, &kv, err, sizeof err), 0);
    assert_int_equal(kv.n, 0);
}

static void props_parse_errors(void **state)
{
    (void)state;
    static const char *bad[] = {"linger.ms", "a=1;novalue", "=5", " = 5"};
    char err[256], big[2000];
    struct kv kv = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kv.n = 0;
        err[0] = '\0';
        assert_int_equal(cm_kafka_props_parse(bad[i], collect, &kv, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[10] = '=';
    assert_int_equal(cm_kafka_props_parse(big, collect, &kv, err, sizeof err), -1);
    assert_non_null(strstr(err, "too long"));
}

static void producer_config_errors(void **state)
{
    (void)state;
    char err[512];
    struct cm_kafka_config none = {0};
    assert_null(cm_kafka_producer_open(&none, err, sizeof err));
    assert_non_null(strstr(err, "brokers"));
    assert_null(cm_kafka_producer_open(NULL, err, sizeof err));
    struct cm_kafka_config badprop = {.brokers = "127.0.0.1:1", .props = "no.such.property=1"};
    assert_null(cm_kafka_producer_open(&badprop, err, sizeof err));
    assert_non_null(strstr(err, "no.such.property"));
    struct cm_kafka_config badval = {.brokers = "127.0.0.1:1", .props = "linger.ms=abc"};
    assert_null(cm_kafka_producer_open(&badval, err, sizeof err));
    assert_non_null(strstr(err, "linger.ms"));
    /* prepare: no broker, no metadata -> -1 within its timeout */
    struct cm_kafka_config nobroker = {.brokers = "127.0.0.1:1"};
    struct cm_kafka_producer *p = cm_kafka_producer_open(&nobroker, err, sizeof err);
    assert_non_null(p);
    const char *const topics[] = {"t1", NULL};
    assert_int_equal(cm_kafka_producer_prepare(p, topics, 100), -1);
    assert_int_equal(cm_kafka_producer_close(p, 100), 0);
}

static void consumer_config_errors(void **state)
{
    (void)state;
    char err[512];
    const char *topics[] = {"t", NULL};
    const char *no_topics[] = {NULL};
    struct cm_kafka_consumer_config c = {.kafka = {.brokers = "127.0.0.1:1"}, .topics = topics};
    assert_null(cm_kafka_consumer_open(&c, err, sizeof err));
    assert_non_null(strstr(err, "group_id"));
    c.group_id = "g";
    c.topics = no_topics;
    assert_null(cm_kafka_consumer_open(&c, err, sizeof err));
    assert_non_null(strstr(err, "topic"));
    c.topics = topics;
    c.offset_reset = "middle";
    assert_null(cm_kafka_consumer_open(&c, err, sizeof err));
    assert_non_null(strstr(err, "offset_reset"));
    c.offset_reset = NULL;
    c.kafka.brokers = "";
    assert_null(cm_kafka_consumer_open(&c, err, sizeof err));
    c.kafka.brokers = "127.0.0.1:1";
    c.kafka.props = "bogus";
    assert_null(cm_kafka_consumer_open(&c, err, sizeof err));
    /* A valid config opens without a broker (the join happens in poll). */
    c.kafka.props = NULL;
    struct cm_kafka_consumer *k = cm_kafka_consumer_open(&c, err, sizeof err);
    assert_non_null(k);
    cm_kafka_consumer_set_paused(k, 1);
    assert_int_equal(cm_kafka_consumer_paused(k), 1);
    assert_int_equal(cm_kafka_consumer_close(k), 0);
    /* Static assignment: "all" or a list of partition numbers. */
    static const char *const bad[] = {"x", "1,", ",1", "1,,2", "-1", "1 2", "99999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c.partitions = bad[i];
        err[0] = '\0';
        assert_null(cm_kafka_consumer_open(&c, err, sizeof err));
        assert_non_null(strstr(err, "partitions"));
    }
    static const char *const good[] = {"all", "0", "0,3,5"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        c.partitions = good[i];
        k = cm_kafka_consumer_open(&c, err, sizeof err);
        assert_non_null(k);
        assert_int_equal(cm_kafka_consumer_close(k), 0); /* never assigned: nothing to commit */
    }
}

/* A message that cannot reach a broker fails its delivery report after
 * message.timeout.ms, and the error metric counts it. */
static void delivery_failure_is_reported(void **state)
{
    (void)state;
    char err[512];
    struct cm_kafka_config cfg = {.brokers = "127.0.0.1:1",
                                  .props = "message.timeout.ms=300;log_level=0"};
    struct cm_kafka_producer *p = cm_kafka_producer_open(&cfg, err, sizeof err);
    assert_non_null(p);
    struct cm_kafka_out m = {.topic = "unit.nowhere", .value = "x", .value_len = 1};
    assert_int_equal(cm_kafka_produce_wait(p, &m, 1, 5000), 0);
    assert_int_equal(m.err, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    struct cm_metric *errors = cm_metric_counter("kafka_produce_errors_total", "x", "topic");
    double v = 0;
    assert_int_equal(cm_metric_value(errors, &v, "unit.nowhere"), 0);
    assert_true(v >= 1);
    struct cm_kafka_out nameless = {.topic = NULL};
    assert_int_equal(cm_kafka_produce(p, &nameless, NULL, NULL), -1);
    assert_int_equal(cm_kafka_producer_close(p, 1000), 0);
}

int main(void)
{
    cm_log_init("test_kafka", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(props_parse_ok),
        cmocka_unit_test(props_parse_errors),
        cmocka_unit_test(producer_config_errors),
        cmocka_unit_test(consumer_config_errors),
        cmocka_unit_test(delivery_failure_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
