/*
 * Credentials: Argon2id password hashes, access tokens (JWT, common/jwt.h)
 * and opaque refresh tokens (256 random bits; only their SHA-256 is
 * stored, so a database leak does not hand out sessions).
 */
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "common/log.h"
#include "gateway.h"
#include "common/banned.h"

/* ---- passwords */

static int pw_fast;
static sem_t pw_slots;
static char dummy_hash[crypto_pwhash_STRBYTES];

void gw_pwhash_init(int fast, int concurrency)
{
    if (sodium_init() < 0)
        abort(); /* libsodium cannot run without its RNG */
    pw_fast = fast;
    sem_init(&pw_slots, 0, (unsigned)(concurrency > 0 ? concurrency : 2));
    gw_pwhash("not-a-real-password-just-timing", dummy_hash, sizeof dummy_hash);
}

int gw_pwhash(const char *pw, char *out, size_t outsz)
{
    if (outsz < crypto_pwhash_STRBYTES)
        return -1;
    unsigned long long ops =
        pw_fast ? crypto_pwhash_OPSLIMIT_MIN : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    size_t mem = pw_fast ? crypto_pwhash_MEMLIMIT_MIN : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    /* Memory-hard: bound how many run at once (each takes `mem`). */
    sem_wait(&pw_slots);
    int rc = crypto_pwhash_str_alg(out, pw, strlen(pw), ops, mem, crypto_pwhash_ALG_ARGON2ID13);
    sem_post(&pw_slots);
    return rc == 0 ? 0 : -1;
}

int gw_pwverify(const char *hash, const char *pw)
{
    sem_wait(&pw_slots);
    int rc = crypto_pwhash_str_verify(hash ? hash : dummy_hash, pw, strlen(pw));
    sem_post(&pw_slots);
    if (!hash)
        return 0;
    return rc == 0 ? 1 : 0;
}

/* ---- refresh tokens */

void gw_refresh_hash(const char *tok, char *hash, size_t hashsz)
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)tok, strlen(tok));
    sodium_bin2hex(hash, hashsz, d, sizeof d);
}

int gw_refresh_new(char *tok, size_t toksz, char *hash, size_t hashsz)
{
    unsigned char raw[32];
    if (toksz < sodium_base64_ENCODED_LEN(sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        hashsz < 2 * crypto_hash_sha256_BYTES + 1)
        return -1;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(tok, toksz, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    gw_refresh_hash(tok, hash, hashsz);
    return 0;
}

/* ---- access tokens */

/* Verified-token cache: a client sends the same access token on every
 * request until it expires, and verifying it (base64, JSON, HMAC or
 * ECDSA) is the larger part of a proxied request's own CPU. Entries hold
 * the exact token bytes, so only a byte-identical token hits, and are
 * used only while now < exp (stricter than the verifier's leeway). */
#define CACHE_SLOTS 1024
#define CACHE_STRIPES 32
#define CACHE_TOKEN_MAX 1024

struct cached {
    uint64_t hash;
    size_t len;
    char token[CACHE_TOKEN_MAX];
    struct cm_jwt_claims claims;
};

struct gw_tokens {
    pthread_mutex_t stripes[CACHE_STRIPES];
    struct cached *cache;
    struct cm_jwt_signer_config sc;
    struct cm_jwt_verifier *verifier;
    char *key; /* secret or private key PEM */
    size_t key_len;
    char *pub; /* public key PEM (RS256/ES256) */
    size_t pub_len;
    char kid[64];
    char *issuer, *audience;
    int64_t access_ttl, refresh_ttl;
};

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct cm_buf b;
    cm_buf_init(&b, 64 * 1024);
    char chunk[4096];
    size_t n;
    int bad = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cm_buf_append(&b, chunk, n) < 0)
            bad = 1;
    fclose(f);
    if (bad || !b.data) {
        cm_buf_release(&b);
        return NULL;
    }
    return cm_buf_detach(&b, len);
}

/* The public half of a PEM private key, as PEM. */
static char *public_pem(const char *priv, size_t len, size_t *outlen)
{
    char *out = NULL;
    BIO *in = BIO_new_mem_buf(priv, (int)len);
    EVP_PKEY *k = in ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL) : NULL;
    BIO *mem = BIO_new(BIO_s_mem());
    if (k && mem && PEM_write_bio_PUBKEY(mem, k) == 1) {
        char *p;
        long n = BIO_get_mem_data(mem, &p);
        out = malloc((size_t)n + 1);
        if (out) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
            *outlen = (size_t)n;
        }
    }
    BIO_free(mem);
    EVP_PKEY_free(k);
    BIO_free(in);
    return out;
}

struct gw_tokens *gw_tokens_new(const struct gw_config *c)
{
    struct gw_tokens *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    for (int i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_init(&t->stripes[i], NULL);
    t->cache = calloc(CACHE_SLOTS, sizeof *t->cache);
    if (!t->cache)
        goto fail;
    t->access_ttl = c->access_ttl_s;
    t->refresh_ttl = c->refresh_ttl_s;
    t->issuer = c->jwt_issuer && *c->jwt_issuer ? strdup(c->jwt_issuer) : NULL;
    t->audience = c->jwt_audience && *c->jwt_audience ? strdup(c->jwt_audience) : NULL;
    enum cm_jwt_alg alg = (enum cm_jwt_alg)c->jwt_alg;
    struct cm_jwt_verifier_config vc = {.alg = alg, .issuer = t->issuer, .audience = t->audience};
    if (alg == CM_JWT_HS256) {
        t->key = strdup(c->jwt_secret ? c->jwt_secret : "");
        t->key_len = strlen(t->key);
        vc.key = (const unsigned char *)t->key;
        vc.key_len = t->key_len;
    } else {
        t->key = read_file(c->jwt_private_key_file, &t->key_len);
        if (!t->key) {
            cm_error("gateway: cannot read JWT_PRIVATE_KEY_FILE %s", c->jwt_private_key_file);
            goto fail;
        }
        t->pub = public_pem(t->key, t->key_len, &t->pub_len);
        if (!t->pub || cm_jwt_thumbprint(t->pub, t->pub_len, t->kid, sizeof t->kid) < 0) {
            cm_error("gateway: JWT_PRIVATE_KEY_FILE is not a PEM private key");
            goto fail;
        }
        vc.key = (const unsigned char *)t->pub;
        vc.key_len = t->pub_len;
    }
    t->verifier = cm_jwt_verifier_new(&vc);
    if (!t->verifier)
        goto fail;
    t->sc.alg = alg;
    t->sc.key = (const unsigned char *)t->key;
    t->sc.key_len = t->key_len;
    t->sc.issuer = t->issuer;
    t->sc.audience = t->audience;
    t->sc.kid = t->kid[0] ? t->kid : NULL;
    return t;
fail:
    gw_tokens_free(t);
    return NULL;
}

void gw_tokens_free(struct gw_tokens *t)
{
    if (!t)
        return;
    cm_jwt_verifier_free(t->verifier);
    for (int i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_destroy(&t->stripes[i]);
    free(t->cache);
    if (t->key) {
        sodium_memzero(t->key, t->key_len);
        free(t->key);
    }
    free(t->pub);
    free(t->issuer);
    free(t->audience);
    free(t);
}

char *gw_tokens_issue(struct gw_tokens *t, const char *uid, const char *roles)
{
    char buf[256];
    const char *list[CM_JWT_MAX_ROLES];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", roles ? roles : "");
    for (char *p = buf; *p && n < CM_JWT_MAX_ROLES;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p)
            list[n++] = p;
        if (!comma)
            break;
        p = comma + 1;
    }
    return cm_jwt_issue(&t->sc, uid, list, n, t->access_ttl, NULL);
}

int64_t gw_tokens_access_ttl(const struct gw_tokens *t)
{
    return t->access_ttl;
}

int64_t gw_tokens_refresh_ttl(const struct gw_tokens *t)
{
    return t->refresh_ttl;
}

const struct cm_jwt_verifier *gw_tokens_verifier(const struct gw_tokens *t)
{
    return t->verifier;
}

static uint64_t hash_token(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

int gw_tokens_verify(struct gw_tokens *t, const char *token, struct cm_jwt_claims *out)
{
    size_t n = strlen(token);
    if (n == 0 || n >= CACHE_TOKEN_MAX)
        return cm_jwt_verify(t->verifier, token, out);
    uint64_t h = hash_token(token, n);
    struct cached *c = &t->cache[h % CACHE_SLOTS];
    pthread_mutex_t *mu = &t->stripes[(h % CACHE_SLOTS) % CACHE_STRIPES];
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(mu);
    int hit = c->hash == h && c->len == n && memcmp(c->token, token, n) == 0 && now < c->claims.exp;
    if (hit)
        *out = c->claims;
    pthread_mutex_unlock(mu);
    if (hit)
        return 0;
    int rc = cm_jwt_verify(t->verifier, token, out);
    if (rc == 0 && now < out->exp) {
        pthread_mutex_lock(mu);
        c->hash = h;
        c->len = n;
        memcpy(c->token, token, n);
        c->claims = *out;
        pthread_mutex_unlock(mu);
    }
    return rc;
}

int gw_tokens_jwks(const struct gw_tokens *t, struct cm_buf *b)
{
    if (!t->pub)
        return cm_buf_puts(b, "{\"keys\":[]}");
    return cm_jwt_jwks_render(b, t->pub, t->pub_len, t->kid);
}
