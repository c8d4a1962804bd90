/*
 * Load generator for bench/wallet.sh.
 *
 *   wallet_bench settle N          produce N trades (orders 1 and 2 of the
 *                                  bench's users) to BENCH_TRADES_TOPIC, spread
 *                                  over its partitions; wait until the wallet
 *                                  recorded all of them in processed_events;
 *                                  print trades/s (first produce -> last settled)
 *   wallet_bench holds RATE SECS   open-loop POST /internal/holds at RATE/s
 *                                  (scheduled sends, latency measured from the
 *                                  scheduled time, so queueing counts); p50/p99
 *   wallet_bench withdraw RATE SECS  POST /v1/withdrawals at RATE/s, then wait
 *                                  until all are broadcast; p95 of request ->
 *                                  broadcast from the wallet's own timestamps
 *
 * Environment: WALLET_URL, DATABASE_URL, KAFKA_BROKERS, BENCH_TRADES_TOPIC.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "common/buf.h"
#include "common/kafka.h"
#include "common/banned.h"

#define THREADS 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "wallet_bench: %s is not set\n", name);
        exit(2);
    }
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static long long q_int(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    long long v =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

static int settle(long n)
{
    PGconn *db = PQconnectdb(env("DATABASE_URL"));
    if (PQstatus(db) != CONNECTION_OK)
        return 1;
    struct cm_kafka_config kc = {.brokers = env("KAFKA_BROKERS"),
                                 .props = "linger.ms=5;batch.num.messages=10000"};
    char err[256];
    struct cm_kafka_producer *p = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!p)
        return 1;
    const char *topic = env("BENCH_TRADES_TOPIC");
    /* devkafka trims each partition after a few MiB: spread the burst */
    const char *np = getenv("BENCH_PARTITIONS");
    long parts = np ? strtol(np, NULL, 10) : 4;
    if (parts < 1)
        parts = 1;
    /* librdkafka holds the first message to a topic it has not seen for up
     * to ~1 s: the load generator's start-up, not settlement time. */
    const char *topics[2] = {topic, NULL};
    cm_kafka_producer_prepare(p, topics, 5000);
    long long base = q_int(db, "SELECT count(*) FROM processed_events");
    double t0 = now_s();
    char json[768], id[64];
    long first = (long)(time(NULL) % 1000000) * 1000000; /* fresh ids per run */
    for (long i = 1; i <= n; i++) {
        snprintf(id, sizeof id, "BTC-USDT:%ld", first + i);
        int len = snprintf(
            json, sizeof json,
            "{\"type\":\"trade\",\"version\":1,\"id\":\"%s\",\"ts\":\"2026-11-21T12:00:00Z\","
            "\"market\":\"BTC-USDT\",\"seq\":%ld,\"price\":\"30000.000000\","
            "\"quantity\":\"0.00001000\",\"quote_amount\":\"0.300000\","
            "\"taker_side\":\"%s\",\"taker_order_id\":\"%s\",\"taker_user_id\":\"%s\","
            "\"maker_order_id\":\"%s\",\"maker_user_id\":\"%s\"}",
            id, first + i, i % 2 ? "buy" : "sell", i % 2 ? "1" : "2", i % 2 ? "1" : "2",
            i % 2 ? "2" : "1", i % 2 ? "2" : "1");
        struct cm_kafka_out m = {.topic = topic,
                                 .partition = (int32_t)(i % parts), /* retention */
                                 .partition_set = 1,
                                 .key = "BTC-USDT",
                                 .key_len = 8,
                                 .value = json,
                                 .value_len = (size_t)len};
        while (cm_kafka_produce(p, &m, NULL, NULL) < 0)
            usleep(1000);
    }
    cm_kafka_producer_flush(p, 30000);
    double tp = now_s();
    /* Polling must not load the database under test: counting a growing
     * processed_events every few ms costs PostgreSQL more CPU than the
     * settlement of a batch. Each partition is applied in order and a batch
     * commits atomically, so once the last trade of every partition is in
     * processed_events, all of them are; that is a handful of index probes.
     * The exact count confirms it (and is polled, more slowly, if not). */
    struct cm_buf last;
    cm_buf_init(&last, 0);
    long ntails = 0;
    for (long q = 0; q < parts; q++) {
        long i = n - (n - q) % parts; /* the largest i <= n with i % parts == q */
        if (i < 1)
            continue;
        cm_buf_printf(&last, "%s\"BTC-USDT:%ld\"", ntails++ ? "," : "{", first + i);
    }
    cm_buf_puts(&last, ntails ? "}" : "{}");
    char lastq[32];
    snprintf(lastq, sizeof lastq, "%ld", ntails);
    const char *pl[2] = {last.data, lastq};
    long long done = 0, last_done = -1;
    double last_progress = now_s(), last_count = 0;
    int tails_counted = 0;
    while (now_s() - t0 < 300) {
        PGresult *r = PQexecParams(db,
                                   "SELECT count(*) = $2::int FROM processed_events"
                                   " WHERE event_id = ANY ($1::text[])",
                                   2, NULL, pl, NULL, NULL, 0);
        int tails = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if ((tails && !tails_counted) || now_s() - last_count >= 1) {
            tails_counted = tails;
            done = q_int(db, "SELECT count(*) FROM processed_events") - base;
            last_count = now_s();
            if (done >= n)
                break;
            if (done != last_done) {
                last_done = done;
                last_progress = now_s();
            } else if (now_s() - last_progress > 15) {
                fprintf(stderr, "settle: stalled at %lld of %ld (see the wallet log)\n", done, n);
                break;
            }
        }
        usleep(5000);
    }
    cm_buf_release(&last);
    double t1 = done >= n ? now_s() : last_progress;
    fprintf(stderr, "settle: produced %ld in %.2fs, settled %lld in %.2fs\n", n, tp - t0, done,
            t1 - t0);
    printf("%.0f\n", (double)done / (t1 - t0));
    cm_kafka_producer_close(p, 2000);
    PQfinish(db);
    return done >= n ? 0 : 1;
}

struct load {
    const char *kind;
    double rate, secs, start;
    int tid;
    atomic_long *seq;
    double *lat;
    size_t nlat, cap;
    long errors;
};

static size_t sink(char *p, size_t s, size_t n, void *c)
{
    (void)p;
    (void)c;
    return s * n;
}

static void *loader(void *arg)
{
    struct load *l = arg;
    CURL *c = curl_easy_init();
    char url[512], body[256], key[96];
    const char *base = getenv("WALLET_URL");
    double interval = THREADS / l->rate;
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "X-User-Id: 1");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    for (long k = 0;; k++) {
        double due = l->start + (double)l->tid * interval / THREADS + (double)k * interval;
        if (due - l->start >= l->secs)
            break;
        double wait = due - now_s();
        if (wait > 0)
            usleep((useconds_t)(wait * 1e6));
        long s = atomic_fetch_add(l->seq, 1);
        struct curl_slist *hh = h;
        if (strcmp(l->kind, "holds") == 0) {
            snprintf(url, sizeof url, "%s/internal/holds", base);
            /* orders of 100 users (bench.sh funds 1000..1099): one user's
             * holds serialize on their account row, as they should */
            snprintf(body, sizeof body,
                     "{\"hold_id\":\"bh-%d-%ld\",\"user_id\":\"%ld\",\"asset\":\"USDT\","
                     "\"amount\":\"0.010000\"}",
                     (int)getpid(), s, 1000 + s % 100);
        } else {
            snprintf(url, sizeof url, "%s/v1/withdrawals", base);
            snprintf(body, sizeof body,
                     "{\"asset\":\"USDT\",\"amount\":\"1\",\"address\":"
                     "\"0x0000000000000000000000000000000000000001\"}");
            snprintf(key, sizeof key, "Idempotency-Key: bw-%d-%ld", (int)getpid(), s);
            hh = curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"),
                                   "X-User-Id: 1");
            hh = curl_slist_append(hh, key);
        }
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hh);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        long code = 0;
        if (curl_easy_perform(c) != CURLE_OK ||
            (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code), code >= 300))
            l->errors++;
        if (hh != h)
            curl_slist_free_all(hh);
        if (l->nlat < l->cap)
            l->lat[l->nlat++] = now_s() - due;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static int load(const char *kind, double rate, double secs)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t t[THREADS];
    struct load l[THREADS];
    atomic_long seq = 0;
    double start = now_s() + 0.2;
    for (int i = 0; i < THREADS; i++) {
        l[i] = (struct load){
            .kind = kind, .rate = rate, .secs = secs, .start = start, .tid = i, .seq = &seq};
        l[i].cap = (size_t)(rate * secs / THREADS) + 16;
        l[i].lat = calloc(l[i].cap, sizeof(double));
        pthread_create(&t[i], NULL, loader, &l[i]);
    }
    size_t total = 0;
    long errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += l[i].nlat;
        errors += l[i].errors;
    }
    double *all = calloc(total + 1, sizeof(double));
    size_t k = 0;
    for (int i = 0; i < THREADS; i++) {
        memcpy(all + k, l[i].lat, l[i].nlat * sizeof(double));
        k += l[i].nlat;
        free(l[i].lat);
    }
    double elapsed = now_s() - start;
    double p50 = pct(all, total, 0.50), p99 = pct(all, total, 0.99);
    fprintf(stderr, "%s: %zu requests in %.1fs (%.0f/s), %ld errors, p50 %.2f ms, p99 %.2f ms\n",
            kind, total, elapsed, (double)total / elapsed, errors, p50 * 1e3, p99 * 1e3);
    free(all);
    if (strcmp(kind, "holds") == 0) {
        printf("%.2f\n", p99 * 1e3);
        return errors ? 1 : 0;
    }
    /* withdrawals: wait for the queue to drain, then p95 from the DB */
    PGconn *db = PQconnectdb(env("DATABASE_URL"));
    double t0 = now_s();
    while (now_s() - t0 < 60 &&
           q_int(db, "SELECT count(*) FROM withdrawals WHERE status NOT IN ('completed', 'failed',"
                     " 'pending_approval')") > 0)
        usleep(50000);
    PGresult *r = PQexec(db, "SELECT coalesce(1000 * extract(epoch FROM percentile_cont(0.95)"
                             " WITHIN GROUP (ORDER BY broadcast_at - created_at)), -1),"
                             " count(*) FILTER (WHERE status = 'completed'), count(*)"
                             " FROM withdrawals");
    double p95 = PQresultStatus(r) == PGRES_TUPLES_OK ? atof(PQgetvalue(r, 0, 0)) : -1;
    fprintf(stderr, "withdraw: %s completed of %s\n",
            PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 1) : "?",
            PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 2) : "?");
    PQclear(r);
    PQfinish(db);
    printf("%.1f\n", p95);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "settle") == 0)
        return settle(strtol(argv[2], NULL, 10));
    if (argc >= 4 && (strcmp(argv[1], "holds") == 0 || strcmp(argv[1], "withdraw") == 0))
        return load(argv[1], strtod(argv[2], NULL), strtod(argv[3], NULL));
    fprintf(stderr, "usage: wallet_bench settle N | holds RATE SECS | withdraw RATE SECS\n");
    return 2;
}
