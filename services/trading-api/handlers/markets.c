/*
 * /v1/markets*: the market rules, public trades, candles (built from the
 * trades table on request), the book (proxied from matching), the ticker
 * and the SSE stream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "../trading.h"
#include "common/banned.h"

#define CANDLE_MAX_TRADES 200000

static void add_dec(cJSON *o, const char *name, int64_t v, int scale)
{
    char buf[CM_DECIMAL_STR_MAX];
    cm_decimal_format(v, scale, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

static const struct market *market_param(struct cm_http_req *r)
{
    const struct market *m =
        market_find(trading_markets, trading_nmarkets, cm_http_req_param(r, "market"));
    if (!m)
        cm_http_reply_error(r, 404, "not_found", "unknown market");
    return m;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_markets_list(struct cm_http_req *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "markets");
    for (size_t i = 0; i < trading_nmarkets; i++)
        cJSON_AddItemToArray(a, market_json(&trading_markets[i]));
    cm_http_reply_json(r, 200, j);
}

static cJSON *trade_json(const struct market *m, const struct trade_row *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    add_dec(o, "price", t->price, m->quote_scale);
    add_dec(o, "quantity", t->qty, m->base_scale);
    add_dec(o, "quote_amount", t->quote, m->quote_scale);
    cJSON_AddStringToObject(o, "taker_side", t->taker_side);
    cJSON_AddStringToObject(o, "ts", t->ts);
    return o;
}

void h_market_trades(struct cm_http_req *r)
{
    const struct market *m = market_param(r);
    if (!m)
        return;
    const char *cursor = cm_http_req_query(r, "cursor"), *lim = cm_http_req_query(r, "limit");
    uint64_t before = 0;
    long limit = 50;
    char *end = NULL;
    if ((cursor && parse_uint_id(cursor, &before) < 0) || before > INT64_MAX) {
        cm_http_reply_error(r, 400, "invalid_request", "malformed cursor");
        return;
    }
    if (lim && ((limit = strtol(lim, &end, 10)) < 1 || limit > 500 || *end)) {
        cm_http_reply_error(r, 400, "invalid_request", "limit must be 1..500");
        return;
    }
    struct trade_row *rows = NULL;
    size_t n = 0;
    if (store_trades_list(m->symbol, (int64_t)before, (int)limit, &rows, &n) != ST_OK) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(j, "items");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(items, trade_json(m, &rows[i]));
    if (n == (size_t)limit) {
        char c[24];
        snprintf(c, sizeof c, "%lld", (long long)rows[n - 1].seq);
        cJSON_AddStringToObject(j, "next_cursor", c);
    } else {
        cJSON_AddNullToObject(j, "next_cursor");
    }
    free(rows);
    cm_http_reply_json(r, 200, j);
}

static int ts_query(struct cm_http_req *r, const char *name, int64_t *ms)
{
    const char *v = cm_http_req_query(r, name);
    int64_t us;
    if (!v)
        return 0;
    if (parse_ts_us(v, &us) < 0) {
        cm_http_reply_error(r, 400, "invalid_request", "%s must be an RFC 3339 UTC time", name);
        return -1;
    }
    *ms = us / 1000;
    return 0;
}

void h_market_candles(struct cm_http_req *r)
{
    const struct market *m = market_param(r);
    if (!m)
        return;
    const char *iv = cm_http_req_query(r, "interval");
    int64_t interval = candle_interval_ms(iv);
    if (interval < 0) {
        cm_http_reply_error(r, 400, "invalid_request", "interval must be 1m, 5m, 1h or 1d");
        return;
    }
    const char *lim = cm_http_req_query(r, "limit");
    long limit = 100;
    char *end = NULL;
    if (lim && ((limit = strtol(lim, &end, 10)) < 1 || limit > 1000 || *end)) {
        cm_http_reply_error(r, 400, "invalid_request", "limit must be 1..1000");
        return;
    }
    int64_t to = wall_ms() + 1, from = INT64_MIN;
    int has_from = cm_http_req_query(r, "from") != NULL;
    if (ts_query(r, "from", &from) < 0 || ts_query(r, "to", &to) < 0)
        return;
    if (!has_from) /* the last `limit` intervals */
        from = candle_bucket(to - 1, interval) - (limit - 1) * interval;
    from = candle_bucket(from, interval) == from ? from : candle_bucket(from, interval) + interval;
    struct trade_pt *pts = NULL;
    size_t n = 0;
    if (store_trades_range(m->symbol, from * 1000, to * 1000, CANDLE_MAX_TRADES, &pts, &n) !=
        ST_OK) {
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    struct candle *cs = calloc((size_t)limit, sizeof *cs);
    int k = cs ? candles_build(pts, n, interval, cs, (size_t)limit) : -1;
    free(pts);
    if (k < 0) {
        free(cs);
        cm_http_reply_error(r, 500, "internal", "volume overflow");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "market", m->symbol);
    cJSON_AddStringToObject(j, "interval", iv);
    cJSON *a = cJSON_AddArrayToObject(j, "candles");
    for (int i = 0; i < k; i++) {
        char t[40];
        cJSON *c = cJSON_CreateObject();
        format_ts_ms(cs[i].open_ms, t, sizeof t);
        cJSON_AddStringToObject(c, "open_time", t);
        add_dec(c, "open", cs[i].open, m->quote_scale);
        add_dec(c, "high", cs[i].high, m->quote_scale);
        add_dec(c, "low", cs[i].low, m->quote_scale);
        add_dec(c, "close", cs[i].close, m->quote_scale);
        add_dec(c, "volume", cs[i].volume, m->base_scale);
        add_dec(c, "quote_volume", cs[i].quote_volume, m->quote_scale);
        cJSON_AddNumberToObject(c, "trades", (double)cs[i].trades);
        cJSON_AddItemToArray(a, c);
    }
    free(cs);
    cm_http_reply_json(r, 200, j);
}

void h_market_book(struct cm_http_req *r)
{
    const struct market *m = market_param(r);
    if (!m)
        return;
    const char *d = cm_http_req_query(r, "depth");
    long depth = 20;
    char *end = NULL;
    if (d && ((depth = strtol(d, &end, 10)) < 1 || depth > 1000 || *end)) {
        cm_http_reply_error(r, 400, "invalid_request", "depth must be 1..1000");
        return;
    }
    char *body = NULL;
    int up = matching_book(m->symbol, (int)depth, &body, trading_cfg.matching_timeout_ms);
    if (up == UP_OK)
        cm_http_reply_json_str(r, 200, body);
    else if (up == UP_TIMEOUT)
        cm_http_reply_error(r, 504, "upstream_timeout", "matching did not answer in time");
    else
        cm_http_reply_error(r, 503, "service_unavailable", "matching is unavailable");
    free(body);
}

/* best price of the first level of side ("bids"/"asks") of a Book body. */
static void best_from_book(const char *body, const struct market *m, cJSON *out)
{
    cJSON *b = cJSON_Parse(body);
    static const char *const sides[][2] = {{"bids", "best_bid_price"}, {"asks", "best_ask_price"}};
    for (int i = 0; b && i < 2; i++) {
        const cJSON *lv = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, sides[i][0]), 0);
        int64_t p;
        if (lv && cm_decimal_from_json(cJSON_GetObjectItemCaseSensitive(lv, "price"),
                                       m->quote_scale, 0, &p) == 0)
            add_dec(out, sides[i][1], p, m->quote_scale);
    }
    cJSON_Delete(b);
}

void h_market_ticker(struct cm_http_req *r)
{
    const struct market *m = market_param(r);
    if (!m)
        return;
    int64_t now = wall_ms();
    struct trade_row *last = NULL;
    size_t nl = 0;
    struct trade_pt *pts = NULL;
    size_t n = 0;
    if (store_trades_list(m->symbol, 0, 1, &last, &nl) != ST_OK ||
        store_trades_range(m->symbol, (now - 86400000) * 1000, (now + 1) * 1000, CANDLE_MAX_TRADES,
                           &pts, &n) != ST_OK) {
        free(last);
        cm_http_reply_error(r, 503, "service_unavailable", "database unavailable");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "market", m->symbol);
    if (nl == 1)
        add_dec(j, "last_price", last[0].price, m->quote_scale);
    char *book = NULL;
    /* Best bid/ask only if matching answers quickly; the rest stands alone. */
    if (matching_book(m->symbol, 1, &book, 100) == UP_OK)
        best_from_book(book, m, j);
    free(book);
    struct candle day;
    int k = n ? candles_build(pts, n, INT64_MAX / 4, &day, 1) : 0;
    if (k == 1) {
        add_dec(j, "open", day.open, m->quote_scale);
        add_dec(j, "high", day.high, m->quote_scale);
        add_dec(j, "low", day.low, m->quote_scale);
    } else {
        day.volume = day.quote_volume = 0;
    }
    add_dec(j, "volume", day.volume, m->base_scale);
    add_dec(j, "quote_volume", day.quote_volume, m->quote_scale);
    char ts[40];
    format_ts_ms(now, ts, sizeof ts);
    cJSON_AddStringToObject(j, "ts", ts);
    free(last);
    free(pts);
    cm_http_reply_json(r, 200, j);
}

void h_market_stream(struct cm_http_req *r)
{
    const struct market *m = market_param(r);
    if (!m)
        return;
    stream_subscribe(r, m);
}
