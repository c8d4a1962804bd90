#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/banned.h"

static void typed_values(void **state)
{
    (void)state;
    struct cm_config c;
    cm_config_init(&c, "t");
    setenv("T_PORT", "8081", 1);
    setenv("T_FLAG", "yes", 1);
    setenv("T_TIMEOUT", "250ms", 1);
    setenv("T_DB", "postgresql://u@h/db", 1);
    setenv("T_MODE", "Closed", 1);
    unsetenv("T_UNSET");
    assert_int_equal(cm_config_port(&c, "T_PORT", NULL), 8081);
    assert_int_equal(cm_config_bool(&c, "T_FLAG", "false"), 1);
    assert_int_equal(cm_config_duration_ms(&c, "T_TIMEOUT", "1s"), 250);
    assert_int_equal(cm_config_duration_ms(&c, "T_UNSET", "2m"), 120000);
    assert_string_equal(cm_config_url(&c, "T_DB", NULL, "postgres://,postgresql://"),
                        "postgresql://u@h/db");
    assert_string_equal(cm_config_string(&c, "T_UNSET", "dflt"), "dflt");
    assert_int_equal(cm_config_enum(&c, "T_MODE", "open", "open|closed"), 1);
    assert_int_equal(cm_config_finish(&c), 0);
}

static void malformed_values_are_recorded(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int kind;
    } cases[] = {
        {"80a", 0}, {"0", 0},        {"65536", 0},         {"-1", 0},       {" 80", 0},
        {"+80", 0}, {"maybe", 1},    {"10 s", 2},          {"-5s", 2},      {"1d", 2},
        {"ms", 2},  {"http://x", 3}, {"postgresql://", 3}, {"sideways", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cm_config c;
        cm_config_init(&c, "t");
        setenv("T_VAL", cases[i].value, 1);
        switch (cases[i].kind) {
        case 0: cm_config_port(&c, "T_VAL", NULL); break;
        case 1: cm_config_bool(&c, "T_VAL", NULL); break;
        case 2: cm_config_duration_ms(&c, "T_VAL", NULL); break;
        case 3: cm_config_url(&c, "T_VAL", NULL, "postgresql://"); break;
        case 4: cm_config_enum(&c, "T_VAL", NULL, "open|closed"); break;
        }
        if (c.nerrors != 1)
            fail_msg("value \"%s\" (kind %d) was accepted", cases[i].value, cases[i].kind);
        assert_non_null(strstr(c.errors[0], "T_VAL"));
    }
}

static void int_bounds(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(cm_parse_int64("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(cm_parse_int64("9223372036854775808", &v), -1);
    assert_int_equal(cm_parse_int64("", &v), -1);
    assert_int_equal(cm_parse_int64("12x", &v), -1);
    assert_int_equal(cm_parse_duration_ms("9223372036854775807h", &v), -1);
}

/* What a service's main() does: missing required variable -> one line, exit 2. */
static void missing_required_exits_2_with_one_line(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        unsetenv("DATABASE_URL");
        struct cm_config c;
        cm_config_init(&c, "wallet");
        cm_config_url(&c, "DATABASE_URL", NULL, "postgresql://");
        _exit(cm_config_finish(&c) < 0 ? 2 : 0);
    }
    close(p[1]);
    char out[512] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof out - 1 && (n = read(p[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    assert_string_equal(out, "wallet: config: DATABASE_URL is required but not set\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(typed_values),
        cmocka_unit_test(malformed_values_are_recorded),
        cmocka_unit_test(int_bounds),
        cmocka_unit_test(missing_required_exits_2_with_one_line),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
