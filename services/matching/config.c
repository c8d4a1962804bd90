/*
 * Configuration from the environment (12-factor) and the market rules
 * file. MATCHING_MARKETS_FILE has the shape of services/trading-api/
 * markets.json, the shared truth for trading-api and matching: amounts are
 * decimal strings at the market's scales (prices at quote_scale,
 * quantities at base_scale), converted here to the core's struct me_rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/config.h"
#include "common/decimal.h"
#include "matching.h"
#include "common/banned.h"

struct mt_config mt_cfg;
struct mt_market *mt_markets;
size_t mt_nmarkets;

int mt_config_load(struct mt_config *c)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "matching");
    c->port = cm_config_port(&cfg, "PORT", "8082");
    c->threads = (int)cm_config_int(&cfg, "HTTP_THREADS", "2", 1, 64);
    c->admin_token = cm_config_string(&cfg, "ADMIN_TOKEN", "");
    c->database_url = cm_config_url(&cfg, "DATABASE_URL", NULL, "postgres://,postgresql://");
    c->brokers = cm_config_string(&cfg, "KAFKA_BROKERS", NULL);
    c->kafka_props = cm_config_string(&cfg, "KAFKA_PROPS", "");
    int64_t linger = cm_config_int(&cfg, "MATCHING_LINGER_MS", "0", 0, 1000);
    int64_t fetch_wait = cm_config_int(&cfg, "MATCHING_FETCH_WAIT_MS", "2", 1, 500);
    int64_t in_flight = cm_config_int(&cfg, "MATCHING_MAX_IN_FLIGHT", "5", 1, 5);
    c->group = cm_config_string(&cfg, "MATCHING_GROUP", "matching");
    /* "" = partitions from the consumer group; "all" or "0,3" = this
     * process owns them outright (no join: restart resumes at once). */
    c->partitions = cm_config_string(&cfg, "MATCHING_PARTITIONS", "");
    c->commands_topic =
        cm_config_string(&cfg, "MATCHING_COMMANDS_TOPIC", "exchange.orders.commands");
    c->events_topic = cm_config_string(&cfg, "MATCHING_EVENTS_TOPIC", "exchange.orders.events");
    c->trades_topic = cm_config_string(&cfg, "MATCHING_TRADES_TOPIC", "exchange.trades");
    c->markets_file =
        cm_config_string(&cfg, "MATCHING_MARKETS_FILE", "services/trading-api/markets.json");
    c->migrations_dir = cm_config_string(&cfg, "MIGRATIONS_DIR", "services/matching/migrations");
    c->snapshot_every = cm_config_int(&cfg, "MATCHING_SNAPSHOT_EVERY", "50000", 1, 1000000000);
    c->snapshot_interval_ms = cm_config_duration_ms(&cfg, "MATCHING_SNAPSHOT_INTERVAL", "5s");
    c->batch_max = cm_config_int(&cfg, "MATCHING_BATCH", "4096", 1, 100000);
    /* Orders per pre-faulted slab: a new book pays for its first slab
     * on its first command (65536 cost ~10 MB of page faults each there),
     * and the pools grow by slabs, the id map by doubling. */
    c->order_capacity = cm_config_int(&cfg, "MATCHING_ORDER_CAPACITY", "4096", 1024, 1 << 26);
    c->produce_timeout_ms = cm_config_duration_ms(&cfg, "MATCHING_PRODUCE_TIMEOUT", "10s");
    c->crash_point =
        cm_config_enum(&cfg, "MATCHING_CRASH_POINT", "none", "none|applied|produced|snapshot");
    c->crash_after = cm_config_int(&cfg, "MATCHING_CRASH_AFTER", "1", 1, INT64_MAX);
    /* Our latency defaults first, so KAFKA_PROPS can still override them.
     * linger 0 + 5 requests in flight: a batch goes out at once and its
     * partitions' requests overlap (that used to cost ~40 ms per request
     * on devkafka, a Nagle stall fixed with TCP_NODELAY on both sides;
     * quiet bench: p50 3.7 vs 8.8 ms, throughput 129k vs 117k cmd/s).
     * fetch.wait.max.ms 2: the mock broker answers an empty fetch only
     * after the full wait, even when data arrives meanwhile. (The producer
     * ignores the consumer property, and vice versa.) */
    int n = snprintf(c->props, sizeof c->props,
                     "linger.ms=%lld;max.in.flight=%lld;fetch.wait.max.ms=%lld%s%s",
                     (long long)linger, (long long)in_flight, (long long)fetch_wait,
                     c->kafka_props[0] ? ";" : "", c->kafka_props);
    int rc = cm_config_finish(&cfg);
    if (rc == 0 && (n < 0 || (size_t)n >= sizeof c->props)) {
        fprintf(stderr, "matching: config: KAFKA_PROPS is too long\n");
        return -1;
    }
    return rc;
}

static int amount(const cJSON *o, const char *name, int scale, int64_t *out, char *err,
                  size_t errlen, const char *sym)
{
    if (cm_decimal_from_json(cJSON_GetObjectItemCaseSensitive(o, name), scale, 0, out) < 0 ||
        *out <= 0) {
        snprintf(err, errlen, "market %s: %s must be a positive decimal string at scale %d", sym,
                 name, scale);
        return -1;
    }
    return 0;
}

static int scale_of(const cJSON *o, const char *name, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 18 ||
        v->valuedouble != (double)(int)v->valuedouble)
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int valid_symbol(const char *s)
{
    /* ^[A-Z0-9]{2,12}-[A-Z0-9]{2,12}$ */
    size_t a = 0, b = 0;
    const char *p = s;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
        p++, a++;
    if (*p++ != '-')
        return 0;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
        p++, b++;
    return *p == 0 && a >= 2 && a <= 12 && b >= 2 && b <= 12;
}

static int load_market(const cJSON *o, struct mt_market *mk, int64_t cap, char *err, size_t errlen)
{
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(o, "symbol");
    if (!cJSON_IsString(sym) || !valid_symbol(sym->valuestring)) {
        snprintf(err, errlen, "a market has no valid symbol (BASE-QUOTE)");
        return -1;
    }
    const char *s = sym->valuestring;
    snprintf(mk->symbol, sizeof mk->symbol, "%s", s);
    if (scale_of(o, "base_scale", &mk->base_scale) < 0 ||
        scale_of(o, "quote_scale", &mk->quote_scale) < 0) {
        snprintf(err, errlen, "market %s: base_scale/quote_scale must be integers 0..18", s);
        return -1;
    }
    struct me_rules *r = &mk->rules;
    r->base_scale = (uint8_t)mk->base_scale;
    r->stp_default = ME_STP_CANCEL_TAKER;
    r->order_capacity = (uint32_t)cap;
    if (amount(o, "tick_size", mk->quote_scale, &r->tick, err, errlen, s) < 0 ||
        amount(o, "lot_size", mk->base_scale, &r->lot, err, errlen, s) < 0 ||
        amount(o, "min_quantity", mk->base_scale, &r->min_qty, err, errlen, s) < 0 ||
        amount(o, "max_quantity", mk->base_scale, &r->max_qty, err, errlen, s) < 0 ||
        amount(o, "min_price", mk->quote_scale, &r->min_price, err, errlen, s) < 0 ||
        amount(o, "max_price", mk->quote_scale, &r->max_price, err, errlen, s) < 0)
        return -1;
    const cJSON *band = cJSON_GetObjectItemCaseSensitive(o, "price_band_bps");
    if (band) {
        if (!cJSON_IsNumber(band) || band->valuedouble < 0 || band->valuedouble > 1000000 ||
            band->valuedouble != (double)(int)band->valuedouble) {
            snprintf(err, errlen, "market %s: price_band_bps must be an integer 0..1000000", s);
            return -1;
        }
        r->band_bps = (uint32_t)band->valuedouble;
    }
    const cJSON *stp = cJSON_GetObjectItemCaseSensitive(o, "stp_default");
    if (cJSON_IsString(stp)) {
        static const char *const names[] = {"none", "cancel_taker", "cancel_maker", "cancel_both"};
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strcmp(stp->valuestring, names[i]) == 0)
                r->stp_default = (uint8_t)(ME_STP_NONE + i), found = 1;
        if (!found) {
            snprintf(err, errlen, "market %s: unknown stp_default", s);
            return -1;
        }
    }
    /* The core validates the combination (min <= max, tick <= min...). */
    struct me_market *probe = me_market_new(&(struct me_rules){.base_scale = r->base_scale,
                                                               .stp_default = r->stp_default,
                                                               .band_bps = r->band_bps,
                                                               .tick = r->tick,
                                                               .lot = r->lot,
                                                               .min_qty = r->min_qty,
                                                               .max_qty = r->max_qty,
                                                               .min_price = r->min_price,
                                                               .max_price = r->max_price,
                                                               .order_capacity = 16});
    if (!probe) {
        snprintf(err, errlen, "market %s: rules rejected by the matching core", s);
        return -1;
    }
    me_market_free(probe);
    mk->partition = -1;
    pthread_mutex_init(&mk->depth.mu, NULL);
    return 0;
}

int mt_markets_load(const char *path, int64_t order_capacity, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    char *text = malloc(1 << 20);
    size_t len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    text[len] = 0;
    int rc = -1;
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "markets");
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n < 1 || n > 1000) {
        snprintf(err, errlen, "%s: expected {\"markets\":[...]} with 1..1000 markets", path);
        goto out;
    }
    mt_markets = calloc((size_t)n, sizeof *mt_markets);
    if (!mt_markets) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
        if (cJSON_IsString(st) && strcmp(st->valuestring, "trading") != 0 &&
            strcmp(st->valuestring, "halted") != 0)
            continue; /* delisted markets are not loaded */
        if (load_market(o, &mt_markets[mt_nmarkets], order_capacity, err, errlen) < 0)
            goto out;
        if (mt_market_find(mt_markets[mt_nmarkets].symbol,
                           strlen(mt_markets[mt_nmarkets].symbol))) {
            snprintf(err, errlen, "%s: duplicate market %s", path, mt_markets[mt_nmarkets].symbol);
            goto out;
        }
        mt_nmarkets++;
    }
    rc = 0;
out:
    cJSON_Delete(doc);
    free(text);
    return rc;
}

struct mt_market *mt_market_find(const char *symbol, size_t len)
{
    for (size_t i = 0; i < mt_nmarkets; i++)
        if (strlen(mt_markets[i].symbol) == len && memcmp(mt_markets[i].symbol, symbol, len) == 0)
            return &mt_markets[i];
    return NULL;
}

void mt_markets_free(void)
{
    for (size_t i = 0; i < mt_nmarkets; i++) {
        me_market_free(mt_markets[i].book);
        pthread_mutex_destroy(&mt_markets[i].depth.mu);
    }
    free(mt_markets);
    mt_markets = NULL;
    mt_nmarkets = 0;
}
