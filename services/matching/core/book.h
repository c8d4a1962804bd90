#ifndef MATCHING_BOOK_H
#define MATCHING_BOOK_H
/*
 * The matching engine core: one order book per market, a pure deterministic
 * state machine with no I/O. A service feeds it commands (struct me_cmd) in
 * log order and receives events (struct me_event) through a callback; the
 * same command sequence always yields the byte-identical event stream.
 *
 * Units (all int64, never floating point):
 *   qty    base asset minor units (10^base_scale per whole base unit);
 *   price  quote asset minor units per ONE WHOLE base unit;
 *   quote  quote asset minor units;
 *   notional(price, qty) = floor(price * qty / 10^base_scale), computed in
 *          128 bits; an order whose notional does not fit int64 is rejected
 *          (ME_R_OVERFLOW).
 * Order ids are uint64 chosen by the command's producer (0 is invalid); a
 * string client id is mapped to a uint64 by the service, not here. User ids
 * are uint64, 0 invalid too. Duplicate ids are detected against *open*
 * orders only.
 *
 * Thread-safety: a market is owned by one thread; no internal locking.
 * Full contract, event semantics and formats: docs/matching.md.
 */
#include <stddef.h>
#include <stdint.h>

enum me_side { ME_BUY = 0, ME_SELL = 1 };

enum me_cmd_type { ME_CMD_PLACE = 1, ME_CMD_CANCEL = 2, ME_CMD_CANCEL_ALL = 3 };

enum me_order_type { ME_LIMIT = 0, ME_MARKET = 1 };

enum me_tif { ME_GTC = 0, ME_IOC = 1, ME_FOK = 2 };

/* Self-trade prevention: what happens when a taker meets a resting order of
 * the same user. ME_STP_DEFAULT on an order means "the market's default". */
enum me_stp {
    ME_STP_DEFAULT = 0,
    ME_STP_NONE = 1,         /* allow the self-trade */
    ME_STP_CANCEL_TAKER = 2, /* cancel the taker's remainder, stop matching */
    ME_STP_CANCEL_MAKER = 3, /* cancel the resting order, keep matching */
    ME_STP_CANCEL_BOTH = 4,
};

#define ME_FLAG_POST_ONLY 0x01u

struct me_cmd {
    uint8_t type;       /* enum me_cmd_type */
    uint8_t side;       /* enum me_side (place) */
    uint8_t order_type; /* enum me_order_type (place) */
    uint8_t tif;        /* enum me_tif (place) */
    uint8_t stp;        /* enum me_stp (place) */
    uint8_t flags;      /* ME_FLAG_* (place) */
    uint64_t order_id;  /* place, cancel */
    uint64_t user_id;   /* all: owner; cancel checks ownership */
    int64_t price;      /* limit price; 0 for market orders */
    int64_t qty;        /* base qty; 0 for a market order by quote budget */
    int64_t quote;      /* quote budget of a market order; else 0 */
    uint64_t ts;        /* caller's timestamp, copied into every event */
};

enum me_event_type {
    ME_EV_ACCEPTED = 1,
    ME_EV_REJECTED = 2,
    ME_EV_TRADE = 3,
    ME_EV_PARTIALLY_FILLED = 4,
    ME_EV_FILLED = 5,
    ME_EV_CANCELLED = 6,
    ME_EV_EXPIRED = 7,
};

/* Reason codes: on REJECTED why, on CANCELLED / EXPIRED what ended it.
 * Values are part of the wire format: append only. */
enum me_reason {
    ME_R_NONE = 0,
    ME_R_INVALID = 1,  /* malformed (type, side, flags, order/user id 0) */
    ME_R_BAD_TIF = 2,  /* tif / post-only / order type combination */
    ME_R_BAD_TICK = 3, /* price not a positive multiple of the tick */
    ME_R_BAD_LOT = 4,  /* qty not a positive multiple of the lot */
    ME_R_QTY_MIN = 5,
    ME_R_QTY_MAX = 6,
    ME_R_PRICE_RANGE = 7,   /* outside [min_price, max_price] */
    ME_R_PRICE_BAND = 8,    /* too far from the last trade price */
    ME_R_OVERFLOW = 9,      /* price * qty does not fit */
    ME_R_POST_ONLY = 10,    /* post-only order would take liquidity */
    ME_R_DUPLICATE_ID = 11, /* an open order already has this id */
    ME_R_NOT_FOUND = 12,    /* cancel: no open order (unknown or finished) */
    ME_R_NOT_OWNER = 13,    /* cancel: the order belongs to another user */
    ME_R_USER_CANCEL = 14,
    ME_R_CANCEL_ALL = 15,
    ME_R_STP = 16,          /* self-trade prevention */
    ME_R_IOC = 17,          /* IOC limit remainder */
    ME_R_FOK = 18,          /* FOK could not fill completely: nothing traded */
    ME_R_NO_LIQUIDITY = 19, /* market order: book (within band) exhausted */
    ME_R_MAX_
};

/*
 * One event. Field meaning per type (unused fields are 0):
 *   ACCEPTED   order_id user_id side price qty quote(budget)
 *   REJECTED   cmd_type order_id user_id side reason
 *   TRADE      order_id/user_id = taker, maker_order_id/maker_user_id,
 *              side = taker side, price, qty, quote = notional,
 *              remaining = taker's remaining after the trade
 *   PARTIALLY_FILLED / FILLED / CANCELLED / EXPIRED
 *              order_id user_id side price, filled (base, cumulative),
 *              quote (notional filled, cumulative), remaining, reason
 * For a market order by quote budget, `remaining` is the unspent budget
 * (quote units); for every other order it is base units.
 */
struct me_event {
    uint64_t seq; /* gap-free per market, first event is 1 */
    uint8_t type;
    uint8_t cmd_type;
    uint8_t side;
    uint8_t reason;
    uint64_t order_id;
    uint64_t user_id;
    int64_t price;
    int64_t qty;
    int64_t remaining;
    int64_t filled;
    int64_t quote;
    uint64_t maker_order_id;
    uint64_t maker_user_id;
    uint64_t ts;
};

/* Receives each event in order; the pointer is borrowed for the call. */
typedef void (*me_emit_fn)(void *ctx, const struct me_event *ev);

struct me_rules {
    uint8_t base_scale;      /* 0..18 */
    uint8_t stp_default;     /* enum me_stp, not DEFAULT */
    uint32_t band_bps;       /* 0 = no band; else max |price-last|/last */
    int64_t tick;            /* price increment, > 0 */
    int64_t lot;             /* qty increment, > 0 */
    int64_t min_qty;         /* >= lot */
    int64_t max_qty;         /* >= min_qty */
    int64_t min_price;       /* >= tick */
    int64_t max_price;       /* >= min_price */
    int64_t last_price;      /* reference price for the band; 0 = none yet */
    uint32_t order_capacity; /* orders preallocated (grows by slabs) */
};

struct me_market;

/* Returns NULL if the rules are invalid or memory is short. Caller owns. */
struct me_market *me_market_new(const struct me_rules *rules);
void me_market_free(struct me_market *m);

/*
 * Applies one command (borrowed); every outcome, rejections included, is
 * reported as events through emit. Returns 0, or -1 only when memory to
 * grow the pools is short: then nothing was emitted and the market is
 * unchanged (the service should stop, this is not a per-order outcome).
 */
int me_market_apply(struct me_market *m, const struct me_cmd *cmd, me_emit_fn emit, void *ctx);

/*
 * Service-side rejection (additive): emits one REJECTED event with the
 * command's type, order_id, user_id and side and the given reason (one of
 * enum me_reason), consuming one seq, without validating or touching the
 * book. For commands the service cannot turn into a valid me_cmd (a
 * malformed amount, an unknown flag on the wire) but must still answer
 * in the market's gap-free stream. Returns 0, or -1 (nothing emitted)
 * when reason is not a rejection reason (ME_R_NONE or >= ME_R_MAX_).
 */
int me_market_reject(struct me_market *m, const struct me_cmd *cmd, int reason, me_emit_fn emit,
                     void *ctx);

uint64_t me_market_seq(const struct me_market *m);
int64_t me_market_last_price(const struct me_market *m);
size_t me_market_order_count(const struct me_market *m);
const struct me_rules *me_market_rules(const struct me_market *m);
/* Best price of a side into *price; -1 if the side is empty. */
int me_market_best(const struct me_market *m, int side, int64_t *price);

struct me_order_info {
    uint64_t order_id, user_id;
    int64_t price, remaining, filled, quote;
    uint8_t side, stp;
};
/* Looks up an open order; -1 if none. */
int me_market_find(const struct me_market *m, uint64_t order_id, struct me_order_info *out);

struct me_depth_level {
    int64_t price;
    int64_t qty;    /* sum of remaining */
    uint32_t count; /* orders at the level */
};
/* Resting orders on one side (sum of level counts; O(levels)). 0 for a
 * bad side. (Additive, for the service's depth gauge.) */
size_t me_market_side_orders(const struct me_market *m, int side);
/* Price levels on one side, O(1). */
size_t me_market_side_levels(const struct me_market *m, int side);
/* Writes up to n levels of `side`, best first; returns how many. */
size_t me_market_depth(const struct me_market *m, int side, struct me_depth_level *out, size_t n);

/* Verifies every internal invariant (not crossed, level sums, FIFO order,
 * id map); 0 if sound, -1 otherwise. O(orders): for tests and debugging. */
int me_market_check(const struct me_market *m);

/*
 * Snapshot: the full market (rules, seq, last price, every open order in
 * priority order) as bytes; *out is malloc'd, caller frees. Restore
 * validates the bytes as hostile input (checksum, bounds, ordering) and
 * returns a new market or NULL.
 */
int me_market_snapshot(const struct me_market *m, uint8_t **out, size_t *len);
struct me_market *me_market_restore(const uint8_t *data, size_t len);

/* Canonical event encoding: fixed ME_EVENT_WIRE_SIZE bytes little-endian,
 * fields in struct order. Returns bytes written. */
#define ME_EVENT_WIRE_SIZE 92u
size_t me_event_encode(const struct me_event *ev, uint8_t out[ME_EVENT_WIRE_SIZE]);
/* FNV-1a 64 over bytes, chained from h (start with ME_HASH_INIT). */
#define ME_HASH_INIT 0xcbf29ce484222325ull
uint64_t me_hash(uint64_t h, const void *p, size_t n);
/* h chained with the canonical encoding of ev. */
uint64_t me_event_hash(uint64_t h, const struct me_event *ev);
/* One-line text form ("seq=3 TRADE ..."), NUL-terminated, truncated to n. */
int me_event_format(const struct me_event *ev, char *buf, size_t n);
const char *me_event_type_name(int type);
const char *me_reason_name(int reason);

#endif
