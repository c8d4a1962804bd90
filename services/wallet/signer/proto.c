/* The signer's request format: strict, size-capped, pure (unit-tested). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "signer.h"
#include "common/banned.h"

static int charset(const char *s, size_t min, size_t max, const char *extra, int alnum)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(alnum && isalnum(c)) && !(extra && strchr(extra, c)))
            return 0;
    }
    return 1;
}

static int valid_id(const char *s)
{
    return isalnum((unsigned char)s[0]) && charset(s, 1, 64, "._:-", 1);
}

static int valid_asset(const char *s)
{
    return charset(s, 2, 12, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 0);
}

static int valid_address(const char *s)
{
    return charset(s, 8, 128, ":_-", 1);
}

/* ^(0|[1-9][0-9]*)(\.[0-9]+)?$, at most 64 characters. */
static int valid_amount(const char *s)
{
    size_t n = strlen(s), i = 0;
    if (n == 0 || n > 64 || !isdigit((unsigned char)s[0]))
        return 0;
    if (s[0] == '0' && n > 1 && s[1] != '.')
        return 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == n)
        return 1;
    if (s[i] != '.' || i + 1 == n)
        return 0;
    for (i++; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int signer_parse_request(const char *line, size_t len, struct sign_req *req, char *err,
                         size_t errlen)
{
    static const char *const names[] = {"withdrawal_id", "asset", "address", "amount"};
    int (*const valid[])(const char *) = {valid_id, valid_asset, valid_address, valid_amount};
    char *dst[4] = {req->withdrawal_id, req->asset, req->address, req->amount};
    size_t cap[4] = {sizeof req->withdrawal_id, sizeof req->asset, sizeof req->address,
                     sizeof req->amount};
    memset(req, 0, sizeof *req);
    if (len == 0 || len >= SIGNER_MAX_LINE || memchr(line, '\0', len)) {
        snprintf(err, errlen, len >= SIGNER_MAX_LINE ? "request_too_large" : "malformed");
        return -1;
    }
    cJSON *o = cJSON_ParseWithLength(line, len);
    int rc = -1;
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "malformed");
        goto out;
    }
    int seen[4] = {0};
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (it->string && strcmp(it->string, names[i]) == 0)
                k = i;
        if (k < 0) {
            snprintf(err, errlen, "unknown_field");
            goto out;
        }
        if (seen[k]++ || !cJSON_IsString(it) || strlen(it->valuestring) >= cap[k] ||
            !valid[k](it->valuestring)) {
            snprintf(err, errlen, "bad_%s", names[k]);
            goto out;
        }
        memcpy(dst[k], it->valuestring, strlen(it->valuestring) + 1);
    }
    for (int i = 0; i < 4; i++)
        if (!seen[i]) {
            snprintf(err, errlen, "missing_field");
            goto out;
        }
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

int signer_message(const struct sign_req *req, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "exlab-withdrawal-v1\n%s\n%s\n%s\n%s", req->withdrawal_id,
                     req->asset, req->address, req->amount);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

void signer_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int signer_unhex(const char *hex, unsigned char *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
