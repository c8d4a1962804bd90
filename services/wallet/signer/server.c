/*
 * The signer's unix socket. Protocol, one line each way:
 *   request  {"withdrawal_id":"wd_1","asset":"BTC","address":"tb1q...","amount":"0.01000000"}
 *   answer   {"signature":"<128 hex>","public_key":"<64 hex>","key_id":"hot-1"}
 *            or {"error":"<code>"} (the connection is closed after an error)
 *   "PING" -> "PONG" (health checks).
 * A line is at most 1 KiB (newline included); a longer one is refused
 * before it is parsed. A client gets 5 s per line. Every signature is
 * audit-logged with the withdrawal id and the SHA-256 of the signed
 * message, never with key material.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "signer.h"
#include "common/banned.h"

#define READ_TIMEOUT_MS 5000

static volatile sig_atomic_t g_stop;
static atomic_int g_clients;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

struct client {
    int fd;
    struct keystore *ks;
};

static int send_line(int fd, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

static int reply_error(int fd, const char *code)
{
    char line[96];
    snprintf(line, sizeof line, "{\"error\":\"%s\"}\n", code);
    send_line(fd, line);
    return -1;
}

/* Handles one request line; -1 closes the connection. */
static int handle_line(int fd, struct keystore *ks, const char *line, size_t len)
{
    if (len == 4 && memcmp(line, "PING", 4) == 0)
        return send_line(fd, "PONG\n");
    struct sign_req req;
    char err[64];
    if (signer_parse_request(line, len, &req, err, sizeof err) < 0) {
        cm_log_kv(CM_LOG_WARN, "signer: request refused", "reason", err, (const char *)NULL);
        return reply_error(fd, err);
    }
    char msg[512];
    int mlen = signer_message(&req, msg, sizeof msg);
    unsigned char sig[crypto_sign_BYTES], hash[crypto_hash_sha256_BYTES];
    if (mlen < 0 || keystore_sign(ks, (const unsigned char *)msg, (size_t)mlen, sig) != 0)
        return reply_error(fd, "internal");
    crypto_hash_sha256(hash, (const unsigned char *)msg, (size_t)mlen);
    char sig_hex[2 * crypto_sign_BYTES + 1], pk_hex[2 * crypto_sign_PUBLICKEYBYTES + 1],
        hash_hex[2 * crypto_hash_sha256_BYTES + 1];
    signer_hex(sig, sizeof sig, sig_hex);
    signer_hex(keystore_public_key(ks), crypto_sign_PUBLICKEYBYTES, pk_hex);
    signer_hex(hash, sizeof hash, hash_hex);
    cm_log_kv(CM_LOG_INFO, "signer: signed", "audit", "signature", "withdrawal_id",
              req.withdrawal_id, "asset", req.asset, "message_sha256", hash_hex, "key_id",
              keystore_key_id(ks), (const char *)NULL);
    char out[512];
    snprintf(out, sizeof out, "{\"signature\":\"%s\",\"public_key\":\"%s\",\"key_id\":\"%s\"}\n",
             sig_hex, pk_hex, keystore_key_id(ks));
    return send_line(fd, out);
}

static void *serve_client(void *arg)
{
    struct client *c = arg;
    char buf[SIGNER_MAX_LINE + 1];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, READ_TIMEOUT_MS) <= 0)
            break;
        ssize_t n = recv(c->fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        char *nl;
        int closing = 0;
        while (!closing && (nl = memchr(buf, '\n', got)) != NULL) {
            size_t len = (size_t)(nl - buf);
            if (handle_line(c->fd, c->ks, buf, len) < 0)
                closing = 1;
            memmove(buf, nl + 1, got - len - 1);
            got -= len + 1;
        }
        if (closing)
            break;
        if (got >= SIGNER_MAX_LINE) {
            cm_log_kv(CM_LOG_WARN, "signer: request refused", "reason", "request_too_large",
                      (const char *)NULL);
            reply_error(c->fd, "request_too_large");
            break;
        }
    }
    sodium_memzero(buf, sizeof buf);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&g_clients, 1);
    return NULL;
}

int signer_serve(const char *path, struct keystore *ks, int max_clients)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        cm_error("signer: SIGNER_SOCKET path is too long");
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(path);             /* a stale socket from a previous run */
    mode_t old = umask(0117); /* socket 0660: owner and group only */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || listen(fd, 64) < 0) {
        cm_error("signer: cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    struct sigaction act = {.sa_handler = on_signal};
    sigemptyset(&act.sa_mask);
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    cm_log_kv(CM_LOG_INFO, "signer: listening", "socket", path, "key_id", keystore_key_id(ks),
              (const char *)NULL);
    while (!g_stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        if (atomic_load(&g_clients) >= max_clients) {
            reply_error(cfd, "busy");
            close(cfd);
            continue;
        }
        struct client *c = malloc(sizeof *c);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        atomic_fetch_add(&g_clients, 1);
        if (!c || (c->fd = cfd, c->ks = ks, pthread_create(&t, &attr, serve_client, c) != 0)) {
            atomic_fetch_sub(&g_clients, 1);
            free(c);
            close(cfd);
        }
        pthread_attr_destroy(&attr);
    }
    close(fd);
    unlink(path);
    cm_info("signer: stopped");
    return 0;
}
