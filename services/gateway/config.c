/* The gateway's environment (12-factor); docs/gateway.md lists every variable. */
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/jwt.h"
#include "gateway.h"
#include "common/banned.h"

int gw_config_load(struct gw_config *c)
{
    struct cm_config cfg;
    memset(c, 0, sizeof *c);
    cm_config_init(&cfg, "gateway");
    c->port = cm_config_port(&cfg, "PORT", "8080");
    c->threads = (unsigned)cm_config_int(&cfg, "HTTP_THREADS", "32", 1, 512);
    c->max_body = (size_t)cm_config_int(&cfg, "MAX_BODY_BYTES", "1048576", 1024, 64 << 20);
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->database_url = cm_config_url(&cfg, "DATABASE_URL", NULL, "postgres://,postgresql://");
    c->redis_url = cm_config_url(&cfg, "REDIS_URL", NULL, "redis://");
    c->redis_timeout_ms = cm_config_duration_ms(&cfg, "REDIS_TIMEOUT", "200ms");
    c->migrations_dir = cm_config_string(&cfg, "MIGRATIONS_DIR", "services/gateway/migrations");
    c->routes_file = cm_config_string(&cfg, "GATEWAY_ROUTES_FILE", "services/gateway/routes.json");
    c->log_level = cm_config_enum(&cfg, "LOG_LEVEL", "info", "debug|info|warn|error");
    c->jwt_alg = cm_config_enum(&cfg, "JWT_ALG", "HS256", "HS256|RS256|ES256") + 1;
    c->jwt_secret = cm_config_string(&cfg, "JWT_SECRET", "");
    c->jwt_private_key_file = cm_config_string(&cfg, "JWT_PRIVATE_KEY_FILE", "");
    c->jwt_issuer = cm_config_string(&cfg, "JWT_ISSUER", "exchange-lab");
    c->jwt_audience = cm_config_string(&cfg, "JWT_AUDIENCE", "exchange-lab");
    c->access_ttl_s = cm_config_duration_ms(&cfg, "ACCESS_TOKEN_TTL", "15m") / 1000;
    c->refresh_ttl_s = cm_config_duration_ms(&cfg, "REFRESH_TOKEN_TTL", "336h") / 1000;
    c->pwhash_fast = cm_config_enum(&cfg, "GATEWAY_PWHASH", "interactive", "interactive|fast");
    c->pwhash_concurrency = (int)cm_config_int(&cfg, "GATEWAY_PWHASH_CONCURRENCY", "2", 1, 64);
    int rc = cm_config_finish(&cfg);
    if (rc < 0)
        return -1;
    /* Cross-field rules, reported the same way (one line, exit 2). */
    const char *bad = NULL;
    if (c->jwt_alg == CM_JWT_HS256 && strlen(c->jwt_secret) < CM_JWT_HS256_MIN_SECRET)
        bad = "JWT_SECRET must be at least 32 bytes with JWT_ALG=HS256";
    else if (c->jwt_alg != CM_JWT_HS256 && !*c->jwt_private_key_file)
        bad = "JWT_PRIVATE_KEY_FILE is required with JWT_ALG=RS256/ES256";
    else if (c->access_ttl_s < 1 || c->refresh_ttl_s < 60)
        bad = "ACCESS_TOKEN_TTL must be >= 1s and REFRESH_TOKEN_TTL >= 1m";
    if (bad) {
        fprintf(stderr, "gateway: config: %s\n", bad);
        return -1;
    }
    return 0;
}
