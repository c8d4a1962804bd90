/* Redis URL parsing, configuration and failure paths that need no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "common/banned.h"

static void urls_ok(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *user, *pass;
        int port, db;
    } cases[] = {
        {"redis://127.0.0.1", "127.0.0.1", "", "", 6379, 0},
        {"redis://localhost:6380", "localhost", "", "", 6380, 0},
        {"redis://h:1/3", "h", "", "", 1, 3},
        {"redis://h/", "h", "", "", 6379, 0},
        {"redis://:secret@h:7000/2", "h", "", "secret", 7000, 2},
        {"redis://app:p%40ss%3A@h", "h", "app", "p@ss:", 6379, 0},
        {"redis://u:p@x@h", "h", "u", "p@x", 6379, 0},
        {"redis://[::1]:6390/1", "::1", "", "", 6390, 1},
        {"redis://[::1]", "::1", "", "", 6379, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cm_redis_url u;
        char err[256] = "";
        if (cm_redis_parse_url(cases[i].url, &u, err, sizeof err) != 0)
            fail_msg("%s: %s", cases[i].url, err);
        assert_string_equal(u.host, cases[i].host);
        assert_string_equal(u.username, cases[i].user);
        assert_string_equal(u.password, cases[i].pass);
        assert_int_equal(u.port, cases[i].port);
        assert_int_equal(u.db, cases[i].db);
    }
}

static void urls_bad(void **state)
{
    (void)state;
    static const struct {
        const char *url, *want;
    } cases[] = {
        {NULL, "empty"},
        {"", "empty"},
        {"http://h", "redis://"},
        {"rediss://h", "TLS"},
        {"redis://", "host"},
        {"redis://:6379", "host"},
        {"redis://h:0", "port"},
        {"redis://h:65536", "port"},
        {"redis://h:abc", "port"},
        {"redis://h:", "port"},
        {"redis://h/x", "database"},
        {"redis://h/-1", "database"},
        {"redis://h?timeout=1", "query"},
        {"redis://secret@h", "credentials"},
        {"redis://:p%4@h", "credentials"},
        {"redis://:p%zz@h", "credentials"},
        {"redis://[::1", "ipv6"},
        {"redis://[::1]x", "ipv6"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cm_redis_url u;
        char err[256] = "";
        if (cm_redis_parse_url(cases[i].url, &u, err, sizeof err) != -1)
            fail_msg("case %zu accepted", i);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
    }
    char host[400];
    memset(host, 'a', sizeof host);
    memcpy(host, "redis://", 8);
    host[sizeof host - 1] = '\0';
    struct cm_redis_url u;
    assert_int_equal(cm_redis_parse_url(host, &u, NULL, 0), -1);
}

static void config_errors(void **state)
{
    (void)state;
    char err[256];
    struct cm_redis_config bad = {.url = "http://x"};
    assert_null(cm_redis_open(&bad, err, sizeof err));
    assert_non_null(strstr(err, "REDIS_URL"));
    assert_null(cm_redis_open(NULL, err, sizeof err));
    struct cm_redis_config range = {.url = "redis://h", .pool_size = 1000};
    assert_null(cm_redis_open(&range, err, sizeof err));
    struct cm_redis_config neg = {.url = "redis://h", .command_timeout_ms = -1};
    assert_null(cm_redis_open(&neg, err, sizeof err));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nothing listens on port 1: the first command fails on connect, the next
 * fails fast inside the backoff window; both report errors, none crash. */
static void unreachable_server(void **state)
{
    (void)state;
    char err[256];
    struct cm_redis_config cfg = {.url = "redis://127.0.0.1:1", .pool_size = 1};
    struct cm_redis *r = cm_redis_open(&cfg, err, sizeof err);
    assert_non_null(r);
    struct cm_redis_reply rep;
    const char *argv[] = {"PING"};
    assert_int_equal(cm_redis_command(r, &rep, 1, argv, NULL), -1);
    assert_int_equal(rep.type, CM_REDIS_ERROR);
    assert_non_null(strstr(rep.str, "connect"));
    cm_redis_reply_release(&rep);
    int64_t t0 = now_ms();
    assert_int_equal(cm_redis_command(r, &rep, 1, argv, NULL), -1);
    assert_non_null(strstr(rep.str, "backoff"));
    assert_true(now_ms() - t0 < 50);
    cm_redis_reply_release(&rep);
    char *v = NULL;
    assert_int_equal(cm_redis_get(r, "k", &v, NULL), -1);
    assert_null(v);
    assert_int_equal(cm_redis_ping(r), -1);
    assert_int_equal(cm_redis_command(r, NULL, 0, argv, NULL), -1);
    struct cm_metric *up = cm_metric_gauge("redis_up", "x", NULL);
    double u = 1;
    assert_int_equal(cm_metric_value(up, &u), 0);
    assert_true(u == 0);
    cm_redis_close(r);
}

int main(void)
{
    cm_log_init("test_redis", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(urls_ok),
        cmocka_unit_test(urls_bad),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(unreachable_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
