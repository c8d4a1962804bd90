#ifndef COMMON_TRACE_H
#define COMMON_TRACE_H
/*
 * Distributed tracing: spans exported as OTLP/HTTP JSON to a collector
 * (Tempo, the OpenTelemetry Collector...) when OTEL_EXPORTER_OTLP_ENDPOINT
 * (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as is) is set; off and free
 * otherwise.
 *
 * The HTTP server records one SERVER span per request (CM_ROUTE_NO_LOG
 * routes excepted: probes and scrapes) whose parent is the caller's
 * traceparent; the HTTP client records one CLIENT span per call that takes
 * its trace context from the thread (a handler's request) and sends its own
 * span id downstream, so the chain gateway -> trading-api -> wallet reads
 * as one trace.
 *
 * Export never blocks a request: cm_trace_record copies the span into a
 * bounded queue (OTEL_BSP_MAX_QUEUE_SIZE, default 2048) and drops it when
 * the queue is full; a background thread posts batches (up to
 * OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default 512) every OTEL_BSP_SCHEDULE_DELAY
 * ms (default 1000) with a timeout (OTEL_EXPORTER_OTLP_TIMEOUT ms, default
 * 2000). A failed batch is dropped and counted, never retried forever:
 * otel_spans_exported_total, otel_spans_dropped_total{reason}.
 * All functions are thread-safe.
 */
#include <stdint.h>

enum cm_span_kind { CM_SPAN_INTERNAL = 1, CM_SPAN_SERVER = 2, CM_SPAN_CLIENT = 3 };

struct cm_span {
    char trace_id[33];  /* 32 lower-hex */
    char span_id[17];   /* 16 lower-hex */
    char parent_id[17]; /* "" for a root span */
    char name[96];      /* "GET /v1/orders/{id}" */
    enum cm_span_kind kind;
    int64_t start_unix_ns;
    int64_t end_unix_ns;
    int http_status; /* 0: not HTTP */
    int error;       /* 1: status ERROR (5xx, transport failure) */
    char method[8];
    char route[96]; /* server: route template; client: upstream name */
};

/* Reads the environment and starts the exporter when an endpoint is set.
 * 0 (also when tracing stays off), -1 on a malformed setting (logged). */
int cm_trace_init(const char *service);
int cm_trace_enabled(void);
void cm_trace_record(const struct cm_span *s);
/* Exports what is queued now; 0 when the queue drained within timeout_ms. */
int cm_trace_flush(int timeout_ms);
/* Flushes (bounded) and stops the exporter; tracing is off afterwards. */
void cm_trace_shutdown(void);

/* The span the current thread works in (a server span while a handler
 * runs): outgoing calls become its children. NULLs clear it. */
void cm_trace_set_current(const char *trace_id, const char *span_id);
const char *cm_trace_current_trace(void);
const char *cm_trace_current_span(void);

void cm_trace_random_hex(char *out, int nbytes); /* 2*nbytes hex + NUL */
int64_t cm_trace_now_unix_ns(void);

#endif
