/*
 * Client of wallet-signer over its unix socket (SIGNER_SOCKET). One
 * connection per request: a JSON line out, a JSON line (<= 1 KiB) back,
 * with a 2 s deadline. The wallet never sees key material: it sends what
 * to sign and gets a signature and the public key.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/metrics.h"
#include "wallet.h"
#include "common/banned.h"

#define DEADLINE_MS 2000
#define MAX_LINE 1024

void signer_metrics_init(void)
{
    wallet_m.signer_up = cm_metric_gauge(
        "wallet_signer_up",
        "1 if the last signer health check over the unix socket succeeded, else 0.", NULL);
    wallet_m.signer_duration =
        cm_metric_histogram("wallet_signer_request_duration_seconds",
                            "Signer request round trip, seconds.", NULL, NULL, 0);
    cm_gauge_set(wallet_m.signer_up, 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends line, reads one line into out. 0 / -1 with err. */
static int exchange(const char *line, char *out, size_t outlen, char *err, size_t errlen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(wallet_cfg.signer_socket) >= sizeof sa.sun_path) {
        close(fd);
        snprintf(err, errlen, "SIGNER_SOCKET path too long");
        return -1;
    }
    memcpy(sa.sun_path, wallet_cfg.signer_socket, strlen(wallet_cfg.signer_socket) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        snprintf(err, errlen, "signer unreachable: %s", strerror(errno));
        close(fd);
        return -1;
    }
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            snprintf(err, errlen, "signer write failed");
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    size_t got = 0;
    double deadline = now_s() + DEADLINE_MS / 1000.0;
    for (;;) {
        int left = (int)((deadline - now_s()) * 1000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            snprintf(err, errlen, "signer timed out");
            close(fd);
            return -1;
        }
        ssize_t n = recv(fd, out + got, outlen - 1 - got, 0);
        if (n <= 0) {
            snprintf(err, errlen, "signer closed the connection");
            close(fd);
            return -1;
        }
        got += (size_t)n;
        out[got] = '\0';
        char *nl = memchr(out, '\n', got);
        if (nl) {
            *nl = '\0';
            break;
        }
        if (got >= outlen - 1) {
            snprintf(err, errlen, "signer answer too long");
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

static int copy_str(const cJSON *o, const char *name, char *dst, size_t n)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= n)
        return -1;
    memcpy(dst, it->valuestring, strlen(it->valuestring) + 1);
    return 0;
}

int signer_sign(const char *withdrawal_id, const char *asset, const char *address,
                const char *amount, struct sign_result *out, char *err, size_t errlen)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "withdrawal_id", withdrawal_id);
    cJSON_AddStringToObject(req, "asset", asset);
    cJSON_AddStringToObject(req, "address", address);
    cJSON_AddStringToObject(req, "amount", amount);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char line[MAX_LINE + 2], resp[MAX_LINE + 1];
    snprintf(line, sizeof line, "%s\n", body);
    free(body);
    double t0 = now_s();
    int rc = exchange(line, resp, sizeof resp, err, errlen);
    cm_histogram_observe(wallet_m.signer_duration, now_s() - t0);
    if (rc < 0)
        return -1;
    cJSON *o = cJSON_Parse(resp);
    rc = -1;
    if (!o) {
        snprintf(err, errlen, "signer answered garbage");
    } else if (cJSON_GetObjectItemCaseSensitive(o, "error")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
        snprintf(err, errlen, "signer refused: %.100s",
                 cJSON_IsString(e) ? e->valuestring : "error");
    } else if (copy_str(o, "signature", out->signature, sizeof out->signature) < 0 ||
               copy_str(o, "public_key", out->public_key, sizeof out->public_key) < 0 ||
               copy_str(o, "key_id", out->key_id, sizeof out->key_id) < 0) {
        snprintf(err, errlen, "signer answer incomplete");
    } else {
        rc = 0;
    }
    cJSON_Delete(o);
    return rc;
}

int signer_ping(void)
{
    char resp[64], err[128];
    int ok =
        exchange("PING\n", resp, sizeof resp, err, sizeof err) == 0 && strcmp(resp, "PONG") == 0;
    cm_gauge_set(wallet_m.signer_up, ok ? 1 : 0);
    return ok ? 0 : -1;
}
