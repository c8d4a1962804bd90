#ifndef MATCHING_MARKET_INTERNAL_H
#define MATCHING_MARKET_INTERNAL_H
/*
 * Private layout of a market, shared by the core's .c files only.
 *
 * Book layout: each side is an array of price levels sorted by `key`
 * ascending, where key = price for bids and -price for asks, so the BEST
 * level of either side is always the LAST element. Why this and not a tree
 * or a tick ladder: real flow concentrates at and near the touch, so
 *   - best price is v[n-1]: O(1), one cache line;
 *   - finding a level scans a few slots back from the end and only then
 *     binary-searches (levels[] holds key + pointer, 16 bytes, so the
 *     search never touches level memory);
 *   - inserting or removing a level near the touch moves a handful of
 *     slots; only a level deep in the book costs a longer memmove, and
 *     that is a plain contiguous copy (2,000 levels = 32 KB).
 * A tick ladder would be O(1) everywhere but needs a bounded price window
 * plus a fallback structure; for a bounded tick range that is the next
 * step if profiling ever shows deep-book inserts mattering.
 *
 * Each level is a FIFO doubly linked list of orders (time priority); an
 * order points to its level, so cancel is: id map -> order -> unlink, O(1),
 * plus the level removal above when it empties. Each order is also on its
 * owner's list (user map -> struct me_user), so cancel-all costs
 * O(k log k) in the user's k orders, not O(book). Orders and levels live in
 * me_pools, so the hot path never calls malloc.
 */
#include <stdint.h>

#include "book.h"
#include "id_map.h"
#include "order_pool.h"

struct me_level;
struct me_user;

/* The first cache line holds everything the matching loop touches on a
 * maker (FIFO link, ids, price, quantities); links used only on removal
 * and bookkeeping sit in the second. 128 bytes, 64-byte aligned. */
struct me_order {
    _Alignas(64) struct me_order *next; /* FIFO within the level */
    struct me_level *level;
    uint64_t id;
    uint64_t user;
    int64_t price;
    int64_t remaining; /* base units, > 0 while resting */
    int64_t filled;    /* base units */
    int64_t quote;     /* notional filled */
    struct me_order *prev;
    struct me_order *unext, *uprev; /* the owner's open orders, unordered */
    struct me_user *owner;
    uint64_t prio; /* arrival number: strictly increasing in a level */
    uint8_t side;
    uint8_t stp; /* resolved, never ME_STP_DEFAULT */
};

struct me_level {
    struct me_order *head, *tail;
    int64_t price;
    int64_t qty; /* sum of remaining; bounded by the side total, which
                    validation keeps from overflowing */
    uint32_t count;
};

/* A user with open orders in this market (freed when the last one goes),
 * so cancel-all touches only that user's orders. */
struct me_user {
    struct me_order *head;
    uint64_t id;
    uint32_t count;
};

struct me_slot {
    int64_t key;
    struct me_level *lv;
};

struct me_book_side {
    struct me_slot *v; /* owned */
    uint32_t n, cap;
};

struct me_market {
    struct me_rules rules;
    int64_t scale; /* 10^base_scale */
    uint64_t seq;
    uint64_t next_prio;
    int64_t last_price;
    int64_t side_qty[2]; /* sum of remaining per side: bounds level sums */
    struct me_book_side sides[2];
    struct me_pool orders;
    struct me_pool levels;
    struct me_pool users;
    struct me_idmap ids;       /* order id -> struct me_order */
    struct me_idmap user_ids;  /* user id -> struct me_user (open orders) */
    struct me_order **scratch; /* cancel-all work array, owned */
    size_t scratch_cap;
};

static inline int64_t side_key(int side, int64_t price)
{
    return side == ME_BUY ? price : -price;
}

/* levels.c */
int me_side_init(struct me_book_side *s, uint32_t cap);
void me_side_release(struct me_book_side *s);
int me_side_reserve(struct me_book_side *s);
/* Index of the level with key, or -1. */
long me_side_find(const struct me_book_side *s, int64_t key);
/* Inserts at the sorted position; key must be absent, room reserved. */
void me_side_insert(struct me_book_side *s, int64_t key, struct me_level *lv);
void me_side_remove(struct me_book_side *s, int64_t key);

/* market.c: book maintenance used by matching and restore. Room in the
 * pools, id map and side array must have been reserved. */
struct me_order *me_book_add(struct me_market *m, uint64_t id, uint64_t user, int side,
                             int64_t price, int64_t qty, uint8_t stp, uint64_t prio);
/* Unlinks and frees o (and its level if it empties). */
void me_book_remove(struct me_market *m, struct me_order *o);
/* Reserves room for one more resting order; 0 or -1. */
int me_book_reserve(struct me_market *m);
/* Checks rules; 0 if acceptable. */
int me_rules_valid(const struct me_rules *r);
int64_t me_pow10(int e);

#endif
