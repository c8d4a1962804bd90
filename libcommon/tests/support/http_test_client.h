#ifndef HTTP_TEST_CLIENT_H
#define HTTP_TEST_CLIENT_H
/*
 * A raw-socket HTTP/1.1 client for unit tests of the server stack: it does
 * not depend on the libcurl client module, and it can send what a real
 * client would not (bad headers, lying Content-Length, partial bodies).
 * Not thread-safe per response object; any number may run at once.
 */
#include <stddef.h>

struct tc_resp {
    int status;
    char *head; /* status line + headers, NUL-terminated; owned */
    char *body; /* de-chunked, NUL-terminated; owned */
    size_t body_len;
};

/* Connects to 127.0.0.1:port with a 10 s receive timeout; fd or -1. */
int tc_connect(int port);
/* Sends all of data; 0 / -1. */
int tc_send_all(int fd, const void *data, size_t len);
/* One request with "Connection: close"; extra_headers are full lines
 * ("Name: value\r\n"...) or NULL; body may be NULL. 0 / -1. */
int tc_request(int port, const char *method, const char *path, const char *extra_headers,
               const char *body, size_t body_len, struct tc_resp *out);
/* Reads a whole response from fd until EOF into out; 0 / -1. */
int tc_read_response(int fd, struct tc_resp *out);
/* Reads exactly one response with a Content-Length from a keep-alive
 * connection (the connection stays usable); 0 / -1. */
int tc_read_one(int fd, struct tc_resp *out);
/* Copies header name's value (case-insensitive) into buf; buf or NULL. */
const char *tc_header(const struct tc_resp *r, const char *name, char *buf, size_t n);
void tc_resp_free(struct tc_resp *r);

#endif
