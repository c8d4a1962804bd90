#include "common/breaker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"

#include "common/banned.h"

struct cm_breaker {
    pthread_mutex_t lock;
    char *name;
    /* config */
    int consecutive_max;
    int window;
    int min_calls;
    int rate_pct;
    int64_t open_ms;
    int probes_max;
    cm_breaker_clock_fn clock;
    void *clock_ctx;
    /* state, under lock */
    enum cm_breaker_state state;
    int64_t since_ms; /* when the current state began */
    int consecutive;
    int probes_in_flight;
    unsigned char *ring; /* 1 = failure */
    int ring_pos;
    int ring_count;
    int ring_failures;
};

static int64_t mono_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *cm_breaker_state_name(enum cm_breaker_state s)
{
    switch (s) {
    case CM_BREAKER_CLOSED: return "closed";
    case CM_BREAKER_OPEN: return "open";
    case CM_BREAKER_HALF_OPEN: return "half_open";
    }
    return "?";
}

const char *cm_breaker_name(const struct cm_breaker *b)
{
    return b->name;
}

/* Looked up on every transition (rare) rather than cached, so a
 * cm_metrics_reset() in tests never leaves a dangling family. */
static void export_state(const struct cm_breaker *b)
{
    struct cm_metric *m = cm_metric_gauge(
        "circuit_breaker_state",
        "Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.", "upstream");
    if (m)
        cm_gauge_set(m, (double)b->state, b->name);
}

static void clear_window(struct cm_breaker *b)
{
    memset(b->ring, 0, (size_t)b->window);
    b->ring_pos = b->ring_count = b->ring_failures = 0;
    b->consecutive = 0;
}

static void set_state(struct cm_breaker *b, enum cm_breaker_state s, int64_t now)
{
    enum cm_breaker_state old = b->state;
    b->state = s;
    b->since_ms = now;
    b->probes_in_flight = 0;
    if (s == CM_BREAKER_CLOSED)
        clear_window(b);
    export_state(b);
    if (old != s)
        cm_log_kv(s == CM_BREAKER_OPEN ? CM_LOG_WARN : CM_LOG_INFO, "circuit breaker state change",
                  "upstream", b->name, "from", cm_breaker_state_name(old), "to",
                  cm_breaker_state_name(s), (const char *)NULL);
}

static int def(int v, int d)
{
    return v ? v : d;
}

struct cm_breaker *cm_breaker_new(const struct cm_breaker_config *cfg)
{
    struct cm_breaker_config c;
    if (cfg)
        c = *cfg;
    else
        memset(&c, 0, sizeof c);
    if (c.consecutive_failures < 0 || c.window < 0 || c.window > CM_BREAKER_MAX_WINDOW ||
        c.min_calls < 0 || c.failure_rate_pct < 0 || c.failure_rate_pct > 100 || c.open_ms < 0 ||
        c.half_open_probes < 0)
        return NULL;
    struct cm_breaker *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->consecutive_max = def(c.consecutive_failures, 5);
    b->window = def(c.window, 20);
    b->min_calls = def(c.min_calls, b->window);
    if (b->min_calls > b->window)
        b->min_calls = b->window;
    b->rate_pct = c.failure_rate_pct;
    b->open_ms = c.open_ms ? c.open_ms : 30000;
    b->probes_max = def(c.half_open_probes, 1);
    b->clock = c.clock ? c.clock : mono_ms;
    b->clock_ctx = c.clock_ctx;
    b->name = strdup(c.name ? c.name : "default");
    b->ring = calloc(1, (size_t)b->window);
    if (!b->name || !b->ring || pthread_mutex_init(&b->lock, NULL) != 0) {
        free(b->ring);
        free(b->name);
        free(b);
        return NULL;
    }
    b->state = CM_BREAKER_CLOSED;
    b->since_ms = b->clock(b->clock_ctx);
    export_state(b);
    return b;
}

void cm_breaker_free(struct cm_breaker *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->ring);
    free(b->name);
    free(b);
}

/* Time-driven transitions; called with the lock held. */
static void tick(struct cm_breaker *b, int64_t now)
{
    if (b->state == CM_BREAKER_OPEN && now - b->since_ms >= b->open_ms)
        set_state(b, CM_BREAKER_HALF_OPEN, now);
    else if (b->state == CM_BREAKER_HALF_OPEN && now - b->since_ms >= b->open_ms) {
        /* Probes that never reported back: hand their slots out again. */
        b->since_ms = now;
        b->probes_in_flight = 0;
    }
}

int cm_breaker_allow(struct cm_breaker *b)
{
    int ok = 0;
    int64_t now = b->clock(b->clock_ctx);
    pthread_mutex_lock(&b->lock);
    tick(b, now);
    switch (b->state) {
    case CM_BREAKER_CLOSED: ok = 1; break;
    case CM_BREAKER_OPEN: ok = 0; break;
    case CM_BREAKER_HALF_OPEN:
        if (b->probes_in_flight < b->probes_max) {
            b->probes_in_flight++;
            ok = 1;
        }
        break;
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

static int should_open(const struct cm_breaker *b)
{
    if (b->consecutive >= b->consecutive_max)
        return 1;
    if (b->rate_pct > 0 && b->ring_count >= b->min_calls &&
        (int64_t)b->ring_failures * 100 >= (int64_t)b->rate_pct * b->ring_count)
        return 1;
    return 0;
}

void cm_breaker_record(struct cm_breaker *b, int success)
{
    int64_t now = b->clock(b->clock_ctx);
    unsigned char failed = success ? 0 : 1;
    pthread_mutex_lock(&b->lock);
    tick(b, now);
    switch (b->state) {
    case CM_BREAKER_CLOSED:
        if (b->ring_count == b->window)
            b->ring_failures -= b->ring[b->ring_pos];
        else
            b->ring_count++;
        b->ring[b->ring_pos] = failed;
        b->ring_failures += failed;
        b->ring_pos = (b->ring_pos + 1) % b->window;
        b->consecutive = failed ? b->consecutive + 1 : 0;
        if (should_open(b))
            set_state(b, CM_BREAKER_OPEN, now);
        break;
    case CM_BREAKER_OPEN: break; /* a late result from before the breaker opened */
    case CM_BREAKER_HALF_OPEN:
        if (success)
            set_state(b, CM_BREAKER_CLOSED, now);
        else
            set_state(b, CM_BREAKER_OPEN, now);
        break;
    }
    pthread_mutex_unlock(&b->lock);
}

enum cm_breaker_state cm_breaker_get_state(struct cm_breaker *b)
{
    int64_t now = b->clock(b->clock_ctx);
    pthread_mutex_lock(&b->lock);
    tick(b, now);
    enum cm_breaker_state s = b->state;
    pthread_mutex_unlock(&b->lock);
    return s;
}
