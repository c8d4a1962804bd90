#ifndef MATCHING_TESTS_SUPPORT_H
#define MATCHING_TESTS_SUPPORT_H
/* Shared helpers for the matching core's tests: an event recorder that
 * checks seq is gap-free as events arrive, command builders, default rules. */
#include <stddef.h>
#include <stdint.h>

#include "../core/book.h"

#define EVLOG_MAX 8192

struct evlog {
    struct me_event ev[EVLOG_MAX];
    size_t n;      /* events kept (capped at EVLOG_MAX) */
    size_t total;  /* events seen */
    uint64_t hash; /* me_event_hash chain over every event */
    uint64_t last_seq;
    int seq_errors; /* events whose seq was not last_seq + 1 */
};

void evlog_init(struct evlog *l, uint64_t first_seq);
void evlog_clear(struct evlog *l); /* forgets events, keeps hash and seq */
void evlog_emit(void *ctx, const struct me_event *ev);
/* Prints every kept event (for failure diagnostics). */
void evlog_dump(const struct evlog *l);

/* Rules used by most tests: base_scale 3 (qty 1000 = 1 base unit), tick 100,
 * lot 10, qty [20, 10^9], price [100, 10^12], no band, STP none. */
struct me_rules test_rules(void);

struct me_cmd cmd_limit(uint64_t id, uint64_t user, int side, int64_t price, int64_t qty, int tif);
struct me_cmd cmd_market(uint64_t id, uint64_t user, int side, int64_t qty, int64_t quote, int tif);
struct me_cmd cmd_cancel(uint64_t id, uint64_t user);
struct me_cmd cmd_cancel_all(uint64_t user);

#endif
