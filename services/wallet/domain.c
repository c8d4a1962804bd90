/* Pure rules of the wallet: assets, markets, ids, amounts, addresses, the
 * Kafka events it consumes, and the postings of a trade. No I/O. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/decimal.h"
#include "wallet.h"
#include "common/banned.h"

/* Must stay in sync with the assets rows of migrations/001_ledger.sql.
 * Fees and limits are defaults; config.c overrides them from the
 * environment. */
struct wallet_asset wallet_assets[WALLET_MAX_ASSETS] = {
    {"BTC", 8, ADDR_BTC, 10000, 1000000000LL, 100000000LL},            /* 0.0001, 10, 1 */
    {"ETH", 8, ADDR_HEX40, 100000, 20000000000LL, 2000000000LL},       /* 0.001, 200, 20 */
    {"USDT", 6, ADDR_HEX40, 1000000, 1000000000000LL, 100000000000LL}, /* 1, 1M, 100k */
};

const struct wallet_market wallet_markets[] = {
    {"BTC-USDT", "BTC", "USDT"},
    {"ETH-USDT", "ETH", "USDT"},
};
const size_t wallet_nmarkets = sizeof wallet_markets / sizeof wallet_markets[0];

struct wallet_asset *asset_find(const char *code)
{
    if (!code)
        return NULL;
    for (size_t i = 0; i < WALLET_MAX_ASSETS; i++)
        if (strcmp(wallet_assets[i].code, code) == 0)
            return &wallet_assets[i];
    return NULL;
}

const struct wallet_market *market_find(const char *symbol)
{
    if (!symbol)
        return NULL;
    for (size_t i = 0; i < wallet_nmarkets; i++)
        if (strcmp(wallet_markets[i].symbol, symbol) == 0)
            return &wallet_markets[i];
    return NULL;
}

int valid_user_id(const char *s)
{
    if (!s || s[0] < '1' || s[0] > '9')
        return 0;
    size_t n = strlen(s);
    if (n > USER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int valid_opaque_id(const char *s)
{
    if (!s || !isalnum((unsigned char)s[0]))
        return 0;
    size_t n = strlen(s);
    if (n > ID_MAX)
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
            return 0;
    }
    return 1;
}

int valid_idempotency_key(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > IDEMPOTENCY_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    return 1;
}

static int all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i]))
            return 0;
    return 1;
}

int valid_tx_hash(const char *s)
{
    return s && strlen(s) == 66 && s[0] == '0' && s[1] == 'x' &&
           all_of(s + 2, 64, "0123456789abcdef");
}

int valid_address(const struct wallet_asset *a, const char *s)
{
    if (!a || !s)
        return 0;
    size_t n = strlen(s);
    if (a->addr_kind == ADDR_BTC)
        return n >= 11 && n <= 63 && (strncmp(s, "bc1", 3) == 0 || strncmp(s, "tb1", 3) == 0) &&
               all_of(s + 3, n - 3, "abcdefghijklmnopqrstuvwxyz0123456789");
    return n == 42 && s[0] == '0' && s[1] == 'x' && all_of(s + 2, 40, "0123456789abcdefABCDEF");
}

int amount_from_json(const cJSON *item, int scale, int64_t *out, char *err, size_t errlen)
{
    if (!item) {
        snprintf(err, errlen, "amount is required");
        return -1;
    }
    if (!cJSON_IsString(item)) {
        snprintf(err, errlen, "amount must be a decimal string");
        return -1;
    }
    int64_t v;
    int rc = cm_decimal_parse(item->valuestring, scale, 0, &v);
    switch (rc) {
    case 0: break;
    case CM_DECIMAL_EPRECISION:
        snprintf(err, errlen, "amount has more than %d decimals", scale);
        return -1;
    case CM_DECIMAL_ERANGE: snprintf(err, errlen, "amount is too large"); return -1;
    case CM_DECIMAL_ENEGATIVE: snprintf(err, errlen, "amount must be positive"); return -1;
    default: snprintf(err, errlen, "amount is not a decimal number"); return -1;
    }
    if (v <= 0) {
        snprintf(err, errlen, "amount must be positive");
        return -1;
    }
    if (v > WALLET_AMOUNT_MAX) {
        snprintf(err, errlen, "amount is too large");
        return -1;
    }
    *out = v;
    return 0;
}

int fee_of(int64_t amount, int64_t bps, int64_t *fee)
{
    if (bps < 0 || bps > 10000 || amount < 0)
        return -1;
    return cm_money_mul_div(amount, bps, 10000, CM_ROUND_UP, fee);
}

/* ---- Kafka events */

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static int copy_id(char *dst, size_t n, const char *s, int (*valid)(const char *))
{
    if (!s || !valid(s) || strlen(s) >= n)
        return -1;
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

int64_t parse_ts_ms(const char *s)
{
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    if (*end == '.') {
        int digits = 0;
        for (end++; isdigit((unsigned char)*end); end++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*end - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (*end != 'Z')
        return -1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

int trade_parse(const char *json, size_t len, struct trade *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = -1;
    if (!o) {
        snprintf(err, errlen, "not JSON");
        return -1;
    }
    const char *type = str_field(o, "type");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");
    const char *side = str_field(o, "taker_side");
    if (!type || strcmp(type, "trade") != 0) {
        snprintf(err, errlen, "not a trade");
        goto out;
    }
    if (copy_id(t->id, sizeof t->id, str_field(o, "id"), valid_opaque_id) < 0 ||
        copy_id(t->taker_order, sizeof t->taker_order, str_field(o, "taker_order_id"),
                valid_opaque_id) < 0 ||
        copy_id(t->maker_order, sizeof t->maker_order, str_field(o, "maker_order_id"),
                valid_opaque_id) < 0 ||
        copy_id(t->taker_user, sizeof t->taker_user, str_field(o, "taker_user_id"), valid_user_id) <
            0 ||
        copy_id(t->maker_user, sizeof t->maker_user, str_field(o, "maker_user_id"), valid_user_id) <
            0) {
        snprintf(err, errlen, "bad or missing id field");
        goto out;
    }
    t->m = market_find(str_field(o, "market"));
    if (!t->m) {
        snprintf(err, errlen, "unknown market");
        goto out;
    }
    snprintf(t->market, sizeof t->market, "%s", t->m->symbol);
    if (!cJSON_IsNumber(seq) || seq->valuedouble < 1) {
        snprintf(err, errlen, "bad seq");
        goto out;
    }
    t->seq = (int64_t)seq->valuedouble;
    if (!side || (strcmp(side, "buy") != 0 && strcmp(side, "sell") != 0)) {
        snprintf(err, errlen, "bad taker_side");
        goto out;
    }
    t->taker_buys = strcmp(side, "buy") == 0;
    const struct wallet_asset *base = asset_find(t->m->base), *quote = asset_find(t->m->quote);
    char why[96];
    /* quote_amount is floor(price * quantity): it may be 0 for a dust fill. */
    const cJSON *qa = cJSON_GetObjectItemCaseSensitive(o, "quote_amount");
    if (amount_from_json(cJSON_GetObjectItemCaseSensitive(o, "quantity"), base->scale, &t->quantity,
                         why, sizeof why) < 0 ||
        !cJSON_IsString(qa) ||
        cm_decimal_parse(qa->valuestring, quote->scale, 0, &t->quote_amount) != 0) {
        snprintf(err, errlen, "bad quantity or quote_amount");
        goto out;
    }
    int64_t ts = parse_ts_ms(str_field(o, "ts"));
    t->ts_ms = ts > 0 ? ts : 0;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

const char *trade_buyer_order(const struct trade *t)
{
    return t->taker_buys ? t->taker_order : t->maker_order;
}
const char *trade_seller_order(const struct trade *t)
{
    return t->taker_buys ? t->maker_order : t->taker_order;
}
const char *trade_buyer(const struct trade *t)
{
    return t->taker_buys ? t->taker_user : t->maker_user;
}
const char *trade_seller(const struct trade *t)
{
    return t->taker_buys ? t->maker_user : t->taker_user;
}

static void add_leg(struct leg *legs, int *n, const char *owner, const char *asset, int held,
                    int64_t amount)
{
    if (amount == 0)
        return;
    legs[*n] = (struct leg){owner, asset, held, amount};
    (*n)++;
}

int trade_legs(const struct trade *t, int64_t maker_bps, int64_t taker_bps,
               struct leg legs[TRADE_MAX_LEGS], int64_t *buyer_hold_use, int64_t *seller_hold_use)
{
    int64_t buyer_bps = t->taker_buys ? taker_bps : maker_bps;
    int64_t seller_bps = t->taker_buys ? maker_bps : taker_bps;
    int64_t fee_base, fee_quote;
    if (fee_of(t->quantity, buyer_bps, &fee_base) < 0 ||
        fee_of(t->quote_amount, seller_bps, &fee_quote) < 0)
        return -1;
    int n = 0;
    const char *base = t->m->base, *quote = t->m->quote;
    add_leg(legs, &n, trade_buyer(t), quote, 1, -t->quote_amount);
    add_leg(legs, &n, trade_seller(t), quote, 0, t->quote_amount - fee_quote);
    add_leg(legs, &n, "sys:fees", quote, 0, fee_quote);
    add_leg(legs, &n, trade_seller(t), base, 1, -t->quantity);
    add_leg(legs, &n, trade_buyer(t), base, 0, t->quantity - fee_base);
    add_leg(legs, &n, "sys:fees", base, 0, fee_base);
    *buyer_hold_use = t->quote_amount;
    *seller_hold_use = t->quantity;
    return n;
}

int order_event_parse(const char *json, size_t len, struct order_event *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = -1;
    if (!o) {
        snprintf(err, errlen, "not JSON");
        return -1;
    }
    const char *type = str_field(o, "type");
    if (!type || strncmp(type, "order.", 6) != 0 || strlen(type) >= sizeof e->type) {
        snprintf(err, errlen, "not an order event");
        goto out;
    }
    snprintf(e->type, sizeof e->type, "%s", type);
    if (copy_id(e->id, sizeof e->id, str_field(o, "id"), valid_opaque_id) < 0) {
        snprintf(err, errlen, "bad id");
        goto out;
    }
    const char *order = str_field(o, "order_id");
    if (strcmp(type, "order.rejected") == 0) {
        const char *cmd = str_field(o, "command");
        if (!cmd || strcmp(cmd, "place") != 0 || !order) {
            rc = 0; /* a refused cancel: the order (if any) lives on */
            goto out;
        }
        e->end_reason = "order_rejected";
        e->expected = 0;
    } else if (strcmp(type, "order.accepted") == 0 || strcmp(type, "order.partially_filled") == 0) {
        e->end_reason = NULL;
    } else {
        if (strcmp(type, "order.filled") == 0)
            e->end_reason = "order_filled";
        else if (strcmp(type, "order.cancelled") == 0)
            e->end_reason = "order_cancelled";
        else if (strcmp(type, "order.expired") == 0)
            e->end_reason = "order_expired";
        else {
            rc = 0; /* an event type this wallet does not know: ignore */
            goto out;
        }
        const struct wallet_market *m = market_find(str_field(o, "market"));
        const char *side = str_field(o, "side");
        if (!m || !side || (strcmp(side, "buy") != 0 && strcmp(side, "sell") != 0)) {
            snprintf(err, errlen, "bad market or side");
            goto out;
        }
        int buy = strcmp(side, "buy") == 0;
        const struct wallet_asset *a = asset_find(buy ? m->quote : m->base);
        const cJSON *f =
            cJSON_GetObjectItemCaseSensitive(o, buy ? "filled_quote" : "filled_quantity");
        if (!cJSON_IsString(f) ||
            cm_decimal_parse(f->valuestring, a->scale, 0, &e->expected) != 0) {
            snprintf(err, errlen, "bad filled amount");
            goto out;
        }
    }
    if (copy_id(e->order_id, sizeof e->order_id, order, valid_opaque_id) < 0) {
        snprintf(err, errlen, "bad order_id");
        goto out;
    }
    e->relevant = 1;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}
