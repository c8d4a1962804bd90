#include "common/jwt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "common/log.h"

#include "common/banned.h"

struct cm_jwt_verifier {
    enum cm_jwt_alg alg;
    unsigned char *key;
    size_t key_len;
    char *issuer;
    char *audience;
    int leeway_s;
    size_t max_len;
    cm_jwt_now_fn now;
    void *now_ctx;
};

static const char *const alg_names[] = {NULL, "HS256", "RS256", "ES256"};

const char *cm_jwt_alg_name(enum cm_jwt_alg alg)
{
    if (alg < CM_JWT_HS256 || alg > CM_JWT_ES256)
        return "?";
    return alg_names[alg];
}

int cm_jwt_alg_parse(const char *s, enum cm_jwt_alg *out)
{
    for (int a = CM_JWT_HS256; a <= CM_JWT_ES256; a++) {
        if (s && strcmp(s, alg_names[a]) == 0) {
            *out = (enum cm_jwt_alg)a;
            return 0;
        }
    }
    return -1;
}

const char *cm_jwt_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case CM_JWT_EINVAL: return "invalid_argument";
    case CM_JWT_ETOOLONG: return "too_long";
    case CM_JWT_EFORMAT: return "malformed";
    case CM_JWT_EALG: return "bad_algorithm";
    case CM_JWT_ESIG: return "bad_signature";
    case CM_JWT_EEXPIRED: return "expired";
    case CM_JWT_ENOTYET: return "not_yet_valid";
    case CM_JWT_EISSUER: return "bad_issuer";
    case CM_JWT_EAUDIENCE: return "bad_audience";
    case CM_JWT_EMISSING: return "missing_claim";
    default: return "unknown";
    }
}

static jwt_alg_t to_libjwt(enum cm_jwt_alg alg)
{
    switch (alg) {
    case CM_JWT_HS256: return JWT_ALG_HS256;
    case CM_JWT_RS256: return JWT_ALG_RS256;
    case CM_JWT_ES256: return JWT_ALG_ES256;
    }
    return JWT_ALG_INVAL;
}

static int64_t clock_now(cm_jwt_now_fn now, void *ctx)
{
    return now ? now(ctx) : (int64_t)time(NULL);
}

/* ---- base64url (RFC 4648 section 5, no padding) ---- */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_encode(struct cm_buf *b, const unsigned char *p, size_t n)
{
    char q[4];
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        q[0] = b64url_chars[v >> 18 & 63];
        q[1] = b64url_chars[v >> 12 & 63];
        q[2] = b64url_chars[v >> 6 & 63];
        q[3] = b64url_chars[v & 63];
        if (cm_buf_append(b, q, 4) < 0)
            return -1;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        q[0] = b64url_chars[v >> 18 & 63];
        q[1] = b64url_chars[v >> 12 & 63];
        return cm_buf_append(b, q, 2);
    }
    if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        q[0] = b64url_chars[v >> 18 & 63];
        q[1] = b64url_chars[v >> 12 & 63];
        q[2] = b64url_chars[v >> 6 & 63];
        return cm_buf_append(b, q, 3);
    }
    return 0;
}

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes n chars into b (as text: NUL-terminated). Padding, '+', '/' and
 * a dangling single char are malformed. */
static int b64url_decode(struct cm_buf *b, const char *s, size_t n)
{
    if (n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char c = (unsigned char)(acc >> bits);
            if (cm_buf_append(b, &c, 1) < 0)
                return -1;
            acc &= (1u << bits) - 1;
        }
    }
    return cm_buf_append(b, "", 0);
}

/* ---- keys ---- */

static int pem_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0; /* encrypted PEM keys are not supported: never prompt */
}

/* Public key from a PEM public key, or the public half of a private key. */
static EVP_PKEY *load_pkey(const char *pem, size_t len, int want_private)
{
    if (!pem || len == 0 || len > 64 * 1024)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return NULL;
    EVP_PKEY *k = NULL;
    if (!want_private)
        k = PEM_read_bio_PUBKEY(bio, NULL, pem_no_passphrase, NULL);
    if (!k) {
        (void)BIO_reset(bio);
        k = PEM_read_bio_PrivateKey(bio, NULL, pem_no_passphrase, NULL);
    }
    BIO_free(bio);
    return k;
}

static int is_p256(EVP_PKEY *k)
{
    char name[64];
    size_t nlen = 0;
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
        return 0;
    if (EVP_PKEY_get_group_name(k, name, sizeof name, &nlen) != 1)
        return 0;
    return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0;
}

/* 0 if key suits alg for verification (public) or signing (private). */
static int check_key(enum cm_jwt_alg alg, const unsigned char *key, size_t len, int want_private)
{
    if (!key || len == 0)
        return -1;
    if (alg == CM_JWT_HS256) {
        /* A PEM block as HMAC secret is the algorithm-confusion setup. */
        if (len < CM_JWT_HS256_MIN_SECRET || memmem(key, len, "-----BEGIN", 10))
            return -1;
        return 0;
    }
    if (memchr(key, '\0', len))
        return -1;
    EVP_PKEY *k = load_pkey((const char *)key, len, want_private);
    if (!k)
        return -1;
    int ok = 0;
    if (alg == CM_JWT_RS256)
        ok = EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA && EVP_PKEY_get_bits(k) >= 2048;
    else if (alg == CM_JWT_ES256)
        ok = is_p256(k);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

/* ---- verification ---- */

struct cm_jwt_verifier *cm_jwt_verifier_new(const struct cm_jwt_verifier_config *cfg)
{
    struct cm_jwt_verifier *v = NULL;
    if (!cfg || to_libjwt(cfg->alg) == JWT_ALG_INVAL) {
        cm_error("jwt: unsupported algorithm (HS256, RS256, ES256 only)");
        return NULL;
    }
    if (check_key(cfg->alg, cfg->key, cfg->key_len, 0) < 0) {
        cm_error("jwt: the %s verification key is unusable (HS256: secret of >= %d bytes, "
                 "not PEM; RS256: RSA >= 2048 public key PEM; ES256: P-256 public key PEM)",
                 cm_jwt_alg_name(cfg->alg), CM_JWT_HS256_MIN_SECRET);
        return NULL;
    }
    v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->alg = cfg->alg;
    /* +1: libjwt reads PEM keys with BIO_new_mem_buf(key, len) but keep a
     * NUL after them anyway for any string use. */
    v->key = malloc(cfg->key_len + 1);
    if (!v->key)
        goto fail;
    memcpy(v->key, cfg->key, cfg->key_len);
    v->key[cfg->key_len] = '\0';
    v->key_len = cfg->key_len;
    if (cfg->issuer && !(v->issuer = strdup(cfg->issuer)))
        goto fail;
    if (cfg->audience && !(v->audience = strdup(cfg->audience)))
        goto fail;
    v->leeway_s = cfg->leeway_s == 0  ? CM_JWT_DEFAULT_LEEWAY_S
                  : cfg->leeway_s < 0 ? 0
                                      : cfg->leeway_s;
    v->max_len = cfg->max_token_len ? cfg->max_token_len : CM_JWT_DEFAULT_MAX_LEN;
    v->now = cfg->now;
    v->now_ctx = cfg->now_ctx;
    return v;
fail:
    cm_jwt_verifier_free(v);
    return NULL;
}

void cm_jwt_verifier_free(struct cm_jwt_verifier *v)
{
    if (!v)
        return;
    if (v->key)
        OPENSSL_cleanse(v->key, v->key_len);
    free(v->key);
    free(v->issuer);
    free(v->audience);
    free(v);
}

/* A NumericDate claim: a finite JSON number, read as whole seconds. */
static int numeric_date(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return -1;
    double d = item->valuedouble;
    if (d < 0 || d > 253402300799.0) /* year 9999 */
        return -1;
    *out = (int64_t)d;
    return 0;
}

static int copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

static int add_role(struct cm_jwt_claims *c, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (c->nroles >= CM_JWT_MAX_ROLES)
        return -1;
    if (memchr(s, '\0', len))
        return -1;
    if (copy_field(c->roles[c->nroles], CM_JWT_MAX_ROLE, s, len) < 0)
        return -1;
    c->nroles++;
    return 0;
}

static int extract_roles(const cJSON *payload, struct cm_jwt_claims *c)
{
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(payload, "roles");
    if (roles) {
        const cJSON *r;
        if (!cJSON_IsArray(roles))
            return -1;
        cJSON_ArrayForEach(r, roles)
        {
            if (!cJSON_IsString(r) || add_role(c, r->valuestring, strlen(r->valuestring)) < 0)
                return -1;
        }
        return 0;
    }
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(payload, "scope");
    if (!scope)
        return 0;
    if (!cJSON_IsString(scope))
        return -1;
    const char *p = scope->valuestring;
    while (*p) {
        size_t n = strcspn(p, " ");
        if (add_role(c, p, n) < 0)
            return -1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

static int check_audience(const cJSON *aud, const char *want)
{
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0 ? 0 : -1;
    if (cJSON_IsArray(aud)) {
        const cJSON *a;
        cJSON_ArrayForEach(a, aud)
        {
            if (cJSON_IsString(a) && strcmp(a->valuestring, want) == 0)
                return 0;
        }
    }
    return -1;
}

static int check_claims(const struct cm_jwt_verifier *v, const cJSON *payload,
                        struct cm_jwt_claims *c)
{
    if (!cJSON_IsObject(payload))
        return CM_JWT_EFORMAT;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(payload, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(payload, "nbf");
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(payload, "iat");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(payload, "sub");
    const cJSON *jti = cJSON_GetObjectItemCaseSensitive(payload, "jti");
    if (!exp || !sub)
        return CM_JWT_EMISSING;
    if (numeric_date(exp, &c->exp) < 0)
        return CM_JWT_EFORMAT;
    int64_t now = clock_now(v->now, v->now_ctx);
    if (now - v->leeway_s >= c->exp)
        return CM_JWT_EEXPIRED;
    if (nbf) {
        int64_t t;
        if (numeric_date(nbf, &t) < 0)
            return CM_JWT_EFORMAT;
        if (now + v->leeway_s < t)
            return CM_JWT_ENOTYET;
    }
    if (iat && numeric_date(iat, &c->iat) < 0)
        return CM_JWT_EFORMAT;
    if (v->issuer) {
        const cJSON *iss = cJSON_GetObjectItemCaseSensitive(payload, "iss");
        if (!cJSON_IsString(iss) || strcmp(iss->valuestring, v->issuer) != 0)
            return CM_JWT_EISSUER;
    }
    if (v->audience) {
        const cJSON *aud = cJSON_GetObjectItemCaseSensitive(payload, "aud");
        if (!aud || check_audience(aud, v->audience) < 0)
            return CM_JWT_EAUDIENCE;
    }
    if (!cJSON_IsString(sub) || sub->valuestring[0] == '\0' ||
        copy_field(c->sub, sizeof c->sub, sub->valuestring, strlen(sub->valuestring)) < 0)
        return CM_JWT_EFORMAT;
    if (jti && (!cJSON_IsString(jti) ||
                copy_field(c->jti, sizeof c->jti, jti->valuestring, strlen(jti->valuestring)) < 0))
        return CM_JWT_EFORMAT;
    if (extract_roles(payload, c) < 0)
        return CM_JWT_EFORMAT;
    return 0;
}

/* libjwt 1.10 compares HMACs with strcmp, which leaks timing; so the HMAC
 * is checked here first in constant time and libjwt only ever compares
 * signatures that are already known to be right. */
static int hs256_check(const struct cm_jwt_verifier *v, const char *input, size_t input_len,
                       const char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    struct cm_buf got;
    int rc = -1;
    cm_buf_init(&got, 64);
    if (b64url_decode(&got, sig, sig_len) < 0 || got.len != 32)
        goto done;
    if (!HMAC(EVP_sha256(), v->key, (int)v->key_len, (const unsigned char *)input, input_len, mac,
              &mac_len) ||
        mac_len != 32)
        goto done;
    rc = CRYPTO_memcmp(mac, got.data, 32) == 0 ? 0 : -1;
done:
    cm_buf_release(&got);
    return rc;
}

/* Decodes one base64url JSON part; NULL if malformed. Caller frees. */
static cJSON *decode_part(const char *s, size_t n, size_t cap)
{
    struct cm_buf b;
    cm_buf_init(&b, cap);
    cJSON *j = NULL;
    if (b64url_decode(&b, s, n) == 0 && b.data && strlen(b.data) == b.len)
        j = cJSON_ParseWithLength(b.data, b.len);
    cm_buf_release(&b);
    return j;
}

int cm_jwt_verify(const struct cm_jwt_verifier *v, const char *token, struct cm_jwt_claims *out)
{
    if (!v || !token || !out)
        return CM_JWT_EINVAL;
    size_t len = strnlen(token, v->max_len + 1);
    if (len > v->max_len)
        return CM_JWT_ETOOLONG;

    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return CM_JWT_EFORMAT;
    int rc;
    jwt_t *jwt = NULL;
    cJSON *header = decode_part(token, (size_t)(d1 - token), v->max_len);
    cJSON *payload = NULL;
    if (!header) {
        rc = CM_JWT_EFORMAT;
        goto done;
    }
    /* The pinned algorithm, before libjwt trusts the header's. */
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, cm_jwt_alg_name(v->alg)) != 0) {
        rc = CM_JWT_EALG;
        goto done;
    }
    if (d2 == d1 + 1 || d2 + 1 == token + len) {
        rc = CM_JWT_EFORMAT; /* empty payload or signature */
        goto done;
    }
    /* Parsed before the signature check only to report malformed payloads
     * as such (libjwt parses it first anyway); nothing in it is trusted
     * until jwt_decode has verified the signature. */
    payload = decode_part(d1 + 1, (size_t)(d2 - d1 - 1), v->max_len);
    if (!payload) {
        rc = CM_JWT_EFORMAT;
        goto done;
    }
    if (v->alg == CM_JWT_HS256 &&
        hs256_check(v, token, (size_t)(d2 - token), d2 + 1, len - (size_t)(d2 + 1 - token)) < 0) {
        rc = CM_JWT_ESIG;
        goto done;
    }
    if (jwt_decode(&jwt, token, v->key, (int)v->key_len) != 0 || !jwt) {
        rc = CM_JWT_ESIG;
        goto done;
    }
    if (jwt_get_alg(jwt) != to_libjwt(v->alg)) {
        rc = CM_JWT_EALG;
        goto done;
    }
    struct cm_jwt_claims c;
    memset(&c, 0, sizeof c);
    rc = check_claims(v, payload, &c);
    if (rc == 0)
        *out = c;
done:
    cJSON_Delete(payload);
    if (jwt)
        jwt_free(jwt);
    cJSON_Delete(header);
    return rc;
}

int cm_jwt_has_role(const struct cm_jwt_claims *c, const char *role)
{
    for (size_t i = 0; c && role && i < c->nroles; i++)
        if (strcmp(c->roles[i], role) == 0)
            return 1;
    return 0;
}

/* ---- issuing ---- */

static const char *const registered[] = {"sub", "exp", "iat", "nbf", "iss", "aud", "jti", "roles"};

char *cm_jwt_issue(const struct cm_jwt_signer_config *cfg, const char *sub,
                   const char *const *roles, size_t nroles, int64_t ttl_s, const cJSON *extra)
{
    char *token = NULL;
    char *json = NULL;
    jwt_t *jwt = NULL;
    cJSON *p = NULL;
    if (!cfg || !sub || !*sub || ttl_s <= 0 || (nroles && !roles))
        return NULL;
    if (extra && !cJSON_IsObject(extra))
        return NULL;
    if (check_key(cfg->alg, cfg->key, cfg->key_len, 1) < 0) {
        cm_error("jwt: the %s signing key is unusable", cm_jwt_alg_name(cfg->alg));
        return NULL;
    }
    p = extra ? cJSON_Duplicate(extra, 1) : cJSON_CreateObject();
    if (!p)
        goto done;
    for (size_t i = 0; i < sizeof registered / sizeof registered[0]; i++)
        if (cJSON_GetObjectItemCaseSensitive(p, registered[i]))
            goto done;

    unsigned char rnd[16];
    char jti[33];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        goto done;
    for (size_t i = 0; i < sizeof rnd; i++) {
        jti[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
        jti[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
    }
    jti[32] = '\0';

    int64_t now = clock_now(cfg->now, cfg->now_ctx);
    cJSON *arr = cJSON_AddArrayToObject(p, "roles");
    if (!arr)
        goto done;
    for (size_t i = 0; i < nroles; i++)
        if (!roles[i] || !cJSON_AddItemToArray(arr, cJSON_CreateString(roles[i])))
            goto done;
    if (!cJSON_AddStringToObject(p, "sub", sub) || !cJSON_AddStringToObject(p, "jti", jti) ||
        !cJSON_AddNumberToObject(p, "iat", (double)now) ||
        !cJSON_AddNumberToObject(p, "exp", (double)(now + ttl_s)))
        goto done;
    if (cfg->issuer && !cJSON_AddStringToObject(p, "iss", cfg->issuer))
        goto done;
    if (cfg->audience && !cJSON_AddStringToObject(p, "aud", cfg->audience))
        goto done;
    json = cJSON_PrintUnformatted(p);
    if (!json)
        goto done;

    if (jwt_new(&jwt) != 0)
        goto done;
    if (jwt_add_grants_json(jwt, json) != 0)
        goto done;
    if (cfg->kid && jwt_add_header(jwt, "kid", cfg->kid) != 0)
        goto done;
    if (jwt_set_alg(jwt, to_libjwt(cfg->alg), cfg->key, (int)cfg->key_len) != 0)
        goto done;
    token = jwt_encode_str(jwt);
    if (!token)
        cm_error("jwt: signing failed (%s)", strerror(errno));
done:
    if (jwt)
        jwt_free(jwt);
    free(json);
    cJSON_Delete(p);
    return token;
}

/* ---- JWKS ---- */

static int bn_b64url(struct cm_buf *b, const BIGNUM *bn, int pad_to)
{
    int n = BN_num_bytes(bn);
    if (pad_to > 0 && n > pad_to)
        return -1;
    int len = pad_to > 0 ? pad_to : (n ? n : 1);
    unsigned char *tmp = calloc(1, (size_t)len);
    if (!tmp)
        return -1;
    int rc = -1;
    if (BN_bn2binpad(bn, tmp, len) == len)
        rc = b64url_encode(b, tmp, (size_t)len);
    free(tmp);
    return rc;
}

/* Appends the required JWK members in RFC 7638 order (lexicographic),
 * without braces: exactly the thumbprint input, and the start of a JWK. */
static int jwk_members(struct cm_buf *b, EVP_PKEY *k)
{
    int rc = -1;
    BIGNUM *x = NULL, *y = NULL;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &x) != 1 ||
            EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &y) != 1)
            goto done;
        if (cm_buf_puts(b, "\"e\":\"") < 0 || bn_b64url(b, x, 0) < 0 ||
            cm_buf_puts(b, "\",\"kty\":\"RSA\",\"n\":\"") < 0 || bn_b64url(b, y, 0) < 0 ||
            cm_buf_puts(b, "\"") < 0)
            goto done;
        rc = 0;
    } else if (is_p256(k)) {
        if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
            EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
            goto done;
        if (cm_buf_puts(b, "\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"") < 0 ||
            bn_b64url(b, x, 32) < 0 || cm_buf_puts(b, "\",\"y\":\"") < 0 ||
            bn_b64url(b, y, 32) < 0 || cm_buf_puts(b, "\"") < 0)
            goto done;
        rc = 0;
    }
done:
    BN_free(y);
    BN_free(x);
    return rc;
}

static int thumbprint(EVP_PKEY *k, char *out, size_t outsz)
{
    struct cm_buf in, enc;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = -1;
    cm_buf_init(&in, 16 * 1024);
    cm_buf_init(&enc, 128);
    if (cm_buf_puts(&in, "{") < 0 || jwk_members(&in, k) < 0 || cm_buf_puts(&in, "}") < 0)
        goto done;
    if (EVP_Digest(in.data, in.len, md, &mdlen, EVP_sha256(), NULL) != 1)
        goto done;
    if (b64url_encode(&enc, md, mdlen) < 0 || enc.len + 1 > outsz)
        goto done;
    memcpy(out, enc.data, enc.len + 1);
    rc = 0;
done:
    cm_buf_release(&enc);
    cm_buf_release(&in);
    return rc;
}

int cm_jwt_thumbprint(const char *pem, size_t pem_len, char *out, size_t outsz)
{
    EVP_PKEY *k = load_pkey(pem, pem_len, 0);
    if (!k)
        return -1;
    int rc = thumbprint(k, out, outsz);
    EVP_PKEY_free(k);
    return rc;
}

int cm_jwt_jwks_render(struct cm_buf *b, const char *pem, size_t pem_len, const char *kid)
{
    char tp[64];
    size_t mark = b->len;
    EVP_PKEY *k = load_pkey(pem, pem_len, 0);
    if (!k)
        return -1;
    int rc = -1;
    const char *alg = EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA ? "RS256" : "ES256";
    if (!kid) {
        if (thumbprint(k, tp, sizeof tp) < 0)
            goto done;
        kid = tp;
    }
    if (cm_buf_puts(b, "{\"keys\":[{") < 0 || jwk_members(b, k) < 0 ||
        cm_buf_printf(b, ",\"alg\":\"%s\",\"use\":\"sig\",\"kid\":\"", alg) < 0 ||
        cm_buf_json_escape(b, kid) < 0 || cm_buf_puts(b, "\"}]}") < 0)
        goto done;
    rc = 0;
done:
    if (rc < 0 && b->data) {
        b->len = mark;
        b->data[mark] = '\0';
    }
    EVP_PKEY_free(k);
    return rc;
}
