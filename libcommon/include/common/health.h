#ifndef COMMON_HEALTH_H
#define COMMON_HEALTH_H
/*
 * Health and metrics routes, mounted on every server whose config keeps
 * builtin_routes = 1 (the default):
 *
 *   GET /healthz  200 {"status":"ok"} while the process serves at all.
 *   GET /readyz   runs every registered check concurrently, each bounded
 *                 by its own timeout; 200 {"status":"ready","checks":[...]}
 *                 or 503 {"status":"not_ready"|"draining",...} when a check
 *                 fails or times out, the server is draining, or the
 *                 readiness_fail fault is active. A check whose name is
 *                 dropped by a drop_dependency fault fails without running.
 *   GET /metrics  the registry (metrics.h) in text format 0.0.4.
 *
 * A check fills msg (NUL-terminated, at most msglen) with a short reason
 * when it fails and returns -1, else 0. It runs on its own thread; one that
 * overruns its timeout is reported as failed and left to finish in the
 * background, so it must not touch freed state: ctx must outlive the server.
 */
#include <stddef.h>

#include "common/http_server.h"

typedef int (*cm_health_check_fn)(void *ctx, char *msg, size_t msglen);

/* name is copied; timeout_ms <= 0 means 1000. Before or after start.
 * 0 / -1. Thread-safe. */
int cm_health_add_check(struct cm_http_server *s, const char *name, cm_health_check_fn fn,
                        void *ctx, int timeout_ms);

#endif
