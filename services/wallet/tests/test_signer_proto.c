/* Unit tests of the signer's strict request format (signer/proto.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../signer/signer.h"
#include "common/banned.h"

static void test_good(void **state)
{
    (void)state;
    const char *line = "{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":"
                       "\"tb1qexampleaddress0001\",\"amount\":\"0.01000000\"}";
    struct sign_req r;
    char err[64];
    assert_int_equal(signer_parse_request(line, strlen(line), &r, err, sizeof err), 0);
    assert_string_equal(r.withdrawal_id, "wd_1");
    assert_string_equal(r.amount, "0.01000000");
    char msg[512];
    int n = signer_message(&r, msg, sizeof msg);
    assert_true(n > 0);
    assert_string_equal(msg, "exlab-withdrawal-v1\nwd_1\nBTC\ntb1qexampleaddress0001\n0.01000000");
}

static void test_bad(void **state)
{
    (void)state;
    static const struct {
        const char *line, *code;
    } cases[] = {
        {"", "malformed"},
        {"not json", "malformed"},
        {"[1,2]", "malformed"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"tb1qexample00\"}",
         "missing_field"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"tb1qexample00\","
         "\"amount\":\"1\",\"key\":\"x\"}",
         "unknown_field"},
        {"{\"withdrawal_id\":\"wd_1\",\"withdrawal_id\":\"wd_2\",\"asset\":\"BTC\","
         "\"address\":\"tb1qexample00\",\"amount\":\"1\"}",
         "bad_withdrawal_id"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"btc\",\"address\":\"tb1qexample00\","
         "\"amount\":\"1\"}",
         "bad_asset"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"short\",\"amount\":\"1\"}",
         "bad_address"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"tb1q\\nexample00\","
         "\"amount\":\"1\"}",
         "bad_address"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"tb1qexample00\","
         "\"amount\":\"-1\"}",
         "bad_amount"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"tb1qexample00\","
         "\"amount\":\"1e5\"}",
         "bad_amount"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"tb1qexample00\","
         "\"amount\":\"01\"}",
         "bad_amount"},
        {"{\"withdrawal_id\":\"wd_1\",\"asset\":\"BTC\",\"address\":\"tb1qexample00\","
         "\"amount\":1}",
         "bad_amount"},
        {"{\"withdrawal_id\":\"-x\",\"asset\":\"BTC\",\"address\":\"tb1qexample00\","
         "\"amount\":\"1\"}",
         "bad_withdrawal_id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sign_req r;
        char err[64] = "";
        assert_int_equal(
            signer_parse_request(cases[i].line, strlen(cases[i].line), &r, err, sizeof err), -1);
        assert_string_equal(err, cases[i].code);
    }
}

static void test_oversized(void **state)
{
    (void)state;
    char big[SIGNER_MAX_LINE + 100];
    memset(big, 'a', sizeof big);
    struct sign_req r;
    char err[64];
    assert_int_equal(signer_parse_request(big, sizeof big, &r, err, sizeof err), -1);
    assert_string_equal(err, "request_too_large");
    const char nul[] = "{\"a\0\":1}";
    assert_int_equal(signer_parse_request(nul, sizeof nul - 1, &r, err, sizeof err), -1);
}

static void test_hex(void **state)
{
    (void)state;
    unsigned char in[3] = {0x00, 0xab, 0xff}, out[3];
    char hex[7];
    signer_hex(in, 3, hex);
    assert_string_equal(hex, "00abff");
    assert_int_equal(signer_unhex("00ABff", out, 3), 0);
    assert_memory_equal(in, out, 3);
    assert_int_equal(signer_unhex("00ab", out, 3), -1);
    assert_int_equal(signer_unhex("00abzz", out, 3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
