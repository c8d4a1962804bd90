#ifndef COMMON_LOG_H
#define COMMON_LOG_H
/*
 * Structured logging: one JSON object per line on stdout, e.g.
 *   {"ts":"2026-11-21T23:59:59.123Z","level":"info","service":"wallet",
 *    "msg":"hold placed","request_id":"...","trace_id":"...","hold_id":"42"}
 *
 * Thread-safe: each line is built privately and written with one write(2).
 * The level can be changed at run time (the /admin/loglevel route does).
 * request_id / trace_id come from a per-thread context that the HTTP server
 * and Kafka consumers set around each unit of work.
 */
#include <cjson/cJSON.h>

enum cm_log_level { CM_LOG_DEBUG = 0, CM_LOG_INFO, CM_LOG_WARN, CM_LOG_ERROR };

/* service is copied. Safe to call again (tests do). */
void cm_log_init(const char *service, enum cm_log_level level);
void cm_log_set_level(enum cm_log_level level);
enum cm_log_level cm_log_get_level(void);
/* "debug"|"info"|"warn"|"error" (case-insensitive) -> 0, else -1. */
int cm_log_parse_level(const char *s, enum cm_log_level *out);
const char *cm_log_level_name(enum cm_log_level level);
/* Redirects output to fd (default 1); tests capture lines through a pipe. */
void cm_log_set_fd(int fd);

/* Per-thread context; strings are copied (truncated at 64 bytes). NULL clears. */
void cm_log_set_context(const char *request_id, const char *trace_id);
const char *cm_log_request_id(void);
const char *cm_log_trace_id(void);

/* msg is printf-formatted. */
void cm_logf(enum cm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Extra string fields as NULL-terminated key, value pairs (NULL values skipped). */
void cm_log_kv(enum cm_log_level level, const char *msg, ...);
/* Extra fields from a JSON object (borrowed; members are copied in). */
void cm_log_json(enum cm_log_level level, const char *msg, const cJSON *fields);

#define cm_debug(...) cm_logf(CM_LOG_DEBUG, __VA_ARGS__)
#define cm_info(...) cm_logf(CM_LOG_INFO, __VA_ARGS__)
#define cm_warn(...) cm_logf(CM_LOG_WARN, __VA_ARGS__)
#define cm_error(...) cm_logf(CM_LOG_ERROR, __VA_ARGS__)

#endif
