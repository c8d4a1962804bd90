/*
 * risk benchmark helper (bench/risk.sh):
 *   risk_bench produce BROKERS ORDERS_TOPIC TRADES_TOPIC N
 *       produces N events in the proto/events shapes (order.accepted,
 *       order.cancelled, trade; 5,000 users, 32 markets), then flushes.
 *   risk_bench engine N
 *       the pure rules engine in process (services/risk/rules.json):
 *       prints "BENCH risk.engine.throughput <n> events/s".
 *   risk_bench pretrade PORT RATE SECONDS
 *       open-loop POST /v1/pretrade at a fixed RATE (2 threads, keep-alive);
 *       latency counted from each request's scheduled start (no coordinated
 *       omission); prints "<achieved/s> <p50 ms> <p99 ms> <errors>".
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/kafka.h"
#include "../../services/risk/engine.h"
#include "common/banned.h"

#define USERS 5000
#define MARKETS 128

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void now_ts(char *buf, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    risk_format_ts((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, buf, n);
}

/* Event i of the synthetic stream: 2 accepted, 1 trade, 1 cancel per 4. */
static int event(char *buf, size_t n, long i, const char *ts, int *is_trade, char *key, size_t keyn)
{
    int m = (int)(i % MARKETS);
    long order = i / 4 * 2 + 1;
    int user = (int)(i * 7919 % USERS) + 1;
    snprintf(key, keyn, "B%03d-USDT", m);
    *is_trade = 0;
    switch (i % 4) {
    case 0:
    case 1:
        return snprintf(
            buf, n,
            "{\"type\":\"order.accepted\",\"version\":1,\"id\":\"%s:%ld\",\"ts\":\"%s\","
            "\"market\":\"%s\",\"seq\":%ld,\"order_id\":\"%ld\",\"user_id\":\"%d\","
            "\"side\":\"%s\",\"order_type\":\"limit\",\"price\":\"%d.25\","
            "\"quantity\":\"0.0150\",\"time_in_force\":\"GTC\",\"post_only\":false}",
            key, i + 1, ts, key, i + 1, order + (long)(i % 4), user, i % 4 ? "sell" : "buy",
            30000 + m);
    case 2:
        *is_trade = 1;
        return snprintf(buf, n,
                        "{\"type\":\"trade\",\"version\":1,\"id\":\"%s:%ld\",\"ts\":\"%s\","
                        "\"market\":\"%s\",\"seq\":%ld,\"price\":\"%d.25\",\"quantity\":"
                        "\"0.0100\",\"quote_amount\":\"300.0025\",\"taker_side\":\"sell\","
                        "\"taker_order_id\":\"%ld\",\"taker_user_id\":\"%d\",\"maker_order_id\":"
                        "\"%ld\",\"maker_user_id\":\"%d\"}",
                        key, i + 1, ts, key, i + 1, 30000 + m, order + 1, user, order,
                        (user % USERS) + 1);
    default:
        return snprintf(buf, n,
                        "{\"type\":\"order.cancelled\",\"version\":1,\"id\":\"%s:%ld\",\"ts\":"
                        "\"%s\",\"market\":\"%s\",\"seq\":%ld,\"order_id\":\"%ld\",\"user_id\":"
                        "\"%d\",\"side\":\"buy\",\"price\":\"%d.25\",\"filled_quantity\":\"0\","
                        "\"filled_quote\":\"0\",\"remaining_quantity\":\"0.0150\",\"reason\":"
                        "\"user_cancel\"}",
                        key, i + 1, ts, key, i + 1, order, user, 30000 + m);
    }
}

static int produce(const char *brokers, const char *orders, const char *trades, long n)
{
    char err[256];
    struct cm_kafka_config kc = {
        .brokers = brokers,
        .props = "linger.ms=100;batch.num.messages=100000;batch.size=4000000;queue.buffering.max."
                 "messages=2000000;queue.buffering.max.kbytes=2000000"};
    struct cm_kafka_producer *p = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!p) {
        fprintf(stderr, "risk_bench: %s\n", err);
        return 1;
    }
    char ts[RISK_TS_MAX], buf[1024], key[32];
    now_ts(ts, sizeof ts);
    long failed = 0;
    for (long i = 0; i < n; i++) {
        int is_trade;
        int len = event(buf, sizeof buf, i, ts, &is_trade, key, sizeof key);
        struct cm_kafka_out m = {.topic = is_trade ? trades : orders,
                                 .key = key,
                                 .key_len = strlen(key),
                                 .value = buf,
                                 .value_len = (size_t)len};
        while (cm_kafka_produce(p, &m, NULL, NULL) < 0) {
            if (++failed > 1000000) {
                fprintf(stderr, "risk_bench: producer stuck\n");
                return 1;
            }
            struct timespec d = {0, 1000000};
            nanosleep(&d, NULL);
        }
    }
    int rc = cm_kafka_producer_close(p, 60000);
    return rc == 0 ? 0 : 1;
}

static int engine(const char *rules_file, long n)
{
    char err[256];
    struct risk_rules *r = risk_rules_load(rules_file, 900, err, sizeof err);
    if (!r) {
        fprintf(stderr, "risk_bench: %s\n", err);
        return 1;
    }
    struct risk_engine *e = risk_engine_new(r);
    char ts[RISK_TS_MAX], key[32];
    now_ts(ts, sizeof ts);
    char **evs = malloc((size_t)n * sizeof *evs);
    int *lens = malloc((size_t)n * sizeof *lens);
    for (long i = 0; i < n; i++) {
        char buf[1024];
        int t;
        lens[i] = event(buf, sizeof buf, i, ts, &t, key, sizeof key);
        evs[i] = strdup(buf);
    }
    struct risk_hits hits;
    int64_t t0 = mono_ns();
    for (long i = 0; i < n; i++) {
        hits.n = 0;
        risk_engine_apply_json(e, "bench", (int32_t)(i % 16), i, evs[i], (size_t)lens[i],
                               1795000000000LL, &hits);
    }
    int64_t dt = mono_ns() - t0;
    printf("BENCH risk.engine.throughput %.0f events/s\n", (double)n * 1e9 / (double)dt);
    for (long i = 0; i < n; i++)
        free(evs[i]);
    free(evs);
    free(lens);
    risk_engine_free(e);
    return 0;
}

/* ---- pre-trade load ------------------------------------------------------ */

struct loader {
    int port;
    double rate; /* per thread */
    double seconds;
    int id;
    double *lat_ms;
    long n, errors;
};

static size_t discard(void *p, size_t s, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return s * n;
}

static void *load_main(void *arg)
{
    struct loader *l = arg;
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/pretrade", l->port);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    long total = (long)(l->rate * l->seconds);
    l->lat_ms = malloc((size_t)total * sizeof *l->lat_ms);
    int64_t period = (int64_t)(1e9 / l->rate);
    int64_t start = mono_ns() + l->id * period / 2;
    for (long i = 0; i < total; i++) {
        int64_t due = start + i * period;
        int64_t now = mono_ns();
        if (due > now) {
            struct timespec d = {(time_t)((due - now) / 1000000000),
                                 (long)((due - now) % 1000000000)};
            nanosleep(&d, NULL);
        }
        char body[256];
        snprintf(body, sizeof body,
                 "{\"user_id\":\"%ld\",\"market\":\"B%02ld-USDT\",\"side\":\"buy\",\"type\":"
                 "\"limit\",\"price\":\"30000.25\",\"quantity\":\"0.0150\"}",
                 i % USERS + 1, i % MARKETS);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        long code = 0;
        if (curl_easy_perform(c) != CURLE_OK ||
            (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code), code != 200))
            l->errors++;
        l->lat_ms[l->n++] = (double)(mono_ns() - due) / 1e6;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int pretrade(int port, double rate, double seconds)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct loader l[2];
    pthread_t t[2];
    int64_t t0 = mono_ns();
    for (int i = 0; i < 2; i++) {
        l[i] = (struct loader){.port = port, .rate = rate / 2, .seconds = seconds, .id = i};
        pthread_create(&t[i], NULL, load_main, &l[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double elapsed = (double)(mono_ns() - t0) / 1e9;
    long n = l[0].n + l[1].n;
    double *all = malloc((size_t)n * sizeof *all);
    memcpy(all, l[0].lat_ms, (size_t)l[0].n * sizeof *all);
    memcpy(all + l[0].n, l[1].lat_ms, (size_t)l[1].n * sizeof *all);
    qsort(all, (size_t)n, sizeof *all, cmp_d);
    printf("%.0f %.3f %.3f %ld\n", (double)n / elapsed, all[n / 2], all[(long)((double)n * 0.99)],
           l[0].errors + l[1].errors);
    free(all);
    free(l[0].lat_ms);
    free(l[1].lat_ms);
    curl_global_cleanup();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "produce") == 0)
        return produce(argv[2], argv[3], argv[4], strtol(argv[5], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "engine") == 0)
        return engine(argv[2], strtol(argv[3], NULL, 10));
    if (argc == 5 && strcmp(argv[1], "pretrade") == 0)
        return pretrade((int)strtol(argv[2], NULL, 10), strtod(argv[3], NULL),
                        strtod(argv[4], NULL));
    fprintf(stderr, "usage: risk_bench produce BROKERS ORDERS_TOPIC TRADES_TOPIC N\n"
                    "       risk_bench engine RULES_FILE N\n"
                    "       risk_bench pretrade PORT RATE SECONDS\n");
    return 2;
}
