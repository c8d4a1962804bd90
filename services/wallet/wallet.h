#ifndef WALLET_WALLET_H
#define WALLET_WALLET_H
/*
 * wallet: double-entry ledger, holds, settlement of trades, deposits (chain
 * mock) and withdrawals signed by the separate wallet-signer (docs/wallet.md).
 *
 * Files: config.c (environment), routes.c (route table), domain.c (pure
 * rules: assets, markets, amounts, ids, addresses, trade and order-event
 * parsing, fees; unit-tested), store.c (PostgreSQL; the state changes are
 * SQL functions in migrations/002_functions.sql), settle.c (Kafka consumer
 * of exchange.trades + exchange.orders.events, batched settlement),
 * events.c (outbox relay to wallet.events), withdraw.c (Redis stream queue,
 * workers, chain mock), signer_client.c (unix socket to wallet-signer),
 * ticker.c (deposit confirmations, stranded-hold reconciliation, queue
 * sweeps, signer health), handlers/ (HTTP, one file per resource).
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/http_server.h"

/* ---- domain.c: assets and markets (must stay in sync with migration 001) */
#define WALLET_MAX_ASSETS 3
struct wallet_asset {
    const char *code;
    int scale;
    int addr_kind;              /* ADDR_BTC or ADDR_HEX40 */
    int64_t withdraw_fee;       /* network fee, minor units */
    int64_t daily_limit;        /* per user, minor units per 24 h */
    int64_t approval_threshold; /* amounts above wait for an admin */
};
enum { ADDR_BTC = 0, ADDR_HEX40 = 1 };
struct wallet_market {
    const char *symbol;
    const char *base;
    const char *quote;
};
extern struct wallet_asset wallet_assets[WALLET_MAX_ASSETS];
extern const struct wallet_market wallet_markets[];
extern const size_t wallet_nmarkets;

/* NULL when unknown. */
struct wallet_asset *asset_find(const char *code);
const struct wallet_market *market_find(const char *symbol);

#define ID_MAX 64
#define USER_ID_MAX 20
#define IDEMPOTENCY_KEY_MAX 128

/* ^[1-9][0-9]{0,19}$ (contract user_id / order_id). */
int valid_user_id(const char *s);
/* ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$ (contract opaque_id). */
int valid_opaque_id(const char *s);
/* 1..128 visible ASCII characters. */
int valid_idempotency_key(const char *s);
/* 0x + 64 lower-case hex digits. */
int valid_tx_hash(const char *s);
/* Chain-mock address format of the asset: BTC "bc1"/"tb1" + 8..60 of
 * [a-z0-9]; ETH and USDT (ERC-20) "0x" + 40 hex digits. */
int valid_address(const struct wallet_asset *a, const char *s);

/* The largest amount accepted anywhere (10^15 minor units: 10 million BTC,
 * a billion USDT), so sums of balances, fees and limits stay far from
 * int64 overflow in SQL. */
#define WALLET_AMOUNT_MAX 1000000000000000LL

/* A positive amount (<= WALLET_AMOUNT_MAX) at scale from a JSON string. 0, or -1 with a reason in
 * err (missing / not a string / not a decimal / zero or negative / too
 * precise / too large). */
int amount_from_json(const cJSON *item, int scale, int64_t *out, char *err, size_t errlen);

/* Fee on amount at bps basis points, rounded up (in the exchange's favour).
 * 0 / -1 (overflow, bad bps). */
int fee_of(int64_t amount, int64_t bps, int64_t *fee);

/* ---- domain.c: Kafka input */
struct trade {
    char id[ID_MAX + 1];
    char market[32];
    int64_t seq;
    int64_t ts_ms;        /* trade ts, for the lag gauge (0 if unknown) */
    int64_t quantity;     /* base, minor units */
    int64_t quote_amount; /* quote, minor units */
    int taker_buys;
    char taker_order[ID_MAX + 1], taker_user[USER_ID_MAX + 1];
    char maker_order[ID_MAX + 1], maker_user[USER_ID_MAX + 1];
    const struct wallet_market *m;
};
/* Parses and validates a trade event (proto/events/exchange.trades). 0, or -1
 * with a reason in err. */
int trade_parse(const char *json, size_t len, struct trade *t, char *err, size_t errlen);

/* One side of the money a trade moves: who, which asset, bucket, amount. */
struct leg {
    const char *owner; /* borrowed from the trade, or "sys:fees" */
    const char *asset;
    int held;       /* 1: the held bucket, 0: available */
    int64_t amount; /* signed, never 0 */
};
#define TRADE_MAX_LEGS 6
/* The postings of one trade: buyer's held quote -> seller (minus the
 * seller's fee), seller's held base -> buyer (minus the buyer's fee), fees
 * to sys:fees. Fees: maker_bps / taker_bps of what each side receives,
 * rounded up. Also the amounts each hold is consumed by. Returns the number
 * of legs (they sum to zero per asset), or -1 on overflow. */
int trade_legs(const struct trade *t, int64_t maker_bps, int64_t taker_bps,
               struct leg legs[TRADE_MAX_LEGS], int64_t *buyer_hold_use, int64_t *seller_hold_use);
const char *trade_buyer_order(const struct trade *t);
const char *trade_seller_order(const struct trade *t);
const char *trade_buyer(const struct trade *t);
const char *trade_seller(const struct trade *t);

struct order_event {
    char id[ID_MAX + 1];
    char type[32];
    char order_id[ID_MAX + 1];
    const char *end_reason; /* NULL unless the order ended (hold.released reason) */
    int64_t expected; /* held asset the order consumed (buy: filled_quote, sell: filled_quantity) */
    int relevant;     /* 0: nothing for the wallet (rejected cancel, cancel_all, ...) */
};
int order_event_parse(const char *json, size_t len, struct order_event *e, char *err,
                      size_t errlen);

/* ISO-8601 UTC "2026-11-21T12:00:00.123456Z" -> ms since the epoch; -1. */
int64_t parse_ts_ms(const char *s);

/* ---- config.c */
struct wallet_config {
    int port;
    const char *database_url;
    const char *redis_url;
    const char *kafka_brokers;
    const char *admin_token;
    const char *migrations_dir;
    const char *signer_socket;
    const char *trading_api_url; /* "" when unset */
    const char *trades_topic, *orders_topic, *events_topic, *group_id;
    const char *withdraw_stream, *withdraw_group;
    const char *kafka_consumer_props;
    int log_level;
    unsigned threads;
    int db_conns;
    int64_t maker_fee_bps, taker_fee_bps;
    int64_t deposit_confirmations;
    int64_t deposit_tick_ms;
    int64_t hold_reconcile_after_ms, hold_reconcile_interval_ms;
    int64_t settle_batch;
    int64_t withdraw_workers;
    int64_t withdraw_claim_idle_ms;
    int64_t outbox_interval_ms;
};
/* Reads the environment; -1 after printing the problems (exit 2). */
int wallet_config_load(struct wallet_config *c);
extern struct wallet_config wallet_cfg;

/* ---- store.c (PostgreSQL). Result words from the SQL functions. */
int store_open(const char *url, const char *migrations_dir, int conns);
void store_close(void);
int store_ping(void);
struct cm_db_pool *store_pool(void);

/* ---- settle.c */
int settle_start(void);
void settle_stop(void);

/* ---- events.c (outbox relay) */
int events_start(void);
void events_wake(void);
void events_stop(void);

/* ---- withdraw.c */
int withdraw_start(void);
void withdraw_stop(void);
/* Puts a withdrawal on the Redis stream and marks it queued. 0 / -1. */
int withdraw_enqueue(const char *id);
/* Re-enqueues withdrawals left requested/approved (crash or Redis outage). */
void withdraw_sweep(void);
void withdraw_observe_end(const char *result);

/* ---- signer_client.c */
struct sign_result {
    char signature[160];
    char public_key[80];
    char key_id[64];
};
/* Asks the signer over SIGNER_SOCKET. 0, or -1 with a reason in err. */
int signer_sign(const char *withdrawal_id, const char *asset, const char *address,
                const char *amount, struct sign_result *out, char *err, size_t errlen);
/* 0 when the signer answers a ping. */
int signer_ping(void);
void signer_metrics_init(void);

/* ---- ticker.c */
int ticker_start(void);
void ticker_stop(void);

/* ---- metrics (main.c) */
struct wallet_metrics {
    struct cm_metric *holds, *settlements, *settlement_lag, *withdrawals, *queue_delay,
        *queue_depth, *signer_up, *signer_duration;
};
extern struct wallet_metrics wallet_m;
void wallet_metrics_init(void);

/* ---- handlers */
/* Reads X-User-Id; replies 401 and returns NULL when missing or malformed. */
const char *require_user(struct cm_http_req *r);
/* Formats amount at the asset's scale into out (CM_DECIMAL_STR_MAX). */
const char *fmt_amount(int64_t v, int scale, char *out, size_t outlen);
/* Replies 400 invalid_request when body has a member not in allowed
 * (NULL-terminated); returns -1 then. */
int only_fields(struct cm_http_req *r, const cJSON *body, const char *const *allowed);
/* ?cursor= (positive integer, opaque to clients) and ?limit= (1..500,
 * default 50); -1 after replying 400. */
int page_args(struct cm_http_req *r, int64_t *before, int *limit);
void h_hold_place(struct cm_http_req *r);
void h_hold_release(struct cm_http_req *r);
void h_hold_get(struct cm_http_req *r);
void h_balances(struct cm_http_req *r);
void h_ledger(struct cm_http_req *r);
void h_deposit_create(struct cm_http_req *r);
void h_deposits_list(struct cm_http_req *r);
void h_deposit_credit(struct cm_http_req *r);
void h_withdrawal_create(struct cm_http_req *r);
void h_withdrawal_get(struct cm_http_req *r);
void h_withdrawal_approve(struct cm_http_req *r);
void h_address_add(struct cm_http_req *r);

extern const struct cm_http_route wallet_routes[];
extern const size_t wallet_nroutes;

#endif
