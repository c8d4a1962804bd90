/*
 * gateway: the single public entry point of Exchange Lab.
 * Table of contents: configuration, routes file, stores, limiter, tokens,
 * upstream clients, HTTP, run until a signal, close. `gateway
 * hash-password` (password on stdin) prints an Argon2id hash for seed.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/health.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/service.h"
#include "gateway.h"
#include "common/banned.h"

#define VERSION "1.0.0"

static int check_postgres(void *ctx, char *msg, size_t msglen)
{
    (void)ctx;
    if (store_ping() == 0)
        return 0;
    snprintf(msg, msglen, "postgres unreachable");
    return -1;
}

/* Reads one line from stdin and prints its hash (GATEWAY_PWHASH=fast for
 * MIN limits). Exit 2 on a password that registration would refuse. */
static int hash_password(void)
{
    char pw[4 * GW_PASSWORD_MAX + 2];
    const char *why = NULL;
    if (!fgets(pw, sizeof pw, stdin)) {
        fprintf(stderr, "gateway hash-password: password expected on stdin\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (gw_password_check(pw, &why) < 0) {
        fprintf(stderr, "gateway hash-password: %s\n", why);
        return 2;
    }
    const char *mode = getenv("GATEWAY_PWHASH");
    gw_pwhash_init(mode && strcmp(mode, "fast") == 0, 1);
    char hash[crypto_pwhash_STRBYTES];
    if (gw_pwhash(pw, hash, sizeof hash) < 0)
        return 1;
    printf("%s\n", hash);
    sodium_memzero(pw, sizeof pw);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "hash-password") == 0)
        return hash_password();
    if (argc > 1) {
        fprintf(stderr, "usage: gateway [hash-password]\n");
        return 2;
    }
    static struct gw_app app;
    if (cm_service_init("gateway", VERSION) < 0 || gw_config_load(&app.cfg) < 0)
        return 2;
    char err[320];
    if (gw_routes_load(app.cfg.routes_file, &app.routes, err, sizeof err) < 0 ||
        gw_routes_resolve(&app.routes, err, sizeof err) < 0) {
        fprintf(stderr, "gateway: config: %s\n", err);
        return 2;
    }
    gw_pwhash_init(app.cfg.pwhash_fast, app.cfg.pwhash_concurrency);
    if (app.cfg.pwhash_fast)
        cm_warn("gateway: GATEWAY_PWHASH=fast: weak password hashing, for tests and the lab only");

    struct cm_redis_config rc = {.url = app.cfg.redis_url,
                                 .connect_timeout_ms = (int)app.cfg.redis_timeout_ms,
                                 .command_timeout_ms = (int)app.cfg.redis_timeout_ms,
                                 .pool_size = (int)app.cfg.threads};
    app.redis = cm_redis_open(&rc, err, sizeof err);
    if (!app.redis) {
        fprintf(stderr, "gateway: config: REDIS_URL: %s\n", err);
        return 2;
    }
    app.tokens = gw_tokens_new(&app.cfg);
    app.limiter = gw_limiter_new(app.redis);
    if (!app.tokens || !app.limiter) {
        cm_error("gateway: cannot set up tokens or the rate limiter");
        return 2;
    }
    if (store_open(app.cfg.database_url, app.cfg.migrations_dir, 8) < 0) {
        cm_error("gateway: cannot open the database");
        return 1;
    }
    if (gw_proxy_open(&app) < 0) {
        cm_error("gateway: cannot create the upstream clients");
        return 1;
    }

    struct cm_http_config http;
    cm_http_config_init(&http);
    http.service = "gateway";
    http.port = app.cfg.port;
    http.threads = app.cfg.threads; /* handlers wait on upstreams: many workers */
    http.max_body = app.cfg.max_body;
    http.admin_token = app.cfg.admin_token;
    http.ctx = &app;
    struct cm_http_server *srv = cm_http_server_new(&http, gw_http_routes, gw_http_nroutes);
    /* Redis is not a readiness dependency: the local limiter covers it. */
    if (!srv || cm_health_add_check(srv, "postgres", check_postgres, NULL, 2000) < 0 ||
        cm_http_server_start(srv) < 0) {
        cm_error("gateway: cannot start HTTP on port %d", app.cfg.port);
        cm_http_server_free(srv);
        return 1;
    }
    cm_info("gateway: listening on port %d with %d routes", cm_http_server_port(srv),
            app.routes.nroutes);

    int rc2 = cm_http_server_run_until_signal(srv);
    cm_http_server_free(srv);
    gw_proxy_close(&app);
    store_close();
    gw_limiter_free(app.limiter);
    gw_tokens_free(app.tokens);
    cm_redis_close(app.redis);
    return rc2 == 0 ? 0 : 1;
}
