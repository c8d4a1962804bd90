#ifndef COMMON_BREAKER_H
#define COMMON_BREAKER_H
/*
 * Circuit breaker for one upstream: closed -> open -> half-open -> closed.
 *
 * Closed: every call is allowed; outcomes go into a rolling window of the
 * last `window` calls. The breaker opens when either
 *   - `consecutive_failures` calls in a row failed, or
 *   - the window holds at least `min_calls` outcomes and at least
 *     `failure_rate_pct` percent of them are failures (0 disables this).
 * Open: every call is refused (fail fast) until `open_ms` have passed.
 * Half-open: up to `half_open_probes` calls are let through (cm_breaker_allow
 * reserves a slot); the first success closes the breaker (with a fresh
 * window), any failure reopens it for another `open_ms`. A probe that is
 * never recorded does not wedge the breaker: after `open_ms` in half-open
 * the slots are handed out again.
 *
 * Outcomes recorded while open are ignored (calls admitted before the
 * breaker opened and finishing late). The state is exported as the gauge
 * circuit_breaker_state{upstream} (0 closed, 1 open, 2 half-open).
 *
 * Thread-safe: one mutex per breaker, held for a few instructions.
 */
#include <stdint.h>

enum cm_breaker_state {
    CM_BREAKER_CLOSED = 0,
    CM_BREAKER_OPEN = 1,
    CM_BREAKER_HALF_OPEN = 2,
};

/* Monotonic milliseconds; tests inject a fake clock. */
typedef int64_t (*cm_breaker_clock_fn)(void *ctx);

#define CM_BREAKER_MAX_WINDOW 1024

/* Zero fields take the defaults in brackets. */
struct cm_breaker_config {
    const char *name;          /* upstream label; copied; NULL -> "default" */
    int consecutive_failures;  /* [5] */
    int window;                /* rolling window, calls [20], max CM_BREAKER_MAX_WINDOW */
    int min_calls;             /* outcomes needed before the ratio applies [window] */
    int failure_rate_pct;      /* 1..100 opens on ratio; [0] = ratio rule off */
    int64_t open_ms;           /* [30000] */
    int half_open_probes;      /* [1] */
    cm_breaker_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
    void *clock_ctx;
};

struct cm_breaker;

/* NULL on bad config (negative values, percent over 100, window too big).
 * Caller owns; free with cm_breaker_free after all users are done. */
struct cm_breaker *cm_breaker_new(const struct cm_breaker_config *cfg);
void cm_breaker_free(struct cm_breaker *b);

/* 1 if a call may go ahead (in half-open this reserves a probe slot that
 * the matching cm_breaker_record releases), 0 to fail fast. */
int cm_breaker_allow(struct cm_breaker *b);
/* Reports the outcome of an allowed call: success 1 or 0. */
void cm_breaker_record(struct cm_breaker *b, int success);

/* Current state (moves open -> half-open if open_ms has passed). */
enum cm_breaker_state cm_breaker_get_state(struct cm_breaker *b);
const char *cm_breaker_state_name(enum cm_breaker_state s);
const char *cm_breaker_name(const struct cm_breaker *b);

#endif
