#ifndef GW_SUPPORT_H
#define GW_SUPPORT_H
/*
 * Helpers for the gateway's integration test: start real binaries from
 * TEST_BIN_DIR on free ports, talk HTTP with libcurl (response headers
 * kept), read metrics, poll with deadlines.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

const char *need_env(const char *name);
int64_t now_ms(void);
int free_port(void);
/* TEST_BIN_DIR/name with argv (NULL-terminated, argv[0] excluded) and env
 * ("KEY=VALUE"; "KEY=" unsets) added; output to TEST_TMPDIR/<log>.log. */
pid_t spawn(const char *name, const char *log, const char *const *args, const char *const *env);
int stop_child(pid_t pid);
int wait_exit(pid_t pid, int timeout_ms);
/* Polls GET http://127.0.0.1:port<path> until 200; on failure prints the
 * log tail. 0 / -1. */
int wait_http(pid_t pid, int port, const char *path, const char *log, int timeout_ms);

struct http_resp {
    long status;
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
    char *headers; /* raw response head, malloc'd */
    int64_t ms;    /* elapsed */
};
int http_do(int port, const char *method, const char *path, const char *const *headers,
            const char *body, struct http_resp *resp);
void http_free(struct http_resp *resp);
/* Value of response header name (case-insensitive) into out; 0 / -1. */
int resp_header(const struct http_resp *r, const char *name, char *out, size_t n);
cJSON *http_json(const struct http_resp *resp);
const char *error_code(const cJSON *j);
double metric(int port, const char *series);

#endif
