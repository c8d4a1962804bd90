/*
 * The signing key, encrypted at rest.
 *
 * File format (binary, 0600): "EXLSK1\n\0" (8 bytes) | nonce (24) |
 * crypto_secretbox_easy(seed (32), nonce, KEK) (48). The Ed25519 secret
 * key is derived from the seed in guarded memory (sodium_malloc, read-only
 * except while created, locked out of swap) and never leaves this file:
 * nothing returns it, nothing logs it.
 *
 * First start: a fresh seed is written to "<path>.tmp" (O_EXCL, 0600) and
 * renamed into place, so a crash never leaves a half-written key file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "signer.h"
#include "common/banned.h"

#define MAGIC "EXLSK1\n"
#define MAGIC_LEN 8
#define FILE_LEN (MAGIC_LEN + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 32)

struct keystore {
    unsigned char *sk; /* sodium_malloc'd, crypto_sign_SECRETKEYBYTES */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    char key_id[64];
};

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int create_file(const char *path, const unsigned char *kek, unsigned char seed[32])
{
    unsigned char buf[FILE_LEN];
    memcpy(buf, MAGIC, MAGIC_LEN);
    randombytes_buf(seed, 32);
    unsigned char *nonce = buf + MAGIC_LEN;
    randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES, seed, 32, nonce, kek);
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return -1;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cm_error("signer: cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = write_all(fd, buf, sizeof buf) == 0 && fsync(fd) == 0 ? 0 : -1;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -1;
    if (rc < 0) {
        unlink(tmp);
        cm_error("signer: cannot write the key file %s", path);
    }
    return rc;
}

static int load_file(const char *path, const unsigned char *kek, unsigned char seed[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    unsigned char buf[FILE_LEN + 1] = {0};
    ssize_t n = -1;
    if (fstat(fd, &st) == 0) {
        if (st.st_mode & 077)
            cm_warn("signer: key file %s is readable by others; use chmod 600", path);
        n = read(fd, buf, sizeof buf);
    }
    close(fd);
    if (n != (ssize_t)FILE_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
        cm_error("signer: %s is not a signer key file", path);
        return -1;
    }
    const unsigned char *nonce = buf + MAGIC_LEN;
    if (crypto_secretbox_open_easy(seed, nonce + crypto_secretbox_NONCEBYTES,
                                   FILE_LEN - MAGIC_LEN - crypto_secretbox_NONCEBYTES, nonce,
                                   kek) != 0) {
        cm_error("signer: cannot decrypt %s (wrong SIGNER_KEK or a damaged file)", path);
        return -1;
    }
    return 0;
}

struct keystore *keystore_open(const char *path, const unsigned char *kek, const char *key_id)
{
    static struct keystore ks_static;
    struct keystore *ks = &ks_static;
    unsigned char *seed = sodium_malloc(32);
    if (!seed)
        return NULL;
    int rc;
    if (access(path, F_OK) == 0) {
        rc = load_file(path, kek, seed);
    } else {
        rc = create_file(path, kek, seed);
        if (rc == 0)
            cm_log_kv(CM_LOG_INFO, "signer: created a new key file", "path", path,
                      (const char *)NULL);
    }
    if (rc == 0) {
        ks->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
        if (!ks->sk || crypto_sign_seed_keypair(ks->pk, ks->sk, seed) != 0)
            rc = -1;
    }
    sodium_free(seed); /* zeroed by libsodium */
    if (rc < 0) {
        if (ks->sk)
            sodium_free(ks->sk);
        ks->sk = NULL;
        return NULL;
    }
    sodium_mprotect_readonly(ks->sk);
    snprintf(ks->key_id, sizeof ks->key_id, "%s", key_id);
    return ks;
}

void keystore_close(struct keystore *ks)
{
    if (!ks || !ks->sk)
        return;
    sodium_free(ks->sk);
    ks->sk = NULL;
}

int keystore_sign(struct keystore *ks, const unsigned char *msg, size_t len, unsigned char sig[64])
{
    return crypto_sign_detached(sig, NULL, msg, len, ks->sk);
}

const unsigned char *keystore_public_key(const struct keystore *ks)
{
    return ks->pk;
}

const char *keystore_key_id(const struct keystore *ks)
{
    return ks->key_id;
}
