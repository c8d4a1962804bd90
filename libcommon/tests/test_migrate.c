/* Migration file naming and argument checks (no server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/migrate.h"
#include "common/banned.h"

static void file_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        long version; /* 0: not a migration */
    } cases[] = {
        {"001_init.sql", 1},
        {"42_add_index.sql", 42},
        {"000000123_x.sql", 123},
        {"001_init.SQL", 0},
        {"001init.sql", 0},
        {"001_.sql", 0},
        {"_init.sql", 0},
        {"000_zero.sql", 0},
        {"abc_init.sql", 0},
        {"001_init.sql.bak", 0},
        {"0000000001_too_many_digits.sql", 0},
        {"README.md", 0},
        {"", 0},
        {".sql", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long v = -1;
        int rc = cm_migrate_parse_name(cases[i].name, &v);
        if (cases[i].version) {
            if (rc != 0 || v != cases[i].version)
                fail_msg("%s: rc %d version %ld", cases[i].name, rc, v);
        } else if (rc != -1) {
            fail_msg("%s: accepted as version %ld", cases[i].name, v);
        }
    }
    long v;
    assert_int_equal(cm_migrate_parse_name(NULL, &v), -1);
}

static void bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(cm_migrate_run_conn(NULL, "/tmp", "svc", NULL), -1);
    assert_int_equal(cm_migrate_run(NULL, "/tmp", "svc", NULL), -1);
    assert_int_equal(cm_migrate_run("", "/tmp", "svc", NULL), -1);
    assert_int_equal(cm_migrate_run("not a conninfo", "/tmp", "svc", NULL), -1);
}

int main(void)
{
    cm_log_init("test_migrate", CM_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_names),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
