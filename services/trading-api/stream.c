/*
 * Server-Sent Events per market: GET /v1/markets/{market}/stream.
 *
 * Subscribers live in one mutex-guarded list. Trades are pushed by the
 * consumer thread (stream_publish); a feed thread polls matching's book
 * (depth 1) every 250 ms for markets that have subscribers and sends a
 * `top` message when the best bid/ask changed, plus a heartbeat every 15 s
 * so a departed client is noticed. cm_http_stream_send copies into the
 * stream's bounded queue (1 MiB); -1 means the client is gone or too slow,
 * and the stream is closed and dropped.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/decimal.h"
#include "common/json_http.h"
#include "common/log.h"
#include "trading.h"
#include "common/banned.h"

#define HEARTBEAT_MS 15000
#define TOP_POLL_MS 250

struct sub {
    struct cm_http_stream *st;
    const struct market *m;
    struct sub *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct sub *subs;
static pthread_t feed;
static int stopping, started;
static char last_top[MAX_MARKETS][256];

void stream_subscribe(struct cm_http_req *r, const struct market *m)
{
    struct sub *s = calloc(1, sizeof *s);
    if (!s) {
        cm_http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    cm_http_set_header(r, "Cache-Control", "no-cache");
    s->st = cm_http_reply_stream(r, 200, "text/event-stream", NULL, NULL, NULL);
    if (!s->st) {
        free(s);
        return;
    }
    s->m = m;
    cm_http_stream_send(s->st, ": subscribed\n\n", 14);
    const char *last = cm_http_req_header(r, "Last-Event-ID");
    uint64_t after = 0;
    pthread_mutex_lock(&mu);
    /* Resume: the trades after Last-Event-ID are sent before the stream
     * joins the list, with the list locked, so none is missed (the one
     * being applied right now may come twice: ids let clients dedupe). */
    if (last && parse_uint_id(last, &after) == 0 && after < INT64_MAX) {
        struct trade_row *rows = NULL;
        size_t n = 0;
        if (store_trades_after(m->symbol, (int64_t)after, 1000, &rows, &n) == ST_OK) {
            for (size_t i = 0; i < n; i++) {
                char *d = trade_stream_json(m, &rows[i]);
                char head[64];
                int hl = snprintf(head, sizeof head,
                                  "event: trade\nid: %lld\ndata: ", (long long)rows[i].seq);
                if (d) {
                    cm_http_stream_send(s->st, head, (size_t)hl);
                    cm_http_stream_send(s->st, d, strlen(d));
                    cm_http_stream_send(s->st, "\n\n", 2);
                }
                free(d);
            }
        }
        free(rows);
    }
    s->next = subs;
    subs = s;
    /* A new subscriber gets the current top at the next poll. */
    last_top[m - trading_markets][0] = 0;
    pthread_mutex_unlock(&mu);
}

/* Sends to the subscribers of market (all if NULL); drops failed ones.
 * Called with mu held. */
static void send_locked(const struct market *m, const char *buf, size_t len)
{
    struct sub **pp = &subs;
    while (*pp) {
        struct sub *s = *pp;
        if (m && s->m != m) {
            pp = &s->next;
            continue;
        }
        if (cm_http_stream_send(s->st, buf, len) < 0) {
            cm_http_stream_close(s->st);
            cm_http_stream_release(s->st);
            *pp = s->next;
            free(s);
            continue;
        }
        pp = &s->next;
    }
}

static void publish_to(const struct market *m, const char *event, int64_t id, const char *data)
{
    struct cm_buf b;
    cm_buf_init(&b, 1u << 20);
    if (id > 0)
        cm_buf_printf(&b, "event: %s\nid: %lld\ndata: %s\n\n", event, (long long)id, data);
    else
        cm_buf_printf(&b, "event: %s\ndata: %s\n\n", event, data);
    pthread_mutex_lock(&mu);
    if (b.data)
        send_locked(m, b.data, b.len);
    pthread_mutex_unlock(&mu);
    cm_buf_release(&b);
}

void stream_publish(const char *market, const char *event, int64_t id, const char *data)
{
    const struct market *m = market_find(trading_markets, trading_nmarkets, market);
    if (m)
        publish_to(m, event, id, data);
}

static int has_subs(const struct market *m)
{
    int any = 0;
    pthread_mutex_lock(&mu);
    for (struct sub *s = subs; s && !any; s = s->next)
        any = s->m == m;
    pthread_mutex_unlock(&mu);
    return any;
}

/* Top of book of a Book body as TopOfBook JSON (caller frees) or NULL. */
static char *top_of(const struct market *m, const char *body)
{
    cJSON *b = cJSON_Parse(body);
    if (!b)
        return NULL;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "market", m->symbol);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(b, "seq");
    cJSON_AddNumberToObject(t, "seq",
                            cJSON_IsNumber(seq) && seq->valuedouble >= 1 ? seq->valuedouble : 1);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(b, "ts");
    char now[40];
    now_ts(now, sizeof now);
    cJSON_AddStringToObject(t, "ts", cJSON_IsString(ts) ? ts->valuestring : now);
    static const char *const f[2][3] = {{"bids", "best_bid_price", "best_bid_quantity"},
                                        {"asks", "best_ask_price", "best_ask_quantity"}};
    for (int i = 0; i < 2; i++) {
        const cJSON *lv = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, f[i][0]), 0);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(lv, "price");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(lv, "quantity");
        if (cJSON_IsString(p) && cJSON_IsString(q)) {
            cJSON_AddStringToObject(t, f[i][1], p->valuestring);
            cJSON_AddStringToObject(t, f[i][2], q->valuestring);
        }
    }
    cJSON_Delete(b);
    char *s = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    return s;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *run(void *arg)
{
    (void)arg;
    int64_t last_beat = mono_ms();
    for (;;) {
        pthread_mutex_lock(&mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += TOP_POLL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (!stopping)
            pthread_cond_timedwait(&cv, &mu, &until);
        int stop = stopping;
        pthread_mutex_unlock(&mu);
        if (stop)
            break;
        for (size_t i = 0; i < trading_nmarkets; i++) {
            const struct market *m = &trading_markets[i];
            if (!has_subs(m))
                continue;
            char *body = NULL;
            if (matching_book(m->symbol, 1, &body, 200) != UP_OK) {
                free(body);
                continue;
            }
            char *top = top_of(m, body);
            free(body);
            if (!top)
                continue;
            /* Compare without seq/ts: only a changed top is news. */
            char key[256];
            const char *cut = strstr(top, "\"best_");
            snprintf(key, sizeof key, "%s", cut ? cut : "-");
            pthread_mutex_lock(&mu);
            int changed = strcmp(last_top[i], key) != 0;
            if (changed)
                snprintf(last_top[i], sizeof last_top[i], "%s", key);
            pthread_mutex_unlock(&mu);
            if (changed)
                publish_to(m, "top", 0, top);
            free(top);
        }
        if (mono_ms() - last_beat >= HEARTBEAT_MS) {
            static const char beat[] = "event: heartbeat\ndata: {}\n\n";
            pthread_mutex_lock(&mu);
            send_locked(NULL, beat, sizeof beat - 1);
            pthread_mutex_unlock(&mu);
            last_beat = mono_ms();
        }
    }
    return NULL;
}

int stream_start(void)
{
    if (pthread_create(&feed, NULL, run, NULL) != 0)
        return -1;
    started = 1;
    return 0;
}

void stream_stop(void)
{
    if (started) {
        pthread_mutex_lock(&mu);
        stopping = 1;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(feed, NULL);
        started = 0;
    }
    pthread_mutex_lock(&mu);
    while (subs) {
        struct sub *s = subs;
        subs = s->next;
        cm_http_stream_close(s->st);
        cm_http_stream_release(s->st);
        free(s);
    }
    pthread_mutex_unlock(&mu);
}
