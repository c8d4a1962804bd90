#ifndef COMMON_JWT_H
#define COMMON_JWT_H
/*
 * JWT verification and issuing on libjwt 1.10.2, with the algorithm pinned
 * by configuration, never taken from the token.
 *
 * libjwt 1.10's jwt_decode() verifies the signature with whatever algorithm
 * the token's header names, and skips verification for "none". So before
 * libjwt sees a token, cm_jwt_verify() decodes the header itself and
 * requires alg to equal the pinned one (HS256, RS256 or ES256); "none" and
 * every other value are rejected, which also defeats algorithm confusion
 * (an HS256 token "signed" with the RSA public key as HMAC secret). After
 * decoding it checks jwt_get_alg() once more, then validates the claims
 * from the authenticated payload: exp (required), nbf, iss, aud (string or
 * array), with a small leeway, against an injectable clock.
 *
 * Keys: HS256 takes the raw secret (at least 32 bytes; a PEM block is
 * refused as an HMAC secret). RS256/ES256 verification takes a PEM public
 * key (ES256: P-256), signing a PEM private key.
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/buf.h"

enum cm_jwt_alg {
    CM_JWT_HS256 = 1,
    CM_JWT_RS256,
    CM_JWT_ES256,
};

/* Failures of cm_jwt_verify (all < 0). A gateway answers 401 for each;
 * the code is for logs and metrics, not for the client. */
enum cm_jwt_err {
    CM_JWT_EINVAL = -1,    /* NULL arguments */
    CM_JWT_ETOOLONG = -2,  /* longer than max_token_len */
    CM_JWT_EFORMAT = -3,   /* not three base64url parts, bad JSON, bad claim types */
    CM_JWT_EALG = -4,      /* header alg is not the pinned one ("none" included) */
    CM_JWT_ESIG = -5,      /* signature does not verify with the configured key */
    CM_JWT_EEXPIRED = -6,  /* now >= exp + leeway */
    CM_JWT_ENOTYET = -7,   /* now + leeway < nbf */
    CM_JWT_EISSUER = -8,   /* iss missing or different */
    CM_JWT_EAUDIENCE = -9, /* aud missing or not containing ours */
    CM_JWT_EMISSING = -10, /* exp or sub missing */
};

/* Short stable name for an error ("expired", "bad_signature", ...). */
const char *cm_jwt_strerror(int err);
/* "HS256" | "RS256" | "ES256" -> 0 and *out, else -1 (case-sensitive). */
int cm_jwt_alg_parse(const char *s, enum cm_jwt_alg *out);
const char *cm_jwt_alg_name(enum cm_jwt_alg alg);

/* Seconds since the epoch; tests inject a fixed clock. */
typedef int64_t (*cm_jwt_now_fn)(void *ctx);

#define CM_JWT_DEFAULT_LEEWAY_S 30
#define CM_JWT_DEFAULT_MAX_LEN 8192
#define CM_JWT_HS256_MIN_SECRET 32

struct cm_jwt_verifier_config {
    enum cm_jwt_alg alg;
    const unsigned char *key; /* secret or PEM public key; copied */
    size_t key_len;
    const char *issuer;   /* required iss when non-NULL; copied */
    const char *audience; /* required in aud when non-NULL; copied */
    int leeway_s;         /* 0: CM_JWT_DEFAULT_LEEWAY_S; negative: none */
    size_t max_token_len; /* 0: CM_JWT_DEFAULT_MAX_LEN */
    cm_jwt_now_fn now;    /* NULL: time(NULL) */
    void *now_ctx;
};

struct cm_jwt_verifier;

/* Checks the key against the algorithm (an RS256 verifier needs an RSA
 * public key, ES256 a P-256 one, HS256 a non-PEM secret of >= 32 bytes)
 * and copies what it needs. NULL (and one error log line) on bad config.
 * The verifier is immutable: cm_jwt_verify may run on many threads. */
struct cm_jwt_verifier *cm_jwt_verifier_new(const struct cm_jwt_verifier_config *cfg);
void cm_jwt_verifier_free(struct cm_jwt_verifier *v);

#define CM_JWT_MAX_ROLES 16
#define CM_JWT_MAX_FIELD 128
#define CM_JWT_MAX_ROLE 64

/* Claims of a verified token, copied out (no ownership to manage). */
struct cm_jwt_claims {
    char sub[CM_JWT_MAX_FIELD]; /* user id; required */
    char jti[CM_JWT_MAX_FIELD]; /* "" if absent */
    int64_t exp;
    int64_t iat; /* 0 if absent */
    /* From a "roles" array of strings, else from a space-separated "scope". */
    size_t nroles;
    char roles[CM_JWT_MAX_ROLES][CM_JWT_MAX_ROLE];
};

/* Verifies token (NUL-terminated, borrowed). 0 and *out filled, or one of
 * enum cm_jwt_err. Claims that do not fit (sub/jti over 127 bytes, more
 * than 16 roles, a role over 63 bytes) are CM_JWT_EFORMAT, never truncated. */
int cm_jwt_verify(const struct cm_jwt_verifier *v, const char *token, struct cm_jwt_claims *out);
/* 1 if role is among the claims' roles. */
int cm_jwt_has_role(const struct cm_jwt_claims *c, const char *role);

struct cm_jwt_signer_config {
    enum cm_jwt_alg alg;
    const unsigned char *key; /* HS256 secret or PEM private key; borrowed */
    size_t key_len;
    const char *issuer;   /* iss when non-NULL */
    const char *audience; /* aud when non-NULL */
    const char *kid;      /* header kid when non-NULL (match the JWKS) */
    cm_jwt_now_fn now;    /* NULL: time(NULL) */
    void *now_ctx;
};

/* Issues a token with sub, roles (array claim "roles"; may be NULL/0),
 * iat = now, exp = now + ttl_s, a random jti, iss/aud from cfg, plus the
 * members of extra (a JSON object, borrowed; may be NULL). extra may not
 * set a registered claim (sub, exp, iat, nbf, iss, aud, jti, roles).
 * Returns a malloc'ed token the caller frees with free(), or NULL.
 * Thread-safe. */
char *cm_jwt_issue(const struct cm_jwt_signer_config *cfg, const char *sub,
                   const char *const *roles, size_t nroles, int64_t ttl_s, const cJSON *extra);

/* Appends a JWK Set {"keys":[{...}]} for one RSA or P-256 EC key given as
 * PEM (public or private: only the public part is rendered) for
 * /.well-known/jwks.json: kty, n/e or crv/x/y, alg (RS256/ES256),
 * use "sig" and kid (the RFC 7638 SHA-256 thumbprint if kid is NULL).
 * 0 or -1 (bad key, buffer cap); b is unchanged on -1. */
int cm_jwt_jwks_render(struct cm_buf *b, const char *pem, size_t pem_len, const char *kid);
/* The RFC 7638 thumbprint (base64url SHA-256) of the key's public part into
 * out (at least 44 bytes): 0 or -1. */
int cm_jwt_thumbprint(const char *pem, size_t pem_len, char *out, size_t outsz);

#endif
