#ifndef MATCHING_MATCHING_H
#define MATCHING_MATCHING_H
/*
 * The matching service around the core (core/book.h): one consumer thread
 * owns every market's book; HTTP workers read published depth copies.
 * docs/matching.md ("The service") has the walk-through.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http_server.h"
#include "core/book.h"

#define MATCHING_VERSION "1.0.0"
#define MT_SYMBOL_MAX 32
#define MT_DEPTH_MAX 1000 /* levels per side kept for GET /v1/books */

/* ---- config.c ------------------------------------------------------- */
struct mt_config {
    int port;
    int threads;
    const char *database_url;
    const char *brokers;
    const char *kafka_props; /* KAFKA_PROPS as given */
    char props[1024];        /* defaults (linger) + KAFKA_PROPS */
    const char *group;
    const char *partitions; /* MATCHING_PARTITIONS: "" (group), "all", "0,3" */
    const char *commands_topic;
    const char *events_topic;
    const char *trades_topic;
    const char *markets_file;
    const char *migrations_dir;
    const char *admin_token;
    int64_t snapshot_every;       /* commands per partition between snapshots */
    int64_t snapshot_interval_ms; /* or this long, whichever first */
    int64_t batch_max;            /* commands per consume/produce batch */
    int64_t order_capacity;       /* orders preallocated per new market */
    int64_t produce_timeout_ms;
    /* Test-only fault (MATCHING_CRASH_POINT / MATCHING_CRASH_AFTER): the
     * process SIGKILLs itself the Nth time it reaches the point. */
    int crash_point;
    int64_t crash_after;
};
enum mt_crash_point {
    MT_CRASH_NONE = 0,
    MT_CRASH_APPLIED,  /* a command applied, its batch not produced yet */
    MT_CRASH_PRODUCED, /* a batch delivered, offsets not committed yet */
    MT_CRASH_SNAPSHOT, /* snapshot rows written, transaction not committed */
};
/* events.c: kills the process with SIGKILL when the configured point is
 * reached for the configured time; otherwise nothing. */
void mt_crash_point(int point);
extern struct mt_config mt_cfg;
/* Reads the environment; -1 after printing the problems (exit 2). */
int mt_config_load(struct mt_config *c);

/* ---- markets (config.c): the rules file, loaded once at start ------- */
struct mt_depth {
    pthread_mutex_t mu;
    uint64_t seq;
    char ts[40]; /* ts of the last applied command ("" before any) */
    size_t nb, na;
    struct me_depth_level bids[MT_DEPTH_MAX], asks[MT_DEPTH_MAX];
};

struct mt_market {
    char symbol[MT_SYMBOL_MAX];
    int base_scale, quote_scale;
    struct me_rules rules;
    /* Consumer thread only. */
    struct me_market *book; /* NULL until loaded or first used */
    int32_t partition;      /* partition of the commands topic; -1 unbound */
    int dirty;              /* changed since the last snapshot */
    int published_dirty;    /* changed since depth was last published */
    char last_ts[40];
    int64_t snap_ms;  /* wall clock of the last snapshot (0 none) */
    int64_t gauge_ms; /* last matching_book_depth refresh */
    /* Any thread, under depth.mu. */
    struct mt_depth depth;
    int64_t snap_ok_ms; /* atomic-ish: written by consumer, read by collect */
};
extern struct mt_market *mt_markets;
extern size_t mt_nmarkets;
/* Loads the markets file (JSON, services/trading-api/markets.json shape).
 * 0, or -1 with a reason in err. */
int mt_markets_load(const char *path, int64_t order_capacity, char *err, size_t errlen);
struct mt_market *mt_market_find(const char *symbol, size_t len);
void mt_markets_free(void);

/* ---- command.c: hostile JSON -> struct me_cmd (pure) ----------------- */
enum mt_parse {
    MT_CMD_OK = 0,         /* cmd filled; apply it */
    MT_CMD_REJECT = 1,     /* answer with me_market_reject(reject_reason) */
    MT_CMD_SKIP = -1,      /* cannot be answered (no market/user...): log, skip */
    MT_CMD_NO_MARKET = -2, /* well-formed market symbol we do not trade */
};
struct mt_cmd {
    struct me_cmd cmd;
    struct mt_market *market;
    int reject_reason;
    char ts[40];     /* the command's ts, copied verbatim to its events */
    int has_stp;     /* stp given on the wire (echoed in accepted) */
    int by_quote;    /* market order by quote budget */
    const char *why; /* reason for SKIP / REJECT, for logs */
};
/* Parses one command value. Never crashes on any bytes. */
int mt_command_parse(const void *data, size_t len, struct mt_cmd *out);
/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" -> ns since epoch; 0 / -1. */
int mt_parse_ts(const char *s, uint64_t *ns);

/* ---- render.c: core events -> contract JSON (pure) ------------------- */
/* Appends ev as its contract JSON (no newline) to b; *trade is set to 1
 * when it belongs on the trades topic. 0 / -1 (buffer cap). */
int mt_render_event(struct cm_buf *b, const struct mt_market *mk, const struct mt_cmd *c,
                    const struct me_event *ev, int *trade);
const char *mt_event_type(int type); /* "order.accepted", "trade", ... */

/* ---- store.c: snapshots in PostgreSQL ------------------------------- */
int store_open(const char *url);
void store_close(void);
int store_ping(void);
struct store_book {
    const char *market;
    int32_t partition;
    uint64_t seq;
    const uint8_t *data;
    size_t len;
};
/* One transaction: the partitions' next offsets and the books. 0 / -1. */
int store_snapshot_put(const char *topic, const int32_t *parts, const int64_t *next_offsets,
                       size_t nparts, const struct store_book *books, size_t nbooks);
/* Next offset stored for a partition: 0 and *next, 1 when none, -1 error. */
int store_partition_get(const char *topic, int32_t partition, int64_t *next);
/* Calls fn for every stored book of the partition (partition < 0: all).
 * data is borrowed for the call. 0 / -1. */
typedef int (*store_book_fn)(void *ctx, const char *market, int32_t partition, const uint8_t *data,
                             size_t len);
int store_books_load(const char *topic, int32_t partition, store_book_fn fn, void *ctx);

/* ---- events.c: the consumer thread ----------------------------------- */
int events_start(void);
void events_stop(void);
/* 1 once the books of the stored snapshot are loaded. */
int events_books_loaded(void);
/* 0 after deliveries failed until the next batch goes through. */
int events_kafka_ok(void);
/* 1 when the consumer stopped on an unrecoverable error (exit non-zero). */
int events_failed(void);

/* ---- handlers/books.c + metrics (main.c) ----------------------------- */
void books_publish(struct mt_market *mk);
struct mt_metrics {
    struct cm_metric *commands, *latency, *depth, *trades, *produced, *snap_age, *snap_time,
        *snap_fail;
};
extern struct mt_metrics mt_m;
int64_t mt_now_ms(void);

/* handlers/books.c */
void handle_get_book(struct cm_http_req *req);

/* routes.c */
extern const struct cm_http_route mt_routes[];
extern const size_t mt_nroutes;

#endif
