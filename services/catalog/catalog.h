#ifndef CATALOG_CATALOG_H
#define CATALOG_CATALOG_H
/*
 * The catalog service: products, categories and stock (docs/shop.md).
 *
 * Layers, one file each: config.c (environment), routes.c (the route
 * table), handlers/<resource>.c (parse, validate, call the store, render),
 * validate.c (pure input checks, unit-tested), store.c (PostgreSQL),
 * cache.c (Redis cache-aside for product reads). Handlers never call libpq
 * or hiredis directly.
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/utf8.h"
#include "common/buf.h"
#include "common/http_server.h"

/* ---- config.c */
struct catalog_config {
    int port;
    const char *database_url;
    const char *redis_url;
    const char *admin_token;
    const char *migrations_dir;
    int log_level;         /* enum cm_log_level */
    int64_t cache_ttl_ms;  /* 0 disables the cache (benchmarks: uncached figure) */
    int64_t cache_lock_ms; /* stampede lock lifetime */
    int64_t redis_timeout_ms;
    unsigned threads;
    size_t max_body;
    int64_t drain_delay_ms;   /* readiness fails this long before accept stops */
    int64_t drain_timeout_ms; /* in-flight requests get this long */
};

/* Reads the environment; -1 after printing one line per problem. */
int catalog_config_load(struct catalog_config *c);

/* ---- validate.c: pure checks on request input (no I/O) */
#define PRODUCT_NAME_MAX_CHARS 200
#define PRODUCT_DESC_MAX_CHARS 4000
#define PRICE_MAX_CENTS 100000000LL /* 1,000,000.00 */
#define STOCK_MAX 1000000
#define QTY_MAX 1000
#define RESERVE_MAX_ITEMS 100
#define PRICE_SCALE 2
#define SHOP_CURRENCY "USD" /* the shop has one currency */

/* Product fields from a POST (all required but description/category) or a
 * PUT (any subset, at least one). Strings borrowed from the cJSON tree. */
struct product_input {
    unsigned has; /* PF_* bits */
    const char *name;
    const char *description;
    int64_t price_cents;
    int64_t stock;
    int64_t category_id; /* 0 = none (JSON null) */
};
enum {
    PF_NAME = 1u << 0,
    PF_DESC = 1u << 1,
    PF_PRICE = 1u << 2,
    PF_STOCK = 1u << 3,
    PF_CATEGORY = 1u << 4,
};

struct category_input {
    const char *name;
    int64_t parent_id; /* 0 = root */
};

struct stock_item {
    int64_t product_id;
    int64_t quantity;
    int64_t unit_price_cents; /* filled by the store on reserve */
};

struct reserve_input {
    int64_t order_id;
    struct stock_item items[RESERVE_MAX_ITEMS];
    size_t nitems;
};

/* Each returns 0, or -1 with a human message in err (a 422). */
int validate_product(const cJSON *body, int partial, struct product_input *out, char *err,
                     size_t errlen);
int validate_category(const cJSON *body, struct category_input *out, char *err, size_t errlen);
int validate_reserve(const cJSON *body, struct reserve_input *out, char *err, size_t errlen);
int validate_release(const cJSON *body, int64_t *order_id, char *err, size_t errlen);

/* A positive id in decimal (path or query): 1..INT64_MAX, digits only. */
int parse_id(const char *s, int64_t *out);
/* A JSON integer in [min, max] (no fraction, exactly representable). */
int json_int(const cJSON *item, int64_t min, int64_t max, int64_t *out);
/* An id in a body: a string of digits (the API's form, exact past 2^53)
 * or a JSON integer; 1..INT64_MAX. */
int json_id(const cJSON *item, int64_t *out);
/* ILIKE pattern "%q%" with \ % _ escaped (ESCAPE '\'); -1 if out is short. */
int like_pattern(const char *q, char *out, size_t outsz);
/* 1 when the comma-separated roles list names `role`. */
int has_role(const char *roles, const char *role);

/* ---- store.c: PostgreSQL (one connection per thread) */
struct product {
    int64_t id;
    int64_t category_id; /* 0 = none */
    int64_t price_cents;
    int64_t stock;
    char name[PRODUCT_NAME_MAX_CHARS * 4 + 1];
    char *description; /* owned: product_release() */
    char created_at[40];
    char updated_at[40];
};

void product_release(struct product *p);

struct category {
    int64_t id;
    int64_t parent_id; /* 0 = root */
    char name[PRODUCT_NAME_MAX_CHARS * 4 + 1];
};

struct product_query {
    int64_t after_id;    /* cursor: ids greater than this */
    int64_t category_id; /* 0 = any; else it and its subcategories */
    const char *pattern; /* ILIKE pattern or NULL */
    int limit;
};

/* Store results beyond 0 / -1 (database trouble, logged). */
enum {
    STORE_NOT_FOUND = 1,
    STORE_BAD_REF = 2,      /* a referenced category does not exist */
    STORE_OUT_OF_STOCK = 3, /* reserve: *bad_product has too little */
    STORE_NO_PRODUCT = 4,   /* reserve: *bad_product does not exist */
    STORE_CONFLICT = 5,     /* unique name taken / category still used */
};

/* Connects (checking the URL) and applies migrations_dir. 0 / -1. */
int store_open(const char *url, const char *migrations_dir);
void store_close(void);
/* 0 when PostgreSQL answers (readiness). */
int store_ping(void);

int store_product_get(int64_t id, struct product *out);
/* *items is malloc'd (caller frees); *n rows. */
int store_product_list(const struct product_query *q, struct product **items, size_t *n);
int store_product_create(const struct product_input *in, struct product *out);
int store_product_update(int64_t id, const struct product_input *in, struct product *out);
int store_product_delete(int64_t id);
int store_category_list(struct category **items, size_t *n);
int store_category_get(int64_t id, struct category *out);
int store_category_create(const struct category_input *in, struct category *out);
/* Renames / re-parents; STORE_BAD_REF when the new parent does not exist
 * or is the category itself or one of its descendants (no cycles). */
int store_category_update(int64_t id, const struct category_input *in, struct category *out);
/* STORE_CONFLICT while it has subcategories or products. */
int store_category_delete(int64_t id);
/* Reserves every item or none; idempotent by order_id (*replayed = 1 and
 * in->items refilled from the first reservation). On STORE_OUT_OF_STOCK /
 * STORE_NO_PRODUCT, *bad_product and *available name the culprit. */
int store_stock_reserve(struct reserve_input *in, int *replayed, int64_t *bad_product,
                        int64_t *available);
/* Returns the stock of a reservation once; *released = 0 when it was
 * already released (idempotent). in->items gets what it held. */
int store_stock_release(struct reserve_input *in, int *released);

/* ---- cache.c: Redis cache-aside for GET /catalog/products/{id} */
enum cache_outcome { CACHE_HIT = 0, CACHE_MISS = 1, CACHE_ERROR = 2 };

/* Never connects here (Redis may be down); ttl_ms 0 disables the cache. */
int cache_open(const char *url, int64_t ttl_ms, int64_t lock_ms, int64_t timeout_ms);
void cache_close(void);
/* 0 when Redis answers PING (informational: readiness does not need it). */
int cache_ping(void);

/* Renders a product as the API's JSON object. */
int product_render(struct cm_buf *b, const struct product *p);

/*
 * The product's JSON, from Redis or else from PostgreSQL (then cached).
 * On a miss only one request per product loads it (a SET NX PX lock);
 * others wait briefly for the value, then load it themselves. Redis
 * errors fall through to PostgreSQL. Returns 0 (json filled), or
 * STORE_NOT_FOUND, or -1 (database down). Counts
 * catalog_cache_requests_total{result}.
 */
int cache_product_json(int64_t id, struct cm_buf *json);
/* After a committed write: bumps the product's generation (so a reader
 * that loaded older data does not cache it) and deletes the value. */
void cache_invalidate(int64_t id);

/* ---- handlers/ */
void h_products_list(struct cm_http_req *r);
void h_product_get(struct cm_http_req *r);
void h_product_create(struct cm_http_req *r);
void h_product_update(struct cm_http_req *r);
void h_product_delete(struct cm_http_req *r);
void h_categories_list(struct cm_http_req *r);
void h_category_create(struct cm_http_req *r);
void h_category_get(struct cm_http_req *r);
void h_category_update(struct cm_http_req *r);
void h_category_delete(struct cm_http_req *r);
void h_stock_reserve(struct cm_http_req *r);
void h_stock_release(struct cm_http_req *r);

/* Shared by handlers (handlers/common.c): 0 when the caller is an admin,
 * else replies 401/403 and returns -1. */
int require_admin(struct cm_http_req *r);
/* Parses the body as a JSON object; replies 400/422 and returns NULL. */
cJSON *body_object(struct cm_http_req *r);

/* ---- routes.c */
extern const struct cm_http_route catalog_routes[];
extern const size_t catalog_nroutes;

#endif
