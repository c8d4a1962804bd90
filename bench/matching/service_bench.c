/*
 * The matching service end to end through devkafka (bench/matching.sh
 * starts the infrastructure and the service; this program drives Kafka and
 * PostgreSQL). Subcommands, all bounded:
 *
 *   throughput BROKERS CMDS EVENTS TRADES N
 *       produces N commands (mt_client.c's stream over the markets in
 *       MTC_MARKETS) as fast as the producer goes, then one sentinel per
 *       market (a cancel of order 1, answered not_found, the market's last
 *       event); throughput = N / (last sentinel event seen - first send).
 *   latency BROKERS CMDS EVENTS TRADES RATE SECONDS
 *       open loop at RATE commands/s (sleeping to each scheduled send
 *       time); latency of a command = first trade naming it as taker seen
 *       by the reader - its scheduled send time; prints p50/p99/p99.9.
 *   hop BROKERS TOPIC RATE SECONDS
 *       the comparison: the same open loop through one Kafka hop only
 *       (produce to TOPIC, consume it), no matching in between.
 *   seed BROKERS CMDS DATABASE_URL ORDERS
 *       builds a BTC-USDT book of ORDERS resting orders in-process, sends
 *       one command to learn the market's partition and offset, and
 *       stores the book as matching's snapshot for that partition (as of
 *       that offset), so the service starts with the book.
 *   recover BROKERS CMDS EVENTS PORT BIN
 *       spawns BIN (environment inherited), sends one probe command at
 *       once, and reports the time until /readyz is 200 and the probe's
 *       event is out (the later of the two).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../../services/matching/core/book.h"
#include "../../services/matching/tests/mt_client.h"

#include "common/banned.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
    int64_t d = t - now_ns();
    if (d > 0) {
        struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

static char *market_names[64];

/* MTC_MARKETS="A-USDT,B-USDT,..." (the service's markets file has them). */
static void markets_from_env(void)
{
    const char *e = getenv("MTC_MARKETS");
    if (!e || !*e)
        return;
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s", e);
    int n = 0;
    for (char *p = buf; p && *p && n < 64;) {
        char *c = strchr(p, ',');
        if (c)
            *c++ = 0;
        market_names[n++] = p;
        p = c;
    }
    mtc_markets = (const char *const *)market_names;
    mtc_nmarkets = n;
}

/* ---- throughput ----------------------------------------------------------- */

struct tp {
    int sentinels;
    int64_t last_ns;
    size_t events;
};

static void tp_msg(void *ctx, const char *topic, const void *v, size_t len, int64_t ts)
{
    (void)topic, (void)ts;
    struct tp *t = ctx;
    t->events++;
    if (memmem(v, len, "\"order_id\":\"1\",", 15) && memmem(v, len, "\"user_id\":\"999999\"", 18)) {
        t->sentinels++;
        t->last_ns = now_ns();
    }
}

static int sentinel(rd_kafka_t *p, const char *topic, const char *market)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "{\"type\":\"order.cancel\",\"version\":1,\"id\":\"s\",\"ts\":"
                     "\"2026-11-21T12:00:00Z\",\"market\":\"%s\",\"order_id\":\"1\","
                     "\"user_id\":\"999999\"}",
                     market);
    return mtc_produce(p, topic, market, buf, (size_t)n);
}

static int throughput(const char *brokers, const char *cmds, const char *evs, const char *trs,
                      size_t n)
{
    const char *topics[] = {evs, trs, NULL};
    struct mtc_reader *r = mtc_reader_open(brokers, topics);
    rd_kafka_t *p = mtc_producer(brokers, 5);
    if (!r || !p)
        return 1;
    /* drain what the topics already hold */
    struct tp t = {0};
    while (mtc_reader_poll(r, 500, tp_msg, &t) > 0)
        ;
    /* warm up: the group must have joined and every market answered */
    for (int m = 0; m < mtc_nmarkets; m++)
        sentinel(p, cmds, mtc_markets[m]);
    rd_kafka_flush(p, 10000);
    t = (struct tp){0};
    int64_t wend = now_ns() + 60 * 1000000000LL;
    while (t.sentinels < mtc_nmarkets && now_ns() < wend)
        mtc_reader_poll(r, 100, tp_msg, &t);
    if (t.sentinels < mtc_nmarkets) {
        printf("# throughput: the service did not answer the warm-up within 60 s\n");
        return 1;
    }
    t = (struct tp){0};
    uint64_t seed = (uint64_t)now_ns();
    char buf[1024];
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        const char *market;
        size_t len = mtc_command(seed, i, 0, buf, sizeof buf, &market);
        if (mtc_produce(p, cmds, market, buf, len) < 0)
            return 1;
        if ((i & 1023) == 0)
            rd_kafka_poll(p, 0);
        if ((i & 8191) == 0) /* keep the reader's buffers drained */
            mtc_reader_poll(r, 0, tp_msg, &t);
    }
    for (int m = 0; m < mtc_nmarkets; m++)
        sentinel(p, cmds, mtc_markets[m]);
    int64_t sent = now_ns();
    rd_kafka_flush(p, 30000);
    int64_t end = now_ns() + 120 * 1000000000LL;
    while (t.sentinels < mtc_nmarkets && now_ns() < end)
        mtc_reader_poll(r, 100, tp_msg, &t);
    if (t.sentinels < mtc_nmarkets) {
        printf("# throughput: only %d of %d markets finished within 120 s (%zu events)\n",
               t.sentinels, mtc_nmarkets, t.events);
        return 1;
    }
    double s = (double)(t.last_ns - t0) / 1e9;
    printf("# throughput: %zu commands over %d markets produced in %.3f s, last event after "
           "%.3f s, %zu events (%.2f per command)\n",
           n, mtc_nmarkets, (double)(sent - t0) / 1e9, s, t.events, (double)t.events / (double)n);
    printf("BENCH matching.service.throughput %.0f cmd/s\n", (double)n / s);
    mtc_reader_close(r);
    rd_kafka_destroy(p);
    return 0;
}

/* ---- latency ---------------------------------------------------------------- */

struct lat {
    int64_t *sent;    /* by command index */
    int64_t *sent_rt; /* CLOCK_REALTIME ms of the actual send */
    int64_t *svc;     /* trade's Kafka timestamp - sent_rt: up to matching's produce */
    size_t n;
    uint64_t base_order;
    int64_t *samples;
    size_t ns;
    uint8_t *seen;
};

static int hop_mode;

static void lat_msg(void *ctx, const char *topic, const void *v, size_t len, int64_t ts)
{
    (void)topic, (void)ts;
    struct lat *l = ctx;
    int64_t now = now_ns();
    uint64_t id;
    if (hop_mode) { /* "hop <order id>": the raw Kafka baseline */
        if (len < 5 || memcmp(v, "hop ", 4) != 0)
            return;
        char t[32];
        size_t n = len - 4 < sizeof t - 1 ? len - 4 : sizeof t - 1;
        memcpy(t, (const char *)v + 4, n);
        t[n] = 0;
        id = strtoull(t, NULL, 10);
    } else {
        const char *p = memmem(v, len, "\"taker_order_id\":\"", 18);
        if (!p)
            return;
        id = strtoull(p + 18, NULL, 10);
    }
    if (id < l->base_order || id - l->base_order >= l->n)
        return;
    size_t i = (size_t)(id - l->base_order);
    int64_t sent = __atomic_load_n(&l->sent[i], __ATOMIC_ACQUIRE);
    if (l->seen[i] || !sent)
        return;
    l->seen[i] = 1;
    l->svc[l->ns] = ts - __atomic_load_n(&l->sent_rt[i], __ATOMIC_ACQUIRE);
    l->samples[l->ns++] = now - sent;
}

struct lat_reader {
    struct mtc_reader *r;
    struct lat *l;
    volatile int stop;
};

/* The reader runs on its own thread so sends keep their schedule. */
static void *lat_read(void *arg)
{
    struct lat_reader *lr = arg;
    while (!lr->stop)
        mtc_reader_poll(lr->r, 10, lat_msg, lr->l);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int latency(const char *brokers, const char *cmds, const char *evs, const char *trs,
                   int rate, int seconds)
{
    (void)evs;
    const char *topics[] = {trs, NULL};
    struct mtc_reader *r = mtc_reader_open(brokers, topics);
    rd_kafka_t *p = mtc_producer(brokers, 0);
    if (!r || !p)
        return 1;
    struct lat l = {0};
    while (mtc_reader_poll(r, 500, lat_msg, &l) > 0)
        ;
    l.n = (size_t)rate * (size_t)seconds;
    l.sent = calloc(l.n, sizeof *l.sent);
    l.samples = calloc(l.n, sizeof *l.samples);
    l.seen = calloc(l.n, 1);
    l.sent_rt = calloc(l.n, sizeof *l.sent_rt);
    l.svc = calloc(l.n, sizeof *l.svc);
    l.base_order = mtc_order_base = 1000000000;
    if (!l.sent || !l.samples || !l.seen)
        return 1;
    uint64_t seed = (uint64_t)now_ns();
    char buf[1024];
    /* warm the producer up (connection, idempotent producer id) */
    for (int m = 0; m < mtc_nmarkets; m++)
        sentinel(p, cmds, mtc_markets[m]);
    rd_kafka_flush(p, 10000);
    struct lat_reader lr = {r, &l, 0};
    pthread_t th;
    if (pthread_create(&th, NULL, lat_read, &lr) != 0)
        return 1;
    int64_t period = 1000000000LL / rate, t0 = now_ns() + 10000000;
    for (size_t i = 0; i < l.n; i++) {
        int64_t at = t0 + (int64_t)i * period;
        sleep_until(at);
        const char *market;
        size_t len = mtc_command(seed, i, 0, buf, sizeof buf, &market);
        if (hop_mode) {
            int n = snprintf(buf, sizeof buf, "hop %" PRIu64, l.base_order + i);
            len = (size_t)n;
        }
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        __atomic_store_n(&l.sent_rt[i], (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000,
                         __ATOMIC_RELEASE);
        /* from the scheduled time: no coordinated omission */
        __atomic_store_n(&l.sent[i], at, __ATOMIC_RELEASE);
        if (mtc_produce(p, cmds, market, buf, len) < 0)
            return 1;
        rd_kafka_poll(p, 0);
    }
    sleep_until(now_ns() + 3000000000LL);
    lr.stop = 1;
    pthread_join(th, NULL);
    if (l.ns < 100) {
        printf("# latency: only %zu trades observed\n", l.ns);
        return 1;
    }
    qsort(l.samples, l.ns, sizeof *l.samples, cmp64);
    qsort(l.svc, l.ns, sizeof *l.svc, cmp64);
    if (!hop_mode)
        printf("# latency: send to the trade's Kafka timestamp (matching's produce call), ms "
               "resolution: p50 %" PRId64 " ms p99 %" PRId64 " ms\n",
               l.svc[l.ns / 2], l.svc[l.ns * 99 / 100]);
    double p50 = (double)l.samples[l.ns / 2] / 1e6, p99 = (double)l.samples[l.ns * 99 / 100] / 1e6,
           p999 = (double)l.samples[l.ns * 999 / 1000] / 1e6,
           max = (double)l.samples[l.ns - 1] / 1e6;
    if (!hop_mode)
        printf("# latency: %zu commands at %d/s open loop, %zu taker orders traded; command to "
               "first trade event: p50 %.3f ms p99 %.3f ms p99.9 %.3f ms max %.3f ms\n",
               l.n, rate, l.ns, p50, p99, p999, max);
    if (hop_mode)
        printf("# baseline, one Kafka hop (produce -> consume, no matching) at %d/s: p50 %.3f ms "
               "p99 %.3f ms p99.9 %.3f ms max %.3f ms\n",
               rate, p50, p99, p999, max);
    else
        printf("BENCH matching.service.p99 %.3f ms\n", p99);
    mtc_reader_close(r);
    rd_kafka_destroy(p);
    free(l.sent), free(l.samples), free(l.seen), free(l.sent_rt), free(l.svc);
    return 0;
}

/* ---- seed ------------------------------------------------------------------- */

struct dr {
    int32_t partition;
    int64_t offset;
    int done;
};

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    struct dr *d = m->_private;
    if (d) {
        d->partition = m->partition;
        d->offset = m->err ? -1 : m->offset;
        d->done = 1;
    }
}

static void no_event(void *ctx, const struct me_event *ev)
{
    (void)ctx, (void)ev;
}

static int seed(const char *brokers, const char *cmds, const char *db, size_t orders)
{
    /* BTC-USDT of markets.json, sized for the book */
    struct me_rules rules = {.base_scale = 8,
                             .stp_default = ME_STP_CANCEL_TAKER,
                             .band_bps = 1000,
                             .tick = 10000,
                             .lot = 1000,
                             .min_qty = 1000,
                             .max_qty = 10000000000,
                             .min_price = 10000,
                             .max_price = 10000000000000,
                             .order_capacity = 1u << 21};
    struct me_market *m = me_market_new(&rules);
    if (!m)
        return 1;
    /* bids 29000.00..29999.99 and asks 30000.01..31000.00, 100k levels of
     * cents, orders spread evenly over them, 5000 users */
    for (size_t i = 0; i < orders; i++) {
        int side = (int)(i & 1);
        int64_t cents = (int64_t)((i / 2) % 100000);
        struct me_cmd c = {.type = ME_CMD_PLACE,
                           .order_type = ME_LIMIT,
                           .tif = ME_GTC,
                           .side = (uint8_t)side,
                           .order_id = 10000000 + i,
                           .user_id = 1 + i % 5000,
                           .qty = 1000 * (int64_t)(1 + i % 7)};
        c.price = side == ME_BUY ? (2999999 - cents) * 10000 : (3000001 + cents) * 10000;
        if (me_market_apply(m, &c, no_event, NULL) < 0)
            return 1;
    }
    uint8_t *snap;
    size_t len;
    if (me_market_snapshot(m, &snap, &len) < 0)
        return 1;
    printf("# seed: BTC-USDT book of %zu orders, snapshot %zu bytes, seq %" PRIu64 "\n",
           me_market_order_count(m), len, me_market_seq(m));
    /* where the market's commands land: send one harmless command */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!p)
        return 1;
    struct dr d = {0};
    const char *cancel = "{\"type\":\"order.cancel\",\"version\":1,\"id\":\"seed\",\"ts\":"
                         "\"2026-11-21T12:00:00Z\",\"market\":\"BTC-USDT\",\"order_id\":\"1\","
                         "\"user_id\":\"999999\"}";
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(cmds), RD_KAFKA_V_KEY("BTC-USDT", 8),
                      RD_KAFKA_V_VALUE((void *)cancel, strlen(cancel)),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&d),
                      RD_KAFKA_V_END);
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    if (!d.done || d.offset < 0)
        return 1;
    PGconn *pg = PQconnectdb(db);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "seed: %s", PQerrorMessage(pg));
        return 1;
    }
    char part[16], off[24], seq[24];
    snprintf(part, sizeof part, "%" PRId32, d.partition);
    snprintf(off, sizeof off, "%" PRId64, d.offset);
    snprintf(seq, sizeof seq, "%" PRIu64, me_market_seq(m));
    const char *v1[] = {cmds, part, off};
    PGresult *r = PQexecParams(pg,
                               "INSERT INTO matching_offsets (topic, partition, next_offset) "
                               "VALUES ($1, $2, $3) ON CONFLICT (topic, partition) DO UPDATE "
                               "SET next_offset = EXCLUDED.next_offset",
                               3, NULL, v1, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    const char *v2[] = {cmds, "BTC-USDT", part, seq, (const char *)snap};
    int lens[] = {0, 0, 0, 0, (int)len}, fmts[] = {0, 0, 0, 0, 1};
    r = PQexecParams(pg,
                     "INSERT INTO matching_books (topic, market, partition, seq, snapshot) "
                     "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (topic, market) DO UPDATE "
                     "SET partition = EXCLUDED.partition, seq = EXCLUDED.seq, "
                     "snapshot = EXCLUDED.snapshot",
                     5, NULL, v2, lens, fmts, 0);
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "seed: %s", PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    free(snap);
    me_market_free(m);
    printf("# seed: stored for partition %" PRId32 " as of offset %" PRId64 "\n", d.partition,
           d.offset);
    return ok ? 0 : 1;
}

/* ---- recover ------------------------------------------------------------- */

static int readyz(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        const char req[] = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        char buf[64] = {0};
        if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
            read(fd, buf, sizeof buf - 1) > 12)
            ok = strncmp(buf + 9, "200", 3) == 0;
    }
    close(fd);
    return ok;
}

struct probe {
    int seen;
    char needle[64]; /* "order_id":"<unique>" : a replayed older probe must not count */
};

static void probe_msg(void *ctx, const char *topic, const void *v, size_t len, int64_t ts)
{
    (void)topic, (void)ts;
    struct probe *p = ctx;
    if (memmem(v, len, p->needle, strlen(p->needle)))
        p->seen = 1;
}

static int recover(const char *brokers, const char *cmds, const char *evs, int port,
                   const char *bin)
{
    const char *topics[] = {evs, NULL};
    struct mtc_reader *r = mtc_reader_open(brokers, topics);
    rd_kafka_t *p = mtc_producer(brokers, 0);
    if (!r || !p)
        return 1;
    struct probe pr = {0};
    uint64_t probe_id = 100000000 + (uint64_t)now_ns() % 800000000;
    snprintf(pr.needle, sizeof pr.needle, "\"order_id\":\"%" PRIu64 "\"", probe_id);
    while (mtc_reader_poll(r, 300, probe_msg, &pr) > 0)
        ;
    pr.seen = 0;
    int64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        const char *log = getenv("MATCHING_BENCH_LOG");
        int fd = open(log && *log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        return 1;
    printf("%d\n", (int)pid); /* first line: the service's pid for the caller */
    fflush(stdout);
    char cancel[256];
    int clen = snprintf(cancel, sizeof cancel,
                        "{\"type\":\"order.cancel\",\"version\":1,\"id\":\"probe\",\"ts\":"
                        "\"2026-11-21T12:00:00Z\",\"market\":\"BTC-USDT\",\"order_id\":\"%" PRIu64
                        "\",\"user_id\":\"999998\"}",
                        probe_id);
    mtc_produce(p, cmds, "BTC-USDT", cancel, (size_t)clen);
    rd_kafka_flush(p, 5000);
    int64_t t_ready = 0, t_event = 0, end = t0 + 60000000000LL;
    while ((!t_ready || !t_event) && now_ns() < end) {
        if (!t_ready && readyz(port))
            t_ready = now_ns();
        if (!t_event) {
            mtc_reader_poll(r, 10, probe_msg, &pr);
            if (pr.seen)
                t_event = now_ns();
        }
    }
    if (!t_ready || !t_event) {
        printf("# recovery: not serving within 60 s (ready %d, event %d)\n", !!t_ready, !!t_event);
        return 1;
    }
    double ready = (double)(t_ready - t0) / 1e9, event = (double)(t_event - t0) / 1e9;
    printf("# recovery: /readyz 200 after %.3f s, next command's event after %.3f s\n", ready,
           event);
    printf("BENCH matching.recovery.seconds %.3f s\n", ready > event ? ready : event);
    mtc_reader_close(r);
    rd_kafka_destroy(p);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    markets_from_env();
    if (argc == 7 && strcmp(argv[1], "throughput") == 0)
        return throughput(argv[2], argv[3], argv[4], argv[5], (size_t)strtol(argv[6], NULL, 10));
    if (argc == 8 && strcmp(argv[1], "latency") == 0)
        return latency(argv[2], argv[3], argv[4], argv[5], (int)strtol(argv[6], NULL, 10),
                       (int)strtol(argv[7], NULL, 10));
    if (argc == 6 && strcmp(argv[1], "hop") == 0) {
        hop_mode = 1;
        return latency(argv[2], argv[3], argv[3], argv[3], (int)strtol(argv[4], NULL, 10),
                       (int)strtol(argv[5], NULL, 10));
    }
    if (argc == 6 && strcmp(argv[1], "seed") == 0)
        return seed(argv[2], argv[3], argv[4], (size_t)strtol(argv[5], NULL, 10));
    if (argc == 7 && strcmp(argv[1], "recover") == 0)
        return recover(argv[2], argv[3], argv[4], (int)strtol(argv[5], NULL, 10), argv[6]);
    fprintf(stderr, "usage: see the comment at the top of bench/matching/service_bench.c\n");
    return 2;
}
