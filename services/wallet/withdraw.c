/*
 * Withdrawal queue and workers.
 *
 * Queue: a Redis stream (WITHDRAW_STREAM) with one consumer group
 * (WITHDRAW_GROUP). A request is committed in PostgreSQL first, then
 * XADDed and marked queued; the ticker re-adds withdrawals left behind
 * (crash between commit and XADD, Redis outage). Workers read with
 * XREADGROUP and XACK only after the withdrawal reached an end (or a gate
 * such as pending approval); entries of a worker that died stay pending
 * and are taken over with XAUTOCLAIM after WITHDRAW_CLAIM_IDLE.
 *
 * Processing is a state machine in PostgreSQL (requested/approved ->
 * queued -> signed -> broadcast -> completed, or failed with the hold
 * released); every step is guarded by the current state, so a duplicate
 * entry or two workers on one withdrawal change nothing twice.
 *
 * The chain mock: broadcasting inserts into chain_txs (tx hash = SHA-256
 * of the signature); it refuses addresses containing "fail" (to exercise
 * the failure path) and "confirms" at once.
 */
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "store.h"
#include "common/banned.h"

#define MAX_WORKERS 16
#define READ_COUNT 16

static struct {
    pthread_t threads[MAX_WORKERS];
    int nthreads;
    atomic_int stop;
    struct cm_redis *redis; /* pool for XADD */
    struct cm_redis_url url;
} g;

void withdraw_observe_end(const char *result)
{
    cm_counter_add(wallet_m.withdrawals, 1, result);
}

int withdraw_enqueue(const char *id)
{
    const char *f[1] = {"id"}, *v[1] = {id};
    if (cm_redis_xadd(g.redis, wallet_cfg.withdraw_stream, 1, f, v, NULL, 0) < 0) {
        cm_warn("withdrawal %s: queue unavailable; the sweeper will retry", id);
        return -1;
    }
    char w[16];
    const char *p[1] = {id};
    store_withdrawal_step("SELECT wallet_withdrawal_queued($1)", 1, p, w, sizeof w);
    return 0;
}

void withdraw_sweep(void)
{
    char ids[64][ID_MAX + 1];
    size_t n = 0;
    int64_t age = wallet_cfg.withdraw_claim_idle_ms * 3;
    if (store_unqueued_withdrawals(age, ids, 64, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        withdraw_enqueue(ids[i]);
}

static void tx_hash_of(const char *signature, char out[67])
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)signature, strlen(signature), h);
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 + i * 2, 3, "%02x", h[i]);
}

static int process(const char *id);

/* Another worker moved the withdrawal under us: look again once. */
static int process_again(const char *id)
{
    static __thread int depth;
    if (depth > 2)
        return 0;
    depth++;
    int rc = process(id);
    depth--;
    return rc;
}

static int step(const char *sql, int n, const char *const *p, char *w, size_t wn)
{
    return store_withdrawal_step(sql, n, p, w, wn);
}

static void fail(const char *id, const char *reason, const char *msg)
{
    char w[16];
    const char *p[3] = {id, reason, msg};
    if (step("SELECT wallet_withdrawal_fail($1, $2, $3)", 3, p, w, sizeof w) == 0 &&
        strcmp(w, "failed") == 0) {
        withdraw_observe_end("failed");
        cm_log_kv(CM_LOG_WARN, "withdrawal failed", "withdrawal_id", id, "reason", reason,
                  (const char *)NULL);
    }
}

/* Drives one withdrawal as far as it goes, carrying the state forward
 * (one load, then one round trip per step). 0: done with this entry
 * (ACK); -1: transient trouble (leave it pending: retried after the claim
 * idle). */
static int process(const char *id)
{
    struct withdrawal_row w;
    int rc = store_withdrawal_load(id, &w);
    if (rc == STORE_NONE)
        return 0;
    if (rc != STORE_OK)
        return -1;
    const char *p1[1] = {id};
    char word[96];
    if (strcmp(w.status, "requested") == 0 || strcmp(w.status, "approved") == 0) {
        if (step("SELECT wallet_withdrawal_queued($1)", 1, p1, word, sizeof word) < 0)
            return -1;
        snprintf(w.status, sizeof w.status, "queued");
    }
    if (strcmp(w.status, "queued") == 0) {
        struct sign_result s;
        char err[160];
        int ok = -1;
        for (int attempt = 0; attempt < 3 && ok < 0; attempt++) {
            ok = signer_sign(w.id, w.asset, w.address, w.amount, &s, err, sizeof err);
            if (ok < 0 && attempt < 2)
                usleep(100000);
        }
        if (ok < 0) {
            fail(id, "signer_error", err);
            return 0;
        }
        const char *p[3] = {id, s.signature, s.key_id};
        if (step("SELECT wallet_withdrawal_signed($1, $2, $3)", 3, p, word, sizeof word) < 0)
            return -1;
        if (strcmp(word, "signed") != 0)
            return process_again(id);
        snprintf(w.status, sizeof w.status, "signed");
        snprintf(w.signature, sizeof w.signature, "%s", s.signature);
    }
    if (strcmp(w.status, "signed") == 0) {
        if (strstr(w.address, "fail")) {
            fail(id, "broadcast_failed", "chain mock refused the transaction");
            return 0;
        }
        char tx[67];
        tx_hash_of(w.signature, tx);
        const char *p[2] = {id, tx};
        if (step("SELECT wallet_withdrawal_finish($1, $2)", 2, p, word, sizeof word) < 0)
            return -1;
        if (strncmp(word, "broadcast:", 10) == 0)
            cm_histogram_observe(wallet_m.queue_delay, strtod(word + 10, NULL));
        if (strstr(word, " completed"))
            withdraw_observe_end("completed");
        events_wake();
        return 0;
    }
    if (strcmp(w.status, "broadcast") == 0) {
        if (step("SELECT wallet_withdrawal_complete($1)", 1, p1, word, sizeof word) < 0)
            return -1;
        if (strcmp(word, "completed") == 0)
            withdraw_observe_end("completed");
    }
    events_wake();
    return 0; /* pending_approval (approval re-queues), completed, failed */
}

static redisContext *connect_redis(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout(g.url.host, g.url.port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    struct timeval rtv = {3, 0};
    redisSetTimeout(c, rtv);
    redisReply *r = NULL;
    if (g.url.password[0]) {
        r = g.url.username[0] ? redisCommand(c, "AUTH %s %s", g.url.username, g.url.password)
                              : redisCommand(c, "AUTH %s", g.url.password);
        freeReplyObject(r);
    }
    if (g.url.db) {
        r = redisCommand(c, "SELECT %d", g.url.db);
        freeReplyObject(r);
    }
    r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", wallet_cfg.withdraw_stream,
                     wallet_cfg.withdraw_group);
    freeReplyObject(r); /* BUSYGROUP when it exists: fine */
    return c;
}

/* Handles the entries of an XREADGROUP / XAUTOCLAIM entry array. */
static void handle_entries(redisContext *c, const redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const char *entry_id = e->element[0]->str;
        const redisReply *fields = e->element[1];
        const char *wid = NULL;
        if (fields && fields->type == REDIS_REPLY_ARRAY)
            for (size_t k = 0; k + 1 < fields->elements; k += 2)
                if (strcmp(fields->element[k]->str, "id") == 0)
                    wid = fields->element[k + 1]->str;
        if (!wid || !valid_opaque_id(wid) || process(wid) == 0) {
            redisReply *r = redisCommand(c, "XACK %s %s %s", wallet_cfg.withdraw_stream,
                                         wallet_cfg.withdraw_group, entry_id);
            freeReplyObject(r);
        }
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *worker(void *arg)
{
    char consumer[64];
    snprintf(consumer, sizeof consumer, "wallet-%d-%d", (int)getpid(), (int)(intptr_t)arg);
    redisContext *c = NULL;
    int64_t next_claim = 0;
    while (!atomic_load(&g.stop)) {
        if (!c && !(c = connect_redis())) {
            usleep(500000);
            continue;
        }
        redisReply *r;
        if (mono_ms() >= next_claim) {
            char idle[24];
            snprintf(idle, sizeof idle, "%lld", (long long)wallet_cfg.withdraw_claim_idle_ms);
            r = redisCommand(c, "XAUTOCLAIM %s %s %s %s 0-0 COUNT %d", wallet_cfg.withdraw_stream,
                             wallet_cfg.withdraw_group, consumer, idle, READ_COUNT);
            if (!r) {
                redisFree(c);
                c = NULL;
                continue;
            }
            if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
                handle_entries(c, r->element[1]);
            freeReplyObject(r);
            next_claim = mono_ms() + wallet_cfg.withdraw_claim_idle_ms / 2;
        }
        r = redisCommand(c, "XREADGROUP GROUP %s %s COUNT %d BLOCK 500 STREAMS %s >",
                         wallet_cfg.withdraw_group, consumer, READ_COUNT,
                         wallet_cfg.withdraw_stream);
        if (!r) {
            redisFree(c);
            c = NULL;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOGROUP")) {
            freeReplyObject(r);
            redisFree(c);
            c = NULL; /* reconnect creates the group */
            continue;
        }
        if (r->type == REDIS_REPLY_ARRAY)
            for (size_t i = 0; i < r->elements; i++)
                if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements >= 2)
                    handle_entries(c, r->element[i]->element[1]);
        freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return NULL;
}

int withdraw_start(void)
{
    char err[256];
    if (cm_redis_parse_url(wallet_cfg.redis_url, &g.url, err, sizeof err) < 0) {
        cm_error("wallet: REDIS_URL: %s", err);
        return -1;
    }
    struct cm_redis_config rc = {.url = wallet_cfg.redis_url, .pool_size = 4};
    g.redis = cm_redis_open(&rc, err, sizeof err);
    if (!g.redis) {
        cm_error("wallet: redis: %s", err);
        return -1;
    }
    for (int i = 0; i < wallet_cfg.withdraw_workers && i < MAX_WORKERS; i++) {
        if (pthread_create(&g.threads[i], NULL, worker, (void *)(intptr_t)i) != 0)
            return -1;
        g.nthreads++;
    }
    return 0;
}

void withdraw_stop(void)
{
    atomic_store(&g.stop, 1);
    for (int i = 0; i < g.nthreads; i++)
        pthread_join(g.threads[i], NULL);
    g.nthreads = 0;
    cm_redis_close(g.redis);
    g.redis = NULL;
}
