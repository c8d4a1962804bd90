#ifndef COMMON_UTF8_H
#define COMMON_UTF8_H
/*
 * Text fields from outside (names, addresses, search terms) are checked
 * as well-formed UTF-8 before they are stored or rendered.
 */

/* Number of code points in s, or -1 when s is not well-formed UTF-8
 * (bad sequences, overlong forms, surrogates, past U+10FFFF) or holds a
 * control character (C0 or DEL). s is NUL-terminated, borrowed. Pure. */
long cm_utf8_chars(const char *s);

#endif
