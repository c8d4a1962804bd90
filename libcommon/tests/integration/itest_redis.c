/*
 * Redis client against the fixture's Redis (TEST_REDIS_URL): commands,
 * reconnect after CLIENT KILL, command timeout, Lua via EVALSHA, pub/sub
 * publish, streams and the drop-dependency fault hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "common/banned.h"

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run through tests/run.sh (the integration fixture)", name);
    return v;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct cm_redis *open_client(int pool, int timeout_ms)
{
    char err[256];
    struct cm_redis_config cfg = {
        .url = need_env("TEST_REDIS_URL"), .pool_size = pool, .command_timeout_ms = timeout_ms};
    struct cm_redis *r = cm_redis_open(&cfg, err, sizeof err);
    if (!r)
        fail_msg("redis: %s", err);
    return r;
}

/* A raw hiredis connection for the test's own observations. */
static redisContext *raw(void)
{
    struct cm_redis_url u;
    assert_int_equal(cm_redis_parse_url(need_env("TEST_REDIS_URL"), &u, NULL, 0), 0);
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisSetTimeout(c, tv);
    return c;
}

static void basic_commands(void **state)
{
    (void)state;
    struct cm_redis *r = open_client(2, 1000);
    char *v = NULL;
    size_t len = 0;
    cm_redis_del(r, "it:k");
    assert_int_equal(cm_redis_get(r, "it:k", &v, &len), 0);
    assert_int_equal(cm_redis_set(r, "it:k", "a\0b", 3, 0), 0);
    assert_int_equal(cm_redis_get(r, "it:k", &v, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "a\0b", 3);
    free(v);
    assert_int_equal(cm_redis_set_nx(r, "it:k", "z", 1, 0), 0);
    cm_redis_del(r, "it:nx");
    assert_int_equal(cm_redis_set_nx(r, "it:nx", "z", 1, 60000), 1);
    long long n = 0;
    cm_redis_del(r, "it:n");
    assert_int_equal(cm_redis_incr(r, "it:n", 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cm_redis_incr(r, "it:n", 41, &n), 0);
    assert_int_equal(n, 42);
    assert_int_equal(cm_redis_incr(r, "it:k", 1, &n), -1); /* not an integer */
    assert_int_equal(cm_redis_expire(r, "it:n", 60000), 1);
    assert_int_equal(cm_redis_expire(r, "it:none", 60000), 0);
    assert_int_equal(cm_redis_del(r, "it:n"), 1);

    struct cm_redis_reply rep;
    const char *argv[] = {"NOSUCHCOMMAND"};
    assert_int_equal(cm_redis_command(r, &rep, 1, argv, NULL), -1);
    assert_int_equal(rep.type, CM_REDIS_ERROR);
    assert_non_null(strstr(rep.str, "unknown command"));
    cm_redis_reply_release(&rep);

    const char *fields[] = {"type", "amount"}, *values[] = {"withdraw", "100"};
    char id[64] = "";
    assert_int_equal(cm_redis_xadd(r, "it:stream", 2, fields, values, id, sizeof id), 0);
    assert_non_null(strchr(id, '-'));
    const char *xr[] = {"XRANGE", "it:stream", "-", "+"};
    assert_int_equal(cm_redis_command(r, &rep, 4, xr, NULL), 0);
    assert_int_equal(rep.type, CM_REDIS_ARRAY);
    assert_true(rep.nelem >= 1);
    assert_int_equal(rep.elem[0].nelem, 2);
    assert_string_equal(rep.elem[0].elem[1].elem[1].str, "withdraw");
    cm_redis_reply_release(&rep);
    assert_int_equal(cm_redis_ping(r), 0);
    cm_redis_close(r);
}

static void reconnects_after_client_kill(void **state)
{
    (void)state;
    struct cm_redis *r = open_client(1, 1000);
    struct cm_redis_reply rep;
    const char *cid[] = {"CLIENT", "ID"};
    assert_int_equal(cm_redis_command(r, &rep, 2, cid, NULL), 0);
    long long id = rep.integer;
    cm_redis_reply_release(&rep);

    redisContext *admin = raw();
    redisReply *k = redisCommand(admin, "CLIENT KILL ID %lld", id);
    assert_non_null(k);
    assert_int_equal(k->integer, 1);
    freeReplyObject(k);
    /* Wait until the server has really dropped it. */
    int64_t end = now_ms() + 3000;
    int gone = 0;
    while (!gone && now_ms() < end) {
        redisReply *l = redisCommand(admin, "CLIENT LIST ID %lld", id);
        gone = l && l->type == REDIS_REPLY_STRING && l->len == 0;
        freeReplyObject(l);
    }
    assert_true(gone);

    long long n = 0;
    cm_redis_del(r, "it:after-kill"); /* first command after the kill */
    assert_int_equal(cm_redis_incr(r, "it:after-kill", 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cm_redis_command(r, &rep, 2, cid, NULL), 0);
    long long id2 = rep.integer;
    cm_redis_reply_release(&rep);
    assert_true(id2 != id);

    /* Killed again, used at once: at most one command fails, then the
     * client is back by itself. */
    k = redisCommand(admin, "CLIENT KILL ID %lld", id2);
    freeReplyObject(k);
    int failures = 0, ok = 0;
    end = now_ms() + 3000;
    while (!ok && now_ms() < end) {
        if (cm_redis_ping(r) == 0)
            ok = 1;
        else
            failures++;
    }
    assert_true(ok);
    assert_true(failures <= 1);
    redisFree(admin);
    cm_redis_close(r);
}

static void command_timeout_is_honoured(void **state)
{
    (void)state;
    struct cm_redis *r = open_client(1, 200);
    cm_redis_del(r, "it:empty-list");
    struct cm_redis_reply rep;
    const char *argv[] = {"BLPOP", "it:empty-list", "3"};
    int64_t t0 = now_ms();
    assert_int_equal(cm_redis_command(r, &rep, 3, argv, NULL), -1);
    int64_t dt = now_ms() - t0;
    assert_true(dt >= 150 && dt < 1500);
    assert_int_equal(rep.type, CM_REDIS_ERROR);
    assert_non_null(strstr(rep.str, "timed out"));
    cm_redis_reply_release(&rep);
    struct cm_metric *errors = cm_metric_counter("redis_errors_total", "x", NULL);
    double v = 0;
    assert_int_equal(cm_metric_value(errors, &v), 0);
    assert_true(v >= 1);
    /* The next command gets a fresh connection. */
    assert_int_equal(cm_redis_ping(r), 0);
    cm_redis_close(r);
}

/* Calls of one command so far, from INFO commandstats. */
static long calls(redisContext *admin, const char *cmd)
{
    redisReply *r = redisCommand(admin, "INFO commandstats");
    assert_non_null(r);
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, key);
    long n = p ? strtol(p + strlen(key), NULL, 10) : 0;
    freeReplyObject(r);
    return n;
}

static void lua_via_evalsha(void **state)
{
    (void)state;
    static const char *script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    struct cm_redis *r = open_client(2, 1000);
    redisContext *admin = raw();
    freeReplyObject(redisCommand(admin, "SCRIPT FLUSH"));
    cm_redis_del(r, "it:lua");
    const char *keys[] = {"it:lua"}, *args[] = {"5"};
    struct cm_redis_reply rep;
    assert_int_equal(cm_redis_eval(r, script, 1, keys, 1, args, &rep), 0); /* NOSCRIPT -> EVAL */
    assert_int_equal(rep.type, CM_REDIS_INTEGER);
    assert_int_equal(rep.integer, 5);
    cm_redis_reply_release(&rep);
    /* Now cached: EVALSHA answers by itself, no EVAL. */
    long evalsha0 = calls(admin, "evalsha"), eval0 = calls(admin, "eval");
    assert_int_equal(cm_redis_eval(r, script, 1, keys, 1, args, &rep), 0);
    assert_int_equal(rep.integer, 10);
    cm_redis_reply_release(&rep);
    assert_int_equal(calls(admin, "evalsha"), evalsha0 + 1);
    assert_int_equal(calls(admin, "eval"), eval0);
    struct cm_metric *dur =
        cm_metric_histogram("redis_command_duration_seconds", "x", NULL, NULL, 0);
    double count = 0;
    assert_int_equal(cm_metric_value(dur, &count), 0);
    assert_true(count >= 3);
    assert_int_equal(cm_redis_eval(r, "return redis.call('NOPE')", 0, NULL, 0, NULL, &rep), -1);
    assert_int_equal(rep.type, CM_REDIS_ERROR);
    cm_redis_reply_release(&rep);
    redisFree(admin);
    cm_redis_close(r);
}

static void publish_reaches_subscriber(void **state)
{
    (void)state;
    struct cm_redis *r = open_client(1, 1000);
    redisContext *sub = raw();
    redisReply *s = redisCommand(sub, "SUBSCRIBE it:chan");
    assert_non_null(s);
    freeReplyObject(s);
    long long receivers = 0;
    assert_int_equal(cm_redis_publish(r, "it:chan", "hello", 5, &receivers), 0);
    assert_int_equal(receivers, 1);
    redisReply *m = NULL;
    assert_int_equal(redisGetReply(sub, (void **)&m), REDIS_OK);
    assert_int_equal(m->type, REDIS_REPLY_ARRAY);
    assert_string_equal(m->element[2]->str, "hello");
    freeReplyObject(m);
    redisFree(sub);
    cm_redis_close(r);
}

static int drop_redis(const char *dep)
{
    return strcmp(dep, "redis") == 0;
}

static void drop_hook_fails_commands(void **state)
{
    (void)state;
    struct cm_redis *r = open_client(1, 1000);
    assert_int_equal(cm_redis_ping(r), 0);
    cm_redis_set_drop_hook(drop_redis);
    assert_int_equal(cm_redis_ping(r), -1);
    char *v = NULL;
    assert_int_equal(cm_redis_get(r, "it:k", &v, NULL), -1);
    cm_redis_set_drop_hook(NULL);
    assert_int_equal(cm_redis_ping(r), 0);
    struct cm_metric *errors = cm_metric_counter("redis_errors_total", "x", NULL);
    double n = 0;
    assert_int_equal(cm_metric_value(errors, &n), 0);
    assert_true(n >= 2);
    cm_redis_close(r);
}

int main(void)
{
    cm_log_init("itest_redis", CM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basic_commands),
        cmocka_unit_test(reconnects_after_client_kill),
        cmocka_unit_test(command_timeout_is_honoured),
        cmocka_unit_test(lua_via_evalsha),
        cmocka_unit_test(publish_reaches_subscriber),
        cmocka_unit_test(drop_hook_fails_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
