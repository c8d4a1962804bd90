#ifndef COMMON_BUF_H
#define COMMON_BUF_H
/*
 * cm_buf: a growable byte buffer with a hard cap (curl's dynbuf). Network
 * input and rendered output go through it so nothing grows without bound.
 *
 * Invariant: data is always NUL-terminated (data[len] == 0) once anything
 * was appended, so it can be used as a C string when the content is text.
 * An append that would pass `cap` fails with -1 and leaves the buffer as it
 * was. Not thread-safe; one owner at a time.
 */
#include <stdarg.h>
#include <stddef.h>

struct cm_buf {
    char *data;   /* owned; NULL until the first append */
    size_t len;   /* bytes used, excluding the terminating NUL */
    size_t alloc; /* bytes allocated */
    size_t cap;   /* maximum len; 0 means CM_BUF_DEFAULT_CAP */
};

#define CM_BUF_DEFAULT_CAP (64u * 1024u * 1024u)

void cm_buf_init(struct cm_buf *b, size_t cap);
/* Frees the contents; the struct can be reused after cm_buf_init. */
void cm_buf_release(struct cm_buf *b);
/* Empties without freeing. */
void cm_buf_reset(struct cm_buf *b);
int cm_buf_append(struct cm_buf *b, const void *p, size_t n);
int cm_buf_puts(struct cm_buf *b, const char *s);
int cm_buf_printf(struct cm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cm_buf_vprintf(struct cm_buf *b, const char *fmt, va_list ap);
/* Appends s as the body of a JSON string (no quotes), escaping as needed. */
int cm_buf_json_escape(struct cm_buf *b, const char *s);
/* Hands the data to the caller (caller frees) and empties the buffer. */
char *cm_buf_detach(struct cm_buf *b, size_t *len);

#endif
