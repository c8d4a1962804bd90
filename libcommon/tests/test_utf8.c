#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/utf8.h"
#include "common/banned.h"

static void counts_and_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        long want;
    } cases[] = {
        {"", 0},
        {"plain", 5},
        {"h\xc3\xa9llo", 5},
        {"\xe2\x82\xac", 1},     /* euro sign */
        {"\xf0\x9f\x98\x80", 1}, /* emoji */
        {"a\tb", -1},            /* control character */
        {"del\x7f", -1},
        {"\xc0\xaf", -1},             /* overlong '/' */
        {"\xe0\x80\xaf", -1},         /* overlong, 3 bytes */
        {"\xed\xa0\x80", -1},         /* surrogate */
        {"\xf4\x90\x80\x80", -1},     /* past U+10FFFF */
        {"\xc3", -1},                 /* truncated */
        {"\x80", -1},                 /* lone continuation */
        {"\xf8\x88\x80\x80\x80", -1}, /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(cm_utf8_chars(cases[i].in), cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(counts_and_rejects)};
    return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
