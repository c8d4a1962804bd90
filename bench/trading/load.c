/*
 * trading_load: open-loop load for POST /v1/orders at a fixed rate
 * (Debian's wrk has no -R). CONNS keep-alive connections, one thread
 * each; thread k sends its i-th request at start + (i * CONNS + k) / RATE
 * and the latency is measured from that scheduled time, so a stall shows
 * up in the percentiles instead of silently lowering the rate
 * (no coordinated omission).
 *
 *   trading_load PORT RATE SECONDS CONNS [RUN_ID [trade]]
 *
 * Identity: TRADING_LOAD_USERS=path names a file of header lines, one per
 * user ("Authorization: Bearer <jwt>" through the gateway, "X-User-Id: <id>"
 * straight to trading-api); TRADING_LOAD_USER_OFFSET (0) is the first line
 * used. Thread k's i-th order is sent as line offset + k + (i % U) * CONNS
 * (POST load; U = TRADING_LOAD_USERS_PER_CONN, default 1, spreads each
 * connection over U users, so no user reaches risk's per-user order rate)
 * or, with "trade", as the seller offset + 2k and the buyer offset + 2k + 1.
 * Without a file, "X-User-Id: 1000+k" (sellers 2000+k, buyers 3000+k).
 *
 * With "trade", each step is a crossing pair instead (a resting sell, then
 * a buy at the same price from another user) and the figure is order
 * accepted -> trade visible: from the buy's 202 until GET /v1/orders/{id}
 * shows it filled (polled every millisecond; a matching service and the
 * read model must be running).
 *
 * Prints: "sent N ok N errors N rate R p50 X p90 X p99 X max X" (ms) and,
 * with TRADING_LOAD_IDS=path, the accepted order ids one a line; with
 * TRADING_LOAD_TRACE=path, "due_ms latency_ms" of every POST.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/banned.h"

static int port, conns;
static double rate, seconds;
static const char *run_id = "r";
static int trade_mode;
static int64_t t0;
static char **users; /* header lines, or NULL: X-User-Id numbering */
static size_t nusers, user_offset, users_per_conn = 1;

struct worker {
    int k;
    double *lat;
    size_t n, ok, err;
    int last_bad; /* the last unexpected status (-1: no answer) */
    char (*ids)[24];
};

/* The identity header line of user index i (fallback: X-User-Id: base+i). */
static void user_header(size_t i, int fallback_id, char *out, size_t outsz)
{
    if (users)
        snprintf(out, outsz, "%s", users[(user_offset + i) % nusers]);
    else
        snprintf(out, outsz, "X-User-Id: %d", fallback_id);
}

static int load_users(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[4096];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0])
            continue;
        if (nusers == cap) {
            cap = cap ? cap * 2 : 64;
            char **n = realloc(users, cap * sizeof *users);
            if (!n)
                break;
            users = n;
        }
        users[nusers] = strdup(line);
        if (users[nusers])
            nusers++;
    }
    fclose(f);
    return nusers ? 0 : -1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response (headers + Content-Length body); status or -1. */
static int read_response(int fd, char *buf, size_t cap, char *id, size_t idsz)
{
    size_t len = 0;
    char *body = NULL;
    long clen = -1;
    for (;;) {
        ssize_t k = read(fd, buf + len, cap - 1 - len);
        if (k <= 0)
            return -1;
        len += (size_t)k;
        buf[len] = 0;
        if (!body && (body = strstr(buf, "\r\n\r\n"))) {
            body += 4;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            clen = cl ? strtol(cl + 17, NULL, 10) : 0;
        }
        if (body && (long)(len - (size_t)(body - buf)) >= clen)
            break;
        if (len >= cap - 1)
            return -1;
    }
    int status = (int)strtol(buf + 9, NULL, 10);
    char *p = strstr(body, "\"id\":\"");
    id[0] = 0;
    if (p) {
        p += 6;
        size_t i = 0;
        while (p[i] && p[i] != '"' && i + 1 < idsz) {
            id[i] = p[i];
            i++;
        }
        id[i] = 0;
    }
    return status;
}

/* One request on the worker's keep-alive connection (redialled once). */
static int request(int *fd, const char *req, int rl, char *buf, size_t cap, char *id, size_t idsz)
{
    int status = -1;
    for (int attempt = 0; attempt < 2 && status < 0; attempt++) {
        if (*fd < 0)
            *fd = dial();
        if (*fd >= 0 && write(*fd, req, (size_t)rl) == rl)
            status = read_response(*fd, buf, cap, id, idsz);
        if (status < 0 && *fd >= 0) {
            close(*fd);
            *fd = -1;
        }
    }
    return status;
}

static int post_order(int *fd, const char *who, const char *side, size_t i, int k, char *id)
{
    char req[2048], body[512], buf[8192];
    int bl = snprintf(body, sizeof body,
                      "{\"market\":\"BTC-USDT\",\"side\":\"%s\",\"type\":\"limit\","
                      "\"price\":\"30000.00\",\"quantity\":\"0.001\",\"time_in_force\":\"GTC\","
                      "\"client_order_id\":\"%s-%s-%d-%zu\"}",
                      side, run_id, side, k, i);
    int rl = snprintf(req, sizeof req,
                      "POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      who, bl, body);
    return request(fd, req, rl, buf, sizeof buf, id, 24);
}

static void *run_trade(void *arg)
{
    struct worker *w = arg;
    int fd = -1;
    char req[2048], buf[8192], id[24], sid[24], dummy[24], seller[2048], buyer[2048];
    user_header(2 * (size_t)w->k, 2000 + w->k, seller, sizeof seller);
    user_header(2 * (size_t)w->k + 1, 3000 + w->k, buyer, sizeof buyer);
    size_t total = (size_t)(rate * seconds / conns);
    for (size_t i = 0; i < total; i++) {
        int64_t due = t0 + (int64_t)(((double)i * conns + w->k) * 1e9 / rate);
        int64_t now = now_ns();
        if (due > now) {
            struct timespec ts = {.tv_sec = (due - now) / 1000000000,
                                  .tv_nsec = (due - now) % 1000000000};
            nanosleep(&ts, NULL);
        }
        int s1 = post_order(&fd, seller, "sell", i, w->k, sid);
        int s2 = post_order(&fd, buyer, "buy", i, w->k, id);
        int64_t accepted = now_ns();
        if (s1 != 202 || s2 != 202) {
            w->last_bad = s1 != 202 ? s1 : s2;
            w->err++;
            continue;
        }
        int rl = snprintf(req, sizeof req,
                          "GET /v1/orders/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n", id, buyer);
        int seen = 0;
        while (!seen && now_ns() - accepted < 10000000000LL) {
            if (request(&fd, req, rl, buf, sizeof buf, dummy, sizeof dummy) == 200 &&
                strstr(buf, "\"status\":\"filled\""))
                seen = 1;
            else {
                struct timespec ts = {.tv_nsec = 1000000};
                nanosleep(&ts, NULL);
            }
        }
        if (seen) {
            w->lat[w->n++] = (double)(now_ns() - accepted) / 1e6;
            w->ok++;
        } else {
            w->err++;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    int fd = dial();
    char req[2048], body[512], buf[8192], who[2048];
    size_t total = (size_t)(rate * seconds / conns);
    for (size_t i = 0; i < total; i++) {
        int64_t due = t0 + (int64_t)(((double)i * conns + w->k) * 1e9 / rate);
        int64_t now = now_ns();
        if (due > now) {
            struct timespec ts = {.tv_sec = (due - now) / 1000000000,
                                  .tv_nsec = (due - now) % 1000000000};
            nanosleep(&ts, NULL);
        }
        user_header((size_t)w->k + (i % users_per_conn) * (size_t)conns, 1000 + w->k, who,
                    sizeof who);
        int bl = snprintf(body, sizeof body,
                          "{\"market\":\"BTC-USDT\",\"side\":\"%s\",\"type\":\"limit\","
                          "\"price\":\"%s\",\"quantity\":\"0.001\",\"time_in_force\":\"GTC\","
                          "\"client_order_id\":\"%s-%d-%zu\"}",
                          i % 2 ? "sell" : "buy", i % 2 ? "30100.00" : "29900.00", run_id, w->k, i);
        int rl = snprintf(req, sizeof req,
                          "POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                          "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                          who, bl, body);
        int status = -1;
        char id[24];
        for (int attempt = 0; attempt < 2 && status < 0; attempt++) {
            if (fd < 0)
                fd = dial();
            if (fd >= 0 && write(fd, req, (size_t)rl) == rl)
                status = read_response(fd, buf, sizeof buf, id, sizeof id);
            if (status < 0 && fd >= 0) {
                close(fd);
                fd = -1;
            }
        }
        w->lat[w->n++] = (double)(now_ns() - due) / 1e6;
        if (status == 202 || status == 200) {
            if (w->ids)
                snprintf(w->ids[w->ok], sizeof w->ids[w->ok], "%s", id);
            w->ok++;
        } else {
            w->last_bad = status;
            w->err++;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: trading_load PORT RATE SECONDS CONNS [RUN_ID]\n");
        return 2;
    }
    port = (int)strtol(argv[1], NULL, 10);
    rate = strtod(argv[2], NULL);
    seconds = strtod(argv[3], NULL);
    conns = (int)strtol(argv[4], NULL, 10);
    if (argc > 5)
        run_id = argv[5];
    trade_mode = argc > 6 && strcmp(argv[6], "trade") == 0;
    if (port <= 0 || rate <= 0 || seconds <= 0 || conns <= 0)
        return 2;
    const char *ids_path = getenv("TRADING_LOAD_IDS");
    const char *users_path = getenv("TRADING_LOAD_USERS");
    if (users_path && load_users(users_path) < 0) {
        fprintf(stderr, "trading_load: cannot read users from %s\n", users_path);
        return 2;
    }
    if (getenv("TRADING_LOAD_USERS_PER_CONN"))
        users_per_conn = (size_t)strtoul(getenv("TRADING_LOAD_USERS_PER_CONN"), NULL, 10);
    if (users_per_conn < 1)
        users_per_conn = 1;
    if (getenv("TRADING_LOAD_USER_OFFSET"))
        user_offset = (size_t)strtoul(getenv("TRADING_LOAD_USER_OFFSET"), NULL, 10);
    size_t per = (size_t)(rate * seconds / conns) + 1;
    struct worker *w = calloc((size_t)conns, sizeof *w);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    t0 = now_ns() + 50000000;
    for (int k = 0; k < conns; k++) {
        w[k].k = k;
        w[k].lat = calloc(per, sizeof *w[k].lat);
        if (ids_path)
            w[k].ids = calloc(per, sizeof *w[k].ids);
        pthread_create(&th[k], NULL, trade_mode ? run_trade : run, &w[k]);
    }
    size_t n = 0, ok = 0, err = 0;
    for (int k = 0; k < conns; k++) {
        pthread_join(th[k], NULL);
        if (w[k].err)
            fprintf(stderr, "trading_load: thread %d: %zu errors, last status %d\n", k, w[k].err,
                    w[k].last_bad);
        n += w[k].n;
        ok += w[k].ok;
        err += w[k].err;
    }
    double elapsed = (double)(now_ns() - t0) / 1e9;
    double *all = calloc(n ? n : 1, sizeof *all);
    size_t m = 0;
    FILE *ids = ids_path ? fopen(ids_path, "w") : NULL;
    for (int k = 0; k < conns; k++) {
        memcpy(all + m, w[k].lat, w[k].n * sizeof *all);
        m += w[k].n;
        for (size_t i = 0; ids && i < w[k].ok; i++)
            fprintf(ids, "%s\n", w[k].ids[i]);
    }
    if (ids)
        fclose(ids);
    /* TRADING_LOAD_TRACE=path: "due_ms latency_ms" per request (POST
     * mode), to see when in the run the slow ones were due. */
    const char *trace_path = getenv("TRADING_LOAD_TRACE");
    FILE *trace = trace_path && !trade_mode ? fopen(trace_path, "w") : NULL;
    for (int k = 0; trace && k < conns; k++)
        for (size_t i = 0; i < w[k].n; i++)
            fprintf(trace, "%.3f %.3f\n", ((double)i * conns + k) * 1000.0 / rate, w[k].lat[i]);
    if (trace)
        fclose(trace);
    qsort(all, n, sizeof *all, cmp);
#define PCT(p) (n ? all[(size_t)((double)(n - 1) * (p))] : 0.0)
    n = trade_mode ? m : n; /* trade mode records successes only */
    printf("sent %zu ok %zu errors %zu rate %.0f p50 %.3f p90 %.3f p99 %.3f max %.3f\n", n, ok, err,
           (double)n / elapsed, PCT(0.5), PCT(0.9), PCT(0.99), n ? all[n - 1] : 0.0);
    return err > 0;
}
