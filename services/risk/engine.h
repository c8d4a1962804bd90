#ifndef RISK_ENGINE_H
#define RISK_ENGINE_H
/*
 * The risk rules engine: pure state and rules, no I/O (docs/risk.md).
 *
 * Events go in (risk_engine_apply), hits come out (struct risk_hit); the
 * caller turns hits into actions (alerts, blocks, webhooks). Pre-trade
 * decisions (risk_engine_pretrade) read the same state. Time is always
 * passed in: stream rules use the event's own timestamp, so replaying the
 * same events rebuilds the same state (restart without double counting).
 *
 * Amounts, prices and notionals are int64 minor units at RISK_SCALE (8)
 * decimals, whatever the asset: every market of the lab has at most 8
 * decimals; an event with more precision is refused (malformed).
 * Thresholds: amounts at RISK_SCALE; counts as integers; price bands in
 * basis points. A rule fires when the observed value reaches its
 * threshold (observed >= threshold).
 *
 * Thread-safety: none inside; the service wraps an engine in a rwlock
 * (writers: the consumer thread and rule reloads; readers: HTTP).
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define RISK_SCALE 8
#define RISK_RULE_ID_MAX 64
#define RISK_MAX_WINDOW_S 60 /* order-rate ring: one bucket per second */
#define RISK_WASH_RING 64    /* wash_trading thresholds are at most this */
#define RISK_MAX_HITS 16     /* hits one event can produce */

enum risk_kind {
    RK_MAX_ORDER_NOTIONAL = 0,
    RK_MAX_OPEN_ORDERS,
    RK_ORDER_RATE,
    RK_PRICE_BAND,
    RK_WASH_TRADING,
    RK_WITHDRAWAL_VELOCITY,
    RK_EXPOSURE_CONCENTRATION,
    RK_COUNT
};
enum risk_action { RA_ALERT = 0, RA_BLOCK, RA_SIMULATE };
enum risk_severity { RS_INFO = 0, RS_WARNING, RS_CRITICAL };

const char *risk_kind_name(enum risk_kind k);
const char *risk_action_name(enum risk_action a);
const char *risk_severity_name(enum risk_severity s);
/* 1 when the kind's threshold is an amount at RISK_SCALE, 0 for counts/bps. */
int risk_kind_is_amount(enum risk_kind k);

struct risk_rule {
    char id[RISK_RULE_ID_MAX + 1];
    enum risk_kind kind;
    enum risk_severity severity;
    enum risk_action action;
    int64_t threshold; /* see the header comment for the unit */
    int64_t window_s;  /* order_rate, wash_trading, withdrawal_velocity */
    int64_t block_ttl_s;
    int enabled;
};

struct risk_rules {
    struct risk_rule *v;
    size_t n;
    int64_t loaded_at_ms;
    char source[512];
};

/* Parses a rules document (see services/risk/rules.json). Returns a new
 * set (caller owns: risk_rules_free) or NULL with the reason in err. Every
 * rule is checked (id syntax and uniqueness, kind, severity, action,
 * threshold syntax and range, window bounds); one bad rule rejects the
 * whole file. default_ttl_s fills block_ttl_s when a rule has none. */
struct risk_rules *risk_rules_parse(const char *json, int64_t default_ttl_s, char *err,
                                    size_t errlen);
/* Reads and parses path (at most 1 MiB). Same contract. */
struct risk_rules *risk_rules_load(const char *path, int64_t default_ttl_s, char *err,
                                   size_t errlen);
void risk_rules_free(struct risk_rules *r);
/* {"loaded_at":..., "source":..., "rules":[...]} as in proto/openapi/risk.yaml.
 * Caller owns the tree. */
cJSON *risk_rules_json(const struct risk_rules *r);

/* One rule that fired. Strings are copies (valid after the engine moves on). */
struct risk_hit {
    char rule_id[RISK_RULE_ID_MAX + 1];
    enum risk_kind kind;
    enum risk_severity severity;
    enum risk_action action;
    int64_t block_ttl_s;
    uint64_t user_id;
    char market[32];
    int64_t observed; /* in the threshold's unit */
    int64_t threshold;
    char message[256];
    char source_event_id[136];
    int newly_blocked; /* action block and the user was not blocked yet */
};

struct risk_hits {
    struct risk_hit v[RISK_MAX_HITS];
    size_t n;
};

struct risk_engine;

/* Caller owns; rules are consumed (may be NULL: no rules). */
struct risk_engine *risk_engine_new(struct risk_rules *rules);
void risk_engine_free(struct risk_engine *e);
/* Replaces the rules (consumes the new set, frees the old one). */
void risk_engine_set_rules(struct risk_engine *e, struct risk_rules *rules);
const struct risk_rules *risk_engine_rules(const struct risk_engine *e);

enum risk_apply_result {
    RISK_APPLIED = 0,
    RISK_DUPLICATE = 1, /* at or below the applied offset: ignored */
    RISK_IGNORED = 2,   /* a type risk does not use (hold.placed...) */
    RISK_MALFORMED = -1,
};

/*
 * Applies one event (a parsed JSON object in the proto/events shape) read
 * from topic/partition at offset (offset < 0: no dedup, used by tests and
 * the in-process bench). now_ms is the wall clock (block expiries); rule
 * windows use the event's ts. Hits are appended to hits (may be NULL).
 * Returns a risk_apply_result.
 */
int risk_engine_apply(struct risk_engine *e, const char *topic, int32_t partition, int64_t offset,
                      const cJSON *ev, int64_t now_ms, struct risk_hits *hits);
/* Same, from the raw JSON text. */
int risk_engine_apply_json(struct risk_engine *e, const char *topic, int32_t partition,
                           int64_t offset, const char *json, size_t len, int64_t now_ms,
                           struct risk_hits *hits);

/* The next offset to read for topic/partition (applied + 1), or -1 when the
 * engine has applied nothing from it. */
int64_t risk_engine_next_offset(const struct risk_engine *e, const char *topic, int32_t partition);

/* A pre-trade request, already validated (amounts at RISK_SCALE). */
struct risk_order {
    uint64_t user_id;
    const char *market;
    int side_buy;
    int is_market;
    int has_price, has_qty, has_quote;
    int64_t price, qty, quote;
};

struct risk_decision {
    int deny;
    int simulated; /* a simulate rule would have denied */
    char rule_id[RISK_RULE_ID_MAX + 1];
    enum risk_kind kind;
    int blocked; /* denied because the user is blocked */
    char reason[256];
};

/* Decides from memory. Simulate rules never deny; they set simulated and
 * name the rule. A blocked user is denied with rule_id "account_blocked". */
void risk_engine_pretrade(const struct risk_engine *e, const struct risk_order *o, int64_t now_ms,
                          struct risk_decision *d);

/* GET /admin/users/{id}/risk (proto/openapi/risk.yaml UserRisk). Caller
 * owns the tree. */
cJSON *risk_engine_user_json(const struct risk_engine *e, uint64_t user_id, int64_t now_ms);
/* Lifts a block: 1 when the user was blocked, else 0. */
int risk_engine_unblock(struct risk_engine *e, uint64_t user_id);
/* Marks a user blocked (restores from the Redis key or tests). */
void risk_engine_block(struct risk_engine *e, uint64_t user_id, const char *rule_id,
                       int64_t until_ms);
/* Users whose block has not expired at now_ms. */
size_t risk_engine_blocked_count(const struct risk_engine *e, int64_t now_ms);
/* Drops user pairs whose last trade is older than the longest wash-trading
 * window (at least 1 h) before the latest event time: they can no longer
 * count. Returns how many went. Keeps memory bounded by recent activity. */
size_t risk_engine_prune(struct risk_engine *e);
/* Events applied since creation (not part of snapshots' equality). */
uint64_t risk_engine_events(const struct risk_engine *e);

/* Snapshot: the whole state plus the applied offsets, as one JSON text
 * (caller frees), and back. risk_engine_restore replaces the state of e
 * (rules stay). 0 / -1 (the engine is left empty on failure). */
char *risk_engine_snapshot(const struct risk_engine *e, size_t *len);
int risk_engine_restore(struct risk_engine *e, const char *json, size_t len);

/* Helpers shared with the service. */
/* "2026-11-21T12:00:00.123456Z" -> ms since the epoch; -1 on bad syntax. */
int64_t risk_parse_ts(const char *s);
/* ms since the epoch -> "2026-11-21T12:00:00.123Z" (n >= RISK_TS_MAX). */
#define RISK_TS_MAX 80
void risk_format_ts(int64_t ms, char *buf, size_t n);
/* digits only, 1..20 characters, fits uint64 and is not 0: 0 / -1. */
int risk_parse_user(const char *s, uint64_t *out);

#endif
