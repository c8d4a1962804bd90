/* Email and password rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "../gateway.h"
#include "common/banned.h"

static void emails(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        {"alice@example.com", "alice@example.com"},
        {"Alice.Smith+tag@Example.CO.uk", "alice.smith+tag@example.co.uk"},
        {"a@b.io", "a@b.io"},
        {"o'neil@x-y.example", "o'neil@x-y.example"},
        {"", NULL},
        {"alice", NULL},
        {"alice@", NULL},
        {"@example.com", NULL},
        {"alice@example", NULL},
        {"alice@@example.com", NULL},
        {"a@b@example.com", NULL},
        {".alice@example.com", NULL},
        {"alice.@example.com", NULL},
        {"al..ice@example.com", NULL},
        {"alice@-example.com", NULL},
        {"alice@example-.com", NULL},
        {"alice@exa_mple.com", NULL},
        {"alice@example..com", NULL},
        {"ali ce@example.com", NULL},
        {"alice@example.com\n", NULL},
        {"\"alice\"@example.com", NULL},
        {"alice@example.com'; DROP TABLE users;--", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[GW_EMAIL_MAX + 1];
        const char *why = NULL;
        int rc = gw_email_normalize(cases[i].in, out, sizeof out, &why);
        if (cases[i].out) {
            if (rc != 0)
                fail_msg("\"%s\" refused: %s", cases[i].in, why);
            assert_string_equal(out, cases[i].out);
        } else if (rc != -1 || !why) {
            fail_msg("\"%s\" accepted", cases[i].in);
        }
    }
}

static void email_lengths(void **state)
{
    (void)state;
    char in[400], out[GW_EMAIL_MAX + 1];
    /* local part of 64 is fine, 65 is not */
    memset(in, 'a', 64);
    memcpy(in + 64, "@example.com", 13);
    assert_int_equal(gw_email_normalize(in, out, sizeof out, NULL), 0);
    memset(in, 'a', 65);
    memcpy(in + 65, "@example.com", 13);
    assert_int_equal(gw_email_normalize(in, out, sizeof out, NULL), -1);
    /* 255 characters in total is too long */
    memset(in, 'a', 10);
    in[10] = '@';
    for (int i = 11; i < 255; i++)
        in[i] = (i % 10 == 0) ? '.' : 'b';
    in[254] = 'c';
    in[255] = '\0';
    assert_int_equal(gw_email_normalize(in, out, sizeof out, NULL), -1);
    assert_int_equal(gw_email_normalize(NULL, out, sizeof out, NULL), -1);
}

static void passwords(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(gw_password_check("correct-horse-battery", &why), 0);
    assert_int_equal(gw_password_check("123456789012", &why), 0); /* 12: minimum */
    assert_int_equal(gw_password_check("12345678901", &why), -1); /* 11 */
    assert_int_equal(gw_password_check("", &why), -1);
    assert_int_equal(gw_password_check(NULL, &why), -1);
    /* 12 code points of 2 bytes each count as 12, not 24 */
    assert_int_equal(gw_password_check("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                                       &why),
                     0);
    assert_int_equal(gw_password_check("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", &why),
                     -1);
    assert_int_equal(gw_password_check("abcdefghijk\xff", &why), -1);     /* not UTF-8 */
    assert_int_equal(gw_password_check("abcdefghijk\xc0\xaf", &why), -1); /* overlong */
    assert_int_equal(gw_password_check("abcdefghijkl\n", &why), -1);      /* control */
    char long_pw[300];
    memset(long_pw, 'x', 256);
    long_pw[256] = '\0';
    assert_int_equal(gw_password_check(long_pw, &why), 0);
    long_pw[256] = 'x';
    long_pw[257] = '\0';
    assert_int_equal(gw_password_check(long_pw, &why), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emails),
        cmocka_unit_test(email_lengths),
        cmocka_unit_test(passwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
