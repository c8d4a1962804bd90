/*
 * Redis, the service's only store: block keys honoured by gateway and
 * trading-api (risk:blocked:<user_id>, JSON value, TTL) and the state
 * snapshot (one key, one SET: state and offsets are written together).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/redis.h"
#include "risk.h"
#include "common/banned.h"

static struct cm_redis *redis;

int store_open(const char *url)
{
    struct cm_redis_config rc = {.url = url, .pool_size = 4, .command_timeout_ms = 2000};
    char err[256];
    redis = cm_redis_open(&rc, err, sizeof err);
    if (!redis) {
        cm_error("risk: redis: %s", err);
        return -1;
    }
    return 0;
}

void store_close(void)
{
    cm_redis_close(redis);
    redis = NULL;
}

int store_ping(void)
{
    return cm_redis_ping(redis);
}

static void block_key(char *key, size_t n, uint64_t user)
{
    snprintf(key, n, "risk:blocked:%" PRIu64, user);
}

int store_block(uint64_t user, const char *rule, const char *reason, int64_t ttl_ms,
                int64_t until_ms)
{
    char key[64], until[RISK_TS_MAX];
    block_key(key, sizeof key, user);
    risk_format_ts(until_ms, until, sizeof until);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "rule", rule);
    cJSON_AddStringToObject(v, "reason", reason);
    cJSON_AddStringToObject(v, "until", until);
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (!text)
        return -1;
    int rc = cm_redis_set(redis, key, text, strlen(text), ttl_ms);
    free(text);
    return rc;
}

int store_unblock(uint64_t user)
{
    char key[64];
    block_key(key, sizeof key, user);
    return cm_redis_del(redis, key) < 0 ? -1 : 0;
}

int store_snapshot_get(char **out, size_t *len)
{
    return cm_redis_get(redis, risk_cfg.snapshot_key, out, len);
}

int store_snapshot_put(const char *text, size_t len)
{
    return cm_redis_set(redis, risk_cfg.snapshot_key, text, len, 0);
}
