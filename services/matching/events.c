/*
 * The consumer thread: exchange.orders.commands in, exchange.orders.events
 * and exchange.trades out, one batch at a time:
 *
 *   poll up to MATCHING_BATCH commands (the first poll waits, the rest
 *   take what is already fetched) -> apply each to its market's book in
 *   offset order, rendering every event into the batch -> produce the
 *   batch and wait for every delivery (retrying from the first failure,
 *   in order) -> commit the consumer offsets -> publish depth copies for
 *   HTTP -> maybe snapshot.
 *
 * Exactly-once *after dedupe*: offsets are committed and snapshots taken
 * only once the outputs of everything before them are delivered. A crash
 * (SIGKILL anywhere) loses at most undelivered or uncommitted work; the
 * restart loads each partition's snapshot (books + next offset, one
 * transaction) and replays the commands after it. The core is
 * deterministic and the JSON is rendered from the event and the command
 * only, so the replayed commands re-emit byte-identical events with the
 * same ids/seqs, which consumers drop by (market, seq).
 *
 * A partition without a snapshot is replayed from the beginning of the
 * log (its markets start empty): the committed group offset is never
 * trusted for state, only the snapshot's. That also makes a restart under
 * a new group id safe.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "matching.h"
#include "common/banned.h"

#define MAX_PARTS 1024

struct part {
    int assigned;
    int64_t next; /* offset of the next command to apply; -1 unknown */
    int64_t since_snap;
};

struct out_ref {
    size_t off, len; /* in the batch buffer */
    const struct mt_market *mk;
    int trade;
};

static pthread_t thread;
static int running;
static atomic_int stop_flag, loaded, failed, kafka_ok = 1;
static struct cm_kafka_consumer *consumer;
static struct cm_kafka_producer *producer;
static struct part parts[MAX_PARTS];

/* The batch being built (consumer thread only). */
static struct cm_buf payload;
static struct out_ref *refs;
static size_t nrefs, refs_cap;
static struct cm_kafka_out *outs;
static size_t outs_cap;
static int64_t batch_cmds;
static int64_t last_snap_ms;

/* Per-batch metric counts, added to the registry once per batch (a
 * labelled update costs a series lookup; per event it showed in profiles). */
struct batch_counts {
    uint32_t events[ME_EV_EXPIRED + 1];
    uint32_t cmds[ME_CMD_CANCEL_ALL + 1][2]; /* [type][rejected] */
    uint32_t trades;
};
static struct batch_counts *counts; /* one per market */

static void flush_counts(void)
{
    static const char *const res[] = {"accepted", "rejected"};
    for (size_t i = 0; i < mt_nmarkets; i++) {
        struct batch_counts *k = &counts[i];
        const char *sym = mt_markets[i].symbol;
        for (int t = 1; t <= ME_EV_EXPIRED; t++)
            if (k->events[t])
                cm_counter_add(mt_m.produced, k->events[t], sym, mt_event_type(t));
        for (int t = 1; t <= ME_CMD_CANCEL_ALL; t++)
            for (int r = 0; r < 2; r++)
                if (k->cmds[t][r])
                    cm_counter_add(mt_m.commands, k->cmds[t][r], sym,
                                   t == ME_CMD_PLACE    ? "place"
                                   : t == ME_CMD_CANCEL ? "cancel"
                                                        : "cancel_all",
                                   res[r]);
        if (k->trades)
            cm_counter_add(mt_m.trades, k->trades, sym);
        memset(k, 0, sizeof *k);
    }
}

/* Context of the command being applied, for the emit callback. */
struct apply {
    struct mt_market *mk;
    const struct mt_cmd *cmd;
    int rejected, trades;
    int oom;
};

int events_books_loaded(void)
{
    return atomic_load(&loaded);
}

int events_kafka_ok(void)
{
    return atomic_load(&kafka_ok);
}

int events_failed(void)
{
    return atomic_load(&failed);
}

void mt_crash_point(int point)
{
    static int64_t seen;
    if (mt_cfg.crash_point == point && ++seen == mt_cfg.crash_after) {
        cm_warn("matching: MATCHING_CRASH_POINT reached, SIGKILL");
        kill(getpid(), SIGKILL);
    }
}

static void fatal(const char *what)
{
    cm_error("matching: %s; stopping (a restart recovers from the last snapshot)", what);
    atomic_store(&failed, 1);
    atomic_store(&stop_flag, 1);
    kill(getpid(), SIGTERM);
}

static void emit(void *ctx, const struct me_event *ev)
{
    struct apply *a = ctx;
    if (nrefs == refs_cap) {
        size_t cap = refs_cap ? refs_cap * 2 : 4096;
        struct out_ref *r = realloc(refs, cap * sizeof *r);
        if (!r) {
            a->oom = 1;
            return;
        }
        refs = r, refs_cap = cap;
    }
    struct out_ref *r = &refs[nrefs];
    r->off = payload.len;
    r->mk = a->mk;
    if (mt_render_event(&payload, a->mk, a->cmd, ev, &r->trade) < 0) {
        a->oom = 1;
        return;
    }
    r->len = payload.len - r->off;
    nrefs++;
    if (ev->type == ME_EV_REJECTED)
        a->rejected = 1;
    if (r->trade)
        a->trades++;
    if (ev->type <= ME_EV_EXPIRED)
        counts[a->mk - mt_markets].events[ev->type]++;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *type_label(int type)
{
    return type == ME_CMD_PLACE ? "place" : type == ME_CMD_CANCEL ? "cancel" : "cancel_all";
}

static int handle(void *ctx, const struct cm_kafka_msg *m)
{
    (void)ctx;
    int64_t t0 = now_ns();
    if (m->partition < 0 || m->partition >= MAX_PARTS) {
        cm_error("matching: partition %d out of range; skipped", m->partition);
        return 0;
    }
    struct part *p = &parts[m->partition];
    if (p->next >= 0 && m->offset < p->next) {
        cm_counter_add(mt_m.commands, 1, "unknown", "unknown", "duplicate");
        return 0; /* already applied (a rewind); its events were delivered */
    }
    if (p->next < 0 && m->offset > 0)
        cm_error("matching: %s[%d] starts at offset %" PRId64 " without a snapshot: older "
                 "commands were trimmed from the log and their state is lost",
                 m->topic, m->partition, m->offset);
    struct mt_cmd c;
    int rc = mt_command_parse(m->value, m->value_len, &c);
    if (rc == MT_CMD_OK || rc == MT_CMD_REJECT) {
        struct mt_market *mk = c.market;
        if (mk->partition >= 0 && mk->partition != m->partition) {
            cm_error("matching: %s command on partition %d but the market lives on %d "
                     "(key not the market?); skipped at offset %" PRId64,
                     mk->symbol, m->partition, mk->partition, m->offset);
            cm_counter_add(mt_m.commands, 1, mk->symbol, type_label(c.cmd.type), "skipped");
            goto done;
        }
        if (!mk->book && !(mk->book = me_market_new(&mk->rules))) {
            fatal("out of memory creating a book");
            return -1;
        }
        mk->partition = m->partition;
        struct apply a = {.mk = mk, .cmd = &c};
        size_t mark_refs = nrefs, mark_len = payload.len;
        int r = rc == MT_CMD_OK ? me_market_apply(mk->book, &c.cmd, emit, &a)
                                : me_market_reject(mk->book, &c.cmd, c.reject_reason, emit, &a);
        if (r < 0 || a.oom) {
            /* The core changed nothing on -1; a render failure after the
             * core applied cannot be undone: stop and recover. */
            nrefs = mark_refs, payload.len = mark_len;
            fatal(r < 0 ? "out of memory in the book" : "out of memory rendering events");
            return -1;
        }
        if (rc == MT_CMD_REJECT)
            cm_warn("matching: malformed %s command at %s[%d]@%" PRId64 " rejected (%s)",
                    mk->symbol, m->topic, m->partition, m->offset, c.why);
        mk->dirty = mk->published_dirty = 1;
        memcpy(mk->last_ts, c.ts, sizeof mk->last_ts);
        struct batch_counts *k = &counts[mk - mt_markets];
        k->cmds[c.cmd.type][a.rejected]++;
        k->trades += (uint32_t)a.trades;
        cm_histogram_observe(mt_m.latency, (double)(now_ns() - t0) / 1e9, mk->symbol);
    } else {
        cm_warn("matching: command at %s[%d]@%" PRId64 " skipped: %s", m->topic, m->partition,
                m->offset, c.why);
        cm_counter_add(mt_m.commands, 1, rc == MT_CMD_NO_MARKET ? "unknown_market" : "unknown",
                       "unknown", "skipped");
    }
done:
    mt_crash_point(MT_CRASH_APPLIED);
    p->next = m->offset + 1;
    p->since_snap++;
    batch_cmds++;
    return 0;
}

/* Produces the batch's events in order and waits for every delivery;
 * retries from the first undelivered message until it goes through. 0, or
 * -1 when stopping with deliveries outstanding (nothing is committed). */
static int flush_outputs(void)
{
    if (nrefs > outs_cap) {
        struct cm_kafka_out *o = realloc(outs, nrefs * sizeof *o);
        if (!o)
            return -1;
        outs = o, outs_cap = nrefs;
    }
    for (size_t i = 0; i < nrefs; i++) {
        struct cm_kafka_out *o = &outs[i];
        memset(o, 0, sizeof *o);
        o->topic = refs[i].trade ? mt_cfg.trades_topic : mt_cfg.events_topic;
        o->key = refs[i].mk->symbol;
        o->key_len = strlen(refs[i].mk->symbol);
        o->value = payload.data + refs[i].off;
        o->value_len = refs[i].len;
    }
    size_t from = 0;
    int backoff = 100;
    while (from < nrefs) {
        size_t ok = cm_kafka_produce_wait(producer, outs + from, nrefs - from,
                                          (int)mt_cfg.produce_timeout_ms);
        size_t first_bad = from;
        while (first_bad < nrefs && outs[first_bad].err == 0)
            first_bad++;
        if (ok == nrefs - from || first_bad == nrefs)
            break;
        atomic_store(&kafka_ok, 0);
        cm_error("matching: %zu of %zu events not delivered (first: err %d); retrying in order",
                 nrefs - from - ok, nrefs - from, outs[first_bad].err);
        from = first_bad;
        if (atomic_load(&stop_flag))
            return -1;
        struct timespec ts = {0, backoff * 1000000L};
        nanosleep(&ts, NULL);
        backoff = backoff < 2000 ? backoff * 2 : 2000;
    }
    atomic_store(&kafka_ok, 1);
    nrefs = 0;
    cm_buf_reset(&payload);
    return 0;
}

void books_publish(struct mt_market *mk)
{
    static struct me_depth_level bids[MT_DEPTH_MAX], asks[MT_DEPTH_MAX];
    size_t nb = me_market_depth(mk->book, ME_BUY, bids, MT_DEPTH_MAX);
    size_t na = me_market_depth(mk->book, ME_SELL, asks, MT_DEPTH_MAX);
    pthread_mutex_lock(&mk->depth.mu);
    memcpy(mk->depth.bids, bids, nb * sizeof *bids);
    memcpy(mk->depth.asks, asks, na * sizeof *asks);
    mk->depth.nb = nb, mk->depth.na = na;
    mk->depth.seq = me_market_seq(mk->book);
    memcpy(mk->depth.ts, mk->last_ts, sizeof mk->depth.ts);
    pthread_mutex_unlock(&mk->depth.mu);
    mk->published_dirty = 0;
    int64_t now = mt_now_ms();
    if (now - mk->gauge_ms >= 1000) { /* O(levels): at most once a second */
        mk->gauge_ms = now;
        cm_gauge_set(mt_m.depth, (double)me_market_side_orders(mk->book, ME_BUY), mk->symbol,
                     "bid");
        cm_gauge_set(mt_m.depth, (double)me_market_side_orders(mk->book, ME_SELL), mk->symbol,
                     "ask");
    }
}

static void publish_all(int force)
{
    for (size_t i = 0; i < mt_nmarkets; i++) {
        struct mt_market *mk = &mt_markets[i];
        if (mk->book && (mk->published_dirty || force))
            books_publish(mk);
    }
}

/*
 * Snapshots. The consumer thread captures (serializes the dirty books and
 * the partitions' next offsets at one point between batches, so they
 * agree); a writer thread stores the capture in one transaction, so the
 * hot path does not wait for PostgreSQL. One capture is in flight at a
 * time; a failed write makes the next capture include every book.
 */
struct snap_job {
    size_t np, nb;
    int32_t ids[MAX_PARTS];
    int64_t nexts[MAX_PARTS];
    struct store_book *books;
    uint8_t **bytes;
    struct mt_market **mks;
    int64_t t0;
};

static pthread_t writer;
static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t snap_cv = PTHREAD_COND_INITIALIZER;
static struct snap_job *snap_pending; /* handed to the writer */
static int snap_busy, writer_stop, writer_running;
static atomic_int snap_retry_all;

static void job_free(struct snap_job *j)
{
    if (!j)
        return;
    for (size_t i = 0; j->bytes && i < j->nb; i++)
        free(j->bytes[i]);
    free(j->bytes);
    free(j->books);
    free(j->mks);
    free(j);
}

static int job_write(struct snap_job *j)
{
    int rc = store_snapshot_put(mt_cfg.commands_topic, j->ids, j->nexts, j->np, j->books, j->nb);
    if (rc < 0) {
        cm_counter_add(mt_m.snap_fail, 1);
        atomic_store(&snap_retry_all, 1);
        return -1;
    }
    int64_t now = mt_now_ms();
    for (size_t i = 0; i < j->nb; i++)
        __atomic_store_n(&j->mks[i]->snap_ok_ms, now, __ATOMIC_RELAXED);
    cm_histogram_observe(mt_m.snap_time, (double)(now_ns() - j->t0) / 1e9);
    cm_debug("matching: snapshot of %zu partitions, %zu books", j->np, j->nb);
    return 0;
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&snap_mu);
    for (;;) {
        while (!snap_pending && !writer_stop)
            pthread_cond_wait(&snap_cv, &snap_mu);
        if (!snap_pending)
            break;
        struct snap_job *j = snap_pending;
        snap_pending = NULL;
        pthread_mutex_unlock(&snap_mu);
        job_write(j);
        job_free(j);
        pthread_mutex_lock(&snap_mu);
        snap_busy = 0;
        pthread_cond_broadcast(&snap_cv);
    }
    pthread_mutex_unlock(&snap_mu);
    return NULL;
}

/* Captures every partition that moved (all assigned ones when force) and
 * their dirty books (all when force or after a failed write). Outputs must
 * have been flushed first. sync=1 waits for any write in flight and
 * writes this one before returning (revocation, shutdown); sync=0 skips
 * when a write is still in flight. 0, or -1 (nothing captured/written). */
static int snapshot(int force, int sync)
{
    pthread_mutex_lock(&snap_mu);
    if (snap_busy && !sync) {
        pthread_mutex_unlock(&snap_mu);
        return -1;
    }
    while (snap_busy)
        pthread_cond_wait(&snap_cv, &snap_mu);
    pthread_mutex_unlock(&snap_mu);
    int all = force || atomic_exchange(&snap_retry_all, 0);
    struct snap_job *j = calloc(1, sizeof *j);
    size_t cap = mt_nmarkets ? mt_nmarkets : 1;
    if (!j || !(j->books = calloc(cap, sizeof *j->books)) ||
        !(j->bytes = calloc(cap, sizeof *j->bytes)) || !(j->mks = calloc(cap, sizeof *j->mks)))
        goto fail;
    j->t0 = now_ns();
    for (int32_t i = 0; i < MAX_PARTS; i++)
        if (parts[i].assigned && parts[i].next >= 0 && (parts[i].since_snap > 0 || all))
            j->ids[j->np] = i, j->nexts[j->np++] = parts[i].next;
    if (!j->np) {
        job_free(j);
        return 0;
    }
    for (size_t i = 0; i < mt_nmarkets; i++) {
        struct mt_market *mk = &mt_markets[i];
        if (!mk->book || (!mk->dirty && !all) || mk->partition < 0 ||
            !parts[mk->partition].assigned)
            continue;
        size_t len;
        if (me_market_snapshot(mk->book, &j->bytes[j->nb], &len) < 0)
            goto fail;
        j->books[j->nb] = (struct store_book){mk->symbol, mk->partition, me_market_seq(mk->book),
                                              j->bytes[j->nb], len};
        j->mks[j->nb++] = mk;
    }
    for (size_t i = 0; i < j->np; i++)
        parts[j->ids[i]].since_snap = 0;
    for (size_t i = 0; i < j->nb; i++)
        j->mks[i]->dirty = 0;
    last_snap_ms = mt_now_ms();
    if (sync || !writer_running) {
        int rc = job_write(j);
        job_free(j);
        return rc;
    }
    pthread_mutex_lock(&snap_mu);
    snap_busy = 1;
    snap_pending = j;
    pthread_cond_signal(&snap_cv);
    pthread_mutex_unlock(&snap_mu);
    return 0;
fail:
    cm_counter_add(mt_m.snap_fail, 1);
    atomic_store(&snap_retry_all, 1);
    job_free(j);
    last_snap_ms = mt_now_ms();
    return -1;
}

static void maybe_snapshot(void)
{
    int due = mt_now_ms() - last_snap_ms >= mt_cfg.snapshot_interval_ms;
    int any = atomic_load(&snap_retry_all);
    for (int32_t i = 0; i < MAX_PARTS; i++) {
        if (!parts[i].assigned || !parts[i].since_snap)
            continue;
        any = 1;
        if (parts[i].since_snap >= mt_cfg.snapshot_every)
            due = 1;
    }
    if (any && due)
        snapshot(0, 0);
}

/* ---- loading ------------------------------------------------------- */

static int load_book(void *ctx, const char *market, int32_t partition, const uint8_t *data,
                     size_t len)
{
    (void)ctx;
    struct mt_market *mk = mt_market_find(market, strlen(market));
    if (!mk) {
        cm_warn("matching: snapshot of unknown market %s ignored", market);
        return 0;
    }
    struct me_market *b = me_market_restore(data, len);
    if (!b) {
        cm_error("matching: snapshot of %s (%zu bytes) is damaged", market, len);
        return -1;
    }
    me_market_free(mk->book);
    mk->book = b;
    mk->partition = partition;
    mk->dirty = 0;
    mk->published_dirty = 1;
    mk->last_ts[0] = 0;
    __atomic_store_n(&mk->snap_ok_ms, mt_now_ms(), __ATOMIC_RELAXED);
    cm_info("matching: %s restored: %zu orders, seq %" PRIu64 " (partition %d)", market,
            me_market_order_count(b), me_market_seq(b), partition);
    return 0;
}

static void drop_books(int32_t partition)
{
    for (size_t i = 0; i < mt_nmarkets; i++)
        if (mt_markets[i].partition == partition) {
            me_market_free(mt_markets[i].book);
            mt_markets[i].book = NULL;
            mt_markets[i].partition = -1;
            mt_markets[i].dirty = 0;
        }
}

/* (Re)loads one partition's state unless what we hold is already as of
 * the stored offset. Sets *start to where consumption resumes. 0 / -1. */
static int load_partition(int32_t p, int64_t *start)
{
    int64_t next = -1;
    int rc = store_partition_get(mt_cfg.commands_topic, p, &next);
    if (rc < 0)
        return -1;
    if (rc == 1) { /* no snapshot: the whole log */
        drop_books(p);
        parts[p].next = -1;
        *start = CM_KAFKA_OFFSET_BEGINNING;
        return 0;
    }
    if (parts[p].next != next) {
        drop_books(p);
        if (store_books_load(mt_cfg.commands_topic, p, load_book, NULL) < 0)
            return -1;
        parts[p].next = next;
    }
    *start = next;
    return 0;
}

static void on_rebalance(void *ctx, int assigned, struct cm_kafka_partition *ps, size_t n)
{
    (void)ctx;
    if (!assigned) {
        /* Everything handled must be delivered before the consumer commits
         * it right after we return; then hand over a fresh snapshot. */
        if (flush_outputs() == 0)
            snapshot(1, 1);
        for (size_t i = 0; i < n; i++)
            if (ps[i].partition >= 0 && ps[i].partition < MAX_PARTS)
                parts[ps[i].partition].assigned = 0;
        cm_info("matching: %zu partitions revoked", n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t p = ps[i].partition;
        if (p < 0 || p >= MAX_PARTS) {
            fatal("partition number out of range");
            return;
        }
        int64_t start;
        int tries = 0;
        while (load_partition(p, &start) < 0) {
            if (++tries == 5 || atomic_load(&stop_flag)) {
                fatal("cannot load the snapshot of an assigned partition");
                return;
            }
            struct timespec ts = {0, 500 * 1000000L};
            nanosleep(&ts, NULL);
        }
        ps[i].offset = start;
        parts[p].assigned = 1;
        parts[p].since_snap = 0;
        cm_info("matching: partition %d assigned, resuming at %s%" PRId64, p,
                start == CM_KAFKA_OFFSET_BEGINNING ? "the beginning " : "offset ",
                start == CM_KAFKA_OFFSET_BEGINNING ? (int64_t)0 : start);
    }
    publish_all(1);
}

/* Loads every stored book before the group assigns anything, so /readyz
 * and GET /v1/books serve at once; assignment then keeps what is current. */
static int preload(void)
{
    for (int32_t p = 0; p < MAX_PARTS; p++)
        parts[p].next = -1;
    if (store_books_load(mt_cfg.commands_topic, -1, load_book, NULL) < 0)
        return -1;
    for (size_t i = 0; i < mt_nmarkets; i++) {
        struct mt_market *mk = &mt_markets[i];
        int64_t next;
        if (mk->book && mk->partition >= 0 && mk->partition < MAX_PARTS &&
            parts[mk->partition].next < 0 &&
            store_partition_get(mt_cfg.commands_topic, mk->partition, &next) == 0)
            parts[mk->partition].next = next;
    }
    publish_all(1);
    return 0;
}

static void *consume_main(void *arg)
{
    (void)arg;
    last_snap_ms = mt_now_ms();
    while (!atomic_load(&stop_flag)) {
        batch_cmds = 0;
        int r = cm_kafka_consumer_poll(consumer, 100, handle, NULL);
        int64_t t0 = now_ns();
        while (r == 1 && batch_cmds < mt_cfg.batch_max && !atomic_load(&stop_flag))
            r = cm_kafka_consumer_poll(consumer, 0, handle, NULL);
        int64_t t1 = now_ns();
        size_t nout = nrefs;
        if (nrefs && flush_outputs() < 0)
            break; /* stopping mid-outage: commit nothing */
        int64_t t2 = now_ns();
        if (batch_cmds) {
            mt_crash_point(MT_CRASH_PRODUCED);
            /* async: state comes from snapshots, the commit only feeds the
             * lag; it still follows the delivery of everything before it */
            cm_kafka_consumer_commit_done_async(consumer);
            cm_debug("matching: batch of %" PRId64 " commands, %zu events: apply %.3f ms, "
                     "produce %.3f ms, commit %.3f ms",
                     batch_cmds, nout, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6,
                     (double)(now_ns() - t2) / 1e6);
        }
        flush_counts();
        publish_all(0);
        maybe_snapshot();
        if (r < 0) {
            if (atomic_load(&failed))
                break;
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (!atomic_load(&failed) && nrefs == 0)
        snapshot(0, 1);
    return NULL;
}

int events_start(void)
{
    char err[512];
    cm_buf_init(&payload, 512u * 1024u * 1024u);
    counts = calloc(mt_nmarkets ? mt_nmarkets : 1, sizeof *counts);
    if (!counts)
        return -1;
    if (preload() < 0) {
        cm_error("matching: cannot load the snapshots");
        return -1;
    }
    atomic_store(&loaded, 1);
    struct cm_kafka_config kc = {
        .brokers = mt_cfg.brokers, .client_id = "matching", .props = mt_cfg.props};
    producer = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!producer) {
        cm_error("matching: kafka producer: %s", err);
        return -1;
    }
    const char *const outputs[] = {mt_cfg.events_topic, mt_cfg.trades_topic, NULL};
    cm_kafka_producer_prepare(producer, outputs, 2000); /* else the first batch waits ~1 s */
    static const char *topics[2];
    topics[0] = mt_cfg.commands_topic;
    struct cm_kafka_consumer_config cc = {.kafka = kc,
                                          .group_id = mt_cfg.group,
                                          .topics = topics,
                                          .offset_reset = "earliest",
                                          .on_rebalance = on_rebalance,
                                          .partitions = mt_cfg.partitions};
    consumer = cm_kafka_consumer_open(&cc, err, sizeof err);
    if (!consumer) {
        cm_error("matching: kafka consumer: %s", err);
        return -1;
    }
    if (pthread_create(&writer, NULL, writer_main, NULL) != 0)
        return -1;
    writer_running = 1;
    if (pthread_create(&thread, NULL, consume_main, NULL) != 0)
        return -1;
    running = 1;
    return 0;
}

void events_stop(void)
{
    atomic_store(&stop_flag, 1);
    if (running)
        pthread_join(thread, NULL);
    running = 0;
    if (writer_running) {
        pthread_mutex_lock(&snap_mu);
        writer_stop = 1;
        pthread_cond_signal(&snap_cv);
        pthread_mutex_unlock(&snap_mu);
        pthread_join(writer, NULL);
        writer_running = 0;
    }
    if (consumer && nrefs == 0)
        cm_kafka_consumer_close(consumer);
    consumer = NULL;
    cm_kafka_producer_close(producer, 5000);
    producer = NULL;
    free(refs);
    free(outs);
    refs = NULL, outs = NULL;
    nrefs = refs_cap = outs_cap = 0;
    cm_buf_release(&payload);
    free(counts);
    counts = NULL;
}
