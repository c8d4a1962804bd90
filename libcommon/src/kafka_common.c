/* Configuration and tracing helpers shared by the Kafka producer and consumer. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka.h"
#include "common/log.h"
#include "kafka_internal.h"
#include "common/banned.h"

#define MAX_PROP 1024

static void trim(char **s, char **end)
{
    while (*s < *end && isspace((unsigned char)**s))
        (*s)++;
    while (*end > *s && isspace((unsigned char)(*end)[-1]))
        (*end)--;
}

int cm_kafka_props_parse(const char *props,
                         int (*fn)(void *ctx, const char *key, const char *value), void *ctx,
                         char *err, size_t errlen)
{
    const char *p = props ? props : "";
    while (*p) {
        size_t n = strcspn(p, ";\n");
        char item[MAX_PROP];
        if (n >= sizeof item) {
            if (err)
                snprintf(err, errlen, "kafka property too long (max %d bytes)", MAX_PROP - 1);
            return -1;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        p += n + (p[n] ? 1 : 0);

        char *s = item, *end = item + n;
        trim(&s, &end);
        if (s == end)
            continue; /* empty entries (";;", trailing ';') are fine */
        *end = '\0';
        char *eq = strchr(s, '=');
        if (!eq) {
            if (err)
                snprintf(err, errlen, "kafka property \"%.64s\" is not key=value", s);
            return -1;
        }
        char *kend = eq, *v = eq + 1, *vend = end;
        trim(&s, &kend);
        trim(&v, &vend);
        if (s == kend) {
            if (err)
                snprintf(err, errlen, "kafka property \"%.64s\" has an empty key", item);
            return -1;
        }
        *kend = '\0';
        *vend = '\0';
        if (fn(ctx, s, v) != 0)
            return -1;
    }
    return 0;
}

struct apply_ctx {
    rd_kafka_conf_t *conf;
    char *err;
    size_t errlen;
};

int cm_kafka_conf_set_internal(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                               size_t errlen)
{
    char buf[512];
    if (rd_kafka_conf_set(conf, key, value, buf, sizeof buf) != RD_KAFKA_CONF_OK) {
        if (err)
            snprintf(err, errlen, "kafka property %s: %s", key, buf);
        return -1;
    }
    return 0;
}

static int apply_prop(void *ctx, const char *key, const char *value)
{
    struct apply_ctx *a = ctx;
    return cm_kafka_conf_set_internal(a->conf, key, value, a->err, a->errlen);
}

rd_kafka_conf_t *cm_kafka_conf_new_internal(const struct cm_kafka_config *cfg, char *err,
                                            size_t errlen)
{
    if (!cfg || !cfg->brokers || !*cfg->brokers) {
        if (err)
            snprintf(err, errlen, "kafka brokers are required");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct apply_ctx a = {conf, err, errlen};
    /* socket.nagle.disable: librdkafka 2.0.2 leaves Nagle on, so a small
     * request written while the previous one is unacknowledged waits for
     * the broker's delayed ACK (tens of ms); callers' props may override. */
    if (cm_kafka_conf_set_internal(conf, "bootstrap.servers", cfg->brokers, err, errlen) != 0 ||
        cm_kafka_conf_set_internal(
            conf, "client.id", cfg->client_id && *cfg->client_id ? cfg->client_id : "exchange-lab",
            err, errlen) != 0 ||
        cm_kafka_conf_set_internal(conf, "socket.nagle.disable", "true", err, errlen) != 0 ||
        cm_kafka_props_parse(cfg->props, apply_prop, &a, err, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int cm_kafka_traceparent_internal(const char *trace_id, char *out, size_t outlen)
{
    if (!trace_id || strlen(trace_id) != 32 || !is_hex(trace_id, 32) || outlen < 56)
        return -1;
    /* A fresh span id per message: the produce is its own span. */
    unsigned long long span = ((unsigned long long)random() << 33) ^
                              ((unsigned long long)random() << 2) ^ (unsigned long long)random();
    if (span == 0)
        span = 1;
    snprintf(out, outlen, "00-%s-%016llx-01", trace_id, span);
    return 0;
}

int cm_kafka_trace_from_parent_internal(const char *tp, size_t len, char *out, size_t outlen)
{
    /* version(2) '-' trace(32) '-' span(16) '-' flags(2) */
    if (!tp || len < 55 || tp[2] != '-' || tp[35] != '-' || !is_hex(tp + 3, 32) || outlen < 33)
        return -1;
    memcpy(out, tp + 3, 32);
    out[32] = '\0';
    return 0;
}
