#ifndef TESTS_SUPPORT_HARNESS_H
#define TESTS_SUPPORT_HARNESS_H
/*
 * Helpers for services' integration tests (declared with $(TEST_HARNESS_SRCS)):
 * start the real binaries from TEST_BIN_DIR on ephemeral ports, talk HTTP
 * to them with libcurl, read metrics, and poll conditions with deadlines.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

/* getenv or fail the test with a hint. */
const char *need_env(const char *name);
int64_t now_ms(void);
/* A port nobody listens on right now (bind to 0, read it back, close). */
int free_port(void);

/* Starts TEST_BIN_DIR/name with the current environment plus env
 * ("KEY=VALUE", NULL-terminated; "KEY=" unsets), output to
 * TEST_TMPDIR/<log>.log. Returns the pid or -1. */
pid_t spawn_service(const char *name, const char *log, const char *const *env);
/* Same with argv (NULL-terminated, argv[0] excluded). */
pid_t spawn_service_args(const char *name, const char *log, const char *const *args,
                         const char *const *env);
/* SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status or -1. */
int stop_service(pid_t pid);
/* Polls GET http://127.0.0.1:port/readyz until 200 or timeout_ms. 0 / -1. */
int wait_ready(int port, int timeout_ms);
/* wait_ready for a spawned service; on failure prints why on stderr (its
 * exit status if it died, and the tail of TEST_TMPDIR/<log>.log). */
int wait_service(pid_t pid, int port, const char *log, int timeout_ms);
/* The same on any path that answers 200 when the program is up. */
int wait_http(pid_t pid, int port, const char *path, const char *log, int timeout_ms);
/* waitpid with a deadline: the exit code, or -1 if still running. */
int wait_exit(pid_t pid, int timeout_ms);

struct http_resp {
    long status;
    char *body; /* malloc'd, NUL-terminated (may be "") */
    size_t len;
    char *headers; /* raw response head, malloc'd */
    int64_t ms;    /* elapsed */
};
/*
 * One request to http://127.0.0.1:port<path>. headers: NULL-terminated
 * "Name: value" lines or NULL. body may be NULL. Returns 0 with resp
 * filled (free with http_free) or -1 on a transport error.
 */
int http_do(int port, const char *method, const char *path, const char *const *headers,
            const char *body, struct http_resp *resp);
void http_free(struct http_resp *resp);
/* Value of response header name (case-insensitive) into out; 0 / -1. */
int resp_header(const struct http_resp *r, const char *name, char *out, size_t n);
/* Parses resp->body; caller cJSON_Delete()s. */
cJSON *http_json(const struct http_resp *resp);
/* The error code of an error envelope ("" if none); borrowed from the tree. */
const char *error_code(const cJSON *j);
/* Value of one metric series line `name{labels} v` from /metrics, or -1. */
double metric(int port, const char *series);

#endif
