#ifndef TRADING_H
#define TRADING_H
/*
 * trading-api: orders as the user sees them, the outbox to matching, the
 * read model from matching's events, market data (docs/trading.md).
 *
 * Files, one concept each:
 *   main.c      table of contents
 *   config.c    environment
 *   rules.c     market rules, order validation, hold amounts, average
 *               price, candles: pure functions (unit-tested)
 *   store.c     PostgreSQL (orders, reservations, outbox, read model) and
 *               Redis (blocked users)
 *   upstream.c  risk (pre-trade) and wallet (holds), matching (book)
 *   relay.c     outbox relay thread -> exchange.orders.commands
 *   events.c    consumer thread <- exchange.orders.events, exchange.trades
 *   stream.c    SSE subscribers per market
 *   routes.c    the route table; handlers/<resource>.c the handlers
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "common/http_server.h"

#define TRADING_VERSION "1.0.0"
#define MAX_MARKETS 32

/* ---- configuration (config.c) ------------------------------------------ */

enum fail_mode { FAIL_CLOSED = 0, FAIL_OPEN = 1 };

struct trading_config {
    int port;
    const char *database_url, *redis_url, *kafka_brokers, *kafka_props;
    const char *consumer_props; /* read model consumer, applied after kafka_props */
    const char *admin_token, *migrations_dir;
    const char *risk_url, *wallet_url, *matching_url;
    const char *commands_topic, *events_topic, *trades_topic, *group_id;
    int64_t risk_timeout_ms, wallet_timeout_ms, matching_timeout_ms;
    int risk_fail_mode; /* enum fail_mode */
    int64_t breaker_open_ms;
    unsigned threads;
    int db_pool;
    int consumer_enabled;
    /* Test hook (TRADING_TEST_CRASH): "after_hold" or "after_commit" makes
     * the process SIGKILL itself at that point of an order placement,
     * "after_publish" once the relay's batch is acknowledged, unmarked. */
    const char *test_crash;
};

/* Loads the environment; -1 after cm_config_finish printed the problems. */
int trading_config_load(struct trading_config *c);
extern struct trading_config trading_cfg;

/* ---- market rules and pure order logic (rules.c) ------------------------ */

/* One market's rules; amounts in minor units (prices and quote amounts at
 * quote_scale, quantities at base_scale). Must stay in sync with
 * services/trading-api/markets.json (the shared source of truth) and the
 * markets table seeded from it. */
struct market {
    char symbol[32], base[16], quote[16];
    int base_scale, quote_scale;
    int64_t tick, lot, min_qty, max_qty, min_price, max_price;
    int band_bps;
    int trading; /* 1 trading, 0 halted */
};

enum side { SIDE_BUY = 0, SIDE_SELL = 1 };
enum order_type { OT_LIMIT = 0, OT_MARKET = 1 };
enum tif { TIF_GTC = 0, TIF_IOC = 1, TIF_FOK = 2 };

const char *side_name(int s);
const char *type_name(int t);
const char *tif_name(int t);

/* A validated order request. */
struct order_req {
    const struct market *m; /* borrowed from the markets table */
    int side, type, tif, post_only;
    const char *stp; /* static string or NULL (market default) */
    int has_price, has_qty, has_quote;
    int64_t price, qty, quote;
    char client_order_id[65];
};

/* Why a request was refused: HTTP status (400 or 422), error code, the
 * field and a short problem ("too_precise", "not_multiple_of_tick"...). */
struct vproblem {
    int status;
    const char *code;
    char field[32];
    char problem[96];
};

/* Parses markets.json text ({"markets":[...]}) into out[0..max).
 * Returns the count or -1 with err. */
int markets_parse(const char *json, struct market *out, size_t max, char *err, size_t errlen);
const struct market *market_find(const struct market *ms, size_t n, const char *symbol);
/* Renders one market as the API's Market object (caller owns). */
cJSON *market_json(const struct market *m);

/* Validates a POST /v1/orders body against the markets. 0, or -1 with p. */
int order_validate(const cJSON *body, const struct market *ms, size_t n, struct order_req *out,
                   struct vproblem *p);

/* The wallet hold an order needs: asset symbol (borrowed from the market),
 * its scale and the amount in minor units. -1 when it does not fit int64.
 *   buy limit              ceil(price * qty / 10^base_scale) quote
 *   buy market by qty      ceil(max_price * qty / 10^base_scale) quote (worst case)
 *   buy market by quote    quote_amount quote
 *   sell by qty            qty base
 *   sell market by quote   ceil(quote * 10^base_scale / min_price) base (worst case)
 * The wallet charges trade fees from what the user receives, so no fee is
 * held (services/wallet/domain.c trade_legs). */
int order_hold(const struct order_req *o, const char **asset, int *scale, int64_t *amount);

/* A canonical text of the request's content: two requests with the same
 * client_order_id are "the same" when their fingerprints are equal. */
void order_fingerprint(const struct order_req *o, char *out, size_t outsz);

/* filled_quote / filled_qty as a price at quote scale, half-even; -1 when
 * nothing is filled or on overflow. */
int average_price(int64_t filled_qty, int64_t filled_quote, int base_scale, int64_t *out);

/* ---- candles ------------------------------------------------------------ */

struct trade_pt {
    int64_t ts_ms;
    int64_t price, qty, quote;
};
struct candle {
    int64_t open_ms;
    int64_t open, high, low, close, volume, quote_volume, trades;
};
/* "1m" "5m" "1h" "1d" -> milliseconds; -1 otherwise. */
int64_t candle_interval_ms(const char *s);
/* Start of the bucket holding ts_ms (floor, also before 1970). */
int64_t candle_bucket(int64_t ts_ms, int64_t interval_ms);
/* Builds candles from trades sorted by time (then seq); at most max.
 * Returns the number of candles or -1 on overflow. Buckets without trades
 * are omitted. */
int candles_build(const struct trade_pt *t, size_t n, int64_t interval_ms, struct candle *out,
                  size_t max);

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.frac]Z" -> Unix microseconds. 0 / -1. */
int parse_ts_us(const char *s, int64_t *out);
/* Unix ms -> "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void format_ts_ms(int64_t ms, char *out, size_t outsz);
/* Now as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ". */
void now_ts(char *out, size_t outsz);
/* A uint64 id as a decimal string of 1..20 digits without leading zero. */
int parse_uint_id(const char *s, uint64_t *out);

/* ---- store (store.c) ---------------------------------------------------- */

enum {
    ST_OK = 0,
    ST_ERR = -1,
    ST_NONE = 1,      /* not found */
    ST_EXISTS = 2,    /* already there (idempotent replay) */
    ST_CONFLICT = 3,  /* same key, other content / wrong state */
    ST_ABANDONED = 4, /* reservation given up (wallet reconciled it) */
};

/* An order row as stored; strings are NUL-terminated copies. */
struct order_row {
    uint64_t id;
    char user_id[24], client_order_id[65], market[32];
    int side, type, tif, post_only;
    char stp[16];
    int has_price, has_qty, has_quote;
    int64_t price, qty, quote;
    char status[20], reject_reason[24], end_reason[24];
    int64_t filled_qty, filled_quote;
    char created_at[40], updated_at[40];
};

int store_open(const char *url, const char *migrations_dir, int pool);
void store_close(void);
int store_ping(void);
int store_load_markets(struct market *out, size_t max, size_t *n);

/* Reserves (user, client_order_id) for an order id: ST_OK with a fresh
 * *order_id, or ST_EXISTS with the reserved id and its fingerprint
 * (fp_out), or ST_ERR. An abandoned reservation is renewed with a new id
 * (ST_OK). */
int store_reserve(const char *user, const char *coid, const char *fp, uint64_t *order_id,
                  char *fp_out, size_t fpsz);
/* Drops a reservation that has no order (after a definite refusal). */
void store_unreserve(const char *user, const char *coid, uint64_t order_id);
/* Order + outbox row in one transaction. ST_OK (*out is the new order),
 * ST_EXISTS (already placed), ST_ABANDONED, ST_ERR. */
int store_place(const struct order_req *o, const char *user, uint64_t order_id, const char *fp,
                struct order_row *out);
/* user NULL: any user (internal). ST_OK / ST_NONE / ST_ERR. */
int store_order_get(uint64_t id, const char *user, struct order_row *out);
/* Cancel: ST_OK (command queued, *out is the order), ST_NONE, ST_CONFLICT
 * (already finished), ST_ERR. */
int store_cancel(uint64_t id, const char *user, struct order_row *out);
/* Cancel-all: ST_OK with the number of open orders, ST_ERR. */
int store_cancel_all(const char *market, const char *user, long *open_orders);
/* The caller's orders newest first; status: NULL, a status, "active",
 * "closed". before_id 0: from the newest. ST_OK with *rows (caller frees)
 * and *n. */
int store_orders_list(const char *user, const char *market, const char *status, uint64_t before_id,
                      int limit, struct order_row **rows, size_t *n);
/* For the wallet's reconciliation: ST_OK with the order (status), or
 * ST_NONE after marking a reservation without order abandoned (its hold
 * may be released: the order will never exist), or ST_ERR. */
int store_internal_order(uint64_t id, struct order_row *out);

/* Outbox relay (relay.c). Only the holder of a session advisory lock
 * relays, on the connection that holds it (one relay across replicas;
 * the lock goes with the session when a process dies). */
struct cm_db_conn;
/* 1 with *c holding the lock, 0 when another relay has it, -1 error. */
int store_relay_lock(struct cm_db_conn **c);
void store_relay_unlock(struct cm_db_conn *c);
struct outbox_row {
    int64_t id;
    int attempts; /* > 0: handed to a producer before, maybe on Kafka */
    char market[32];
    char *payload; /* owned (store_outbox_free) */
};
/* Marks published[0..npublished) published (acknowledged earlier) and
 * takes up to max unpublished rows in id order, each with its attempt
 * counted, all in one statement (committed); attempts in the rows as they
 * were before. 0 with *rows (caller frees with store_outbox_free) and *n,
 * or -1 (nothing marked). */
int store_outbox_fetch(struct cm_db_conn *c, int max, const int64_t *published, size_t npublished,
                       struct outbox_row **rows, size_t *n);
void store_outbox_free(struct outbox_row *rows, size_t n);
enum outbox_mark {
    MARK_PUBLISHED, /* acknowledged by the broker */
    MARK_NOT_SENT,  /* the producer refused it for sure: attempts = 0 */
};
int store_outbox_mark(struct cm_db_conn *c, const int64_t *ids, size_t n, enum outbox_mark m);
/* Pending count and age of the oldest (seconds) for the metrics. */
int store_outbox_stats(long *pending, double *oldest_age_s);

/* Read model (events.c). Strings are borrowed. order_id, taker_order_id
 * and maker_order_id must be decimal ids <= INT64_MAX (parse_uint_id), or
 * NULL where allowed: an order event without order_id or status only
 * advances the seq. */
struct order_event {
    const char *market, *type, *order_id, *status, *reason, *command;
    int64_t seq;
    int has_filled;
    int64_t filled_qty, filled_quote;
};
struct trade_event {
    const char *market, *id, *ts, *taker_side, *taker_order_id, *maker_order_id;
    int64_t seq, ts_us, price, qty, quote;
};
/* Applies ev[0..nev) and tr[0..ntr) (each in arrival order) in one
 * statement, so one transaction: with the same result as applying them one
 * by one in that order. Per (market, stream) the last applied seq is kept
 * with the effects; an event at or below it, or at or below an earlier
 * event of its (market, stream) in the batch, is skipped. ST_OK with trade_applied[i] = 1 for the
 * trades applied now (0: seen before), or ST_ERR with nothing applied (retry the same batch). */
int store_apply_batch(const struct order_event *ev, size_t nev, const struct trade_event *tr,
                      size_t ntr, unsigned char *trade_applied);

/* Market data. */
struct trade_row {
    int64_t seq, ts_us, price, qty, quote;
    char id[64], ts[40], taker_side[8];
};
int store_trades_list(const char *market, int64_t before_seq, int limit, struct trade_row **rows,
                      size_t *n);
/* Trades with seq > after_seq, oldest first (SSE resume). */
int store_trades_after(const char *market, int64_t after_seq, int limit, struct trade_row **rows,
                       size_t *n);
/* Trades in [from_us, to_us) oldest first, at most max. */
int store_trades_range(const char *market, int64_t from_us, int64_t to_us, size_t max,
                       struct trade_pt **pts, size_t *n);

/* Redis: 1 blocked, 0 not (or Redis unreachable: logged), see docs. */
int store_user_blocked(const char *user);

/* ---- upstreams (upstream.c) --------------------------------------------- */

enum up_result {
    UP_OK = 0,       /* allowed / held */
    UP_DENIED,       /* risk deny (rule, reason) */
    UP_BLOCKED,      /* risk: account blocked */
    UP_INSUFFICIENT, /* wallet 422 insufficient_funds */
    UP_CONFLICT,     /* wallet 409 */
    UP_REJECTED,     /* other 4xx */
    UP_UNAVAILABLE,  /* down, 5xx, breaker open */
    UP_TIMEOUT,      /* too slow */
};
int upstream_open(void);
void upstream_close(void);
/* rule/reason get the deny details. */
int risk_pretrade(const char *user, uint64_t order_id, const struct order_req *o, char *rule,
                  size_t rulesz, char *reason, size_t reasonsz);
int wallet_hold(const char *user, uint64_t order_id, const char *asset, int scale, int64_t amount,
                char *msg, size_t msgsz);
/* GET matching /v1/books/{market}?depth=N: UP_OK with *body (caller frees). */
int matching_book(const char *market, int depth, char **body, int64_t timeout_ms);

/* ---- relay and consumer threads ----------------------------------------- */

int relay_start(void);
/* Wakes the relay after a commit (cheap). */
void relay_kick(void);
void relay_stop(void);

int events_start(void);
void events_stop(void);
int events_ready(void);

/* ---- SSE (stream.c) ----------------------------------------------------- */

/* Subscribes the request's stream to a market; replies itself. */
void stream_subscribe(struct cm_http_req *r, const struct market *m);
/* The SSE data of a trade (caller frees). */
char *trade_stream_json(const struct market *m, const struct trade_row *t);
/* Sends one SSE message to every subscriber of market (drops slow ones). */
void stream_publish(const char *market, const char *event, int64_t id, const char *data);
int stream_start(void);
void stream_stop(void);

/* ---- process-wide state and handlers ------------------------------------ */

extern struct market trading_markets[MAX_MARKETS];
extern size_t trading_nmarkets;

struct trading_metrics {
    struct cm_metric *orders;         /* trading_orders_total{result} */
    struct cm_metric *outbox_pending; /* trading_outbox_pending */
    struct cm_metric *outbox_age;     /* trading_outbox_oldest_age_seconds */
    struct cm_metric *read_batches;   /* trading_read_model_batches_total */
    struct cm_metric *read_messages;  /* trading_read_model_messages_total */
};
extern struct trading_metrics trading_m;
void trading_metrics_init(void);

/* Renders an order row as the API's Order object (caller owns). */
cJSON *order_json(const struct order_row *o);
/* Command JSON for exchange.orders.commands (caller frees); event_id is
 * "trading-api:<outbox id>". */
char *place_command_json(const struct order_req *o, const char *user, uint64_t order_id,
                         const char *event_id);
char *cancel_command_json(const char *market, const char *user, uint64_t order_id,
                          const char *event_id);

/* The caller's verified id (X-User-Id) or NULL after replying 401. */
const char *require_user(struct cm_http_req *r);
/* A 4xx/5xx error envelope with one detail {field, problem}. */
void reply_problem(struct cm_http_req *r, const struct vproblem *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void h_markets_list(struct cm_http_req *r);
void h_market_trades(struct cm_http_req *r);
void h_market_candles(struct cm_http_req *r);
void h_market_book(struct cm_http_req *r);
void h_market_ticker(struct cm_http_req *r);
void h_market_stream(struct cm_http_req *r);
void h_order_place(struct cm_http_req *r);
void h_order_get(struct cm_http_req *r);
void h_order_cancel(struct cm_http_req *r);
void h_orders_list(struct cm_http_req *r);
void h_orders_cancel_all(struct cm_http_req *r);
void h_internal_order(struct cm_http_req *r);

extern const struct cm_http_route trading_routes[];
extern const size_t trading_nroutes;

#endif
