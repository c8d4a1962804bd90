/*
 * What crosses the gateway towards an upstream. The gateway is the only
 * party that may state who the caller is: any identity or internal header a
 * client sends is dropped here, and the verified one is added by proxy.c.
 */
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "common/http_client.h"
#include "common/banned.h"

/* Exact names never forwarded (case-insensitive). Hop-by-hop headers
 * (RFC 9110 7.6.1), the ones libcurl computes itself, and the ones the
 * gateway sets. Must stay in sync with docs/gateway.md ("Forwarding"). */
static const char *const dropped[] = {
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Proxy-Authorization",
    "Proxy-Authenticate",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Host",
    "Content-Length",
    "Expect",
    "Authorization",
    "Cookie",
    "X-Request-Id",
    "traceparent",
    "tracestate",
    "X-Admin-Token",
    "X-Real-IP",
    "Forwarded",
    "Accept-Encoding",
    "Content-Type",
};

/* Prefixes of header families the gateway owns. */
static const char *const dropped_prefixes[] = {
    "X-User-", "X-Internal-", "X-Forwarded-", "X-Gateway-", "X-Auth-",
};

/* A header name is a token; anything else cannot be re-sent safely. */
static int token_name(const char *name)
{
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == ':')
            return 0;
    }
    return 1;
}

int gw_header_forwardable(const char *name)
{
    if (!name || !*name)
        return 0;
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (strcasecmp(name, dropped[i]) == 0)
            return 0;
    for (size_t i = 0; i < sizeof dropped_prefixes / sizeof dropped_prefixes[0]; i++)
        if (strncasecmp(name, dropped_prefixes[i], strlen(dropped_prefixes[i])) == 0)
            return 0;
    return token_name(name);
}

static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int append_encoded(struct cm_buf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep && strchr(keep, *p))) {
            if (cm_buf_append(b, p, 1) < 0)
                return -1;
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (cm_buf_append(b, e, 3) < 0)
                return -1;
        }
    }
    return 0;
}

/* Hop-by-hop (RFC 9110 7.6.1) and what the gateway writes itself. Must
 * stay in sync with docs/gateway.md ("Forwarding"). */
static const char *const response_dropped[] = {
    "Connection",        "Keep-Alive",  "Proxy-Connection", "Proxy-Authenticate", "TE",   "Trailer",
    "Transfer-Encoding", "Upgrade",     "Content-Length",   "Content-Type",       "Date", "Server",
    "X-Request-Id",      "traceparent", "tracestate",
};

int gw_response_header_forwardable(const char *name, const char *connection)
{
    if (!name || !*name)
        return 0;
    for (size_t i = 0; i < sizeof response_dropped / sizeof response_dropped[0]; i++)
        if (strcasecmp(name, response_dropped[i]) == 0)
            return 0;
    if (cm_http_header_has_token(connection, name))
        return 0;
    return token_name(name);
}

int gw_path_append(struct cm_buf *b, const char *path)
{
    /* The server hands us the decoded path: re-encode what must be. */
    return append_encoded(b, path, "/!$&'()*+,;=:@");
}

int gw_query_append(struct cm_buf *b, const char *key, const char *value)
{
    int first = b->len == 0 || !memchr(b->data, '?', b->len);
    if (cm_buf_append(b, first ? "?" : "&", 1) < 0 || append_encoded(b, key, NULL) < 0)
        return -1;
    if (!value)
        return 0;
    if (cm_buf_append(b, "=", 1) < 0 || append_encoded(b, value, NULL) < 0)
        return -1;
    return 0;
}
