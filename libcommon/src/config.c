#include "common/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/banned.h"

void cm_config_init(struct cm_config *c, const char *service)
{
    memset(c, 0, sizeof *c);
    c->service = service;
}

__attribute__((format(printf, 2, 3))) static void problem(struct cm_config *c, const char *fmt, ...)
{
    if (c->nerrors >= CM_CONFIG_MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errors[c->nerrors++], sizeof c->errors[0], fmt, ap);
    va_end(ap);
}

/* The raw text: the variable, else the fallback; NULL (and a problem) if neither. */
static const char *raw(struct cm_config *c, const char *name, const char *fallback)
{
    const char *v = getenv(name);
    if (v && *v)
        return v;
    if (!fallback)
        problem(c, "%s is required but not set", name);
    return fallback;
}

int cm_parse_int64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || s[0] == ' ' || s[0] == '+')
        return -1;
    *out = (int64_t)v;
    return 0;
}

int cm_parse_duration_ms(const char *s, int64_t *out)
{
    if (!s || !*s || s[0] < '0' || s[0] > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return -1;
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].ms)
                return -1;
            *out = v * units[i].ms;
            return 0;
        }
    }
    return -1;
}

int cm_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

const char *cm_config_string(struct cm_config *c, const char *name, const char *fallback)
{
    const char *v = raw(c, name, fallback);
    return v ? v : "";
}

const char *cm_config_url(struct cm_config *c, const char *name, const char *fallback,
                          const char *schemes)
{
    const char *v = raw(c, name, fallback);
    if (!v)
        return "";
    const char *p = schemes;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n && strncmp(v, p, n) == 0 && v[n])
            return v;
        p = comma ? comma + 1 : NULL;
    }
    problem(c, "%s must be a URL starting with %s, got \"%.60s\"", name, schemes, v);
    return "";
}

int64_t cm_config_int(struct cm_config *c, const char *name, const char *fallback, int64_t min,
                      int64_t max)
{
    const char *v = raw(c, name, fallback);
    int64_t n;
    if (!v)
        return min;
    if (cm_parse_int64(v, &n) < 0 || n < min || n > max) {
        problem(c, "%s must be an integer in [%lld, %lld], got \"%.40s\"", name, (long long)min,
                (long long)max, v);
        return min;
    }
    return n;
}

int cm_config_port(struct cm_config *c, const char *name, const char *fallback)
{
    return (int)cm_config_int(c, name, fallback, 1, 65535);
}

int cm_config_bool(struct cm_config *c, const char *name, const char *fallback)
{
    const char *v = raw(c, name, fallback);
    int b = 0;
    if (v && cm_parse_bool(v, &b) < 0)
        problem(c, "%s must be true or false, got \"%.40s\"", name, v);
    return b;
}

int64_t cm_config_duration_ms(struct cm_config *c, const char *name, const char *fallback)
{
    const char *v = raw(c, name, fallback);
    int64_t ms = 0;
    if (v && cm_parse_duration_ms(v, &ms) < 0)
        problem(c, "%s must be a duration like 250ms, 2s or 5m, got \"%.40s\"", name, v);
    return ms;
}

int cm_config_enum(struct cm_config *c, const char *name, const char *fallback, const char *choices)
{
    const char *v = raw(c, name, fallback);
    if (!v)
        return 0;
    int idx = 0;
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (strlen(v) == n && strncasecmp(v, p, n) == 0)
            return idx;
        idx++;
        if (!bar)
            break;
        p = bar + 1;
    }
    problem(c, "%s must be one of %s, got \"%.40s\"", name, choices, v);
    return 0;
}

int cm_config_finish(struct cm_config *c)
{
    for (int i = 0; i < c->nerrors; i++)
        fprintf(stderr, "%s: config: %s\n", c->service ? c->service : "service", c->errors[i]);
    return c->nerrors ? -1 : 0;
}
