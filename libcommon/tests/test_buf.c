#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/banned.h"

static void append_and_terminate(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b, 0);
    assert_int_equal(cm_buf_puts(&b, "abc"), 0);
    assert_int_equal(cm_buf_printf(&b, "-%d-", 42), 0);
    assert_string_equal(b.data, "abc-42-");
    assert_int_equal(b.len, 7);
    cm_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    cm_buf_release(&b);
}

static void cap_is_hard(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b, 8);
    assert_int_equal(cm_buf_puts(&b, "12345678"), 0);
    assert_int_equal(cm_buf_puts(&b, "9"), -1);
    assert_string_equal(b.data, "12345678"); /* unchanged by the failed append */
    assert_int_equal(cm_buf_printf(&b, "%s", "x"), -1);
    cm_buf_release(&b);
}

static void long_printf_grows(void **state)
{
    (void)state;
    struct cm_buf b;
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cm_buf_init(&b, 0);
    assert_int_equal(cm_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1000], '>');
    cm_buf_release(&b);
}

static void json_escape_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"a\"b", "a\\\"b"},
        {"back\\slash", "back\\\\slash"},
        {"nl\nx\ty\r", "nl\\nx\\ty\\r"},
        {"\x01\x1f", "\\u0001\\u001f"},
        {"", ""},
        {"caf\xc3\xa9", "caf\xc3\xa9"}, /* UTF-8 passes through */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cm_buf b;
        cm_buf_init(&b, 0);
        assert_int_equal(cm_buf_json_escape(&b, cases[i].in), 0);
        assert_string_equal(b.data ? b.data : "", cases[i].out);
        cm_buf_release(&b);
    }
}

static void detach_hands_over(void **state)
{
    (void)state;
    struct cm_buf b;
    size_t n;
    cm_buf_init(&b, 0);
    char *empty = cm_buf_detach(&b, &n);
    assert_non_null(empty);
    assert_int_equal(n, 0);
    free(empty);
    cm_buf_puts(&b, "hello");
    char *s = cm_buf_detach(&b, &n);
    assert_string_equal(s, "hello");
    assert_int_equal(n, 5);
    assert_null(b.data);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_and_terminate), cmocka_unit_test(cap_is_hard),
        cmocka_unit_test(long_printf_grows),    cmocka_unit_test(json_escape_cases),
        cmocka_unit_test(detach_hands_over),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
