#ifndef COMMON_CONFIG_H
#define COMMON_CONFIG_H
/*
 * Typed configuration from environment variables (12-factor).
 *
 * Every getter takes the variable's name and a fallback written as the
 * variable would be (e.g. "250ms", "8080"); a NULL fallback makes the
 * variable required. Problems are not fatal one by one: each getter records
 * them and returns a harmless value, and the service's main() calls
 * cm_config_finish() once, which prints one line per problem on stderr:
 *   wallet: config: DATABASE_URL is required but not set
 *   wallet: config: PORT must be an integer in [1, 65535], got "80a"
 * and returns -1, upon which main() exits with code 2.
 *
 * Strings returned are borrowed from the environment (or the fallback) and
 * live as long as the process does not change its environment.
 */
#include <stdint.h>

#define CM_CONFIG_MAX_ERRORS 16

struct cm_config {
    const char *service;
    int nerrors;
    char errors[CM_CONFIG_MAX_ERRORS][192];
};

void cm_config_init(struct cm_config *c, const char *service);

const char *cm_config_string(struct cm_config *c, const char *name, const char *fallback);
/* Like cm_config_string but the value must start with one of the schemes
 * listed, comma-separated (e.g. "postgres://,postgresql://"). */
const char *cm_config_url(struct cm_config *c, const char *name, const char *fallback,
                          const char *schemes);
int64_t cm_config_int(struct cm_config *c, const char *name, const char *fallback, int64_t min,
                      int64_t max);
int cm_config_port(struct cm_config *c, const char *name, const char *fallback);
/* true/false/1/0/yes/no/on/off -> 1/0. */
int cm_config_bool(struct cm_config *c, const char *name, const char *fallback);
/* "250ms", "2s", "5m", "1h", or a bare number of milliseconds. */
int64_t cm_config_duration_ms(struct cm_config *c, const char *name, const char *fallback);
/* Value must be one of the '|'-separated choices; returns its index. */
int cm_config_enum(struct cm_config *c, const char *name, const char *fallback,
                   const char *choices);

/* 0 when every getter succeeded; else prints the problems and returns -1. */
int cm_config_finish(struct cm_config *c);

/* Parsers behind the getters, exposed for reuse and tests: 0 or -1. */
int cm_parse_int64(const char *s, int64_t *out);
int cm_parse_duration_ms(const char *s, int64_t *out);
int cm_parse_bool(const char *s, int *out);

#endif
