/*
 * The order service's pure rules: input validation, the status state
 * machine, money totals and the event's JSON. No I/O, so every rule has a
 * unit test (tests/test_domain.c).
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/decimal.h"
#include "order.h"
#include "common/banned.h"

#define MAX_SAFE_INT 9007199254740991LL

static const char *const STATUS_NAMES[ST_COUNT] = {"pending", "paid", "shipped", "delivered",
                                                   "cancelled"};

const char *status_name(enum order_status s)
{
    return (unsigned)s < ST_COUNT ? STATUS_NAMES[s] : "unknown";
}

int status_parse(const char *s)
{
    for (int i = 0; s && i < ST_COUNT; i++)
        if (strcmp(s, STATUS_NAMES[i]) == 0)
            return i;
    return -1;
}

int transition_allowed(enum order_status from, enum order_status to)
{
    /* rows: from; columns: to (pending paid shipped delivered cancelled) */
    static const unsigned char allowed[ST_COUNT][ST_COUNT] = {
        [ST_PENDING] = {0, 1, 0, 0, 1},   [ST_PAID] = {0, 0, 1, 0, 1},
        [ST_SHIPPED] = {0, 0, 0, 1, 0},   [ST_DELIVERED] = {0, 0, 0, 0, 0},
        [ST_CANCELLED] = {0, 0, 0, 0, 0},
    };
    if ((unsigned)from >= ST_COUNT || (unsigned)to >= ST_COUNT)
        return 0;
    return allowed[from][to];
}

int may_request(int is_admin, enum order_status to)
{
    return is_admin || to == ST_CANCELLED;
}

int parse_id(const char *s, int64_t *out)
{
    /* canonical digits only, as the API's UintId: no sign, no leading zero */
    if (!s || *s < '1' || *s > '9' || strlen(s) > 19)
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < 1)
        return -1;
    *out = v;
    return 0;
}

int has_role(const char *roles, const char *role)
{
    size_t rl = strlen(role);
    const char *p = roles;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if ((size_t)(b - a) == rl && memcmp(a, role, rl) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int valid_user_id(const char *s)
{
    int64_t v;
    return parse_id(s, &v) == 0;
}

int valid_idempotency_key(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > IDEMPOTENCY_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static int json_int(const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double d = item->valuedouble;
    if (!(d >= -(double)MAX_SAFE_INT && d <= (double)MAX_SAFE_INT))
        return -1;
    int64_t v = (int64_t)d;
    if ((double)v != d || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int json_id(const cJSON *item, int64_t *out)
{
    if (cJSON_IsString(item))
        return parse_id(item->valuestring, out);
    return json_int(item, 1, MAX_SAFE_INT, out);
}

static int only_fields(const cJSON *obj, const char *const *allowed, const char *where, char *err,
                       size_t errlen)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (it->string && strcmp(it->string, *a) == 0)
                ok = 1;
        if (!ok) {
            snprintf(err, errlen, "unknown field \"%s%.64s\"", where, it->string ? it->string : "");
            return -1;
        }
    }
    return 0;
}

static int text(const cJSON *obj, const char *field, int required, long max, const char **out,
                char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);
    *out = NULL;
    if (!it || cJSON_IsNull(it)) {
        if (required) {
            snprintf(err, errlen, "shipping_address.%s is required", field);
            return -1;
        }
        return 0;
    }
    long n = cJSON_IsString(it) ? cm_utf8_chars(it->valuestring) : -1;
    if (n < 1 || n > max) {
        snprintf(err, errlen, "shipping_address.%s must be a string of 1 to %ld characters", field,
                 max);
        return -1;
    }
    *out = it->valuestring;
    return 0;
}

int validate_order_request(const cJSON *body, struct order_request *req, char *err, size_t errlen)
{
    static const char *const top[] = {"items", "shipping_address", NULL};
    static const char *const item_fields[] = {"product_id", "quantity", NULL};
    static const char *const addr_fields[] = {"name",        "line1",   "line2", "city",
                                              "postal_code", "country", NULL};
    memset(req, 0, sizeof *req);
    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "body must be a JSON object");
        return -1;
    }
    if (only_fields(body, top, "", err, errlen) < 0)
        return -1;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(body, "items");
    int n = cJSON_GetArraySize(items);
    if (!cJSON_IsArray(items) || n < 1 || n > ORDER_MAX_ITEMS) {
        snprintf(err, errlen, "items must be an array of 1 to %d items", ORDER_MAX_ITEMS);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        struct order_item *oi = &req->items[req->nitems];
        if (!cJSON_IsObject(it)) {
            snprintf(err, errlen, "items[%zu] must be an object", req->nitems);
            return -1;
        }
        if (only_fields(it, item_fields, "items[].", err, errlen) < 0)
            return -1;
        if (json_id(cJSON_GetObjectItemCaseSensitive(it, "product_id"), &oi->product_id) < 0) {
            snprintf(err, errlen, "items[%zu].product_id must be an id (a string of digits)",
                     req->nitems);
            return -1;
        }
        if (json_int(cJSON_GetObjectItemCaseSensitive(it, "quantity"), 1, QTY_MAX, &oi->quantity) <
            0) {
            snprintf(err, errlen, "items[%zu].quantity must be an integer from 1 to %d",
                     req->nitems, QTY_MAX);
            return -1;
        }
        for (size_t j = 0; j < req->nitems; j++)
            if (req->items[j].product_id == oi->product_id) {
                snprintf(err, errlen, "product %lld appears twice in items",
                         (long long)oi->product_id);
                return -1;
            }
        req->nitems++;
    }
    const cJSON *addr = cJSON_GetObjectItemCaseSensitive(body, "shipping_address");
    if (!cJSON_IsObject(addr)) {
        snprintf(err, errlen, "shipping_address must be an object");
        return -1;
    }
    if (only_fields(addr, addr_fields, "shipping_address.", err, errlen) < 0)
        return -1;
    struct address *a = &req->address;
    if (text(addr, "name", 1, TEXT_MAX_CHARS, &a->name, err, errlen) < 0 ||
        text(addr, "line1", 1, TEXT_MAX_CHARS, &a->line1, err, errlen) < 0 ||
        text(addr, "line2", 0, TEXT_MAX_CHARS, &a->line2, err, errlen) < 0 ||
        text(addr, "city", 1, TEXT_MAX_CHARS, &a->city, err, errlen) < 0 ||
        text(addr, "postal_code", 1, 20, &a->postal_code, err, errlen) < 0 ||
        text(addr, "country", 1, 2, &a->country, err, errlen) < 0)
        return -1;
    if (strlen(a->country) != 2 || a->country[0] < 'A' || a->country[0] > 'Z' ||
        a->country[1] < 'A' || a->country[1] > 'Z') {
        snprintf(err, errlen, "shipping_address.country must be an ISO 3166 code such as \"DE\"");
        return -1;
    }
    return 0;
}

static int field(struct cm_buf *b, const char *name, const char *value, int first)
{
    if (!value)
        return 0;
    int rc = cm_buf_printf(b, "%s\"%s\":\"", first ? "" : ",", name);
    rc |= cm_buf_json_escape(b, value);
    rc |= cm_buf_puts(b, "\"");
    return rc;
}

int address_render(struct cm_buf *b, const struct address *a)
{
    int rc = cm_buf_puts(b, "{");
    rc |= field(b, "name", a->name, 1);
    rc |= field(b, "line1", a->line1, 0);
    rc |= field(b, "line2", a->line2, 0);
    rc |= field(b, "city", a->city, 0);
    rc |= field(b, "postal_code", a->postal_code, 0);
    rc |= field(b, "country", a->country, 0);
    rc |= cm_buf_puts(b, "}");
    return rc ? -1 : 0;
}

int request_fingerprint(const struct order_request *req, char *out)
{
    struct cm_buf b;
    cm_buf_init(&b, 1u << 20);
    int rc = 0;
    for (size_t i = 0; i < req->nitems; i++)
        rc |= cm_buf_printf(&b, "%lld:%lld;", (long long)req->items[i].product_id,
                            (long long)req->items[i].quantity);
    rc |= address_render(&b, &req->address);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (rc || !b.data || EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32) {
        cm_buf_release(&b);
        return -1;
    }
    cm_buf_release(&b);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int order_totals(struct order_item *items, size_t n, int64_t *total)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].unit_price_cents < 0 || items[i].quantity < 1 ||
            cm_money_mul_div(items[i].unit_price_cents, items[i].quantity, 1, CM_ROUND_DOWN,
                             &items[i].line_total_cents) < 0 ||
            cm_money_add(sum, items[i].line_total_cents, &sum) < 0)
            return -1;
    }
    *total = sum;
    return 0;
}

int event_render(struct cm_buf *b, const char *event_id, const char *ts, int64_t order_id,
                 const char *user_id, int from, enum order_status to, int64_t total_cents)
{
    char total[CM_DECIMAL_STR_MAX];
    if (cm_decimal_format(total_cents, PRICE_SCALE, total, sizeof total) < 0)
        return -1;
    int rc = cm_buf_printf(b,
                           "{\"type\":\"shop_order.status_changed\",\"version\":1,\"id\":\"%s\","
                           "\"ts\":\"%s\",\"order_id\":\"%lld\",\"user_id\":\"",
                           event_id, ts, (long long)order_id);
    rc |= cm_buf_json_escape(b, user_id);
    if (from < 0)
        rc |= cm_buf_puts(b, "\",\"from\":null");
    else
        rc |= cm_buf_printf(b, "\",\"from\":\"%s\"", status_name((enum order_status)from));
    rc |= cm_buf_printf(b, ",\"to\":\"%s\",\"currency\":\"" SHOP_CURRENCY "\",\"total\":\"%s\"}",
                        status_name(to), total);
    return rc ? -1 : 0;
}

void event_id_new(char out[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)out;
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            r[i] = (unsigned char)(x >> 56);
        }
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

void utc_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.20s.%03dZ", day, (int)(ts.tv_nsec / 1000000) % 1000);
}
