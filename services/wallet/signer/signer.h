#ifndef WALLET_SIGNER_H
#define WALLET_SIGNER_H
/*
 * wallet-signer: the only process with key material (an HSM mock).
 *
 * Files: main.c (table of contents), keystore.c (the Ed25519 key, kept
 * encrypted at rest under SIGNER_KEK with XSalsa20-Poly1305 secretbox;
 * created on first start), proto.c (the strict request format; pure,
 * unit-tested), server.c (the unix socket: one JSON line in, one out).
 */
#include <stddef.h>
#include <stdint.h>

/* ---- proto.c */
#define SIGNER_MAX_LINE 1024 /* request bytes, newline included */

struct sign_req {
    char withdrawal_id[65];
    char asset[13];
    char address[129];
    char amount[65];
};
/* Parses one request line (without its newline): a JSON object with
 * exactly the string members withdrawal_id, asset, address, amount, each
 * in its contract format. 0, or -1 with a short reason code in err
 * ("malformed", "unknown_field", "missing_field", "bad_<field>"). */
int signer_parse_request(const char *line, size_t len, struct sign_req *req, char *err,
                         size_t errlen);
/* The exact bytes signed for a request (domain-separated, one field per
 * line). Returns the length, or -1 if out is too small. */
int signer_message(const struct sign_req *req, char *out, size_t outlen);
/* Lower-case hex of n bytes into out (2n+1). */
void signer_hex(const unsigned char *in, size_t n, char *out);
/* Parses exactly 2*n hex digits. 0 / -1. */
int signer_unhex(const char *hex, unsigned char *out, size_t n);

/* ---- keystore.c */
struct keystore;
/* Loads the key file, or creates it (0600) when absent. kek is 32 bytes.
 * NULL on failure (logged, without secrets). */
struct keystore *keystore_open(const char *path, const unsigned char *kek, const char *key_id);
void keystore_close(struct keystore *ks);
/* Signs msg; sig gets 64 bytes. 0 / -1. */
int keystore_sign(struct keystore *ks, const unsigned char *msg, size_t len, unsigned char sig[64]);
const unsigned char *keystore_public_key(const struct keystore *ks); /* 32 bytes */
const char *keystore_key_id(const struct keystore *ks);

/* ---- server.c */
/* Serves path until SIGTERM/SIGINT. 0 on a clean stop, -1 on setup failure. */
int signer_serve(const char *path, struct keystore *ks, int max_clients);

#endif
