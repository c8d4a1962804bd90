#ifndef COMMON_KAFKA_INTERNAL_H
#define COMMON_KAFKA_INTERNAL_H
/* Shared by kafka_producer.c and kafka_consumer.c; not a public API. */
#include <librdkafka/rdkafka.h>

#include "common/kafka.h"

/* A conf with brokers, client.id and the caller's props applied, or NULL
 * with err. Caller owns the conf. */
rd_kafka_conf_t *cm_kafka_conf_new_internal(const struct cm_kafka_config *cfg, char *err,
                                            size_t errlen);
/* Sets one property; 0 or -1 with err. */
int cm_kafka_conf_set_internal(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                               size_t errlen);
/* Writes "00-<trace>-<span>-01" for a 32-hex trace id; 0, or -1 if the id
 * is not usable. */
int cm_kafka_traceparent_internal(const char *trace_id, char *out, size_t outlen);
/* Extracts the trace id from a traceparent value; 0 or -1. */
int cm_kafka_trace_from_parent_internal(const char *tp, size_t len, char *out, size_t outlen);

#endif
