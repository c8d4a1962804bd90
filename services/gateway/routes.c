/*
 * The gateway's HTTP surface. Its own resources are listed one by one; all
 * else under /v1 and /api goes to the proxy, which picks the upstream from
 * the routes file (GATEWAY_ROUTES_FILE), so the table below never changes
 * when a service is added.
 */
#include "gateway.h"
#include "common/banned.h"

#define PROXY(m, p)                                                                                \
    {                                                                                              \
        m, p, gw_proxy_handle, CM_ROUTE_BODY, NULL                                                 \
    }

const struct cm_http_route gw_http_routes[] = {
    /* method  pattern                   handler         flags          ctx */
    {"POST", "/v1/auth/register", auth_register, CM_ROUTE_BODY, NULL},
    {"POST", "/v1/auth/login", auth_login, CM_ROUTE_BODY, NULL},
    {"POST", "/v1/auth/refresh", auth_refresh, CM_ROUTE_BODY, NULL},
    {"POST", "/v1/auth/logout", auth_logout, CM_ROUTE_BODY, NULL},
    {"GET", "/.well-known/jwks.json", auth_jwks, 0, NULL},
    PROXY("GET", "/v1/*"),
    PROXY("POST", "/v1/*"),
    PROXY("PUT", "/v1/*"),
    PROXY("PATCH", "/v1/*"),
    PROXY("DELETE", "/v1/*"),
    PROXY("GET", "/api/*"),
    PROXY("POST", "/api/*"),
    PROXY("PUT", "/api/*"),
    PROXY("PATCH", "/api/*"),
    PROXY("DELETE", "/api/*"),
};

const size_t gw_http_nroutes = sizeof gw_http_routes / sizeof gw_http_routes[0];
