/*
 * The routes file: which public prefix goes to which upstream, with what
 * timeout, authentication, rate-limit class and prefix rewrite. Routing is
 * data, not C: adding a service is an edit of routes.json.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gateway.h"
#include "common/banned.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Only the listed members may appear. */
static int known_members(const cJSON *obj, const char *const *names, const char *where, char *err,
                         size_t errlen)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        int ok = 0;
        for (const char *const *n = names; *n; n++)
            if (m->string && strcmp(m->string, *n) == 0)
                ok = 1;
        if (!ok)
            return fail(err, errlen, "%s: unknown member \"%s\"", where,
                        m->string ? m->string : "");
    }
    return 0;
}

static int get_int(const cJSON *obj, const char *name, int64_t def, int64_t min, int64_t max,
                   int64_t *out, const char *where, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble ||
        v->valuedouble < (double)min || v->valuedouble > (double)max)
        return fail(err, errlen, "%s: %s must be an integer in [%lld, %lld]", where, name,
                    (long long)min, (long long)max);
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int copy_name(char *dst, size_t dstsz, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= dstsz)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return -1;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

static int valid_env(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 64 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* "/a/b": starts with '/', no trailing '/', no empty segment, no '?', '#',
 * '%', spaces or control characters. */
static int valid_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n >= GW_PREFIX_MAX || s[0] != '/' || s[n - 1] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '*')
            return 0;
        if (c == '/' && s[i + 1] == '/')
            return 0;
    }
    return 1;
}

static int parse_limit(const cJSON *v, struct gw_limit *l, const char *where, char *err,
                       size_t errlen)
{
    static const char *const names[] = {"rate", "burst", NULL};
    if (!cJSON_IsObject(v))
        return fail(err, errlen, "%s must be an object {\"rate\":..,\"burst\":..}", where);
    if (known_members(v, names, where, err, errlen) < 0)
        return -1;
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(v, "rate");
    const cJSON *burst = cJSON_GetObjectItemCaseSensitive(v, "burst");
    if (!cJSON_IsNumber(rate) || !(rate->valuedouble > 0) || rate->valuedouble > 1e6)
        return fail(err, errlen, "%s: rate must be a number of requests per second in (0, 1e6]",
                    where);
    if (!cJSON_IsNumber(burst) || burst->valuedouble < 1 || burst->valuedouble > 1e7 ||
        burst->valuedouble != (double)(int64_t)burst->valuedouble)
        return fail(err, errlen, "%s: burst must be an integer in [1, 1e7]", where);
    l->rate = rate->valuedouble;
    l->burst = burst->valuedouble;
    return 0;
}

static int parse_classes(const cJSON *obj, struct gw_routes *rt, char *err, size_t errlen)
{
    static const char *const names[] = {"user", "ip", "lease", NULL};
    if (!cJSON_IsObject(obj))
        return fail(err, errlen, "rate_limits must be an object of classes");
    const cJSON *c;
    cJSON_ArrayForEach(c, obj)
    {
        if (rt->nclasses >= GW_MAX_CLASSES)
            return fail(err, errlen, "rate_limits: more than %d classes", GW_MAX_CLASSES);
        struct gw_class *k = &rt->classes[rt->nclasses];
        char where[96];
        snprintf(where, sizeof where, "rate_limits.%s", c->string);
        if (copy_name(k->name, sizeof k->name, c->string) < 0)
            return fail(err, errlen, "%s: class names are [a-z0-9_-]{1,47}", where);
        if (!cJSON_IsObject(c))
            return fail(err, errlen, "%s must be an object", where);
        if (known_members(c, names, where, err, errlen) < 0)
            return -1;
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(c, "user");
        const cJSON *ip = cJSON_GetObjectItemCaseSensitive(c, "ip");
        char w2[112];
        if (u) {
            snprintf(w2, sizeof w2, "%s.user", where);
            if (parse_limit(u, &k->user, w2, err, errlen) < 0)
                return -1;
            k->has_user = 1;
        }
        if (ip) {
            snprintf(w2, sizeof w2, "%s.ip", where);
            if (parse_limit(ip, &k->ip, w2, err, errlen) < 0)
                return -1;
            k->has_ip = 1;
        }
        if (!u && !ip)
            return fail(err, errlen, "%s needs \"user\" and/or \"ip\"", where);
        int64_t lease;
        if (get_int(c, "lease", 1, 1, 10000, &lease, where, err, errlen) < 0)
            return -1;
        k->lease = (int)lease;
        rt->nclasses++;
    }
    return 0;
}

static int parse_upstreams(const cJSON *obj, struct gw_routes *rt, char *err, size_t errlen)
{
    static const char *const names[] = {"env", "breaker", "connect_timeout_ms", "pool_size", NULL};
    static const char *const bnames[] = {"consecutive_failures", "open_ms", NULL};
    if (!cJSON_IsObject(obj) || !obj->child)
        return fail(err, errlen, "upstreams must be a non-empty object");
    const cJSON *u;
    cJSON_ArrayForEach(u, obj)
    {
        if (rt->nupstreams >= GW_MAX_UPSTREAMS)
            return fail(err, errlen, "upstreams: more than %d", GW_MAX_UPSTREAMS);
        struct gw_upstream *up = &rt->upstreams[rt->nupstreams];
        char where[96];
        snprintf(where, sizeof where, "upstreams.%s", u->string);
        if (copy_name(up->name, sizeof up->name, u->string) < 0)
            return fail(err, errlen, "%s: upstream names are [a-z0-9_-]{1,47}", where);
        if (!cJSON_IsObject(u))
            return fail(err, errlen, "%s must be an object", where);
        if (known_members(u, names, where, err, errlen) < 0)
            return -1;
        const cJSON *env = cJSON_GetObjectItemCaseSensitive(u, "env");
        if (!cJSON_IsString(env) || !valid_env(env->valuestring))
            return fail(err, errlen, "%s: env must name an environment variable ([A-Z_][A-Z0-9_]*)",
                        where);
        snprintf(up->env, sizeof up->env, "%s", env->valuestring);
        int64_t v;
        if (get_int(u, "connect_timeout_ms", 1000, 1, 60000, &v, where, err, errlen) < 0)
            return -1;
        up->connect_timeout_ms = v;
        if (get_int(u, "pool_size", 64, 1, 1024, &v, where, err, errlen) < 0)
            return -1;
        up->pool_size = (int)v;
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(u, "breaker");
        up->consecutive_failures = 5;
        up->open_ms = 10000;
        if (b) {
            char w2[112];
            snprintf(w2, sizeof w2, "%s.breaker", where);
            if (!cJSON_IsObject(b))
                return fail(err, errlen, "%s must be an object", w2);
            if (known_members(b, bnames, w2, err, errlen) < 0)
                return -1;
            if (get_int(b, "consecutive_failures", 5, 1, 1000, &v, w2, err, errlen) < 0)
                return -1;
            up->consecutive_failures = (int)v;
            if (get_int(b, "open_ms", 10000, 1, 3600000, &v, w2, err, errlen) < 0)
                return -1;
            up->open_ms = v;
        }
        for (int i = 0; i < rt->nupstreams; i++)
            if (strcmp(rt->upstreams[i].name, up->name) == 0)
                return fail(err, errlen, "%s: duplicate upstream", where);
        rt->nupstreams++;
    }
    return 0;
}

static int find_upstream(const struct gw_routes *rt, const char *name)
{
    for (int i = 0; i < rt->nupstreams; i++)
        if (strcmp(rt->upstreams[i].name, name) == 0)
            return i;
    return -1;
}

int gw_routes_class(const struct gw_routes *rt, const char *name)
{
    for (int i = 0; i < rt->nclasses; i++)
        if (strcmp(rt->classes[i].name, name) == 0)
            return i;
    return -1;
}

static int parse_route(const cJSON *o, int idx, struct gw_routes *rt, char *err, size_t errlen)
{
    static const char *const names[] = {"prefix",      "upstream", "rewrite",
                                        "timeout_ms",  "auth",     "rate_limit",
                                        "block_check", "stream",   NULL};
    char where[64];
    snprintf(where, sizeof where, "routes[%d]", idx);
    if (!cJSON_IsObject(o))
        return fail(err, errlen, "%s must be an object", where);
    if (known_members(o, names, where, err, errlen) < 0)
        return -1;
    struct gw_route *r = &rt->routes[rt->nroutes];
    memset(r, 0, sizeof *r);
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(o, "prefix");
    if (!cJSON_IsString(prefix) || !valid_prefix(prefix->valuestring))
        return fail(err, errlen,
                    "%s: prefix must be a path like \"/v1/orders\" (no trailing '/', '?', '*')",
                    where);
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix->valuestring);
    r->prefix_len = strlen(r->prefix);
    const cJSON *rw = cJSON_GetObjectItemCaseSensitive(o, "rewrite");
    if (rw) {
        if (!cJSON_IsString(rw) || !valid_prefix(rw->valuestring))
            return fail(err, errlen, "%s: rewrite must be a path like \"/catalog/products\"",
                        where);
        snprintf(r->rewrite, sizeof r->rewrite, "%s", rw->valuestring);
        r->has_rewrite = 1;
    }
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(o, "upstream");
    if (!cJSON_IsString(up) || (r->upstream = find_upstream(rt, up->valuestring)) < 0)
        return fail(err, errlen, "%s: upstream must name one of \"upstreams\"", where);
    if (get_int(o, "timeout_ms", 5000, 1, 600000, &r->timeout_ms, where, err, errlen) < 0)
        return -1;
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(o, "auth");
    if (!auth || (cJSON_IsString(auth) && strcmp(auth->valuestring, "required") == 0))
        r->auth = GW_AUTH_REQUIRED;
    else if (cJSON_IsString(auth) && strcmp(auth->valuestring, "public") == 0)
        r->auth = GW_AUTH_PUBLIC;
    else if (cJSON_IsString(auth) && strcmp(auth->valuestring, "public_read") == 0)
        r->auth = GW_AUTH_PUBLIC_READ;
    else
        return fail(err, errlen, "%s: auth must be \"required\", \"public\" or \"public_read\"",
                    where);
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(o, "rate_limit");
    const char *cls = "default";
    if (rl) {
        if (!cJSON_IsString(rl))
            return fail(err, errlen, "%s: rate_limit must be a class name", where);
        cls = rl->valuestring;
    }
    if ((r->rl_class = gw_routes_class(rt, cls)) < 0)
        return fail(err, errlen, "%s: rate-limit class \"%s\" is not in rate_limits", where, cls);
    const cJSON *bc = cJSON_GetObjectItemCaseSensitive(o, "block_check");
    if (bc && !cJSON_IsBool(bc))
        return fail(err, errlen, "%s: block_check must be true or false", where);
    r->block_check = cJSON_IsTrue(bc);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stream");
    if (st && !cJSON_IsBool(st))
        return fail(err, errlen, "%s: stream must be true or false", where);
    r->stream = cJSON_IsTrue(st);
    for (int i = 0; i < rt->nroutes; i++)
        if (strcmp(rt->routes[i].prefix, r->prefix) == 0)
            return fail(err, errlen, "%s: duplicate prefix %s", where, r->prefix);
    rt->nroutes++;
    return 0;
}

int gw_routes_parse(const char *json, struct gw_routes *out, char *err, size_t errlen)
{
    static const char *const names[] = {"upstreams", "rate_limits", "auth_rate_limit",
                                        "routes",    "$comment",    NULL};
    memset(out, 0, sizeof *out);
    cJSON *doc = cJSON_Parse(json ? json : "");
    int rc = -1;
    if (!cJSON_IsObject(doc)) {
        fail(err, errlen, "not a JSON object");
        goto done;
    }
    if (known_members(doc, names, "routes file", err, errlen) < 0 ||
        parse_upstreams(cJSON_GetObjectItemCaseSensitive(doc, "upstreams"), out, err, errlen) < 0 ||
        parse_classes(cJSON_GetObjectItemCaseSensitive(doc, "rate_limits"), out, err, errlen) < 0)
        goto done;
    const cJSON *ac = cJSON_GetObjectItemCaseSensitive(doc, "auth_rate_limit");
    const char *acn = cJSON_IsString(ac) ? ac->valuestring : "auth";
    if ((ac && !cJSON_IsString(ac)) || (out->auth_class = gw_routes_class(out, acn)) < 0) {
        fail(err, errlen, "auth_rate_limit: class \"%s\" is not in rate_limits", acn);
        goto done;
    }
    if (gw_routes_class(out, "default") < 0) {
        fail(err, errlen, "rate_limits needs a \"default\" class");
        goto done;
    }
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(doc, "routes");
    if (!cJSON_IsArray(routes) || cJSON_GetArraySize(routes) == 0) {
        fail(err, errlen, "routes must be a non-empty array");
        goto done;
    }
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, routes)
    {
        if (out->nroutes >= GW_MAX_ROUTES) {
            fail(err, errlen, "routes: more than %d", GW_MAX_ROUTES);
            goto done;
        }
        if (parse_route(r, i++, out, err, errlen) < 0)
            goto done;
    }
    rc = 0;
done:
    cJSON_Delete(doc);
    return rc;
}

int gw_routes_load(const char *file, struct gw_routes *out, char *err, size_t errlen)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return fail(err, errlen, "%s: %s", file, strerror(errno));
    struct cm_buf b;
    cm_buf_init(&b, 256 * 1024);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cm_buf_append(&b, chunk, n) < 0) {
            rc = fail(err, errlen, "%s: larger than 256 KiB", file);
            break;
        }
    fclose(f);
    if (rc == 0) {
        char inner[256];
        rc = gw_routes_parse(b.data ? b.data : "", out, inner, sizeof inner);
        if (rc < 0)
            fail(err, errlen, "%s: %s", file, inner);
    }
    cm_buf_release(&b);
    return rc;
}

int gw_routes_resolve(struct gw_routes *rt, char *err, size_t errlen)
{
    for (int i = 0; i < rt->nupstreams; i++) {
        struct gw_upstream *u = &rt->upstreams[i];
        const char *v = getenv(u->env);
        if (!v || !*v)
            return fail(err, errlen, "%s is required (upstream %s) but not set", u->env, u->name);
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return fail(err, errlen, "%s must be an http(s) URL, got \"%s\"", u->env, v);
        u->url = v;
    }
    return 0;
}

const struct gw_route *gw_routes_match(const struct gw_routes *rt, const char *path)
{
    const struct gw_route *best = NULL;
    for (int i = 0; i < rt->nroutes; i++) {
        const struct gw_route *r = &rt->routes[i];
        if (strncmp(path, r->prefix, r->prefix_len) != 0)
            continue;
        char next = path[r->prefix_len];
        if (next != '\0' && next != '/')
            continue;
        if (!best || r->prefix_len > best->prefix_len)
            best = r;
    }
    return best;
}

int gw_routes_rewrite(const struct gw_route *r, const char *path, char *out, size_t outsz)
{
    const char *head = r->has_rewrite ? r->rewrite : r->prefix;
    const char *rest = path + r->prefix_len;
    int n = snprintf(out, outsz, "%s%s", head, rest);
    return (n < 0 || (size_t)n >= outsz) ? -1 : 0;
}
