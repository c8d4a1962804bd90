/* The order service's routes (health, metrics and the admin routes come from libcommon). */
#include "order.h"
#include "common/banned.h"

const struct cm_http_route order_routes[] = {
    {"POST", "/orders", h_order_create, CM_ROUTE_BODY, NULL},
    {"GET", "/orders/{id}", h_order_get, 0, NULL},
    {"PUT", "/orders/{id}/status", h_order_status, CM_ROUTE_BODY, NULL},
    {"GET", "/orders/user/{userId}", h_orders_of_user, 0, NULL},
};
const size_t order_nroutes = sizeof order_routes / sizeof order_routes[0];
