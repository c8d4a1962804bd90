#include "mini_http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/banned.h"

#define MAX_CONNS 128
#define MAX_HEAD 16384
#define MAX_BODY (1024 * 1024)

struct conn {
    struct mini_http_server *s;
    pthread_t thread;
    int fd;
};

struct mini_http_server {
    int lfd;
    int port;
    int stop_pipe[2];
    pthread_t acceptor;
    pthread_mutex_t lock;
    mini_http_handler_fn fn;
    void *ctx;
    int requests;
    int accepted;
    int nconns;
    struct conn *conns[MAX_CONNS];
};

int mini_http_header(const struct mini_http_request *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *p = r->head;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = len - (size_t)(v - p);
            if (vl >= n)
                vl = n - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        if (!eol)
            break;
        p = eol + 2;
    }
    return -1;
}

/* 1 when the server is stopping (the pipe became readable). */
static int stopping(struct mini_http_server *s, int timeout_ms)
{
    struct pollfd p = {.fd = s->stop_pipe[0], .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* Waits for fd readable or stop: 1 readable, 0 stop/error. */
static int wait_readable(struct mini_http_server *s, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop_pipe[0], .events = POLLIN}};
    for (;;) {
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (p[1].revents & POLLIN))
            return 0;
        return 1;
    }
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

/* Sends the reply; 1 to keep the connection, 0 to close it. */
static int reply(struct mini_http_server *s, int fd, const struct mini_http_reply *rep)
{
    if (rep->delay_ms > 0 && stopping(s, rep->delay_ms))
        return 0;
    if (rep->close_without_reply)
        return 0;
    size_t blen = rep->body_len ? rep->body_len : (rep->body ? strlen(rep->body) : 0);
    char *filler = NULL;
    const char *body = rep->body;
    if (!body && blen) {
        filler = malloc(blen);
        if (!filler)
            return 0;
        memset(filler, 'x', blen);
        body = filler;
    }
    char head[1024];
    int status = rep->status ? rep->status : 200;
    int n;
    if (rep->no_content_length)
        n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nConnection: close\r\n%s\r\n", status,
                     reason(status), rep->headers ? rep->headers : "");
    else
        n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     reason(status), blen, rep->headers ? rep->headers : "");
    int keep = !rep->no_content_length;
    if (n < 0 || (size_t)n >= sizeof head || send_all(fd, head, (size_t)n) < 0 ||
        (blen && send_all(fd, body, blen) < 0))
        keep = 0;
    free(filler);
    return keep;
}

static void serve(struct conn *c)
{
    struct mini_http_server *s = c->s;
    char *buf = malloc(MAX_HEAD + MAX_BODY);
    struct mini_http_request *req = malloc(sizeof *req);
    size_t have = 0;
    if (!buf || !req)
        goto out;
    for (;;) {
        char *end;
        /* read a head */
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have >= MAX_HEAD || !wait_readable(s, c->fd))
                goto out;
            ssize_t r = recv(c->fd, buf + have, MAX_HEAD - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        memset(req, 0, sizeof *req);
        char *eol = memmem(buf, head_len, "\r\n", 2);
        char line[600];
        size_t ll = (size_t)(eol - buf) < sizeof line - 1 ? (size_t)(eol - buf) : sizeof line - 1;
        memcpy(line, buf, ll);
        line[ll] = '\0';
        if (sscanf(line, "%15s %511s", req->method, req->path) != 2)
            goto out;
        size_t hl = head_len - (size_t)(eol + 2 - buf);
        if (hl >= sizeof req->head)
            goto out;
        memcpy(req->head, eol + 2, hl);
        req->head[hl] = '\0';
        char cl[32];
        size_t body_len = 0;
        if (mini_http_header(req, "Content-Length", cl, sizeof cl) == 0)
            body_len = strtoul(cl, NULL, 10);
        if (body_len > MAX_BODY)
            goto out;
        while (have < head_len + body_len) {
            if (!wait_readable(s, c->fd))
                goto out;
            ssize_t r = recv(c->fd, buf + have, head_len + body_len - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        req->body = buf + head_len;
        req->body_len = body_len;

        struct mini_http_reply rep;
        memset(&rep, 0, sizeof rep);
        pthread_mutex_lock(&s->lock);
        req->seq = ++s->requests;
        s->fn(req, &rep, s->ctx);
        pthread_mutex_unlock(&s->lock);
        if (!reply(s, c->fd, &rep))
            goto out;
        size_t used = head_len + body_len;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
out:
    free(req);
    free(buf);
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
}

static void *conn_main(void *arg)
{
    serve(arg);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct mini_http_server *s = arg;
    while (wait_readable(s, s->lfd)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct conn *c = calloc(1, sizeof *c);
        pthread_mutex_lock(&s->lock);
        s->accepted++;
        int room = s->nconns < MAX_CONNS;
        pthread_mutex_unlock(&s->lock);
        if (!c || !room) {
            free(c);
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_mutex_lock(&s->lock);
        s->conns[s->nconns++] = c;
        pthread_mutex_unlock(&s->lock);
    }
    for (int i = 0; i < s->nconns; i++) {
        pthread_join(s->conns[i]->thread, NULL);
        free(s->conns[i]);
    }
    return NULL;
}

struct mini_http_server *mini_http_server_start(mini_http_handler_fn fn, void *ctx)
{
    struct mini_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fn = fn;
    s->ctx = ctx;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        goto fail;
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->lfd, 64) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0)
        goto fail;
    s->port = ntohs(a.sin_port);
    if (pipe(s->stop_pipe) < 0)
        goto fail;
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        goto fail;
    }
    return s;
fail:
    if (s->stop_pipe[0] >= 0) {
        close(s->stop_pipe[0]);
        close(s->stop_pipe[1]);
    }
    if (s->lfd >= 0)
        close(s->lfd);
    free(s);
    return NULL;
}

int mini_http_server_port(const struct mini_http_server *s)
{
    return s->port;
}

int mini_http_server_requests(struct mini_http_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int mini_http_server_connections(struct mini_http_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->accepted;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void mini_http_server_stop(struct mini_http_server *s)
{
    if (!s)
        return;
    ssize_t w = write(s->stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
