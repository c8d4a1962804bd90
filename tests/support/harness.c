/* See harness.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "harness.h"
#include "common/banned.h"

const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run through tests/run.sh (the integration fixture)", name);
    return v;
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

pid_t spawn_service_args(const char *name, const char *log, const char *const *args,
                         const char *const *env)
{
    char bin[1024], logpath[1024];
    snprintf(bin, sizeof bin, "%s/%s", need_env("TEST_BIN_DIR"), name);
    snprintf(logpath, sizeof logpath, "%s/%s.log", need_env("TEST_TMPDIR"), log);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    for (const char *const *e = env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *e), *e);
        if (eq[1])
            setenv(key, eq + 1, 1);
        else
            unsetenv(key);
    }
    char *argv[16] = {bin};
    int n = 1;
    for (const char *const *a = args; a && *a && n < 15; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    execv(bin, argv);
    _exit(127);
}

int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int st;
    do {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -1;
        usleep(10000);
    } while (now_ms() < end);
    return -1;
}

int stop_service(pid_t pid)
{
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    int rc = wait_exit(pid, 10000);
    if (rc < 0) {
        kill(pid, SIGKILL);
        rc = wait_exit(pid, 5000);
    }
    return rc;
}

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    struct cm_buf *b = ctx;
    return cm_buf_append(b, p, size * n) < 0 ? 0 : size * n;
}

int http_do(int port, const char *method, const char *path, const char *const *headers,
            const char *body, struct http_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = NULL;
    for (const char *const *p = headers; p && *p; p++)
        h = curl_slist_append(h, *p);
    if (body)
        h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    struct cm_buf b, hb;
    cm_buf_init(&b, 64u << 20);
    cm_buf_init(&hb, 1u << 20);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    int64_t t0 = now_ms();
    CURLcode rc = curl_easy_perform(c);
    resp->ms = now_ms() - t0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        cm_buf_release(&b);
        cm_buf_release(&hb);
        return -1;
    }
    resp->body = b.data ? cm_buf_detach(&b, &resp->len) : strdup("");
    resp->headers = hb.data ? cm_buf_detach(&hb, NULL) : strdup("");
    cm_buf_release(&b);
    cm_buf_release(&hb);
    return 0;
}

void http_free(struct http_resp *resp)
{
    free(resp->body);
    free(resp->headers);
    resp->body = resp->headers = NULL;
}

int resp_header(const struct http_resp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(line + len - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            snprintf(out, n, "%.*s", (int)vl, v);
            return 0;
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

cJSON *http_json(const struct http_resp *resp)
{
    return cJSON_Parse(resp->body ? resp->body : "");
}

const char *error_code(const cJSON *j)
{
    const cJSON *code =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "code");
    return cJSON_IsString(code) ? code->valuestring : "";
}

int wait_ready(int port, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    do {
        struct http_resp r;
        if (http_do(port, "GET", "/readyz", NULL, NULL, &r) == 0) {
            long st = r.status;
            http_free(&r);
            if (st == 200)
                return 0;
        }
        usleep(20000);
    } while (now_ms() < end);
    return -1;
}

double metric(int port, const char *series)
{
    struct http_resp r;
    if (http_do(port, "GET", "/metrics", NULL, NULL, &r) < 0)
        return -1;
    double v = -1;
    size_t sl = strlen(series);
    for (char *line = r.body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, series, sl) == 0 && line[sl] == ' ')
            v = strtod(line + sl + 1, NULL);
        line = nl ? nl + 1 : NULL;
    }
    http_free(&r);
    return v;
}

int wait_service(pid_t pid, int port, const char *log, int timeout_ms)
{
    return wait_http(pid, port, "/readyz", log, timeout_ms);
}

int wait_http(pid_t pid, int port, const char *path, const char *log, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int st = -1;
    do {
        struct http_resp r;
        if (http_do(port, "GET", path, NULL, NULL, &r) == 0) {
            long status = r.status;
            http_free(&r);
            if (status == 200)
                return 0;
        }
        if (now_ms() < end)
            usleep(20 * 1000);
        st = wait_exit(pid, 0);
    } while (st < 0 && now_ms() < end);
    fprintf(stderr, "# %s on port %d not ready: %s %d\n", log, port,
            st < 0 ? "still running after (ms)" : "exited with", st < 0 ? timeout_ms : st);
    char logpath[1024];
    snprintf(logpath, sizeof logpath, "%s/%s.log", need_env("TEST_TMPDIR"), log);
    FILE *f = fopen(logpath, "r");
    if (f) {
        char lines[20][512];
        int n = 0;
        while (fgets(lines[n % 20], sizeof lines[0], f))
            n++;
        for (int i = n > 20 ? n - 20 : 0; i < n; i++)
            fprintf(stderr, "#   %s", lines[i % 20]);
        fclose(f);
    }
    return -1;
}

pid_t spawn_service(const char *name, const char *log, const char *const *env)
{
    return spawn_service_args(name, log, NULL, env);
}
