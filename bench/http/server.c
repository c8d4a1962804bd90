/*
 * Benchmark server: the full stack a service gets (routing, request ids,
 * trace context, metrics, access log) around one trivial JSON route.
 * Usage: http_bench_server PORT [THREADS] [LOGFILE]; logs go to LOGFILE
 * (default /dev/null) so the access log is formatted and written for every
 * request, as in production. Runs until SIGTERM/SIGINT.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/health.h"
#include "common/http_server.h"
#include "common/json_http.h"
#include "common/log.h"
#include "common/process_metrics.h"
#include "common/banned.h"

static void ping(struct cm_http_req *r)
{
    cm_http_reply_json_str(r, 200, "{\"ok\":true}");
}

static void order(struct cm_http_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", cm_http_req_param(r, "id"));
    cJSON_AddStringToObject(o, "status", "open");
    cm_http_reply_json(r, 200, o);
}

static const struct cm_http_route routes[] = {
    {"GET", "/v1/ping", ping, 0, NULL},
    {"GET", "/v1/orders/{id}", order, 0, NULL},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS] [LOGFILE]\n", argv[0]);
        return 2;
    }
    int64_t port, threads = 0;
    if (cm_parse_int64(argv[1], &port) < 0 || port < 0 || port > 65535 ||
        (argc > 2 && (cm_parse_int64(argv[2], &threads) < 0 || threads < 0 || threads > 256))) {
        fprintf(stderr, "%s: bad PORT or THREADS\n", argv[0]);
        return 2;
    }
    const char *logfile = argc > 3 ? argv[3] : "/dev/null";
    int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(logfile);
        return 2;
    }
    cm_log_init("http_bench", CM_LOG_INFO);
    cm_log_set_fd(fd);
    cm_process_metrics_register("http_bench", "dev");

    struct cm_http_config cfg;
    cm_http_config_init(&cfg);
    cfg.service = "http_bench";
    cfg.bind_addr = "127.0.0.1";
    cfg.port = (int)port;
    cfg.threads = (unsigned)threads;
    cfg.drain_timeout_ms = 2000;
    struct cm_http_server *s = cm_http_server_new(&cfg, routes, sizeof routes / sizeof routes[0]);
    if (!s || cm_http_server_start(s) < 0) {
        fprintf(stderr, "%s: cannot start server on port %d\n", argv[0], (int)port);
        cm_http_server_free(s);
        return 1;
    }
    int rc = cm_http_server_run_until_signal(s);
    cm_http_server_free(s);
    close(fd);
    return rc == 0 ? 0 : 1;
}
