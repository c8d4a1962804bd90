/*
 * Calls to the catalog (common/http_client.h: per-attempt timeout, retries
 * with jittered backoff for idempotent calls, circuit breaker "catalog").
 * Reserve and release are idempotent by order id, so they are retried too.
 */
#include <stdio.h>
#include <string.h>

#include "common/decimal.h"
#include "common/http_client.h"
#include "common/log.h"
#include "order.h"
#include "common/banned.h"

static struct cm_http_client *g_client;

int catalog_client_open(const char *base_url, int64_t timeout_ms, int64_t breaker_open_ms)
{
    struct cm_http_client_config cfg = {
        .name = "catalog",
        .base_url = base_url,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = timeout_ms < 1000 ? timeout_ms : 1000,
        .max_retries = 1,
        .pool_size = 16,
        .breaker = {.consecutive_failures = 5, .open_ms = breaker_open_ms},
    };
    g_client = cm_http_client_new(&cfg);
    return g_client ? 0 : -1;
}

void catalog_client_close(void)
{
    cm_http_client_free(g_client);
    g_client = NULL;
}

/* The item an error names in its details ("items/<i>/product_id"): its
 * product id, or 0 when there is none. */
static int64_t error_product(const struct cm_http_response *resp, const struct order_item *items,
                             size_t n)
{
    cJSON *j = cJSON_Parse(resp->body.data ? resp->body.data : "");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(e, "details"), 0);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, "field");
    int64_t id = 0;
    unsigned long index;
    int used = 0;
    if (cJSON_IsString(f) && sscanf(f->valuestring, "items/%lu/product_id%n", &index, &used) == 1 &&
        f->valuestring[used] == '\0' && index < n)
        id = items[index].product_id;
    cJSON_Delete(j);
    return id;
}

static int failed(const char *what, const struct cm_http_response *resp)
{
    cm_warn("catalog %s failed: %s, status %ld", what, cm_http_client_outcome_name(resp->outcome),
            resp->status);
    return CAT_UNAVAILABLE;
}

int catalog_product(int64_t product_id, char *name, size_t namesz, int64_t *price_cents)
{
    char path[64];
    snprintf(path, sizeof path, "/catalog/products/%lld", (long long)product_id);
    struct cm_http_response resp;
    int rc = CAT_UNAVAILABLE;
    if (cm_http_client_get(g_client, path, &resp) < 0) {
        rc = failed("product read", &resp);
    } else if (resp.status == 404) {
        rc = CAT_NO_PRODUCT;
    } else if (resp.status == 200) {
        cJSON *j = cJSON_Parse(resp.body.data ? resp.body.data : "");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "name");
        if (cJSON_IsString(n) && cm_decimal_from_json(cJSON_GetObjectItemCaseSensitive(j, "price"),
                                                      PRICE_SCALE, 0, price_cents) == 0) {
            snprintf(name, namesz, "%s", n->valuestring);
            rc = CAT_OK;
        } else {
            cm_error("catalog: unexpected product body for %lld", (long long)product_id);
        }
        cJSON_Delete(j);
    } else {
        rc = failed("product read", &resp);
    }
    cm_http_response_release(&resp);
    return rc;
}

static int post(const char *path, const char *body, struct cm_http_response *resp)
{
    struct cm_http_request req = {
        .method = "POST", .path = path, .body = body, .body_len = strlen(body), .idempotent = 1};
    return cm_http_client_do(g_client, &req, resp);
}

int catalog_reserve(int64_t order_id, struct order_item *items, size_t n, int64_t *product)
{
    struct cm_buf b;
    cm_buf_init(&b, 1u << 16);
    int brc = cm_buf_printf(&b, "{\"order_id\":\"%lld\",\"items\":[", (long long)order_id);
    for (size_t i = 0; i < n; i++)
        brc |= cm_buf_printf(&b, "%s{\"product_id\":\"%lld\",\"quantity\":%lld}", i ? "," : "",
                             (long long)items[i].product_id, (long long)items[i].quantity);
    brc |= cm_buf_puts(&b, "]}");
    if (brc) {
        cm_buf_release(&b);
        return CAT_UNAVAILABLE;
    }
    struct cm_http_response resp;
    int rc = CAT_UNAVAILABLE;
    *product = 0;
    if (post("/internal/stock/reserve", b.data, &resp) < 0) {
        rc = failed("reserve", &resp);
    } else if (resp.status == 409 || resp.status == 422) {
        *product = error_product(&resp, items, n);
        rc = resp.status == 422 ? CAT_NO_PRODUCT : *product ? CAT_OUT_OF_STOCK : CAT_CONFLICT;
    } else if (resp.status == 200) {
        /* The prices the stock was reserved at are the prices charged. */
        cJSON *j = cJSON_Parse(resp.body.data ? resp.body.data : "");
        const cJSON *it;
        size_t matched = 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "items"))
        {
            int64_t pid, price;
            if (json_id(cJSON_GetObjectItemCaseSensitive(it, "product_id"), &pid) < 0 ||
                cm_decimal_from_json(cJSON_GetObjectItemCaseSensitive(it, "unit_price"),
                                     PRICE_SCALE, 0, &price) < 0)
                continue;
            for (size_t i = 0; i < n; i++)
                if (items[i].product_id == pid) {
                    items[i].unit_price_cents = price;
                    matched++;
                }
        }
        cJSON_Delete(j);
        rc = matched == n ? CAT_OK : CAT_UNAVAILABLE;
        if (rc != CAT_OK)
            cm_error("catalog: reservation of order %lld does not match its items",
                     (long long)order_id);
    } else {
        rc = failed("reserve", &resp);
    }
    cm_http_response_release(&resp);
    cm_buf_release(&b);
    return rc;
}

int catalog_release(int64_t order_id)
{
    char body[64];
    snprintf(body, sizeof body, "{\"order_id\":\"%lld\"}", (long long)order_id);
    struct cm_http_response resp;
    int rc;
    if (post("/internal/stock/release", body, &resp) < 0)
        rc = failed("release", &resp);
    else if (resp.status == 200 || resp.status == 404)
        rc = CAT_OK;
    else
        rc = failed("release", &resp);
    cm_http_response_release(&resp);
    return rc;
}
