#include "common/decimal.h"

#include <string.h>

#include "common/banned.h"

static const int64_t pow10_table[CM_DECIMAL_MAX_SCALE + 1] = {
    1LL,
    10LL,
    100LL,
    1000LL,
    10000LL,
    100000LL,
    1000000LL,
    10000000LL,
    100000000LL,
    1000000000LL,
    10000000000LL,
    100000000000LL,
    1000000000000LL,
    10000000000000LL,
    100000000000000LL,
    1000000000000000LL,
    10000000000000000LL,
    100000000000000000LL,
    1000000000000000000LL,
};

int64_t cm_decimal_pow10(int scale)
{
    if (scale < 0 || scale > CM_DECIMAL_MAX_SCALE)
        return -1;
    return pow10_table[scale];
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Two passes: the first checks the syntax only, so that the error a caller
 * sees does not depend on where the value happened to overflow; the second
 * accumulates in 128 bits, where no step can wrap (each step is checked
 * against INT64_MAX, and INT64_MAX * 10 + 9 fits easily).
 */
int cm_decimal_parse_n(const char *s, size_t len, int scale, unsigned flags, int64_t *out)
{
    if (!s || !out || scale < 0 || scale > CM_DECIMAL_MAX_SCALE)
        return CM_DECIMAL_EINVAL;
    if (len == 0 || len > CM_DECIMAL_MAX_LEN)
        return CM_DECIMAL_EINVAL;

    size_t i = 0;
    int negative = 0;
    if (s[0] == '-') {
        negative = 1;
        i = 1;
    }
    size_t int_start = i;
    while (i < len && is_digit(s[i]))
        i++;
    size_t int_end = i;
    if (int_end == int_start)
        return CM_DECIMAL_EINVAL; /* "", "-", ".5", "+1", " 1", "abc" */
    size_t frac_start = len, frac_end = len;
    if (i < len) {
        if (s[i] != '.')
            return CM_DECIMAL_EINVAL; /* "1e5", "1 ", "1,5" */
        i++;
        frac_start = i;
        while (i < len && is_digit(s[i]))
            i++;
        frac_end = i;
        if (frac_end == frac_start || i != len)
            return CM_DECIMAL_EINVAL; /* "1.", "1.2.3", "1.5x" */
    }
    if (negative && !(flags & CM_DECIMAL_ALLOW_NEGATIVE))
        return CM_DECIMAL_ENEGATIVE;

    size_t nfrac = frac_end - frac_start;
    for (size_t k = (size_t)scale; k < nfrac; k++)
        if (s[frac_start + k] != '0')
            return CM_DECIMAL_EPRECISION;

    unsigned __int128 acc = 0;
    for (size_t k = int_start; k < int_end; k++) {
        acc = acc * 10 + (unsigned)(s[k] - '0');
        if (acc > INT64_MAX)
            return CM_DECIMAL_ERANGE;
    }
    for (size_t k = 0; k < (size_t)scale; k++) {
        unsigned d = k < nfrac ? (unsigned)(s[frac_start + k] - '0') : 0;
        acc = acc * 10 + d;
        if (acc > INT64_MAX)
            return CM_DECIMAL_ERANGE;
    }
    *out = negative ? -(int64_t)acc : (int64_t)acc;
    return 0;
}

int cm_decimal_parse(const char *s, int scale, unsigned flags, int64_t *out)
{
    if (!s)
        return CM_DECIMAL_EINVAL;
    /* strnlen: a huge string is rejected without being walked to its end. */
    size_t len = strnlen(s, CM_DECIMAL_MAX_LEN + 1);
    return cm_decimal_parse_n(s, len, scale, flags, out);
}

int cm_decimal_from_json(const cJSON *item, int scale, unsigned flags, int64_t *out)
{
    if (!item || !cJSON_IsString(item) || !item->valuestring)
        return CM_DECIMAL_EINVAL;
    return cm_decimal_parse(item->valuestring, scale, flags, out);
}

int cm_decimal_format(int64_t v, int scale, char *out, size_t outsz)
{
    if (!out || scale < 0 || scale > CM_DECIMAL_MAX_SCALE)
        return -1;
    /* Digits of |v| least significant first; uint64 holds |INT64_MIN|. */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char rev[24];
    int nd = 0;
    do {
        rev[nd++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    /* At least scale + 1 digits so there is always an integer part. */
    while (nd < scale + 1)
        rev[nd++] = '0';

    size_t need = (size_t)(v < 0) + (size_t)nd + (scale > 0) + 1;
    if (outsz < need)
        return -1;
    size_t o = 0;
    if (v < 0)
        out[o++] = '-';
    for (int k = nd - 1; k >= 0; k--) {
        out[o++] = rev[k];
        if (k == scale && scale > 0)
            out[o++] = '.';
    }
    out[o] = '\0';
    return (int)o;
}

int cm_decimal_append(struct cm_buf *b, int64_t v, int scale)
{
    char tmp[CM_DECIMAL_STR_MAX];
    int n = cm_decimal_format(v, scale, tmp, sizeof tmp);
    if (n < 0)
        return -1;
    return cm_buf_append(b, tmp, (size_t)n);
}

int cm_money_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r) || r == INT64_MIN)
        return -1;
    *out = r;
    return 0;
}

int cm_money_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r) || r == INT64_MIN)
        return -1;
    *out = r;
    return 0;
}

int cm_money_mul_div(int64_t a, int64_t b, int64_t c, enum cm_money_round mode, int64_t *out)
{
    if (c == 0)
        return -1;
    /* |a*b| < 2^126 and |c| >= 1, so the 128-bit signed math cannot wrap. */
    __int128 num = (__int128)a * (__int128)b;
    __int128 den = c;
    __int128 q = num / den; /* truncates toward zero */
    __int128 r = num % den; /* same sign as num */
    if (r != 0) {
        int sign = ((num < 0) != (den < 0)) ? -1 : 1;
        __int128 ar = r < 0 ? -r : r;
        __int128 ad = den < 0 ? -den : den;
        switch (mode) {
        case CM_ROUND_DOWN: break;
        case CM_ROUND_UP: q += sign; break;
        case CM_ROUND_HALF_EVEN: {
            /* Compare 2*|r| with |den|; |r| < |den| <= 2^63, no overflow. */
            __int128 twice = 2 * ar;
            if (twice > ad || (twice == ad && (q % 2) != 0))
                q += sign;
            break;
        }
        default: return -1;
        }
    } else if (mode != CM_ROUND_DOWN && mode != CM_ROUND_UP && mode != CM_ROUND_HALF_EVEN) {
        return -1;
    }
    if (q > INT64_MAX || q <= INT64_MIN)
        return -1;
    *out = (int64_t)q;
    return 0;
}
