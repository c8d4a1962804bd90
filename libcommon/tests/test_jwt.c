/* Tests for common/jwt.h. Keys are generated at start-up (nothing secret
 * is committed); hostile tokens are forged here with OpenSSL directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "common/jwt.h"
#include "common/log.h"

#include "common/banned.h"

static const char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";
#define SECRET_LEN (sizeof SECRET - 1)
static const int64_t T0 = 1800000000;

struct keypair {
    char *priv;
    char *pub;
};
static struct keypair rsa_a, rsa_b, ec_a, rsa_small;
static int64_t fake_now;
static int devnull = -1;

static int64_t now_fn(void *ctx)
{
    return *(int64_t *)ctx;
}

static char *bio_string(BIO *bio)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static void keypair_from(EVP_PKEY *k, struct keypair *kp)
{
    assert_non_null(k);
    BIO *b1 = BIO_new(BIO_s_mem()), *b2 = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b1, k, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_bio_PUBKEY(b2, k), 1);
    kp->priv = bio_string(b1);
    kp->pub = bio_string(b2);
    BIO_free(b1);
    BIO_free(b2);
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    (void)state;
    cm_log_init("test_jwt", CM_LOG_ERROR);
    /* Expected error lines would clutter the TAP stream. */
    devnull = open("/dev/null", O_WRONLY);
    cm_log_set_fd(devnull);
    keypair_from(EVP_RSA_gen(2048), &rsa_a);
    keypair_from(EVP_RSA_gen(2048), &rsa_b);
    keypair_from(EVP_RSA_gen(1024), &rsa_small);
    keypair_from(EVP_EC_gen("P-256"), &ec_a);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    struct keypair *all[] = {&rsa_a, &rsa_b, &ec_a, &rsa_small};
    for (size_t i = 0; i < 4; i++) {
        free(all[i]->priv);
        free(all[i]->pub);
    }
    cm_log_set_fd(1);
    close(devnull);
    return 0;
}

static int reset_clock(void **state)
{
    (void)state;
    fake_now = T0;
    return 0;
}

/* ---- helpers to forge tokens ---- */

static void b64url(struct cm_buf *b, const void *p, size_t n)
{
    unsigned char *out = malloc(4 * n / 3 + 8);
    int len = EVP_EncodeBlock(out, p, (int)n);
    for (int i = 0; i < len; i++) {
        char c = (char)out[i];
        if (c == '=')
            break;
        c = c == '+' ? '-' : c == '/' ? '_' : c;
        assert_int_equal(cm_buf_append(b, &c, 1), 0);
    }
    free(out);
}

/* header.payload.HMAC-SHA256(secret) */
static char *forge_hs256(const char *header, const char *payload, const void *secret, size_t slen)
{
    struct cm_buf b;
    cm_buf_init(&b, 0);
    b64url(&b, header, strlen(header));
    cm_buf_puts(&b, ".");
    b64url(&b, payload, strlen(payload));
    unsigned char mac[32];
    unsigned int maclen = 0;
    assert_non_null(
        HMAC(EVP_sha256(), secret, (int)slen, (unsigned char *)b.data, b.len, mac, &maclen));
    cm_buf_puts(&b, ".");
    b64url(&b, mac, maclen);
    return cm_buf_detach(&b, NULL);
}

static char *forge_unsigned(const char *header, const char *payload, const char *sig)
{
    struct cm_buf b;
    cm_buf_init(&b, 0);
    b64url(&b, header, strlen(header));
    cm_buf_puts(&b, ".");
    b64url(&b, payload, strlen(payload));
    cm_buf_puts(&b, ".");
    cm_buf_puts(&b, sig);
    return cm_buf_detach(&b, NULL);
}

static struct cm_jwt_verifier *hs_verifier(void)
{
    struct cm_jwt_verifier_config c = {
        .alg = CM_JWT_HS256,
        .key = (const unsigned char *)SECRET,
        .key_len = SECRET_LEN,
        .issuer = "exlab",
        .audience = "exlab-api",
        .now = now_fn,
        .now_ctx = &fake_now,
    };
    struct cm_jwt_verifier *v = cm_jwt_verifier_new(&c);
    assert_non_null(v);
    return v;
}

static struct cm_jwt_verifier *pem_verifier(enum cm_jwt_alg alg, const char *pub)
{
    struct cm_jwt_verifier_config c = {
        .alg = alg,
        .key = (const unsigned char *)pub,
        .key_len = strlen(pub),
        .issuer = "exlab",
        .audience = "exlab-api",
        .now = now_fn,
        .now_ctx = &fake_now,
    };
    return cm_jwt_verifier_new(&c);
}

static char *issue(enum cm_jwt_alg alg, const char *key, size_t klen, const char *iss,
                   const char *aud, int64_t ttl)
{
    static const char *const roles[] = {"trader", "admin"};
    struct cm_jwt_signer_config c = {
        .alg = alg,
        .key = (const unsigned char *)key,
        .key_len = klen,
        .issuer = iss,
        .audience = aud,
        .kid = "k1",
        .now = now_fn,
        .now_ctx = &fake_now,
    };
    return cm_jwt_issue(&c, "user-42", roles, 2, ttl, NULL);
}

static void expect_valid(struct cm_jwt_verifier *v, const char *tok)
{
    struct cm_jwt_claims c;
    int rc = cm_jwt_verify(v, tok, &c);
    if (rc != 0)
        fail_msg("verify: %s", cm_jwt_strerror(rc));
    assert_string_equal(c.sub, "user-42");
    assert_int_equal(c.exp, fake_now + 600);
    assert_int_equal(c.iat, fake_now);
    assert_int_equal(strlen(c.jti), 32);
    assert_int_equal(c.nroles, 2);
    assert_string_equal(c.roles[0], "trader");
    assert_true(cm_jwt_has_role(&c, "admin"));
    assert_false(cm_jwt_has_role(&c, "root"));
}

/* ---- tests ---- */

static void test_valid_each_alg(void **state)
{
    (void)state;
    struct cm_jwt_verifier *hs = hs_verifier();
    char *t = issue(CM_JWT_HS256, SECRET, SECRET_LEN, "exlab", "exlab-api", 600);
    assert_non_null(t);
    expect_valid(hs, t);
    free(t);
    cm_jwt_verifier_free(hs);

    struct cm_jwt_verifier *rs = pem_verifier(CM_JWT_RS256, rsa_a.pub);
    assert_non_null(rs);
    t = issue(CM_JWT_RS256, rsa_a.priv, strlen(rsa_a.priv), "exlab", "exlab-api", 600);
    assert_non_null(t);
    expect_valid(rs, t);
    free(t);
    cm_jwt_verifier_free(rs);

    struct cm_jwt_verifier *es = pem_verifier(CM_JWT_ES256, ec_a.pub);
    assert_non_null(es);
    t = issue(CM_JWT_ES256, ec_a.priv, strlen(ec_a.priv), "exlab", "exlab-api", 600);
    assert_non_null(t);
    expect_valid(es, t);
    /* JOSE ES256 signatures are raw R||S (64 bytes = 86 base64url chars),
     * not DER: other stacks can verify what we issue. */
    assert_int_equal(strlen(strrchr(t, '.') + 1), 86);
    free(t);
    cm_jwt_verifier_free(es);
}

struct bad_case {
    const char *name;
    const char *header;
    const char *payload;
    int rc;
};

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
/* exp = T0 + 600, nbf/iat around T0 */
static const struct bad_case hs_cases[] = {
    {"ok", HS, "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}", 0},
    {"aud array", HS,
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":[\"x\",\"exlab-api\"]}", 0},
    {"scope roles", HS,
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\","
     "\"scope\":\"read  trade\"}",
     0},
    {"nbf within leeway", HS,
     "{\"sub\":\"u1\",\"exp\":1800000600,\"nbf\":1800000020,\"iss\":\"exlab\",\"aud\":\"exlab-"
     "api\"}",
     0},
    {"expired", HS, "{\"sub\":\"u1\",\"exp\":1799999970,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}",
     CM_JWT_EEXPIRED},
    {"nbf in future", HS,
     "{\"sub\":\"u1\",\"exp\":1800000600,\"nbf\":1800000031,\"iss\":\"exlab\",\"aud\":\"exlab-"
     "api\"}",
     CM_JWT_ENOTYET},
    {"wrong issuer", HS,
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"evil\",\"aud\":\"exlab-api\"}", CM_JWT_EISSUER},
    {"missing issuer", HS, "{\"sub\":\"u1\",\"exp\":1800000600,\"aud\":\"exlab-api\"}",
     CM_JWT_EISSUER},
    {"wrong audience", HS,
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"other\"}", CM_JWT_EAUDIENCE},
    {"wrong audience array", HS,
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":[\"a\",\"b\"]}",
     CM_JWT_EAUDIENCE},
    {"missing audience", HS, "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\"}",
     CM_JWT_EAUDIENCE},
    {"missing exp", HS, "{\"sub\":\"u1\",\"iss\":\"exlab\",\"aud\":\"exlab-api\"}",
     CM_JWT_EMISSING},
    {"missing sub", HS, "{\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}",
     CM_JWT_EMISSING},
    {"exp as string", HS,
     "{\"sub\":\"u1\",\"exp\":\"1800000600\",\"iss\":\"exlab\",\"aud\":\"exlab-api\"}",
     CM_JWT_EFORMAT},
    {"sub not string", HS,
     "{\"sub\":42,\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}", CM_JWT_EFORMAT},
    {"roles not array", HS,
     "{\"sub\":\"u\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\",\"roles\":"
     "\"admin\"}",
     CM_JWT_EFORMAT},
    {"payload not object", HS, "[1,2]", CM_JWT_EFORMAT},
    {"payload not json", HS, "{nope", CM_JWT_EFORMAT},
    {"alg lowercase", "{\"alg\":\"hs256\"}",
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}", CM_JWT_EALG},
    {"alg HS512", "{\"alg\":\"HS512\"}",
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}", CM_JWT_EALG},
    {"alg missing", "{\"typ\":\"JWT\"}",
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}", CM_JWT_EALG},
    {"header not json", "HS256",
     "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}", CM_JWT_EFORMAT},
};

static void test_claims_table(void **state)
{
    (void)state;
    struct cm_jwt_verifier *v = hs_verifier();
    for (size_t i = 0; i < sizeof hs_cases / sizeof hs_cases[0]; i++) {
        char *t = forge_hs256(hs_cases[i].header, hs_cases[i].payload, SECRET, SECRET_LEN);
        struct cm_jwt_claims c;
        int rc = cm_jwt_verify(v, t, &c);
        if (rc != hs_cases[i].rc)
            fail_msg("case \"%s\": %s, want %s", hs_cases[i].name, cm_jwt_strerror(rc),
                     cm_jwt_strerror(hs_cases[i].rc));
        free(t);
    }
    /* scope split on spaces */
    char *t = forge_hs256(hs_cases[2].header, hs_cases[2].payload, SECRET, SECRET_LEN);
    struct cm_jwt_claims c;
    assert_int_equal(cm_jwt_verify(v, t, &c), 0);
    assert_int_equal(c.nroles, 2);
    assert_string_equal(c.roles[1], "trade");
    assert_string_equal(c.jti, "");
    free(t);
    cm_jwt_verifier_free(v);
}

static void test_alg_none_rejected(void **state)
{
    (void)state;
    struct cm_jwt_verifier *v = hs_verifier();
    const char *p = "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}";
    struct cm_jwt_claims c;
    char *t = forge_unsigned("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, "");
    assert_int_equal(cm_jwt_verify(v, t, &c), CM_JWT_EALG);
    free(t);
    t = forge_unsigned("{\"alg\":\"none\"}", p, "AAAA");
    assert_int_equal(cm_jwt_verify(v, t, &c), CM_JWT_EALG);
    free(t);
    t = forge_unsigned("{\"alg\":\"None\"}", p, "");
    assert_int_equal(cm_jwt_verify(v, t, &c), CM_JWT_EALG);
    free(t);
    /* also against a public-key verifier */
    struct cm_jwt_verifier *rs = pem_verifier(CM_JWT_RS256, rsa_a.pub);
    t = forge_unsigned("{\"alg\":\"none\"}", p, "");
    assert_int_equal(cm_jwt_verify(rs, t, &c), CM_JWT_EALG);
    free(t);
    cm_jwt_verifier_free(rs);
    cm_jwt_verifier_free(v);
}

static void test_hs_rs_confusion(void **state)
{
    (void)state;
    const char *p = "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}";
    /* The classic attack: HMAC keyed with the (public) RSA PEM. */
    char *t = forge_hs256(HS, p, rsa_a.pub, strlen(rsa_a.pub));
    struct cm_jwt_verifier *rs = pem_verifier(CM_JWT_RS256, rsa_a.pub);
    struct cm_jwt_claims c;
    assert_int_equal(cm_jwt_verify(rs, t, &c), CM_JWT_EALG);
    free(t);
    cm_jwt_verifier_free(rs);
    /* A verifier configured with a PEM as HMAC secret is refused outright. */
    struct cm_jwt_verifier_config bad = {
        .alg = CM_JWT_HS256,
        .key = (const unsigned char *)rsa_a.pub,
        .key_len = strlen(rsa_a.pub),
    };
    assert_null(cm_jwt_verifier_new(&bad));
    /* RS256 token against an ES256 verifier and vice versa. */
    struct cm_jwt_verifier *es = pem_verifier(CM_JWT_ES256, ec_a.pub);
    t = issue(CM_JWT_RS256, rsa_a.priv, strlen(rsa_a.priv), "exlab", "exlab-api", 600);
    assert_int_equal(cm_jwt_verify(es, t, &c), CM_JWT_EALG);
    free(t);
    cm_jwt_verifier_free(es);
}

static void test_bad_keys_refused(void **state)
{
    (void)state;
    assert_null(pem_verifier(CM_JWT_RS256, ec_a.pub));      /* EC key for RS256 */
    assert_null(pem_verifier(CM_JWT_ES256, rsa_a.pub));     /* RSA key for ES256 */
    assert_null(pem_verifier(CM_JWT_RS256, rsa_small.pub)); /* 1024-bit RSA */
    assert_null(pem_verifier(CM_JWT_RS256, "not a pem"));
    struct cm_jwt_verifier_config c = {
        .alg = CM_JWT_HS256, .key = (const unsigned char *)"short", .key_len = 5};
    assert_null(cm_jwt_verifier_new(&c));
    c.alg = (enum cm_jwt_alg)0;
    assert_null(cm_jwt_verifier_new(&c));
    assert_null(cm_jwt_verifier_new(NULL));
    /* issuing with a public key or a mismatched key fails */
    assert_null(issue(CM_JWT_RS256, rsa_a.pub, strlen(rsa_a.pub), NULL, NULL, 60));
    assert_null(issue(CM_JWT_ES256, rsa_a.priv, strlen(rsa_a.priv), NULL, NULL, 60));
    assert_null(issue(CM_JWT_HS256, "short", 5, NULL, NULL, 60));
    assert_null(issue(CM_JWT_HS256, SECRET, SECRET_LEN, NULL, NULL, 0));
}

static void test_wrong_key_and_tamper(void **state)
{
    (void)state;
    struct cm_jwt_claims c;
    struct cm_jwt_verifier *rs = pem_verifier(CM_JWT_RS256, rsa_a.pub);
    char *t = issue(CM_JWT_RS256, rsa_b.priv, strlen(rsa_b.priv), "exlab", "exlab-api", 600);
    assert_int_equal(cm_jwt_verify(rs, t, &c), CM_JWT_ESIG);
    free(t);

    struct cm_jwt_verifier *hs = hs_verifier();
    t = forge_hs256(HS,
                    "{\"sub\":\"u1\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}",
                    "another-secret-another-secret-0123", 34);
    assert_int_equal(cm_jwt_verify(hs, t, &c), CM_JWT_ESIG);
    free(t);

    /* Tampered payload: a valid token with its payload swapped for sub=admin. */
    t = issue(CM_JWT_RS256, rsa_a.priv, strlen(rsa_a.priv), "exlab", "exlab-api", 600);
    assert_int_equal(cm_jwt_verify(rs, t, &c), 0);
    char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
    struct cm_buf b;
    cm_buf_init(&b, 0);
    cm_buf_append(&b, t, (size_t)(d1 - t) + 1);
    const char *evil =
        "{\"sub\":\"admin\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}";
    b64url(&b, evil, strlen(evil));
    cm_buf_puts(&b, d2);
    assert_int_equal(cm_jwt_verify(rs, b.data, &c), CM_JWT_ESIG);
    /* Tampered signature (flip one char). */
    cm_buf_reset(&b);
    cm_buf_puts(&b, t);
    b.data[b.len - 2] = b.data[b.len - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(cm_jwt_verify(rs, b.data, &c), CM_JWT_ESIG);
    cm_buf_release(&b);
    free(t);
    cm_jwt_verifier_free(hs);
    cm_jwt_verifier_free(rs);
}

static void test_expiry_with_clock(void **state)
{
    (void)state;
    struct cm_jwt_verifier *hs = hs_verifier();
    struct cm_jwt_claims c;
    char *t = issue(CM_JWT_HS256, SECRET, SECRET_LEN, "exlab", "exlab-api", 60);
    fake_now = T0 + 60 + 29; /* inside the 30 s leeway */
    assert_int_equal(cm_jwt_verify(hs, t, &c), 0);
    fake_now = T0 + 60 + 30;
    assert_int_equal(cm_jwt_verify(hs, t, &c), CM_JWT_EEXPIRED);
    cm_jwt_verifier_free(hs);

    /* negative leeway: none at all */
    struct cm_jwt_verifier_config cfg = {
        .alg = CM_JWT_HS256,
        .key = (const unsigned char *)SECRET,
        .key_len = SECRET_LEN,
        .leeway_s = -1,
        .now = now_fn,
        .now_ctx = &fake_now,
    };
    hs = cm_jwt_verifier_new(&cfg);
    fake_now = T0 + 59;
    assert_int_equal(cm_jwt_verify(hs, t, &c), 0);
    fake_now = T0 + 60;
    assert_int_equal(cm_jwt_verify(hs, t, &c), CM_JWT_EEXPIRED);
    free(t);
    cm_jwt_verifier_free(hs);
}

static void test_wrong_iss_aud_issued(void **state)
{
    (void)state;
    struct cm_jwt_verifier *hs = hs_verifier();
    struct cm_jwt_claims c;
    char *t = issue(CM_JWT_HS256, SECRET, SECRET_LEN, "other", "exlab-api", 600);
    assert_int_equal(cm_jwt_verify(hs, t, &c), CM_JWT_EISSUER);
    free(t);
    t = issue(CM_JWT_HS256, SECRET, SECRET_LEN, "exlab", "other-api", 600);
    assert_int_equal(cm_jwt_verify(hs, t, &c), CM_JWT_EAUDIENCE);
    free(t);
    cm_jwt_verifier_free(hs);
}

static void test_malformed_and_length(void **state)
{
    (void)state;
    struct cm_jwt_verifier *hs = hs_verifier();
    struct cm_jwt_claims c;
    const char *bad[] = {"",
                         "abc",
                         "a.b",
                         "a.b.c.d",
                         "..",
                         "a..c",
                         "eyJhbGciOiJIUzI1NiJ9..",
                         "eyJhbGciOiJIUzI1NiJ9.e30.",
                         "e=.e30.AA",
                         "!!!.e30.AA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cm_jwt_verify(hs, bad[i], &c);
        if (rc >= 0)
            fail_msg("\"%s\" accepted", bad[i]);
    }
    assert_int_equal(cm_jwt_verify(hs, NULL, &c), CM_JWT_EINVAL);
    assert_int_equal(cm_jwt_verify(NULL, "a.b.c", &c), CM_JWT_EINVAL);

    char *big = malloc(CM_JWT_DEFAULT_MAX_LEN + 2);
    memset(big, 'a', CM_JWT_DEFAULT_MAX_LEN + 1);
    big[CM_JWT_DEFAULT_MAX_LEN + 1] = '\0';
    assert_int_equal(cm_jwt_verify(hs, big, &c), CM_JWT_ETOOLONG);
    free(big);

    /* a sub over the field size is malformed, not truncated */
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"sub\":\"%0200d\",\"exp\":1800000600,\"iss\":\"exlab\",\"aud\":\"exlab-api\"}", 7);
    char *t = forge_hs256(HS, payload, SECRET, SECRET_LEN);
    assert_int_equal(cm_jwt_verify(hs, t, &c), CM_JWT_EFORMAT);
    free(t);
    cm_jwt_verifier_free(hs);
}

static void test_issue_extra_claims(void **state)
{
    (void)state;
    struct cm_jwt_signer_config sc = {.alg = CM_JWT_HS256,
                                      .key = (const unsigned char *)SECRET,
                                      .key_len = SECRET_LEN,
                                      .issuer = "exlab",
                                      .audience = "exlab-api",
                                      .now = now_fn,
                                      .now_ctx = &fake_now};
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "email", "a@b.c");
    char *t = cm_jwt_issue(&sc, "u9", NULL, 0, 60, extra);
    assert_non_null(t);
    struct cm_jwt_verifier *hs = hs_verifier();
    struct cm_jwt_claims c;
    assert_int_equal(cm_jwt_verify(hs, t, &c), 0);
    assert_string_equal(c.sub, "u9");
    assert_int_equal(c.nroles, 0);
    free(t);
    /* a registered claim in extra is refused */
    cJSON_AddStringToObject(extra, "sub", "admin");
    assert_null(cm_jwt_issue(&sc, "u9", NULL, 0, 60, extra));
    cJSON_Delete(extra);
    cm_jwt_verifier_free(hs);
}

static void test_jwks(void **state)
{
    (void)state;
    struct cm_buf b;
    cm_buf_init(&b, 0);
    assert_int_equal(cm_jwt_jwks_render(&b, rsa_a.pub, strlen(rsa_a.pub), "k1"), 0);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    cJSON *k = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "keys"), 0);
    assert_string_equal(cJSON_GetObjectItem(k, "kty")->valuestring, "RSA");
    assert_string_equal(cJSON_GetObjectItem(k, "alg")->valuestring, "RS256");
    assert_string_equal(cJSON_GetObjectItem(k, "use")->valuestring, "sig");
    assert_string_equal(cJSON_GetObjectItem(k, "kid")->valuestring, "k1");
    assert_string_equal(cJSON_GetObjectItem(k, "e")->valuestring, "AQAB");
    assert_int_equal(strlen(cJSON_GetObjectItem(k, "n")->valuestring), 342); /* 256 bytes */
    cJSON_Delete(j);

    /* EC from the private PEM: only the public part, kid = thumbprint */
    cm_buf_reset(&b);
    assert_int_equal(cm_jwt_jwks_render(&b, ec_a.priv, strlen(ec_a.priv), NULL), 0);
    assert_null(strstr(b.data, "\"d\""));
    j = cJSON_Parse(b.data);
    k = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "keys"), 0);
    assert_string_equal(cJSON_GetObjectItem(k, "kty")->valuestring, "EC");
    assert_string_equal(cJSON_GetObjectItem(k, "crv")->valuestring, "P-256");
    assert_string_equal(cJSON_GetObjectItem(k, "alg")->valuestring, "ES256");
    assert_int_equal(strlen(cJSON_GetObjectItem(k, "x")->valuestring), 43);
    assert_int_equal(strlen(cJSON_GetObjectItem(k, "y")->valuestring), 43);
    char tp[64];
    assert_int_equal(cm_jwt_thumbprint(ec_a.pub, strlen(ec_a.pub), tp, sizeof tp), 0);
    assert_int_equal(strlen(tp), 43);
    assert_string_equal(cJSON_GetObjectItem(k, "kid")->valuestring, tp);
    cJSON_Delete(j);

    /* bad key leaves the buffer as it was */
    cm_buf_reset(&b);
    cm_buf_puts(&b, "x");
    assert_int_equal(cm_jwt_jwks_render(&b, "junk", 4, NULL), -1);
    assert_string_equal(b.data, "x");
    assert_int_equal(cm_jwt_thumbprint(rsa_a.pub, strlen(rsa_a.pub), tp, 10), -1);
    cm_buf_release(&b);
}

struct verify_job {
    struct cm_jwt_verifier *v;
    const char *token;
    int ok;
};

static void *verify_main(void *arg)
{
    struct verify_job *j = arg;
    for (int i = 0; i < 200; i++) {
        struct cm_jwt_claims c;
        if (cm_jwt_verify(j->v, j->token, &c) == 0 && strcmp(c.sub, "user-42") == 0)
            j->ok++;
    }
    return NULL;
}

/* One verifier shared by threads, as the gateway does. */
static void test_verify_threads(void **state)
{
    (void)state;
    struct cm_jwt_verifier *es = pem_verifier(CM_JWT_ES256, ec_a.pub);
    char *t = issue(CM_JWT_ES256, ec_a.priv, strlen(ec_a.priv), "exlab", "exlab-api", 600);
    assert_non_null(t);
    pthread_t th[4];
    struct verify_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct verify_job){.v = es, .token = t, .ok = 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].ok, 200);
    }
    free(t);
    cm_jwt_verifier_free(es);
}

static void test_alg_names(void **state)
{
    (void)state;
    enum cm_jwt_alg a;
    assert_int_equal(cm_jwt_alg_parse("RS256", &a), 0);
    assert_int_equal(a, CM_JWT_RS256);
    assert_int_equal(cm_jwt_alg_parse("none", &a), -1);
    assert_int_equal(cm_jwt_alg_parse("rs256", &a), -1);
    assert_int_equal(cm_jwt_alg_parse(NULL, &a), -1);
    assert_string_equal(cm_jwt_alg_name(CM_JWT_ES256), "ES256");
    assert_string_equal(cm_jwt_strerror(CM_JWT_EEXPIRED), "expired");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_valid_each_alg, reset_clock),
        cmocka_unit_test_setup(test_claims_table, reset_clock),
        cmocka_unit_test_setup(test_alg_none_rejected, reset_clock),
        cmocka_unit_test_setup(test_hs_rs_confusion, reset_clock),
        cmocka_unit_test_setup(test_bad_keys_refused, reset_clock),
        cmocka_unit_test_setup(test_wrong_key_and_tamper, reset_clock),
        cmocka_unit_test_setup(test_expiry_with_clock, reset_clock),
        cmocka_unit_test_setup(test_wrong_iss_aud_issued, reset_clock),
        cmocka_unit_test_setup(test_malformed_and_length, reset_clock),
        cmocka_unit_test_setup(test_issue_extra_claims, reset_clock),
        cmocka_unit_test_setup(test_jwks, reset_clock),
        cmocka_unit_test_setup(test_verify_threads, reset_clock),
        cmocka_unit_test(test_alg_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
