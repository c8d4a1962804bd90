/*
 * wallet-signer: signs withdrawals; the only holder of key material.
 * Table of contents: configuration (SIGNER_SOCKET, SIGNER_KEY_FILE,
 * SIGNER_KEK hex, SIGNER_KEY_ID), libsodium, key store (decrypt or
 * create), serve the unix socket until a signal, wipe the key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/config.h"
#include "common/log.h"
#include "signer.h"
#include "common/banned.h"

extern char **environ;

int main(void)
{
    struct cm_config cfg;
    cm_config_init(&cfg, "wallet-signer");
    const char *socket_path = cm_config_string(&cfg, "SIGNER_SOCKET", NULL);
    const char *key_file = cm_config_string(&cfg, "SIGNER_KEY_FILE", NULL);
    const char *kek_hex = cm_config_string(&cfg, "SIGNER_KEK", NULL);
    const char *key_id = cm_config_string(&cfg, "SIGNER_KEY_ID", "hot-1");
    int level = cm_config_enum(&cfg, "LOG_LEVEL", "info", "debug|info|warn|error");
    int max_clients = (int)cm_config_int(&cfg, "SIGNER_MAX_CLIENTS", "32", 1, 1024);
    unsigned char kek[crypto_secretbox_KEYBYTES];
    if (kek_hex && *kek_hex && signer_unhex(kek_hex, kek, sizeof kek) < 0 &&
        cfg.nerrors < CM_CONFIG_MAX_ERRORS)
        snprintf(cfg.errors[cfg.nerrors++], sizeof cfg.errors[0],
                 "SIGNER_KEK must be 64 hex digits (32 bytes)");
    if (cm_config_finish(&cfg) < 0)
        return 2;
    /* The KEK is in kek now; wipe it from the environment block. */
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "SIGNER_KEK=", 11) == 0)
            memset(*e + 11, 0, strlen(*e + 11));
    unsetenv("SIGNER_KEK");
    cm_log_init("wallet-signer", (enum cm_log_level)level);
    if (sodium_init() < 0) {
        cm_error("signer: libsodium failed to initialise");
        return 1;
    }
    struct keystore *ks = keystore_open(key_file, kek, key_id);
    sodium_memzero(kek, sizeof kek);
    if (!ks)
        return 1;
    int rc = signer_serve(socket_path, ks, max_clients) == 0 ? 0 : 1;
    keystore_close(ks);
    return rc;
}
