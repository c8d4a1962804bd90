/*
 * Commands from exchange.orders.commands (proto/events/exchange.orders.
 * commands/ schemas) into struct me_cmd. The bytes are hostile: any
 * input yields one of three outcomes, never a crash:
 *   OK      a command for the core (which still checks the market rules);
 *   REJECT  identifiable (market, user, order, side, ts all valid) but
 *           malformed otherwise: answered with order.rejected(invalid...)
 *           through me_market_reject, so it takes a seq like any outcome;
 *   SKIP    not even that (not JSON, no market/user/ts...): logged,
 *           counted and skipped, since no schema-valid answer exists.
 * Pure: no I/O, no globals but the markets table (read-only after start).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/decimal.h"
#include "matching.h"
#include "common/banned.h"

static int parse_uint_id(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsString(v))
        return -1;
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (n < 1 || n > 20 || s[0] < '1' || s[0] > '9')
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

static int digits(const char *s, int n, int *out)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

int mt_parse_ts(const char *s, uint64_t *ns)
{
    int y, mo, d, h, mi, se;
    size_t n = strlen(s);
    if (n < 20 || n > 30 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 ||
        digits(s + 8, 2, &d) < 0 || digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &mi) < 0 ||
        digits(s + 17, 2, &se) < 0)
        return -1;
    const char *p = s + 19;
    uint64_t frac = 0;
    if (*p == '.') {
        int k = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, k++)
            frac = frac * 10 + (uint64_t)(*p - '0');
        if (k < 1 || k > 9)
            return -1;
        for (; k < 9; k++)
            frac *= 10;
    }
    if (p[0] != 'Z' || p[1] != 0)
        return -1;
    if (y < 1970 || y > 2500 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60)
        return -1;
    /* days from civil (Howard Hinnant's algorithm) */
    int yy = mo <= 2 ? y - 1 : y;
    int era = yy / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se;
    *ns = (uint64_t)secs * 1000000000u + frac;
    return 0;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int reject(struct mt_cmd *out, int reason, const char *why)
{
    out->reject_reason = reason;
    out->why = why;
    return MT_CMD_REJECT;
}

/* A decimal amount; maps the parser's error to the closest reason. */
static int amount(const cJSON *o, const char *name, int scale, int precision_reason, int64_t *v)
{
    int rc = cm_decimal_from_json(cJSON_GetObjectItemCaseSensitive(o, name), scale, 0, v);
    if (rc == 0)
        return 0;
    if (rc == CM_DECIMAL_EPRECISION)
        return precision_reason;
    if (rc == CM_DECIMAL_ERANGE)
        return ME_R_OVERFLOW;
    return ME_R_INVALID;
}

static int parse_place(const cJSON *o, struct mt_cmd *out)
{
    struct me_cmd *c = &out->cmd;
    const struct mt_market *mk = out->market;
    const char *ot = str(o, "order_type"), *tif = str(o, "time_in_force");
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(o, "post_only");
    const cJSON *price = cJSON_GetObjectItemCaseSensitive(o, "price");
    const cJSON *qty = cJSON_GetObjectItemCaseSensitive(o, "quantity");
    const cJSON *quote = cJSON_GetObjectItemCaseSensitive(o, "quote_amount");
    if (!ot || (strcmp(ot, "limit") != 0 && strcmp(ot, "market") != 0))
        return reject(out, ME_R_INVALID, "order_type");
    c->order_type = strcmp(ot, "limit") == 0 ? ME_LIMIT : ME_MARKET;
    if (!tif)
        return reject(out, ME_R_INVALID, "time_in_force");
    if (strcmp(tif, "GTC") == 0)
        c->tif = ME_GTC;
    else if (strcmp(tif, "IOC") == 0)
        c->tif = ME_IOC;
    else if (strcmp(tif, "FOK") == 0)
        c->tif = ME_FOK;
    else
        return reject(out, ME_R_INVALID, "time_in_force");
    if (!cJSON_IsBool(post))
        return reject(out, ME_R_INVALID, "post_only");
    c->flags = cJSON_IsTrue(post) ? ME_FLAG_POST_ONLY : 0;
    const cJSON *stp = cJSON_GetObjectItemCaseSensitive(o, "stp");
    if (stp) {
        static const char *const names[] = {"none", "cancel_taker", "cancel_maker", "cancel_both"};
        c->stp = 0;
        for (int i = 0; cJSON_IsString(stp) && i < 4; i++)
            if (strcmp(stp->valuestring, names[i]) == 0)
                c->stp = (uint8_t)(ME_STP_NONE + i);
        if (!c->stp)
            return reject(out, ME_R_INVALID, "stp");
        out->has_stp = 1;
    }
    int r;
    if (c->order_type == ME_LIMIT) {
        if (!price || !qty || quote)
            return reject(out, ME_R_INVALID, "limit needs price and quantity, no quote_amount");
        if ((r = amount(o, "price", mk->quote_scale, ME_R_BAD_TICK, &c->price)) != 0)
            return reject(out, r, "price");
        if ((r = amount(o, "quantity", mk->base_scale, ME_R_BAD_LOT, &c->qty)) != 0)
            return reject(out, r, "quantity");
        return MT_CMD_OK;
    }
    if (price || (qty && quote) || (!qty && !quote))
        return reject(out, ME_R_INVALID, "market needs quantity or quote_amount, no price");
    if (qty && (r = amount(o, "quantity", mk->base_scale, ME_R_BAD_LOT, &c->qty)) != 0)
        return reject(out, r, "quantity");
    if (quote) {
        if ((r = amount(o, "quote_amount", mk->quote_scale, ME_R_INVALID, &c->quote)) != 0)
            return reject(out, r, "quote_amount");
        if (c->quote <= 0)
            return reject(out, ME_R_INVALID, "quote_amount");
        out->by_quote = 1;
    }
    return MT_CMD_OK;
}

static int parse(const cJSON *o, struct mt_cmd *out)
{
    struct me_cmd *c = &out->cmd;
    if (!cJSON_IsObject(o)) {
        out->why = "not a JSON object";
        return MT_CMD_SKIP;
    }
    const char *market = str(o, "market");
    if (!market) {
        out->why = "no market";
        return MT_CMD_SKIP;
    }
    out->market = mt_market_find(market, strlen(market));
    if (!out->market) {
        out->why = "unknown market";
        return MT_CMD_NO_MARKET;
    }
    const char *type = str(o, "type");
    if (type && strcmp(type, "order.place") == 0)
        c->type = ME_CMD_PLACE;
    else if (type && strcmp(type, "order.cancel") == 0)
        c->type = ME_CMD_CANCEL;
    else if (type && strcmp(type, "order.cancel_all") == 0)
        c->type = ME_CMD_CANCEL_ALL;
    else {
        out->why = "unknown type";
        return MT_CMD_SKIP;
    }
    const char *ts = str(o, "ts");
    if (!ts || mt_parse_ts(ts, &c->ts) < 0) {
        out->why = "bad ts";
        return MT_CMD_SKIP;
    }
    snprintf(out->ts, sizeof out->ts, "%s", ts);
    if (parse_uint_id(cJSON_GetObjectItemCaseSensitive(o, "user_id"), &c->user_id) < 0) {
        out->why = "bad user_id";
        return MT_CMD_SKIP;
    }
    if (c->type != ME_CMD_CANCEL_ALL &&
        parse_uint_id(cJSON_GetObjectItemCaseSensitive(o, "order_id"), &c->order_id) < 0) {
        out->why = "bad order_id";
        return MT_CMD_SKIP;
    }
    if (c->type == ME_CMD_PLACE) {
        const char *side = str(o, "side");
        if (side && strcmp(side, "buy") == 0)
            c->side = ME_BUY;
        else if (side && strcmp(side, "sell") == 0)
            c->side = ME_SELL;
        else {
            out->why = "bad side";
            return MT_CMD_SKIP;
        }
    }
    /* Identifiable from here on: anything else wrong is a rejection. */
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(o, "version");
    if (!cJSON_IsNumber(version) || version->valuedouble != 1)
        return reject(out, ME_R_INVALID, "version");
    if (!str(o, "id"))
        return reject(out, ME_R_INVALID, "id");
    if (c->type == ME_CMD_PLACE)
        return parse_place(o, out);
    return MT_CMD_OK;
}

int mt_command_parse(const void *data, size_t len, struct mt_cmd *out)
{
    memset(out, 0, sizeof *out);
    if (!data || len == 0 || len > 64 * 1024) {
        out->why = "empty or oversized";
        return MT_CMD_SKIP;
    }
    cJSON *o = cJSON_ParseWithLength(data, len);
    if (!o) {
        out->why = "not JSON";
        return MT_CMD_SKIP;
    }
    int rc = parse(o, out);
    cJSON_Delete(o);
    return rc;
}
