#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/service.h"
#include "common/banned.h"

static void bad_log_level_is_a_config_error(void **state)
{
    (void)state;
    setenv("LOG_LEVEL", "loud", 1);
    assert_int_equal(cm_service_init("svc", "1.0"), -1);
}

static void init_sets_level_and_registers_metrics(void **state)
{
    (void)state;
    setenv("LOG_LEVEL", "warn", 1);
    assert_int_equal(cm_service_init("svc", "1.2.3"), 0);
    assert_int_equal(cm_log_get_level(), CM_LOG_WARN);
    struct cm_buf b;
    cm_buf_init(&b, 0);
    assert_int_equal(cm_metrics_render(&b), 0);
    assert_non_null(strstr(b.data, "service_info{"));
    assert_non_null(strstr(b.data, "1.2.3"));
    assert_non_null(strstr(b.data, "process_start_time_seconds"));
    cm_buf_release(&b);
    unsetenv("LOG_LEVEL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_log_level_is_a_config_error),
        cmocka_unit_test(init_sets_level_and_registers_metrics),
    };
    return cmocka_run_group_tests_name("service", tests, NULL, NULL);
}
