#include "http_test_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/banned.h"

int tc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tc_send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int dechunk(const char *in, size_t len, struct cm_buf *out)
{
    size_t i = 0;
    for (;;) {
        char *end;
        unsigned long n = strtoul(in + i, &end, 16);
        const char *crlf = strstr(in + i, "\r\n");
        if (!crlf || end == in + i)
            return -1;
        i = (size_t)(crlf - in) + 2;
        if (n == 0)
            return 0;
        if (i + n + 2 > len)
            return -1;
        cm_buf_append(out, in + i, n);
        i += n + 2;
    }
}

int tc_read_response(int fd, struct tc_resp *out)
{
    memset(out, 0, sizeof *out);
    struct cm_buf raw;
    cm_buf_init(&raw, 64u * 1024u * 1024u);
    char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && raw.len == 0) {
            cm_buf_release(&raw);
            return -1;
        }
        if (n <= 0)
            break; /* EOF, reset or timeout after data */
        cm_buf_append(&raw, buf, (size_t)n);
    }
    char *sep = raw.data ? strstr(raw.data, "\r\n\r\n") : NULL;
    if (!sep || sscanf(raw.data, "HTTP/1.%*d %d", &out->status) != 1) {
        cm_buf_release(&raw);
        return -1;
    }
    size_t hlen = (size_t)(sep - raw.data) + 2;
    out->head = malloc(hlen + 1);
    memcpy(out->head, raw.data, hlen);
    out->head[hlen] = '\0';
    const char *body = sep + 4;
    size_t blen = raw.len - (size_t)(body - raw.data);
    struct cm_buf b;
    cm_buf_init(&b, 0);
    char te[64];
    if (tc_header(out, "Transfer-Encoding", te, sizeof te) && strcasecmp(te, "chunked") == 0) {
        if (dechunk(body, blen, &b) < 0) {
            /* keep what arrived (a cut stream): tests look at it */
            cm_buf_reset(&b);
            cm_buf_append(&b, body, blen);
        }
    } else {
        cm_buf_append(&b, body, blen);
    }
    cm_buf_append(&b, "", 0);
    out->body = cm_buf_detach(&b, &out->body_len);
    if (!out->body)
        out->body = calloc(1, 1);
    cm_buf_release(&raw);
    return 0;
}

int tc_read_one(int fd, struct tc_resp *out)
{
    memset(out, 0, sizeof *out);
    struct cm_buf raw;
    cm_buf_init(&raw, 16u * 1024u * 1024u);
    char c;
    /* Byte by byte up to the blank line: slow, but never reads past it. */
    while (!raw.data || !strstr(raw.data, "\r\n\r\n")) {
        ssize_t n = recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || cm_buf_append(&raw, &c, 1) < 0) {
            cm_buf_release(&raw);
            return -1;
        }
    }
    if (sscanf(raw.data, "HTTP/1.%*d %d", &out->status) != 1) {
        cm_buf_release(&raw);
        return -1;
    }
    out->head = cm_buf_detach(&raw, NULL);
    char cl[32];
    size_t len = tc_header(out, "Content-Length", cl, sizeof cl) ? strtoul(cl, NULL, 10) : 0;
    out->body = malloc(len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, out->body + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            tc_resp_free(out);
            return -1;
        }
        got += (size_t)n;
    }
    out->body[len] = '\0';
    out->body_len = len;
    return 0;
}

int tc_request(int port, const char *method, const char *path, const char *extra_headers,
               const char *body, size_t body_len, struct tc_resp *out)
{
    int fd = tc_connect(port);
    if (fd < 0)
        return -1;
    struct cm_buf req;
    cm_buf_init(&req, 0);
    cm_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (extra_headers)
        cm_buf_puts(&req, extra_headers);
    if (body)
        cm_buf_printf(&req, "Content-Length: %zu\r\n", body_len);
    cm_buf_puts(&req, "\r\n");
    if (body)
        cm_buf_append(&req, body, body_len);
    /* A server may answer early (413) and close while we still send: read
     * whatever response arrived even when sending failed. */
    tc_send_all(fd, req.data, req.len);
    cm_buf_release(&req);
    int rc = tc_read_response(fd, out);
    close(fd);
    return rc;
}

const char *tc_header(const struct tc_resp *r, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    const char *p = r->head ? strstr(r->head, "\r\n") : NULL;
    while (p && p[2]) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            snprintf(buf, n, "%.*s", (int)len, v);
            return buf;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

void tc_resp_free(struct tc_resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}
