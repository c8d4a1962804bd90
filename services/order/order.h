#ifndef ORDER_ORDER_H
#define ORDER_ORDER_H
/*
 * The order service: shop orders (docs/shop.md).
 *
 * Files: config.c (environment), routes.c (route table), handlers/orders.c
 * (parse, validate, call catalog and store, render), domain.c (pure rules:
 * validation, state machine, money totals, event JSON; unit-tested),
 * catalog_client.c (HTTP to the catalog: prices, stock reservations),
 * store.c (PostgreSQL: orders, items, outbox, pending stock releases),
 * events.c (the outbox relay thread: Kafka + Redis pub/sub, and retries of
 * stock releases).
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/utf8.h"
#include "common/buf.h"
#include "common/http_server.h"

/* ---- config.c */
struct order_config {
    int port;
    const char *database_url;
    const char *redis_url;
    const char *kafka_brokers;
    const char *kafka_props; /* extra librdkafka properties (SASL/TLS in k8s) */
    const char *catalog_url;
    const char *admin_token;
    const char *migrations_dir;
    const char *events_topic;   /* shop.orders.events */
    const char *status_channel; /* orders:status */
    int log_level;
    int64_t catalog_timeout_ms;
    int64_t catalog_breaker_open_ms;
    int64_t relay_interval_ms;
    unsigned threads;
    int db_conns;
    size_t max_body;
    int64_t drain_delay_ms;   /* readiness fails this long before accept stops */
    int64_t drain_timeout_ms; /* in-flight requests get this long */
};
int order_config_load(struct order_config *c);

/* ---- domain.c: pure rules */
#define ORDER_MAX_ITEMS 100
#define QTY_MAX 1000
#define TEXT_MAX_CHARS 200
#define USER_ID_MAX 20
#define IDEMPOTENCY_KEY_MAX 128
#define PRICE_SCALE 2
#define SHOP_CURRENCY "USD" /* the shop has one currency */
#define FINGERPRINT_LEN 64  /* hex SHA-256 */

enum order_status {
    ST_PENDING = 0,
    ST_PAID,
    ST_SHIPPED,
    ST_DELIVERED,
    ST_CANCELLED,
    ST_COUNT,
};
const char *status_name(enum order_status s);
/* -1 for an unknown name. */
int status_parse(const char *s);
/* pending -> paid -> shipped -> delivered; pending|paid -> cancelled. */
int transition_allowed(enum order_status from, enum order_status to);
/* Who may ask for `to`: an admin anything (payment, shipping and delivery
 * are back-office steps in the demo); the owner only cancelling. */
int may_request(int is_admin, enum order_status to);

struct address {
    const char *name, *line1, *line2, *city, *postal_code, *country; /* borrowed */
};

struct order_item {
    int64_t product_id;
    int64_t quantity;
    int64_t unit_price_cents;
    int64_t line_total_cents;
    char name[TEXT_MAX_CHARS * 4 + 1];
};

struct order_request {
    struct order_item items[ORDER_MAX_ITEMS];
    size_t nitems;
    struct address address;
};

/* POST /orders body -> req (strings borrowed from body). 0, or -1 with a
 * message in err (422). */
int validate_order_request(const cJSON *body, struct order_request *req, char *err, size_t errlen);
/* X-User-Id: the gateway's user id, a string of digits (UintId). */
int valid_user_id(const char *s);
/* Idempotency-Key: 1..128 of [A-Za-z0-9._:-]. */
int valid_idempotency_key(const char *s);
/* A positive decimal id, canonical (no leading zero): 1..INT64_MAX. */
int parse_id(const char *s, int64_t *out);
/* An id in JSON: a string of digits (the API's form) or an integer. */
int json_id(const cJSON *item, int64_t *out);
int has_role(const char *roles, const char *role);

/* Hex SHA-256 of a canonical form of the request (items in order, address
 * fields): "same body" for idempotency, whatever the JSON spacing or key
 * order. out has FINGERPRINT_LEN + 1 bytes. 0 / -1. */
int request_fingerprint(const struct order_request *req, char *out);
/* The canonical address JSON stored with the order. */
int address_render(struct cm_buf *b, const struct address *a);
/* Fills line totals and *total; -1 on overflow (checked money math). */
int order_totals(struct order_item *items, size_t n, int64_t *total);

/* The status-change event (Kafka value and pub/sub message). from < 0 on
 * creation (JSON null). */
int event_render(struct cm_buf *b, const char *event_id, const char *ts, int64_t order_id,
                 const char *user_id, int from, enum order_status to, int64_t total_cents);
/* A random UUID v4 (37 bytes with NUL) and the current UTC time
 * "2026-11-21T23:59:59.123Z" (32 bytes). */
void event_id_new(char out[37]);
void utc_now(char out[32]);

/* ---- store.c */
struct order {
    int64_t id;
    char user_id[USER_ID_MAX + 1];
    enum order_status status;
    int64_t total_cents;
    char *shipping_address; /* JSON text; owned (order_release) */
    char created_at[40], updated_at[40];
    char fingerprint[FINGERPRINT_LEN + 1];
    struct order_item items[ORDER_MAX_ITEMS];
    size_t nitems;
};
void order_release(struct order *o);

enum {
    STORE_NOT_FOUND = 1,
    STORE_DUPLICATE = 2, /* (user, idempotency key) taken */
    STORE_ILLEGAL = 3,   /* transition not allowed */
    STORE_FORBIDDEN = 4, /* the caller may not ask for that status */
    STORE_SAME = 5,      /* already in that status: nothing changed */
};

int store_open(const char *url, const char *migrations_dir, int conns);
void store_close(void);
int store_ping(void);
/* A fresh order id (sequence), taken before the reservation. */
int store_next_order_id(int64_t *id);
int store_find_by_key(const char *user_id, const char *key, struct order *out);
/* Inserts the order, its items and its creation event in one transaction. */
int store_create_order(const struct order *o, const char *idempotency_key, const char *topic);
int store_get_order(int64_t id, struct order *out);
/* Orders of a user, newest first, ids below before_id (0 = from the top),
 * handed to fn one at a time (the order is borrowed for the call); fn
 * returning -1 stops the walk (-1). *n orders were visited, the last being
 * *last_id. */
typedef int (*order_visit_fn)(void *ctx, const struct order *o);
int store_list_user_orders(const char *user_id, int64_t before_id, int limit, order_visit_fn fn,
                           void *ctx, size_t *n, int64_t *last_id);
/*
 * Moves an order to `to` with its event (outbox) and, for a cancellation,
 * a pending stock release, all in one transaction. The caller's identity
 * decides: non-owners that are not admins get STORE_NOT_FOUND. *from gets
 * the previous status; *out the order after the change.
 */
int store_set_status(int64_t id, enum order_status to, const char *user_id, int is_admin,
                     const char *topic, enum order_status *from, struct order *out);
/* Stock releases owed to the catalog: cancellations (written with the
 * status change) and reservations whose order was never written. A
 * release owed in delay_s unless store_create_order (same transaction as
 * the order) cancels it: recorded before reserving. */
#define RESERVATION_GRACE_S 120
int store_release_hold(int64_t order_id, int delay_s);
int store_release_due(int64_t *ids, size_t max, size_t *n);
int store_release_done(int64_t order_id, int ok);

struct outbox_row {
    int64_t id;
    char topic[128];
    char key[32];
    char *payload; /* owned */
};
/* Runs fn over the oldest unsent rows (at most max) and marks sent the
 * first rows fn reports delivered. One relay at a time across replicas: a
 * session advisory lock on the relay's own connection (0 when another
 * replica holds it). No transaction stays open while fn publishes. Returns
 * rows marked, or -1. Relay thread only. */
typedef size_t (*outbox_publish_fn)(void *ctx, struct outbox_row *rows, size_t n);
int store_outbox_relay(size_t max, outbox_publish_fn fn, void *ctx);
/* Gives up the relay lock and connection (the relay thread, on exit). */
void store_relay_release(void);

/* ---- catalog_client.c */
enum {
    CAT_OK = 0,
    CAT_UNAVAILABLE = -1, /* down, timeout, 5xx, breaker open: 503 */
    CAT_NO_PRODUCT = 1,   /* 404 / 422 naming *product */
    CAT_OUT_OF_STOCK = 2, /* 409 naming *product */
    CAT_CONFLICT = 3,     /* the reservation was released already */
};
int catalog_client_open(const char *base_url, int64_t timeout_ms, int64_t breaker_open_ms);
void catalog_client_close(void);
/* Name and current price of a product. */
int catalog_product(int64_t product_id, char *name, size_t namesz, int64_t *price_cents);
/* Reserves every item for order_id (idempotent); fills unit prices as
 * reserved. On CAT_OUT_OF_STOCK / CAT_NO_PRODUCT *product names the item. */
int catalog_reserve(int64_t order_id, struct order_item *items, size_t n, int64_t *product);
/* Returns the order's stock; 404 (nothing reserved) counts as done. */
int catalog_release(int64_t order_id);

/* ---- events.c: the relay thread */
int events_start(const struct order_config *cfg);
/* Something was written to the outbox or the release queue: relay now. */
void events_wake(void);
void events_stop(void);
/* shop_orders_total{status} */
void orders_count(enum order_status s);

/* ---- handlers/orders.c */
void h_order_create(struct cm_http_req *r);
void h_order_get(struct cm_http_req *r);
void h_order_status(struct cm_http_req *r);
void h_orders_of_user(struct cm_http_req *r);

/* ---- main.c / routes.c */
extern const char *order_events_topic; /* ORDER_EVENTS_TOPIC */
extern const struct cm_http_route order_routes[];
extern const size_t order_nroutes;

#endif
