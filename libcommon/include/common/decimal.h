#ifndef COMMON_DECIMAL_H
#define COMMON_DECIMAL_H
/*
 * Money as int64 minor units at an explicit scale (docs/money.md).
 *
 * The API carries amounts and prices as JSON strings ("0.00150000"); this
 * module converts them exactly, without floating point, to and from int64
 * minor units: "0.00150000" at scale 8 is 150000. Arithmetic helpers are
 * checked: they fail instead of wrapping.
 *
 * Accepted syntax (everything else is rejected):
 *   [-] DIGITS [ '.' DIGITS ]
 * - at most CM_DECIMAL_MAX_LEN characters in total;
 * - '-' only with CM_DECIMAL_ALLOW_NEGATIVE; '+' never;
 * - leading zeros are accepted ("007.50" == "7.50"): they are unambiguous;
 * - fractional digits beyond the scale are accepted only if they are all
 *   zero ("1.500" at scale 2 is 150; "1.505" at scale 2 is rejected: we
 *   never round silently);
 * - no exponent, no whitespace, no "1." and no ".5", no empty string;
 * - the magnitude must fit int64: |value| <= INT64_MAX (INT64_MIN is never
 *   produced, so negation is always safe).
 *
 * All functions are pure and thread-safe.
 */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/buf.h"

#define CM_DECIMAL_MAX_SCALE 18
/* Longest accepted input string (leading zeros and trailing zeros included). */
#define CM_DECIMAL_MAX_LEN 64
/* Enough for any formatted int64 at any scale: "-0.000000000000000001",
 * "-9223372036854775807" with a dot, plus the NUL. */
#define CM_DECIMAL_STR_MAX 32

/* Flags for the parsers. */
#define CM_DECIMAL_ALLOW_NEGATIVE 1u

/* Results: 0 on success, one of these (all < 0) on failure, so callers can
 * say "invalid amount" vs "too precise" vs "too large" in a 422. */
enum cm_decimal_err {
    CM_DECIMAL_EINVAL = -1,     /* not the syntax above, bad scale, NULL */
    CM_DECIMAL_EPRECISION = -2, /* non-zero digits beyond the scale */
    CM_DECIMAL_ERANGE = -3,     /* magnitude above INT64_MAX */
    CM_DECIMAL_ENEGATIVE = -4,  /* '-' without CM_DECIMAL_ALLOW_NEGATIVE */
};

/* Parses NUL-terminated s at scale (0..18) into *out (untouched on error). */
int cm_decimal_parse(const char *s, int scale, unsigned flags, int64_t *out);
/* Same on the first len bytes of s (no NUL needed; an embedded NUL is junk). */
int cm_decimal_parse_n(const char *s, size_t len, int scale, unsigned flags, int64_t *out);
/* Parses a JSON value that must be a string; a JSON number is rejected
 * (CM_DECIMAL_EINVAL) because it may have gone through a double. item is
 * borrowed; NULL is CM_DECIMAL_EINVAL. */
int cm_decimal_from_json(const cJSON *item, int scale, unsigned flags, int64_t *out);

/* Formats v with exactly `scale` decimals ("150000" at 8 -> "0.00150000";
 * scale 0 has no dot). Returns the length written (without NUL), or -1 if
 * scale is out of range or out is smaller than needed (CM_DECIMAL_STR_MAX
 * always suffices). */
int cm_decimal_format(int64_t v, int scale, char *out, size_t outsz);
/* Appends the formatted value to b: 0 or -1 (bad scale, buffer cap). */
int cm_decimal_append(struct cm_buf *b, int64_t v, int scale);

/* 10^scale for scale 0..18, or -1. */
int64_t cm_decimal_pow10(int scale);

/* Checked arithmetic: 0 and *out, or -1 on overflow (or a result of
 * INT64_MIN, which the parsers never produce either). *out is untouched
 * on error. */
int cm_money_add(int64_t a, int64_t b, int64_t *out);
int cm_money_sub(int64_t a, int64_t b, int64_t *out);

/* Rounding of cm_money_mul_div, named as in Java's BigDecimal:
 * DOWN truncates toward zero, UP rounds away from zero, HALF_EVEN rounds
 * to nearest with ties to the even neighbour (banker's rounding).
 * Fees charged to a user usually round UP, amounts credited round DOWN. */
enum cm_money_round {
    CM_ROUND_DOWN = 0,
    CM_ROUND_UP,
    CM_ROUND_HALF_EVEN,
};

/* *out = a * b / c computed exactly in 128 bits, then rounded by mode.
 * Typical use: quote = qty * price / 10^base_scale. -1 if c == 0, if mode
 * is unknown, or if the result does not fit int64. */
int cm_money_mul_div(int64_t a, int64_t b, int64_t c, enum cm_money_round mode, int64_t *out);

#endif
