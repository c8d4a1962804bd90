/*
 * Request input checks for the catalog: pure functions over cJSON trees,
 * so every bad-input path has a unit test (tests/test_validate.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "catalog.h"
#include "common/banned.h"

#define MAX_SAFE_INT 9007199254740991LL /* 2^53 - 1: exact in a JSON double */

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

int json_int(const cJSON *item, int64_t min, int64_t max, int64_t *out)
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

int like_pattern(const char *q, char *out, size_t outsz)
{
    size_t o = 0;
    if (outsz < 3)
        return -1;
    out[o++] = '%';
    for (const char *p = q; *p; p++) {
        int esc = (*p == '\\' || *p == '%' || *p == '_');
        if (o + (size_t)esc + 3 > outsz)
            return -1;
        if (esc)
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o++] = '%';
    out[o] = '\0';
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

/* A string field of 1..max characters (min 0 allowed via min). */
static int text_field(const cJSON *item, const char *field, long min, long max, const char **out,
                      char *err, size_t errlen)
{
    if (!cJSON_IsString(item)) {
        snprintf(err, errlen, "%s must be a string", field);
        return -1;
    }
    long n = cm_utf8_chars(item->valuestring);
    if (n < 0) {
        snprintf(err, errlen, "%s must be valid UTF-8 without control characters", field);
        return -1;
    }
    if (n < min || n > max) {
        snprintf(err, errlen, "%s must be %ld to %ld characters", field, min, max);
        return -1;
    }
    *out = item->valuestring;
    return 0;
}

/* Rejects members we do not know: a typo ("prise") must not pass silently. */
static int only_fields(const cJSON *body, const char *const *allowed, char *err, size_t errlen)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, body)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (it->string && strcmp(it->string, *a) == 0)
                ok = 1;
        if (!ok) {
            snprintf(err, errlen, "unknown field \"%.64s\"", it->string ? it->string : "");
            return -1;
        }
    }
    return 0;
}

int validate_product(const cJSON *body, int partial, struct product_input *out, char *err,
                     size_t errlen)
{
    static const char *const fields[] = {"name",  "description", "price", "currency",
                                         "stock", "category_id", NULL};
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "body must be a JSON object");
        return -1;
    }
    if (only_fields(body, fields, err, errlen) < 0)
        return -1;
    const cJSON *it;
    if ((it = cJSON_GetObjectItemCaseSensitive(body, "name"))) {
        if (text_field(it, "name", 1, PRODUCT_NAME_MAX_CHARS, &out->name, err, errlen) < 0)
            return -1;
        out->has |= PF_NAME;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(body, "description"))) {
        if (text_field(it, "description", 0, PRODUCT_DESC_MAX_CHARS, &out->description, err,
                       errlen) < 0)
            return -1;
        out->has |= PF_DESC;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(body, "price"))) {
        if (cJSON_IsNumber(it)) {
            snprintf(err, errlen, "price must be a decimal string such as \"12.50\", not a number");
            return -1;
        }
        int rc = cm_decimal_from_json(it, PRICE_SCALE, 0, &out->price_cents);
        if (rc == CM_DECIMAL_EPRECISION) {
            snprintf(err, errlen, "price has more than %d decimals", PRICE_SCALE);
            return -1;
        }
        if (rc == CM_DECIMAL_ENEGATIVE) {
            snprintf(err, errlen, "price must not be negative");
            return -1;
        }
        if (rc < 0 || out->price_cents > PRICE_MAX_CENTS) {
            snprintf(err, errlen, "price must be a decimal string from 0.00 to 1000000.00");
            return -1;
        }
        out->has |= PF_PRICE;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(body, "currency")) &&
        (!cJSON_IsString(it) || strcmp(it->valuestring, SHOP_CURRENCY) != 0)) {
        snprintf(err, errlen, "currency must be \"%s\" (the shop's only currency)", SHOP_CURRENCY);
        return -1;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(body, "stock"))) {
        if (json_int(it, 0, STOCK_MAX, &out->stock) < 0) {
            snprintf(err, errlen, "stock must be an integer from 0 to %d", STOCK_MAX);
            return -1;
        }
        out->has |= PF_STOCK;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(body, "category_id"))) {
        if (!cJSON_IsNull(it) && json_id(it, &out->category_id) < 0) {
            snprintf(err, errlen, "category_id must be an id (a string of digits) or null");
            return -1;
        }
        out->has |= PF_CATEGORY;
    }
    if (partial) {
        if (!out->has) {
            snprintf(err, errlen, "nothing to update");
            return -1;
        }
        return 0;
    }
    if (!(out->has & PF_NAME)) {
        snprintf(err, errlen, "name is required");
        return -1;
    }
    if (!(out->has & PF_PRICE)) {
        snprintf(err, errlen, "price is required");
        return -1;
    }
    if (!(out->has & PF_STOCK)) {
        out->stock = 0;
        out->has |= PF_STOCK;
    }
    if (!(out->has & PF_DESC)) {
        out->description = "";
        out->has |= PF_DESC;
    }
    return 0;
}

int validate_category(const cJSON *body, struct category_input *out, char *err, size_t errlen)
{
    static const char *const fields[] = {"name", "parent_id", NULL};
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "body must be a JSON object");
        return -1;
    }
    if (only_fields(body, fields, err, errlen) < 0)
        return -1;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (!name) {
        snprintf(err, errlen, "name is required");
        return -1;
    }
    if (text_field(name, "name", 1, PRODUCT_NAME_MAX_CHARS, &out->name, err, errlen) < 0)
        return -1;
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(body, "parent_id");
    if (parent && !cJSON_IsNull(parent) && json_id(parent, &out->parent_id) < 0) {
        snprintf(err, errlen, "parent_id must be an id (a string of digits) or null");
        return -1;
    }
    return 0;
}

static int order_id_field(const cJSON *body, int64_t *out, char *err, size_t errlen)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "order_id");
    if (json_id(id, out) < 0) {
        snprintf(err, errlen, "order_id must be an id (a string of digits)");
        return -1;
    }
    return 0;
}

int validate_reserve(const cJSON *body, struct reserve_input *out, char *err, size_t errlen)
{
    static const char *const fields[] = {"order_id", "items", NULL};
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "body must be a JSON object");
        return -1;
    }
    if (only_fields(body, fields, err, errlen) < 0 ||
        order_id_field(body, &out->order_id, err, errlen) < 0)
        return -1;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(body, "items");
    int n = cJSON_GetArraySize(items);
    if (!cJSON_IsArray(items) || n < 1 || n > RESERVE_MAX_ITEMS) {
        snprintf(err, errlen, "items must be an array of 1 to %d items", RESERVE_MAX_ITEMS);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        struct stock_item *si = &out->items[out->nitems];
        if (!cJSON_IsObject(it) ||
            json_id(cJSON_GetObjectItemCaseSensitive(it, "product_id"), &si->product_id) < 0) {
            snprintf(err, errlen, "items[%zu].product_id must be an id (a string of digits)",
                     out->nitems);
            return -1;
        }
        if (json_int(cJSON_GetObjectItemCaseSensitive(it, "quantity"), 1, QTY_MAX, &si->quantity) <
            0) {
            snprintf(err, errlen, "items[%zu].quantity must be an integer from 1 to %d",
                     out->nitems, QTY_MAX);
            return -1;
        }
        for (size_t j = 0; j < out->nitems; j++)
            if (out->items[j].product_id == si->product_id) {
                snprintf(err, errlen, "product %lld appears twice in items",
                         (long long)si->product_id);
                return -1;
            }
        out->nitems++;
    }
    return 0;
}

int validate_release(const cJSON *body, int64_t *order_id, char *err, size_t errlen)
{
    static const char *const fields[] = {"order_id", NULL};
    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "body must be a JSON object");
        return -1;
    }
    if (only_fields(body, fields, err, errlen) < 0)
        return -1;
    return order_id_field(body, order_id, err, errlen);
}
