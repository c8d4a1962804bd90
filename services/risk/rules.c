/*
 * The rules file (RISK_RULES_FILE, JSON): parsing, validation, rendering.
 * A file is accepted whole or not at all, so a reload with one bad rule
 * keeps every old rule in effect.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/decimal.h"
#include "engine.h"
#include "common/banned.h"

static const char *const kind_names[RK_COUNT] = {
    "max_order_notional",  "max_open_orders",        "order_rate", "price_band", "wash_trading",
    "withdrawal_velocity", "exposure_concentration",
};
static const char *const action_names[] = {"alert", "block", "simulate"};
static const char *const severity_names[] = {"info", "warning", "critical"};

/* Default windows per kind, in seconds (0: the kind has no window). */
static const int64_t default_window[RK_COUNT] = {0, 0, 1, 0, 60, 3600, 0};

const char *risk_kind_name(enum risk_kind k)
{
    return (unsigned)k < RK_COUNT ? kind_names[k] : "unknown";
}

const char *risk_action_name(enum risk_action a)
{
    return (unsigned)a < 3 ? action_names[a] : "unknown";
}

const char *risk_severity_name(enum risk_severity s)
{
    return (unsigned)s < 3 ? severity_names[s] : "unknown";
}

int risk_kind_is_amount(enum risk_kind k)
{
    return k == RK_MAX_ORDER_NOTIONAL || k == RK_WITHDRAWAL_VELOCITY ||
           k == RK_EXPOSURE_CONCENTRATION;
}

static int lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RISK_RULE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '_' || c == '.' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Optional positive integer field: 0 absent, 1 set, -1 bad. */
static int int_field(const cJSON *o, const char *name, int64_t min, int64_t max, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int64_t)it->valuedouble)
        return -1;
    int64_t v = (int64_t)it->valuedouble;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 1;
}

static int parse_rule(const cJSON *o, int64_t default_ttl_s, struct risk_rule *r, char *err,
                      size_t errlen)
{
    memset(r, 0, sizeof *r);
    const char *id = str_field(o, "id");
    if (!cJSON_IsObject(o) || !id || !valid_id(id)) {
        snprintf(err, errlen, "id missing or not ^[a-z0-9][a-z0-9_.-]{0,63}$");
        return -1;
    }
    snprintf(r->id, sizeof r->id, "%s", id);
    const char *kind = str_field(o, "kind"), *sev = str_field(o, "severity"),
               *act = str_field(o, "action");
    int k = kind ? lookup(kind, kind_names, RK_COUNT) : -1;
    if (k < 0) {
        snprintf(err, errlen, "rule %s: unknown kind", id);
        return -1;
    }
    r->kind = (enum risk_kind)k;
    int s = sev ? lookup(sev, severity_names, 3) : (int)RS_WARNING;
    if (s < 0) {
        snprintf(err, errlen, "rule %s: severity must be info, warning or critical", id);
        return -1;
    }
    r->severity = (enum risk_severity)s;
    int a = act ? lookup(act, action_names, 3) : -1;
    if (a < 0) {
        snprintf(err, errlen, "rule %s: action must be alert, block or simulate", id);
        return -1;
    }
    r->action = (enum risk_action)a;

    const cJSON *th = cJSON_GetObjectItemCaseSensitive(o, "threshold");
    int scale = risk_kind_is_amount(r->kind) ? RISK_SCALE : 0;
    if (cJSON_IsNumber(th) && scale == 0 && th->valuedouble == (double)(int64_t)th->valuedouble) {
        r->threshold = (int64_t)th->valuedouble;
    } else if (!cJSON_IsString(th) ||
               cm_decimal_parse(th->valuestring, scale, 0, &r->threshold) < 0) {
        snprintf(err, errlen, "rule %s: threshold must be a decimal string%s", id,
                 scale ? " (at most 8 decimals)" : " holding an integer");
        return -1;
    }
    if (r->threshold < 1 || (r->kind == RK_WASH_TRADING && r->threshold > RISK_WASH_RING) ||
        (r->kind == RK_PRICE_BAND && r->threshold > 1000000)) {
        snprintf(err, errlen, "rule %s: threshold out of range", id);
        return -1;
    }
    r->window_s = default_window[r->kind];
    int64_t wmax = r->kind == RK_ORDER_RATE ? RISK_MAX_WINDOW_S : 30 * 86400;
    if (int_field(o, "window_s", 1, wmax, &r->window_s) < 0) {
        snprintf(err, errlen, "rule %s: window_s must be an integer in [1, %lld]", id,
                 (long long)wmax);
        return -1;
    }
    r->block_ttl_s = default_ttl_s;
    if (int_field(o, "block_ttl_s", 1, 30 * 86400, &r->block_ttl_s) < 0) {
        snprintf(err, errlen, "rule %s: block_ttl_s must be a positive integer", id);
        return -1;
    }
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "enabled");
    if (en && !cJSON_IsBool(en)) {
        snprintf(err, errlen, "rule %s: enabled must be true or false", id);
        return -1;
    }
    r->enabled = en ? cJSON_IsTrue(en) : 1;
    return 0;
}

struct risk_rules *risk_rules_parse(const char *json, int64_t default_ttl_s, char *err,
                                    size_t errlen)
{
    struct risk_rules *out = NULL;
    cJSON *doc = cJSON_Parse(json);
    if (!doc) {
        snprintf(err, errlen, "not valid JSON");
        return NULL;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "rules");
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "no \"rules\" array");
        goto fail;
    }
    out = calloc(1, sizeof *out);
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (!out || n > 1000 || !(out->v = calloc(n ? n : 1, sizeof *out->v))) {
        snprintf(err, errlen, n > 1000 ? "more than 1000 rules" : "out of memory");
        goto fail;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        char why[200];
        if (parse_rule(it, default_ttl_s, &out->v[out->n], why, sizeof why) < 0) {
            snprintf(err, errlen, "rules[%zu]: %s", out->n, why);
            goto fail;
        }
        for (size_t i = 0; i < out->n; i++)
            if (strcmp(out->v[i].id, out->v[out->n].id) == 0) {
                snprintf(err, errlen, "rules[%zu]: duplicate id %s", out->n, out->v[i].id);
                goto fail;
            }
        out->n++;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    out->loaded_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    cJSON_Delete(doc);
    return out;
fail:
    risk_rules_free(out);
    cJSON_Delete(doc);
    return NULL;
}

struct risk_rules *risk_rules_load(const char *path, int64_t default_ttl_s, char *err,
                                   size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1u << 20;
    char *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
    fclose(f);
    if (!buf || n > cap) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, buf ? "larger than 1 MiB" : "out of memory");
        return NULL;
    }
    buf[n] = '\0';
    char why[256];
    struct risk_rules *r = risk_rules_parse(buf, default_ttl_s, why, sizeof why);
    free(buf);
    if (!r) {
        snprintf(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    snprintf(r->source, sizeof r->source, "%s", path);
    return r;
}

void risk_rules_free(struct risk_rules *r)
{
    if (!r)
        return;
    free(r->v);
    free(r);
}

void risk_format_ts(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void add_ts(cJSON *o, const char *name, int64_t ms)
{
    char buf[RISK_TS_MAX];
    risk_format_ts(ms, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

cJSON *risk_rules_json(const struct risk_rules *r)
{
    cJSON *o = cJSON_CreateObject();
    add_ts(o, "loaded_at", r ? r->loaded_at_ms : 0);
    if (r && r->source[0])
        cJSON_AddStringToObject(o, "source", r->source);
    cJSON *arr = cJSON_AddArrayToObject(o, "rules");
    for (size_t i = 0; r && i < r->n; i++) {
        const struct risk_rule *x = &r->v[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", x->id);
        cJSON_AddStringToObject(j, "kind", risk_kind_name(x->kind));
        cJSON_AddStringToObject(j, "severity", risk_severity_name(x->severity));
        cJSON_AddStringToObject(j, "action", risk_action_name(x->action));
        char th[CM_DECIMAL_STR_MAX];
        cm_decimal_format(x->threshold, risk_kind_is_amount(x->kind) ? RISK_SCALE : 0, th,
                          sizeof th);
        cJSON_AddStringToObject(j, "threshold", th);
        if (x->window_s > 0)
            cJSON_AddNumberToObject(j, "window_s", (double)x->window_s);
        if (x->action == RA_BLOCK || x->action == RA_SIMULATE)
            cJSON_AddNumberToObject(j, "block_ttl_s", (double)x->block_ttl_s);
        cJSON_AddBoolToObject(j, "enabled", x->enabled);
        cJSON_AddItemToArray(arr, j);
    }
    return o;
}
