/* The risk service's routes (proto/openapi/risk.yaml). Health, metrics
 * and the fault/log-level admin routes are mounted by the HTTP server. */
#include "risk.h"
#include "common/banned.h"

const struct cm_http_route risk_routes[] = {
    {"POST", "/v1/pretrade", handle_pretrade, CM_ROUTE_BODY, NULL},
    {"GET", "/admin/rules", handle_admin_rules, CM_ROUTE_ADMIN, NULL},
    {"GET", "/admin/users/{id}/risk", handle_admin_user, CM_ROUTE_ADMIN, NULL},
    {"POST", "/admin/users/{id}/unblock", handle_admin_unblock, CM_ROUTE_ADMIN, NULL},
};
const size_t risk_nroutes = sizeof risk_routes / sizeof risk_routes[0];
