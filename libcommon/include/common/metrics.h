#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H
/*
 * Prometheus metrics: a process-wide registry of counter, gauge and
 * histogram families with labels, rendered in the text exposition format
 * (version 0.0.4) for GET /metrics.
 *
 * Registration is idempotent: asking again for the same name, type and
 * label names returns the same family (so modules may register lazily);
 * a clash (same name, other type or labels) returns NULL and logs once.
 * Families live until cm_metrics_reset() (tests) or process exit.
 *
 * Updates are thread-safe and cheap (no allocation after a series' first
 * use). Label values are passed as varargs const char *, exactly as many as
 * the family declares; a series is created on first use. Keep label values
 * bounded (route templates, never raw paths or user ids).
 *
 * Label names must match [a-zA-Z_][a-zA-Z0-9_]* (no "__" prefix, no "le"
 * on histograms), metric names [a-zA-Z_:][a-zA-Z0-9_:]*; at most 8 labels.
 * Label values are escaped on render (\\, \", \n); HELP text escapes
 * backslash and newline. Families render in registration order, series in
 * creation order. An update on a NULL family is a no-op, so a failed
 * registration never crashes the caller.
 */
#include <stddef.h>

#include "common/buf.h"

struct cm_metric;

/* labels: comma-separated label names ("route,method,code"), or NULL/"" for none. */
struct cm_metric *cm_metric_counter(const char *name, const char *help, const char *labels);
struct cm_metric *cm_metric_gauge(const char *name, const char *help, const char *labels);
/* buckets: ascending upper bounds (+Inf implied); NULL uses CM_METRICS_SECONDS_BUCKETS. */
struct cm_metric *cm_metric_histogram(const char *name, const char *help, const char *labels,
                                      const double *buckets, size_t nbuckets);

/* Default latency buckets in seconds: 0.0005 .. 10. */
extern const double CM_METRICS_SECONDS_BUCKETS[];
extern const size_t CM_METRICS_SECONDS_NBUCKETS;

void cm_counter_add(struct cm_metric *m, double v, ...);
void cm_gauge_set(struct cm_metric *m, double v, ...);
void cm_gauge_add(struct cm_metric *m, double v, ...);
void cm_histogram_observe(struct cm_metric *m, double v, ...);
/* Sets a counter mirrored from a monotonic source kept elsewhere (e.g.
 * process_cpu_seconds_total read from /proc on collect). Do not mix with
 * cm_counter_add on the same series. */
void cm_counter_set(struct cm_metric *m, double v, ...);

/* Formats v as the exposition format does (shortest round-trip decimal,
 * "+Inf", "-Inf", "NaN"); snprintf-style return. */
int cm_metrics_format_value(char *dst, size_t n, double v);

/* Reads one series back (tests, fault views): 0 and *out, or -1 if the
 * series does not exist. For histograms it reads the sample count. */
int cm_metric_value(struct cm_metric *m, double *out, ...);

/* Called at the start of every render so modules can refresh gauges that
 * are cheaper to compute on scrape (consumer lag, pool usage). */
typedef void (*cm_metrics_collect_fn)(void *ctx);
void cm_metrics_on_collect(cm_metrics_collect_fn fn, void *ctx);

/* Appends the whole registry in text format; 0 or -1 (buffer cap). */
int cm_metrics_render(struct cm_buf *out);

/* Drops every family and collector. Tests only: not safe while others update. */
void cm_metrics_reset(void);

#endif
