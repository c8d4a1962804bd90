/*
 * Decimal parser: never crashes, and whatever it accepts formats back to a
 * string that parses to the same value (exactness is the point of it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int scale = data[0] % (CM_DECIMAL_MAX_SCALE + 2) - 1; /* -1 exercises a bad scale */
    unsigned flags = (data[0] & 0x80) ? CM_DECIMAL_ALLOW_NEGATIVE : 0;
    int64_t v;
    if (cm_decimal_parse_n((const char *)data + 1, size - 1, scale, flags, &v) != 0)
        return 0;
    char text[CM_DECIMAL_STR_MAX];
    if (cm_decimal_format(v, scale, text, sizeof text) < 0)
        abort();
    int64_t again;
    if (cm_decimal_parse(text, scale, CM_DECIMAL_ALLOW_NEGATIVE, &again) != 0 || again != v)
        abort();
    return 0;
}
