/*
 * The matching service end to end: the real binary against the fixture's
 * PostgreSQL and devkafka, topics of its own.
 *
 * The expected output is computed in-process: the same deterministic
 * command stream (mt_client.c) parsed, applied to the core and rendered
 * as the service does, giving every event's exact bytes per (market, seq).
 *
 *   uninterrupted  one run over the whole stream: every seq once, bytes as
 *                  expected; the book endpoint equals the in-process book;
 *                  malformed commands (not JSON, a bad price, an unknown
 *                  market) are answered or skipped and processing goes on.
 *   crash          the same stream on other topics, with SIGKILL at
 *                  several points: mid-batch (commands applied, nothing
 *                  produced), right after a produced batch before the
 *                  offset commit, inside a snapshot transaction, and from
 *                  outside at an arbitrary moment while commands arrive.
 *                  After the last restart, deduped by (market, seq): no
 *                  gap, every duplicate byte-identical to its first copy,
 *                  and the hash of each market's stream equals the
 *                  uninterrupted run's.
 *
 * Each restart uses a new consumer group: the service trusts only its
 * snapshot's offsets (docs/matching.md), and a new group is not held up
 * by the dead member's session timeout on the mock broker.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <inttypes.h>

#include <cmocka.h>

#include "../../../tests/support/harness.h"
#include "../matching.h"
#include "common/decimal.h"
#include "mt_client.h"

#include "common/banned.h"

#define NCMD 12000
#define TAIL 3000 /* produced to the crash run while it is running */
#define NMK 2

static const char *const MK[NMK] = {"BTC-USDT", "ETH-USDT"};

struct stream {
    char **ev[NMK]; /* by seq; owned copies */
    size_t cap[NMK];
    uint64_t max[NMK];
    size_t total, dups, dup_mismatch;
};

static struct stream expect;
static uint64_t expect_hash[NMK];
static struct me_market *books[NMK];
static char markets_file[512];
static const char *brokers;

static int mk_index(const char *s, size_t n)
{
    for (int i = 0; i < NMK; i++)
        if (strlen(MK[i]) == n && memcmp(MK[i], s, n) == 0)
            return i;
    return -1;
}

static void put(struct stream *s, int m, uint64_t seq, const char *v, size_t len)
{
    if (seq >= s->cap[m]) {
        size_t cap = s->cap[m] ? s->cap[m] : 1024;
        while (cap <= seq)
            cap *= 2;
        char **a = realloc(s->ev[m], cap * sizeof *a);
        assert_non_null(a);
        memset(a + s->cap[m], 0, (cap - s->cap[m]) * sizeof *a);
        s->ev[m] = a, s->cap[m] = cap;
    }
    s->total++;
    if (s->ev[m][seq]) {
        s->dups++;
        if (strlen(s->ev[m][seq]) != len || memcmp(s->ev[m][seq], v, len) != 0)
            s->dup_mismatch++;
        return;
    }
    char *c = malloc(len + 1);
    assert_non_null(c);
    memcpy(c, v, len);
    c[len] = 0;
    s->ev[m][seq] = c;
    if (seq > s->max[m])
        s->max[m] = seq;
}

static void stream_free(struct stream *s)
{
    for (int m = 0; m < NMK; m++) {
        for (size_t i = 0; i < s->cap[m]; i++)
            free(s->ev[m][i]);
        free(s->ev[m]);
    }
    memset(s, 0, sizeof *s);
}

/* Consumed message -> (market, seq) from the "id":"<market>:<seq>" field. */
static void on_msg(void *ctx, const char *topic, const void *v, size_t len, int64_t ts)
{
    (void)topic, (void)ts;
    struct stream *s = ctx;
    const char *p = memmem(v, len, "\"id\":\"", 6);
    if (!p)
        return; /* the marker that created the topic */
    p += 6;
    const char *colon = memchr(p, ':', (size_t)((const char *)v + len - p));
    assert_non_null(colon);
    int m = mk_index(p, (size_t)(colon - p));
    assert_true(m >= 0);
    uint64_t seq = strtoull(colon + 1, NULL, 10);
    assert_true(seq >= 1);
    put(s, m, seq, v, len);
}

/* Complete: every expected seq is there. */
static int complete(const struct stream *s)
{
    for (int m = 0; m < NMK; m++) {
        if (s->max[m] < expect.max[m])
            return 0;
        for (uint64_t q = 1; q <= expect.max[m]; q++)
            if (!s->ev[m][q])
                return 0;
    }
    return 1;
}

static size_t present(const struct stream *s)
{
    size_t n = 0;
    for (int m = 0; m < NMK; m++)
        for (uint64_t q = 1; q < s->cap[m]; q++)
            n += s->ev[m][q] != NULL;
    return n;
}

static uint64_t hash_of(const struct stream *s, int m)
{
    uint64_t h = ME_HASH_INIT;
    for (uint64_t q = 1; q <= s->max[m]; q++)
        h = me_hash(h, s->ev[m][q] ? s->ev[m][q] : "", s->ev[m][q] ? strlen(s->ev[m][q]) + 1 : 0);
    return h;
}

/* ---- the expected stream, computed in-process ------------------------- */

struct rctx {
    int m;
    const struct mt_cmd *c;
};

static void on_event(void *ctx, const struct me_event *ev)
{
    struct rctx *r = ctx;
    struct cm_buf b;
    cm_buf_init(&b, 0);
    int trade;
    assert_int_equal(mt_render_event(&b, r->c->market, r->c, ev, &trade), 0);
    put(&expect, r->m, ev->seq, b.data, b.len);
    cm_buf_release(&b);
}

static void build_expected(void)
{
    char err[256];
    snprintf(markets_file, sizeof markets_file, "%s/markets.json", need_env("TEST_TMPDIR"));
    FILE *f = fopen(markets_file, "w");
    assert_non_null(f);
    fputs("{\"markets\":[\n"
          "{\"symbol\":\"BTC-USDT\",\"base\":\"BTC\",\"quote\":\"USDT\",\"base_scale\":8,"
          "\"quote_scale\":6,\"tick_size\":\"0.010000\",\"lot_size\":\"0.00001000\","
          "\"min_quantity\":\"0.00001000\",\"max_quantity\":\"100.00000000\","
          "\"min_price\":\"0.010000\",\"max_price\":\"10000000.000000\",\"price_band_bps\":1000,"
          "\"status\":\"trading\"},\n"
          "{\"symbol\":\"ETH-USDT\",\"base\":\"ETH\",\"quote\":\"USDT\",\"base_scale\":8,"
          "\"quote_scale\":6,\"tick_size\":\"0.010000\",\"lot_size\":\"0.00010000\","
          "\"min_quantity\":\"0.00010000\",\"max_quantity\":\"1000.00000000\","
          "\"min_price\":\"0.010000\",\"max_price\":\"1000000.000000\",\"price_band_bps\":1000,"
          "\"status\":\"trading\"}]}\n",
          f);
    fclose(f);
    assert_int_equal(mt_markets_load(markets_file, 4096, err, sizeof err), 0);
    for (int m = 0; m < NMK; m++) {
        books[m] = me_market_new(&mt_market_find(MK[m], strlen(MK[m]))->rules);
        assert_non_null(books[m]);
    }
    char buf[1024];
    int rejected_invalid = 0;
    for (size_t i = 0; i < NCMD; i++) {
        const char *market;
        size_t len = mtc_command(7, i, 1, buf, sizeof buf, &market);
        assert_true(len > 0);
        struct mt_cmd c;
        int rc = mt_command_parse(buf, len, &c);
        if (rc != MT_CMD_OK && rc != MT_CMD_REJECT)
            continue;
        struct rctx r = {mk_index(c.market->symbol, strlen(c.market->symbol)), &c};
        if (rc == MT_CMD_OK)
            assert_int_equal(me_market_apply(books[r.m], &c.cmd, on_event, &r), 0);
        else {
            assert_int_equal(me_market_reject(books[r.m], &c.cmd, c.reject_reason, on_event, &r),
                             0);
            rejected_invalid++;
        }
    }
    assert_true(rejected_invalid > 0);
    for (int m = 0; m < NMK; m++) {
        expect_hash[m] = hash_of(&expect, m);
        printf("# expected %s: %" PRIu64 " events, %zu resting orders\n", MK[m], expect.max[m],
               me_market_order_count(books[m]));
    }
}

/* ---- helpers ------------------------------------------------------------ */

static void produce_range(rd_kafka_t *p, const char *topic, size_t from, size_t to)
{
    char buf[1024];
    for (size_t i = from; i < to; i++) {
        const char *market;
        size_t len = mtc_command(7, i, 1, buf, sizeof buf, &market);
        assert_int_equal(mtc_produce(p, topic, market, buf, len), 0);
    }
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* partitions: "" takes them from the consumer group, "all" owns every
 * partition outright (MATCHING_PARTITIONS, the lab's setting). */
static pid_t start(const char *name, int port, const char *cmds, const char *evs, const char *trs,
                   const char *group, const char *crash, const char *after, const char *partitions)
{
    char e[13][600];
    snprintf(e[0], sizeof e[0], "PORT=%d", port);
    snprintf(e[1], sizeof e[1], "DATABASE_URL=%s", need_env("TEST_DATABASE_URL"));
    snprintf(e[2], sizeof e[2], "KAFKA_BROKERS=%s", brokers);
    snprintf(e[3], sizeof e[3], "KAFKA_PROPS=session.timeout.ms=6000;heartbeat.interval.ms=500");
    snprintf(e[4], sizeof e[4], "MATCHING_COMMANDS_TOPIC=%s", cmds);
    snprintf(e[5], sizeof e[5], "MATCHING_EVENTS_TOPIC=%s", evs);
    snprintf(e[6], sizeof e[6], "MATCHING_TRADES_TOPIC=%s", trs);
    snprintf(e[7], sizeof e[7], "MATCHING_GROUP=%s.%d.%lld", group, (int)getpid(),
             (long long)now_ms());
    snprintf(e[8], sizeof e[8], "MATCHING_MARKETS_FILE=%s", markets_file);
    snprintf(e[9], sizeof e[9], "MATCHING_CRASH_POINT=%s", crash);
    snprintf(e[10], sizeof e[10], "MATCHING_CRASH_AFTER=%s", after);
    snprintf(e[11], sizeof e[11], "MATCHING_BATCH=500");
    snprintf(e[12], sizeof e[12], "MATCHING_PARTITIONS=%s", partitions);
    const char *env[] = {e[0],
                         e[1],
                         e[2],
                         e[3],
                         e[4],
                         e[5],
                         e[6],
                         e[7],
                         e[8],
                         e[9],
                         e[10],
                         e[11],
                         e[12],
                         "MATCHING_SNAPSHOT_EVERY=1000",
                         "MATCHING_SNAPSHOT_INTERVAL=1s",
                         "LOG_LEVEL=warn",
                         NULL};
    pid_t pid = spawn_service("matching", name, env);
    assert_true(pid > 0);
    return pid;
}

/* Reads until done(s) or the deadline. */
static void read_until(struct mtc_reader *r, struct stream *s, size_t want_present, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        mtc_reader_poll(r, 100, on_msg, s);
        if (want_present ? present(s) >= want_present : complete(s))
            return;
    }
}

static void check_stream(const char *what, const struct stream *s)
{
    for (int m = 0; m < NMK; m++) {
        assert_int_equal(s->max[m], expect.max[m]);
        for (uint64_t q = 1; q <= expect.max[m]; q++) {
            if (!s->ev[m][q])
                fail_msg("%s: %s seq %" PRIu64 " missing", what, MK[m], q);
            if (strcmp(s->ev[m][q], expect.ev[m][q]) != 0)
                fail_msg("%s: %s seq %" PRIu64 "\n  got  %s\n  want %s", what, MK[m], q,
                         s->ev[m][q], expect.ev[m][q]);
        }
        assert_true(hash_of(s, m) == expect_hash[m]);
    }
    assert_int_equal(s->dup_mismatch, 0);
    printf("# %s: %zu messages, %zu duplicates (all identical), hashes %016" PRIx64 " %016" PRIx64
           " as expected\n",
           what, s->total, s->dups, hash_of(s, 0), hash_of(s, 1));
}

static rd_kafka_t *producer;
/* Topics of this run (unique, so a reused broker does not mix runs). */
static char topic_names[6][64];
#define T_CMDS_A topic_names[0]
#define T_EV_A topic_names[1]
#define T_TR_A topic_names[2]
#define T_CMDS_B topic_names[3]
#define T_EV_B topic_names[4]
#define T_TR_B topic_names[5]

static int setup(void **state)
{
    (void)state;
    brokers = need_env("TEST_KAFKA_BROKERS");
    build_expected();
    producer = mtc_producer(brokers, 5);
    assert_non_null(producer);
    static const char *const kinds[] = {"cmds.a", "events.a", "trades.a",
                                        "cmds.b", "events.b", "trades.b"};
    const char *topics[6];
    for (int i = 0; i < 6; i++) {
        snprintf(topic_names[i], sizeof topic_names[i], "mt.%d.%lld.%s", (int)getpid(),
                 (long long)now_ms(), kinds[i]);
        topics[i] = topic_names[i];
    }
    /* The mock creates a topic (4 partitions) on its first message: the
     * output topics get a marker the readers skip. */
    for (int i = 0; i < 6; i++)
        if (strstr(topics[i], ".cmds.") == NULL)
            assert_int_equal(mtc_produce(producer, topics[i], "x", "{}", 2), 0);
    assert_int_equal(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (producer)
        rd_kafka_destroy(producer);
    stream_free(&expect);
    for (int m = 0; m < NMK; m++)
        me_market_free(books[m]);
    mt_markets_free();
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void check_book(int port)
{
    /* The published copy follows the batch; poll until it has the end. */
    char want[256];
    snprintf(want, sizeof want, "\"seq\":%" PRIu64 ",", expect.max[0]);
    struct http_resp r = {0};
    int64_t end = now_ms() + 5000;
    do {
        http_free(&r);
        assert_int_equal(http_do(port, "GET", "/v1/books/BTC-USDT?depth=5", NULL, NULL, &r), 0);
    } while (!strstr(r.body, want) && now_ms() < end);
    assert_int_equal(r.status, 200);
    cJSON *j = http_json(&r);
    assert_non_null(j);
    assert_true(cJSON_GetObjectItem(j, "seq")->valuedouble == (double)expect.max[0]);
    static const char *const sides[] = {"bids", "asks"};
    for (int s = 0; s < 2; s++) {
        struct me_depth_level lv[5];
        size_t n = me_market_depth(books[0], s, lv, 5);
        cJSON *arr = cJSON_GetObjectItem(j, sides[s]);
        assert_int_equal(cJSON_GetArraySize(arr), (int)n);
        assert_true(n > 0); /* the stream leaves resting orders on both sides */
        for (size_t i = 0; i < n; i++) {
            cJSON *l = cJSON_GetArrayItem(arr, (int)i);
            char p[40], q[40];
            cm_decimal_format(lv[i].price, 6, p, sizeof p);
            cm_decimal_format(lv[i].qty, 8, q, sizeof q);
            assert_string_equal(cJSON_GetObjectItem(l, "price")->valuestring, p);
            assert_string_equal(cJSON_GetObjectItem(l, "quantity")->valuestring, q);
            assert_int_equal(cJSON_GetObjectItem(l, "orders")->valueint, (int)lv[i].count);
        }
    }
    cJSON_Delete(j);
    http_free(&r);
    assert_int_equal(http_do(port, "GET", "/v1/books/NOPE-USDT", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    http_free(&r);
    assert_int_equal(http_do(port, "GET", "/v1/books/BTC-USDT?depth=0", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    http_free(&r);
}

static void test_uninterrupted(void **state)
{
    (void)state;
    produce_range(producer, T_CMDS_A, 0, NCMD);
    int port = free_port();
    pid_t pid = start("matching-a", port, T_CMDS_A, T_EV_A, T_TR_A, "mt-a", "none", "1", "");
    assert_int_equal(wait_service(pid, port, "matching-a", 20000), 0);
    const char *const topics[] = {T_EV_A, T_TR_A, NULL};
    struct mtc_reader *r = mtc_reader_open(brokers, topics);
    assert_non_null(r);
    struct stream s = {0};
    read_until(r, &s, 0, 40000);
    check_stream("uninterrupted", &s);
    assert_int_equal(s.dups, 0);
    check_book(port);
    /* malformed commands were answered (bad price) or skipped (not JSON,
     * unknown market) and everything after them was processed */
    assert_true(metric(port, "matching_commands_total{market=\"unknown\",type=\"unknown\","
                             "result=\"skipped\"}") >= 1);
    assert_true(metric(port, "matching_commands_total{market=\"unknown_market\",type=\"unknown\","
                             "result=\"skipped\"}") >= 1);
    assert_true(metric(port, "matching_trades_total{market=\"BTC-USDT\"}") > 0);
    assert_true(metric(port, "matching_snapshot_age_seconds{market=\"BTC-USDT\"}") >= 0);
    assert_int_equal(stop_service(pid), 0);
    mtc_reader_close(r);
    stream_free(&s);
}

static void expect_killed(pid_t pid, const char *what)
{
    int st = wait_exit(pid, 30000);
    if (st != 128 + SIGKILL) {
        kill(pid, SIGKILL);
        fail_msg("%s: expected the crash point to SIGKILL the service, got status %d", what, st);
    }
}

static void test_crash_recovery(void **state)
{
    (void)state;
    produce_range(producer, T_CMDS_B, 0, NCMD - TAIL);
    const char *const topics[] = {T_EV_B, T_TR_B, NULL};
    struct mtc_reader *r = mtc_reader_open(brokers, topics);
    assert_non_null(r);
    struct stream s = {0};
    int port = free_port();

    /* 1: mid-batch, 700 commands applied and nothing of them produced */
    pid_t pid = start("matching-b1", port, T_CMDS_B, T_EV_B, T_TR_B, "mt-b1", "applied", "700", "");
    expect_killed(pid, "applied");
    mtc_reader_poll(r, 100, on_msg, &s);
    printf("# after kill 1 (mid-batch): %zu distinct events out\n", present(&s));
    /* 2: after the 4th delivered batch, before its offsets are committed
     *    (restarts alternate between group and static assignment) */
    pid = start("matching-b2", port, T_CMDS_B, T_EV_B, T_TR_B, "mt-b2", "produced", "4", "all");
    expect_killed(pid, "produced");
    mtc_reader_poll(r, 100, on_msg, &s);
    printf("# after kill 2 (produced, not committed): %zu distinct events out\n", present(&s));
    /* 3: inside the 3rd snapshot transaction (rows written, no COMMIT) */
    pid = start("matching-b3", port, T_CMDS_B, T_EV_B, T_TR_B, "mt-b3", "snapshot", "3", "");
    expect_killed(pid, "snapshot");
    mtc_reader_poll(r, 100, on_msg, &s);
    printf("# after kill 3 (in a snapshot): %zu distinct events out\n", present(&s));
    /* 4: from outside while the tail of the stream arrives */
    pid = start("matching-b4", port, T_CMDS_B, T_EV_B, T_TR_B, "mt-b4", "none", "1", "all");
    assert_int_equal(wait_service(pid, port, "matching-b4", 20000), 0);
    size_t before = present(&s);
    produce_range(producer, T_CMDS_B, NCMD - TAIL, NCMD);
    read_until(r, &s, before + 1000, 20000);
    kill(pid, SIGKILL);
    assert_int_equal(wait_exit(pid, 10000), 128 + SIGKILL);
    printf("# after kill 4 (external SIGKILL): %zu distinct events out\n", present(&s));
    assert_false(complete(&s));
    /* 5: the last restart finishes the stream */
    pid = start("matching-b5", port, T_CMDS_B, T_EV_B, T_TR_B, "mt-b5", "none", "1", "all");
    assert_int_equal(wait_service(pid, port, "matching-b5", 20000), 0);
    read_until(r, &s, 0, 40000);
    check_stream("crash run", &s);
    assert_true(s.dups > 0); /* the kills did cause replays */
    check_book(port);
    assert_int_equal(stop_service(pid), 0);
    mtc_reader_close(r);
    stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uninterrupted),
        cmocka_unit_test(test_crash_recovery),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
