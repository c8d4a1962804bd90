/* Account input rules: what an email and a password must look like. */
#include <string.h>

#include "gateway.h"
#include "common/banned.h"

static int label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Local part: the dot-atom of RFC 5322 (no quoted strings, no comments),
 * which is what real registrations use. Domain: dot-separated labels of
 * [a-z0-9-], not starting or ending with '-', at least two labels. */
int gw_email_normalize(const char *in, char *out, size_t outsz, const char **why)
{
    static const char atext[] = "!#$%&'*+/=?^_`{|}~-.";
    const char *reason = "email must look like name@example.com";
    size_t n = in ? strlen(in) : 0;
    if (n < 3 || n > GW_EMAIL_MAX || n >= outsz) {
        reason = "email must be 3 to 254 characters";
        goto bad;
    }
    const char *at = strchr(in, '@');
    if (!at || strchr(at + 1, '@'))
        goto bad;
    size_t local = (size_t)(at - in);
    if (local == 0 || local > 64)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    out[n] = '\0';
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c && strchr(atext, c))))
            goto bad;
        if (c == '.' && (i == 0 || i + 1 == local || out[i + 1] == '.'))
            goto bad;
    }
    const char *dom = out + local + 1;
    size_t labels = 0, len = 0;
    for (const char *p = dom;; p++) {
        if (*p == '.' || *p == '\0') {
            if (len == 0 || len > 63 || p[-1] == '-' || p[-(long)len] == '-')
                goto bad;
            labels++;
            len = 0;
            if (*p == '\0')
                break;
            continue;
        }
        if (!label_char((unsigned char)*p))
            goto bad;
        len++;
    }
    if (labels < 2)
        goto bad;
    return 0;
bad:
    if (why)
        *why = reason;
    if (outsz)
        out[0] = '\0';
    return -1;
}

/* Counts code points of valid UTF-8 (no overlongs, no surrogates); -1 if
 * the bytes are not UTF-8. */
static long utf8_len(const unsigned char *s)
{
    long n = 0;
    while (*s) {
        unsigned c = *s;
        int k = c < 0x80             ? 0
                : (c & 0xe0) == 0xc0 ? 1
                : (c & 0xf0) == 0xe0 ? 2
                : (c & 0xf8) == 0xf0 ? 3
                                     : -1;
        if (k < 0 || (k == 1 && c < 0xc2) || (k == 3 && c > 0xf4))
            return -1;
        unsigned cp = k == 0 ? c : c & (0x3fu >> k);
        for (int i = 1; i <= k; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i] & 0x3fu);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return -1;
        if (cp < 0x20 || cp == 0x7f)
            return -1; /* control characters: almost surely a client bug */
        s += k + 1;
        n++;
    }
    return n;
}

int gw_password_check(const char *pw, const char **why)
{
    long n = pw ? utf8_len((const unsigned char *)pw) : -1;
    if (n < 0) {
        if (why)
            *why = "password must be UTF-8 text without control characters";
        return -1;
    }
    if (n < GW_PASSWORD_MIN || n > GW_PASSWORD_MAX) {
        if (why)
            *why = "password must be 12 to 256 characters";
        return -1;
    }
    return 0;
}
