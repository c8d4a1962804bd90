#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/banned.h"

static char service_name[64] = "unknown";
static _Atomic int current_level = CM_LOG_INFO;
static _Atomic int out_fd = 1;

static _Thread_local char ctx_request_id[65];
static _Thread_local char ctx_trace_id[65];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cm_log_init(const char *service, enum cm_log_level level)
{
    snprintf(service_name, sizeof service_name, "%s", service ? service : "unknown");
    atomic_store(&current_level, level);
}

void cm_log_set_level(enum cm_log_level level)
{
    atomic_store(&current_level, level);
}
enum cm_log_level cm_log_get_level(void)
{
    return (enum cm_log_level)atomic_load(&current_level);
}
void cm_log_set_fd(int fd)
{
    atomic_store(&out_fd, fd);
}

const char *cm_log_level_name(enum cm_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "info";
}

int cm_log_parse_level(const char *s, enum cm_log_level *out)
{
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum cm_log_level)i;
            return 0;
        }
    if (strcasecmp(s, "warning") == 0) {
        *out = CM_LOG_WARN;
        return 0;
    }
    return -1;
}

static void copy_ctx(char *dst, size_t n, const char *src)
{
    if (!src) {
        dst[0] = '\0';
        return;
    }
    snprintf(dst, n, "%s", src);
}

void cm_log_set_context(const char *request_id, const char *trace_id)
{
    copy_ctx(ctx_request_id, sizeof ctx_request_id, request_id);
    copy_ctx(ctx_trace_id, sizeof ctx_trace_id, trace_id);
}

const char *cm_log_request_id(void)
{
    return ctx_request_id;
}
const char *cm_log_trace_id(void)
{
    return ctx_trace_id;
}

static void put_field(struct cm_buf *b, const char *k, const char *v)
{
    cm_buf_puts(b, ",\"");
    cm_buf_json_escape(b, k);
    cm_buf_puts(b, "\":\"");
    cm_buf_json_escape(b, v);
    cm_buf_puts(b, "\"");
}

/* Opens a line with the fixed fields; the caller appends extras and emits. */
static void begin(struct cm_buf *b, enum cm_log_level level, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    cm_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\"", when, cm_log_level_name(level));
    put_field(b, "service", service_name);
    put_field(b, "msg", msg ? msg : "");
    if (ctx_request_id[0])
        put_field(b, "request_id", ctx_request_id);
    if (ctx_trace_id[0])
        put_field(b, "trace_id", ctx_trace_id);
}

static void emit(struct cm_buf *b)
{
    if (cm_buf_puts(b, "}\n") == 0) {
        /* One write per line keeps lines whole across threads and processes. */
        ssize_t rc = write(atomic_load(&out_fd), b->data, b->len);
        (void)rc;
    }
    cm_buf_release(b);
}

static int enabled(enum cm_log_level level)
{
    return (int)level >= atomic_load(&current_level);
}

void cm_logf(enum cm_log_level level, const char *fmt, ...)
{
    if (!enabled(level))
        return;
    struct cm_buf msg, line;
    cm_buf_init(&msg, 16384);
    cm_buf_init(&line, 65536);
    va_list ap;
    va_start(ap, fmt);
    cm_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    begin(&line, level, msg.data ? msg.data : "");
    cm_buf_release(&msg);
    emit(&line);
}

void cm_log_kv(enum cm_log_level level, const char *msg, ...)
{
    if (!enabled(level))
        return;
    struct cm_buf line;
    cm_buf_init(&line, 65536);
    begin(&line, level, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (v)
            put_field(&line, k, v);
    }
    va_end(ap);
    emit(&line);
}

void cm_log_json(enum cm_log_level level, const char *msg, const cJSON *fields)
{
    if (!enabled(level))
        return;
    struct cm_buf line;
    cm_buf_init(&line, 65536);
    begin(&line, level, msg);
    for (const cJSON *f = fields ? fields->child : NULL; f; f = f->next) {
        if (!f->string)
            continue;
        char *v = cJSON_PrintUnformatted(f);
        if (!v)
            continue;
        cm_buf_puts(&line, ",\"");
        cm_buf_json_escape(&line, f->string);
        cm_buf_puts(&line, "\":");
        cm_buf_puts(&line, v);
        free(v);
    }
    emit(&line);
}
