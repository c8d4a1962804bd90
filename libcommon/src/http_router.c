/*
 * Route matching: patterns are compiled once into segments; a request path
 * is compared segment by segment against every route (tables are small,
 * tens of rows). Nothing is allocated per request: parameters point into
 * the path and the server copies them into the request arena.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http_internal.h"
#include "common/banned.h"

void router_init(struct router *rt)
{
    memset(rt, 0, sizeof *rt);
}

void router_release(struct router *rt)
{
    free(rt->routes);
    memset(rt, 0, sizeof *rt);
}

static int compile(struct compiled_route *c, const char *pattern)
{
    if (!pattern || pattern[0] != '/')
        return -1;
    const char *p = pattern + 1;
    c->nsegs = 0;
    c->literals = 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (c->nsegs == ROUTER_MAX_SEGS || n == 0)
            return -1; /* "//" or a trailing "/" would never match cleanly */
        struct route_seg *s = &c->segs[c->nsegs++];
        if (n == 1 && p[0] == '*') {
            if (end)
                return -1; /* "*" only last */
            s->param = 2;
            s->text = "*";
            s->len = 1;
        } else if (p[0] == '{') {
            if (n < 3 || p[n - 1] != '}' || memchr(p + 1, '{', n - 2) || memchr(p + 1, '}', n - 2))
                return -1;
            s->param = 1;
            s->text = p + 1;
            s->len = n - 2;
        } else {
            if (memchr(p, '{', n) || memchr(p, '}', n))
                return -1;
            s->param = 0;
            s->text = p;
            s->len = n;
            c->literals++;
        }
        p += n;
        if (*p == '/')
            p++;
        if (end && !*p)
            return -1;
    }
    int params = 0;
    for (int i = 0; i < c->nsegs; i++)
        params += c->segs[i].param != 0;
    return params > ROUTER_MAX_PARAMS ? -1 : 0;
}

int router_add(struct router *rt, const struct cm_http_route *route)
{
    if (!route || !route->method || !route->handler)
        return -1;
    struct compiled_route c;
    memset(&c, 0, sizeof c);
    c.route = route;
    if (compile(&c, route->pattern) < 0) {
        cm_logf(CM_LOG_ERROR, "http: bad route pattern \"%s\"",
                route->pattern ? route->pattern : "(null)");
        return -1;
    }
    if (rt->n == rt->alloc) {
        size_t na = rt->alloc ? rt->alloc * 2 : 16;
        struct compiled_route *nr = realloc(rt->routes, na * sizeof *nr);
        if (!nr)
            return -1;
        rt->routes = nr;
        rt->alloc = na;
    }
    rt->routes[rt->n++] = c;
    return 0;
}

/* Matches path segments; fills params (pointing into path). */
static int match_path(const struct compiled_route *c, const char *path, struct route_param *params,
                      int *nparams)
{
    const char *p = path;
    int np = 0;
    if (*p != '/')
        return 0;
    p++;
    for (int i = 0; i < c->nsegs; i++) {
        const struct route_seg *s = &c->segs[i];
        if (s->param == 2) {
            params[np].name = s->text;
            params[np].name_len = s->len;
            params[np].value = p;
            params[np].len = strlen(p);
            *nparams = np + 1;
            return 1;
        }
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0)
            return 0;
        if (s->param) {
            params[np].name = s->text;
            params[np].name_len = s->len;
            params[np].value = p;
            params[np].len = n;
            np++;
        } else if (n != s->len || memcmp(p, s->text, n) != 0) {
            return 0;
        }
        p += n;
        if (*p == '/') {
            p++;
            if (!*p)
                return 0; /* trailing slash: a different resource */
        }
    }
    if (*p)
        return 0;
    *nparams = np;
    return 1;
}

static int method_is(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return 1;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void add_allow(struct route_match *m, const char *method)
{
    size_t mlen = strlen(method);
    const char *p = m->allow;
    while ((p = strstr(p, method)) != NULL) {
        if ((p == m->allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
            return;
        p += mlen;
    }
    size_t len = strlen(m->allow);
    snprintf(m->allow + len, sizeof m->allow - len, "%s%s", len ? ", " : "", method);
}

int router_match(const struct router *rt, const char *method, const char *path,
                 struct route_match *m)
{
    struct route_param params[ROUTER_MAX_PARAMS];
    int np = 0;
    int best = -1;
    m->route = NULL;
    m->nparams = 0;
    m->path_known = 0;
    m->allow[0] = '\0';
    for (size_t i = 0; i < rt->n; i++) {
        const struct compiled_route *c = &rt->routes[i];
        if (!match_path(c, path, params, &np))
            continue;
        if (!method_is(c->route->method, method)) {
            m->path_known = 1;
            add_allow(m, c->route->method);
            if (strcmp(c->route->method, "GET") == 0)
                add_allow(m, "HEAD");
            continue;
        }
        /* Score: literal segments, then exactness (no "*"). */
        int score = c->literals * 2 + (c->nsegs && c->segs[c->nsegs - 1].param == 2 ? 0 : 1);
        if (score > best) {
            best = score;
            m->route = c;
            memcpy(m->params, params, (size_t)np * sizeof params[0]);
            m->nparams = np;
        }
    }
    return m->route ? 0 : -1;
}
