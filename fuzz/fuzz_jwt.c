/*
 * JWT verification on hostile tokens: never crashes, and never accepts a
 * token it did not sign. Inputs are arbitrary bytes, plus mutations of a
 * valid token (the corpus seed) so the fuzzer reaches the claim checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jwt.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzzing-secret-that-is-long-enough-32b";
static struct cm_jwt_verifier *verifier;
static char *valid;

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return 1800000000;
}

static void init(void)
{
    struct cm_jwt_verifier_config vc = {
        .alg = CM_JWT_HS256,
        .key = (const unsigned char *)secret,
        .key_len = strlen(secret),
        .issuer = "exchange-lab",
        .audience = "exchange-lab",
        .now = fixed_now,
    };
    struct cm_jwt_signer_config sc = {
        .alg = CM_JWT_HS256,
        .key = (const unsigned char *)secret,
        .key_len = strlen(secret),
        .issuer = "exchange-lab",
        .audience = "exchange-lab",
        .now = fixed_now,
    };
    verifier = cm_jwt_verifier_new(&vc);
    valid = cm_jwt_issue(&sc, "42", NULL, 0, 600, NULL);
    if (!verifier || !valid)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!verifier)
        init();
    char *token = malloc(size + 1);
    if (!token)
        return 0;
    memcpy(token, data, size);
    token[size] = '\0';
    struct cm_jwt_claims claims;
    int rc = cm_jwt_verify(verifier, token, &claims);
    /* Accepting anything but the issued token (modulo trailing NUL-cut
     * bytes) would mean a forged signature passed. */
    if (rc == 0 && strcmp(token, valid) != 0)
        abort();
    free(token);
    return 0;
}
