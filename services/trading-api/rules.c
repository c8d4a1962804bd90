/*
 * Market rules and the pure logic of an order: validation of a request
 * body, the wallet hold it needs, its fingerprint, average price, candles
 * and timestamps. No I/O here: everything is unit-tested
 * (tests/test_rules.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/decimal.h"
#include "trading.h"
#include "common/banned.h"

static const char *const SIDES[] = {"buy", "sell"};
static const char *const TYPES[] = {"limit", "market"};
static const char *const TIFS[] = {"GTC", "IOC", "FOK"};
static const char *const STPS[] = {"none", "cancel_taker", "cancel_maker", "cancel_both"};

const char *side_name(int s)
{
    return s == SIDE_SELL ? SIDES[1] : SIDES[0];
}
const char *type_name(int t)
{
    return t == OT_MARKET ? TYPES[1] : TYPES[0];
}
const char *tif_name(int t)
{
    return (t >= 0 && t <= 2) ? TIFS[t] : TIFS[0];
}

static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int problem(struct vproblem *p, int status, const char *code, const char *field,
                   const char *what)
{
    p->status = status;
    p->code = code;
    snprintf(p->field, sizeof p->field, "%s", field);
    snprintf(p->problem, sizeof p->problem, "%s", what);
    return -1;
}

/* ---- markets ----------------------------------------------------------- */

static int json_dec(const cJSON *o, const char *name, int scale, int64_t *out)
{
    return cm_decimal_from_json(cJSON_GetObjectItemCaseSensitive(o, name), scale, 0, out);
}

static int json_int(const cJSON *o, const char *name, int lo, int hi, int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(it) || it->valuedouble < lo || it->valuedouble > hi ||
        it->valuedouble != (double)it->valueint)
        return -1;
    *out = it->valueint;
    return 0;
}

static int json_str(const cJSON *o, const char *name, char *out, size_t outsz)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(it) || strlen(it->valuestring) == 0 || strlen(it->valuestring) >= outsz)
        return -1;
    snprintf(out, outsz, "%s", it->valuestring);
    return 0;
}

int markets_parse(const char *json, struct market *out, size_t max, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "markets") : NULL;
    int n = -1;
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "no markets array");
        goto done;
    }
    n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if ((size_t)n >= max) {
            snprintf(err, errlen, "too many markets");
            n = -1;
            goto done;
        }
        struct market *m = &out[n];
        char status[16];
        memset(m, 0, sizeof *m);
        if (json_str(it, "symbol", m->symbol, sizeof m->symbol) < 0 ||
            json_str(it, "base", m->base, sizeof m->base) < 0 ||
            json_str(it, "quote", m->quote, sizeof m->quote) < 0 ||
            json_int(it, "base_scale", 0, 18, &m->base_scale) < 0 ||
            json_int(it, "quote_scale", 0, 18, &m->quote_scale) < 0 ||
            json_dec(it, "tick_size", m->quote_scale, &m->tick) < 0 ||
            json_dec(it, "lot_size", m->base_scale, &m->lot) < 0 ||
            json_dec(it, "min_quantity", m->base_scale, &m->min_qty) < 0 ||
            json_dec(it, "max_quantity", m->base_scale, &m->max_qty) < 0 ||
            json_dec(it, "min_price", m->quote_scale, &m->min_price) < 0 ||
            json_dec(it, "max_price", m->quote_scale, &m->max_price) < 0 ||
            json_int(it, "price_band_bps", 0, 10000, &m->band_bps) < 0 ||
            json_str(it, "status", status, sizeof status) < 0) {
            snprintf(err, errlen, "market %d: missing or malformed field", n);
            n = -1;
            goto done;
        }
        m->trading = strcmp(status, "trading") == 0;
        n++;
    }
done:
    cJSON_Delete(root);
    return n;
}

const struct market *market_find(const struct market *ms, size_t n, const char *symbol)
{
    if (!symbol)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ms[i].symbol, symbol) == 0)
            return &ms[i];
    return NULL;
}

static void add_dec(cJSON *o, const char *name, int64_t v, int scale)
{
    char buf[CM_DECIMAL_STR_MAX];
    cm_decimal_format(v, scale, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

cJSON *market_json(const struct market *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "symbol", m->symbol);
    cJSON_AddStringToObject(o, "base", m->base);
    cJSON_AddStringToObject(o, "quote", m->quote);
    cJSON_AddNumberToObject(o, "base_scale", m->base_scale);
    cJSON_AddNumberToObject(o, "quote_scale", m->quote_scale);
    add_dec(o, "tick_size", m->tick, m->quote_scale);
    add_dec(o, "lot_size", m->lot, m->base_scale);
    add_dec(o, "min_quantity", m->min_qty, m->base_scale);
    add_dec(o, "max_quantity", m->max_qty, m->base_scale);
    add_dec(o, "min_price", m->min_price, m->quote_scale);
    add_dec(o, "max_price", m->max_price, m->quote_scale);
    cJSON_AddNumberToObject(o, "price_band_bps", m->band_bps);
    cJSON_AddStringToObject(o, "status", m->trading ? "trading" : "halted");
    return o;
}

/* ---- order validation -------------------------------------------------- */

static int valid_coid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static const char *dec_problem(int rc)
{
    switch (rc) {
    case CM_DECIMAL_EPRECISION: return "too_precise";
    case CM_DECIMAL_ERANGE: return "too_large";
    case CM_DECIMAL_ENEGATIVE: return "negative";
    default: return "invalid_decimal";
    }
}

/* A decimal member: absent (0, *has = 0), a string parsed at scale, or a
 * problem (400 for a non-string, 422 for a bad value). */
static int get_dec(const cJSON *body, const char *name, int scale, int *has, int64_t *v,
                   struct vproblem *p)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, name);
    *has = 0;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsString(it))
        return problem(p, 400, "invalid_request", name, "must be a decimal string");
    int rc = cm_decimal_parse(it->valuestring, scale, 0, v);
    if (rc < 0)
        return problem(p, 422, "validation_failed", name, dec_problem(rc));
    if (*v <= 0)
        return problem(p, 422, "validation_failed", name, "must_be_positive");
    *has = 1;
    return 0;
}

static int get_enum(const cJSON *body, const char *name, const char *const *names, int n, int dflt,
                    int *out, struct vproblem *p)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!it || cJSON_IsNull(it)) {
        if (dflt < 0)
            return problem(p, 400, "invalid_request", name, "required");
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsString(it))
        return problem(p, 400, "invalid_request", name, "must be a string");
    *out = pick(it->valuestring, names, n);
    if (*out < 0)
        return problem(p, 422, "validation_failed", name, "unknown_value");
    return 0;
}

int order_validate(const cJSON *body, const struct market *ms, size_t n, struct order_req *o,
                   struct vproblem *p)
{
    static const char *const known[] = {"market",   "side",           "type",          "price",
                                        "quantity", "quote_amount",   "time_in_force", "post_only",
                                        "stp",      "client_order_id"};
    memset(o, 0, sizeof *o);
    memset(p, 0, sizeof *p);
    if (!cJSON_IsObject(body))
        return problem(p, 400, "invalid_request", "", "body must be a JSON object");
    const cJSON *it;
    cJSON_ArrayForEach(it, body)
    {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= it->string && strcmp(it->string, known[i]) == 0;
        if (!ok)
            return problem(p, 400, "invalid_request", it->string ? it->string : "",
                           "unknown field");
    }

    it = cJSON_GetObjectItemCaseSensitive(body, "client_order_id");
    if (!it)
        return problem(p, 400, "invalid_request", "client_order_id", "required");
    if (!cJSON_IsString(it))
        return problem(p, 400, "invalid_request", "client_order_id", "must be a string");
    if (!valid_coid(it->valuestring))
        return problem(p, 422, "validation_failed", "client_order_id",
                       "must be 1-64 of [A-Za-z0-9._:-]");
    snprintf(o->client_order_id, sizeof o->client_order_id, "%s", it->valuestring);

    it = cJSON_GetObjectItemCaseSensitive(body, "market");
    if (!it)
        return problem(p, 400, "invalid_request", "market", "required");
    if (!cJSON_IsString(it))
        return problem(p, 400, "invalid_request", "market", "must be a string");
    o->m = market_find(ms, n, it->valuestring);
    if (!o->m)
        return problem(p, 422, "validation_failed", "market", "unknown_market");
    if (!o->m->trading)
        return problem(p, 422, "validation_failed", "market", "market_halted");

    if (get_enum(body, "side", SIDES, 2, -1, &o->side, p) < 0 ||
        get_enum(body, "type", TYPES, 2, -1, &o->type, p) < 0 ||
        get_enum(body, "time_in_force", TIFS, 3, TIF_GTC, &o->tif, p) < 0)
        return -1;
    if (!cJSON_GetObjectItemCaseSensitive(body, "time_in_force"))
        o->tif = o->type == OT_LIMIT ? TIF_GTC : TIF_IOC;

    it = cJSON_GetObjectItemCaseSensitive(body, "post_only");
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsBool(it))
            return problem(p, 400, "invalid_request", "post_only", "must be a boolean");
        o->post_only = cJSON_IsTrue(it);
    }
    it = cJSON_GetObjectItemCaseSensitive(body, "stp");
    if (it && !cJSON_IsNull(it)) {
        int s;
        if (!cJSON_IsString(it))
            return problem(p, 400, "invalid_request", "stp", "must be a string");
        if ((s = pick(it->valuestring, STPS, 4)) < 0)
            return problem(p, 422, "validation_failed", "stp", "unknown_value");
        o->stp = STPS[s];
    }

    const struct market *m = o->m;
    if (get_dec(body, "price", m->quote_scale, &o->has_price, &o->price, p) < 0 ||
        get_dec(body, "quantity", m->base_scale, &o->has_qty, &o->qty, p) < 0 ||
        get_dec(body, "quote_amount", m->quote_scale, &o->has_quote, &o->quote, p) < 0)
        return -1;

    /* Shapes (OrderRequest oneOf): a wrong shape is a 400. */
    if (o->type == OT_LIMIT) {
        if (!o->has_price)
            return problem(p, 400, "invalid_request", "price", "required for limit orders");
        if (!o->has_qty)
            return problem(p, 400, "invalid_request", "quantity", "required for limit orders");
        if (o->has_quote)
            return problem(p, 400, "invalid_request", "quote_amount",
                           "not allowed on limit orders");
    } else {
        if (o->has_price)
            return problem(p, 400, "invalid_request", "price", "not allowed on market orders");
        if (o->has_qty == o->has_quote)
            return problem(p, 400, "invalid_request", o->has_qty ? "quote_amount" : "quantity",
                           "market orders take exactly one of quantity and quote_amount");
    }

    /* Combinations. */
    if (o->post_only && !(o->type == OT_LIMIT && o->tif == TIF_GTC))
        return problem(p, 422, "validation_failed", "post_only", "only_with_limit_gtc");
    if (o->type == OT_MARKET && o->tif == TIF_GTC)
        return problem(p, 422, "validation_failed", "time_in_force",
                       "market_orders_are_ioc_or_fok");
    if (o->type == OT_MARKET && o->has_quote && o->tif != TIF_IOC)
        return problem(p, 422, "validation_failed", "time_in_force", "quote_budget_orders_are_ioc");

    /* Market rules. */
    if (o->has_price) {
        if (o->price % m->tick != 0)
            return problem(p, 422, "validation_failed", "price", "not_multiple_of_tick");
        if (o->price < m->min_price)
            return problem(p, 422, "validation_failed", "price", "below_min_price");
        if (o->price > m->max_price)
            return problem(p, 422, "validation_failed", "price", "above_max_price");
    }
    if (o->has_qty) {
        if (o->qty % m->lot != 0)
            return problem(p, 422, "validation_failed", "quantity", "not_multiple_of_lot");
        if (o->qty < m->min_qty)
            return problem(p, 422, "validation_failed", "quantity", "below_min_quantity");
        if (o->qty > m->max_qty)
            return problem(p, 422, "validation_failed", "quantity", "above_max_quantity");
    }
    const char *asset;
    int scale;
    int64_t amount;
    if (order_hold(o, &asset, &scale, &amount) < 0)
        return problem(p, 422, "validation_failed", o->has_quote ? "quote_amount" : "quantity",
                       "overflow");
    return 0;
}

int order_hold(const struct order_req *o, const char **asset, int *scale, int64_t *amount)
{
    const struct market *m = o->m;
    int64_t unit = cm_decimal_pow10(m->base_scale);
    if (o->side == SIDE_BUY) {
        *asset = m->quote;
        *scale = m->quote_scale;
        if (o->type == OT_LIMIT)
            return cm_money_mul_div(o->price, o->qty, unit, CM_ROUND_UP, amount);
        if (o->has_quote) {
            *amount = o->quote;
            return 0;
        }
        return cm_money_mul_div(m->max_price, o->qty, unit, CM_ROUND_UP, amount);
    }
    *asset = m->base;
    *scale = m->base_scale;
    if (o->has_qty) {
        *amount = o->qty;
        return 0;
    }
    return cm_money_mul_div(o->quote, unit, m->min_price, CM_ROUND_UP, amount);
}

void order_fingerprint(const struct order_req *o, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s|%s|%s|%s|%lld|%lld|%lld|%d|%s", o->m->symbol, side_name(o->side),
             type_name(o->type), tif_name(o->tif), o->has_price ? (long long)o->price : -1LL,
             o->has_qty ? (long long)o->qty : -1LL, o->has_quote ? (long long)o->quote : -1LL,
             o->post_only, o->stp ? o->stp : "");
}

int average_price(int64_t filled_qty, int64_t filled_quote, int base_scale, int64_t *out)
{
    if (filled_qty <= 0)
        return -1;
    return cm_money_mul_div(filled_quote, cm_decimal_pow10(base_scale), filled_qty,
                            CM_ROUND_HALF_EVEN, out);
}

/* ---- candles ----------------------------------------------------------- */

int64_t candle_interval_ms(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "1m") == 0)
        return 60000;
    if (strcmp(s, "5m") == 0)
        return 300000;
    if (strcmp(s, "1h") == 0)
        return 3600000;
    if (strcmp(s, "1d") == 0)
        return 86400000;
    return -1;
}

int64_t candle_bucket(int64_t ts_ms, int64_t interval_ms)
{
    int64_t q = ts_ms / interval_ms;
    if (ts_ms % interval_ms != 0 && ts_ms < 0)
        q--;
    return q * interval_ms;
}

int candles_build(const struct trade_pt *t, size_t n, int64_t interval_ms, struct candle *out,
                  size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t b = candle_bucket(t[i].ts_ms, interval_ms);
        struct candle *c = k > 0 ? &out[k - 1] : NULL;
        if (!c || c->open_ms != b) {
            if (k == max)
                break;
            c = &out[k++];
            c->open_ms = b;
            c->open = c->high = c->low = c->close = t[i].price;
            c->volume = c->quote_volume = c->trades = 0;
        }
        if (t[i].price > c->high)
            c->high = t[i].price;
        if (t[i].price < c->low)
            c->low = t[i].price;
        c->close = t[i].price;
        if (cm_money_add(c->volume, t[i].qty, &c->volume) < 0 ||
            cm_money_add(c->quote_volume, t[i].quote, &c->quote_volume) < 0)
            return -1;
        c->trades++;
    }
    return (int)k;
}

/* ---- time and ids ------------------------------------------------------ */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int parse_ts_us(const char *s, int64_t *out)
{
    int Y, M, D, h, mi, sec;
    if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || digits(s, 4, &Y) < 0 || digits(s + 5, 2, &M) < 0 ||
        digits(s + 8, 2, &D) < 0 || digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &mi) < 0 ||
        digits(s + 17, 2, &sec) < 0)
        return -1;
    const char *p = s + 19;
    int64_t frac = 0;
    int nd = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (nd < 6) {
                frac = frac * 10 + (*p - '0');
                nd++;
            }
            p++;
        }
        if (p == s + 20)
            return -1;
        while (nd < 6) {
            frac *= 10;
            nd++;
        }
    }
    if (strcmp(p, "Z") != 0 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    /* Days from civil (Howard Hinnant's algorithm): no timegm, no TZ. */
    int y = Y - (M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *out = ((days * 86400 + h * 3600 + mi * 60 + sec) * 1000000) + frac;
    return 0;
}

void format_ts_ms(int64_t ms, char *out, size_t outsz)
{
    time_t secs = (time_t)candle_bucket(ms, 1000) / 1000;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outsz, "%s.%03dZ", base, (int)(ms - (int64_t)secs * 1000));
}

void now_ts(char *out, size_t outsz)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outsz, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

int parse_uint_id(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '0' || strlen(s) > 20)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
