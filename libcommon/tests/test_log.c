#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/banned.h"

/* Captures log lines through a pipe; returns the parsed last line (caller frees). */
static int fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(fds) < 0)
        return -1;
    cm_log_init("svc", CM_LOG_INFO);
    cm_log_set_fd(fds[1]);
    cm_log_set_context(NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cm_log_set_fd(1);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

static cJSON *read_line(void)
{
    char buf[8192];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (!nl || nl[1] != '\0') /* exactly one whole line per call */
        return NULL;
    return cJSON_Parse(buf);
}

static const char *str(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void fixed_fields_and_escaping(void **state)
{
    (void)state;
    cm_logf(CM_LOG_WARN, "disk \"%s\" at %d%%", "a\nb", 93);
    cJSON *j = read_line();
    assert_non_null(j);
    assert_string_equal(str(j, "level"), "warn");
    assert_string_equal(str(j, "service"), "svc");
    assert_string_equal(str(j, "msg"), "disk \"a\nb\" at 93%");
    const char *ts = str(j, "ts");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-11-21T23:59:59.123Z */
    assert_int_equal(ts[23], 'Z');
    assert_null(cJSON_GetObjectItem(j, "request_id"));
    cJSON_Delete(j);
}

static void level_filters(void **state)
{
    (void)state;
    cm_log_set_level(CM_LOG_ERROR);
    cm_logf(CM_LOG_INFO, "hidden");
    cm_logf(CM_LOG_ERROR, "shown");
    cJSON *j = read_line();
    assert_non_null(j);
    assert_string_equal(str(j, "msg"), "shown");
    cJSON_Delete(j);
    cm_log_set_level(CM_LOG_INFO);
}

static void context_and_fields(void **state)
{
    (void)state;
    cm_log_set_context("req-1", "4bf92f3577b34da6a3ce929d0e0e4736");
    cm_log_kv(CM_LOG_INFO, "hold placed", "hold_id", "42", "skipped", (const char *)NULL,
              (const char *)NULL);
    cJSON *j = read_line();
    assert_non_null(j);
    assert_string_equal(str(j, "request_id"), "req-1");
    assert_string_equal(str(j, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(j, "hold_id"), "42");
    cJSON_Delete(j);

    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "status", 201);
    cJSON_AddStringToObject(f, "route", "/v1/orders");
    cm_log_json(CM_LOG_INFO, "access", f);
    cJSON_Delete(f);
    j = read_line();
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "status")->valueint, 201);
    assert_string_equal(str(j, "route"), "/v1/orders");
    cJSON_Delete(j);
    cm_log_set_context(NULL, NULL);
}

static void parse_levels(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        enum cm_log_level want;
    } cases[] = {
        {"debug", 0, CM_LOG_DEBUG}, {"INFO", 0, CM_LOG_INFO},
        {"warn", 0, CM_LOG_WARN},   {"warning", 0, CM_LOG_WARN},
        {"error", 0, CM_LOG_ERROR}, {"", -1, 0},
        {"verbose", -1, 0},         {NULL, -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum cm_log_level l = CM_LOG_INFO;
        assert_int_equal(cm_log_parse_level(cases[i].in, &l), cases[i].rc);
        if (cases[i].rc == 0)
            assert_int_equal(l, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixed_fields_and_escaping),
        cmocka_unit_test(level_filters),
        cmocka_unit_test(context_and_fields),
        cmocka_unit_test(parse_levels),
    };
    return cmocka_run_group_tests_name("log", tests, setup, teardown);
}
