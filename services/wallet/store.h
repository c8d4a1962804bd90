#ifndef WALLET_STORE_H
#define WALLET_STORE_H
/*
 * The wallet's PostgreSQL store. Every SQL statement of the service lives
 * in store.c; state changes are the SQL functions of
 * migrations/002_functions.sql, which answer with a result word
 * ("created", "exists", "conflict", "insufficient", ...).
 *
 * JSON answers are rendered by PostgreSQL (json_build_object, amounts via
 * wallet_fmt at the asset's scale) and handed over as malloc'd strings.
 */
#include <stddef.h>
#include <stdint.h>

#include "wallet.h"

enum { STORE_OK = 0, STORE_ERR = -1, STORE_NONE = 1, STORE_POISON = 2 };

/* Result word of a state-changing function; 0, or -1 (sqlstate set).
 * store_place_hold answers "created|<created_at>",
 * "exists|<remaining>|<status>|<created_at>", "conflict" or "insufficient"
 * (one round trip; the handler renders the hold from it). */
int store_place_hold(const char *hold, const char *user, const char *asset, int64_t amount,
                     const char *amount_text, const char *purpose, const char *ref, char *word,
                     size_t n, char sqlstate[6]);
int store_release_hold(const char *hold, const char *reason, char *word, size_t n);
int store_create_deposit(const char *user, const char *key, const char *asset, int64_t amount,
                         const char *tx, int required, char *word, size_t n, char sqlstate[6]);
int store_credit_deposit(const char *id, char *word, size_t n);
int store_request_withdrawal(const char *user, const char *key, const struct wallet_asset *a,
                             int64_t amount, const char *address, char *word, size_t n,
                             char sqlstate[6]);
int store_approve_withdrawal(const char *id, char *word, size_t n);
int store_address_add(const char *user, const char *asset, const char *address);

/* JSON documents (caller frees *json). STORE_OK, STORE_NONE (no such row
 * for that user), STORE_ERR. user NULL: any owner (admin). */
int store_hold_json(const char *hold, char **json);
int store_balances_json(const char *user, char **json);
int store_ledger_json(const char *user, const char *asset, int64_t before, int limit, char **json);
int store_deposit_json(const char *id, const char *user, char **json);
int store_deposits_json(const char *user, int64_t before, int limit, char **json);
int store_withdrawal_json(const char *id, const char *user, char **json);

/* Settlement: applies trades then order events in one transaction, each at
 * most once (trades and order end events through processed_events; the
 * other order events only mark holds seen, idempotent). STORE_OK with counts, STORE_POISON when a
 * trade or event cannot apply (missing/short hold, bad account): nothing
 * was written and the caller retries them one by one, STORE_ERR. applied
 * and dups count trades only; released counts the holds released (0: the
 * batch wrote no outbox row, the relay need not be woken). */
int store_settle(const struct trade *t, size_t nt, const struct order_event *ev, size_t ne,
                 size_t *applied, size_t *dups, size_t *released);
/* Records an event that can never apply (outcome 'rejected'); 0 / -1. */
int store_reject_event(const char *event_id, const char *kind);

/* Withdrawal worker. */
struct withdrawal_row {
    char id[ID_MAX + 1];
    char user_id[USER_ID_MAX + 1];
    char asset[16];
    char amount[40]; /* formatted at the asset's scale */
    char address[130];
    char status[24];
    char signature[160];
};
int store_withdrawal_load(const char *id, struct withdrawal_row *w);
/* A worker step (queued/signed/broadcast/complete/fail): its result word. */
int store_withdrawal_step(const char *sql_fn, int n, const char *const *params, char *word,
                          size_t wn);
/* Ids of withdrawals requested/approved but not queued for older than
 * age_ms (at most max). */
int store_unqueued_withdrawals(int64_t age_ms, char ids[][ID_MAX + 1], size_t max, size_t *n);
int store_queue_depth(int64_t *n);

/* Ticker. */
int store_tick_deposits(int max, int *credited);
/* Order holds never seen by matching for longer than age_ms. */
int store_stranded_holds(int64_t age_ms, char ids[][ID_MAX + 1], size_t max, size_t *n);
int store_mark_hold_seen(const char *hold);

/* Outbox relay: under the relay's advisory lock, runs fn over the oldest
 * unsent rows from m->from on and marks the first *delivered as sent.
 * Rows marked (0 also when another replica holds the lock), or -1.
 *
 * m is the relay's low-water mark (migrations/009_outbox_low_water.sql):
 * every outbox row below m->from that will ever commit is sent, so a poll
 * never walks the dead index entries sent rows leave behind. It moves
 * only past ids whose writers have provably ended, so a row whose id was
 * drawn early but that commits late is still found. Start it zeroed (one
 * full walk); owned by the single relay thread. */
#define OUTBOX_PAIRS 32
struct outbox_mark {
    int64_t from;
    /* (last outbox id drawn, then the marking transaction's id), oldest
     * first: ids up to last_id are settled once that transaction id is
     * below a poll's snapshot xmin. */
    struct {
        int64_t last_id;
        uint64_t xid;
    } pairs[OUTBOX_PAIRS];
    size_t npairs;
};
struct outbox_row {
    int64_t id;
    char topic[128];
    char key[64];
    char *payload;
};
typedef size_t (*outbox_publish_fn)(void *ctx, struct outbox_row *rows, size_t n);
int store_outbox_relay(struct outbox_mark *m, size_t max, outbox_publish_fn fn, void *ctx);

#endif
