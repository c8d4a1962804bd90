/* The catalog's routes (health, metrics and the admin routes come from libcommon). */
#include "catalog.h"
#include "common/banned.h"

const struct cm_http_route catalog_routes[] = {
    {"GET", "/catalog/products", h_products_list, 0, NULL},
    {"POST", "/catalog/products", h_product_create, CM_ROUTE_BODY, NULL},
    {"GET", "/catalog/products/{id}", h_product_get, 0, NULL},
    {"PUT", "/catalog/products/{id}", h_product_update, CM_ROUTE_BODY, NULL},
    {"DELETE", "/catalog/products/{id}", h_product_delete, 0, NULL},
    {"GET", "/catalog/categories", h_categories_list, 0, NULL},
    {"POST", "/catalog/categories", h_category_create, CM_ROUTE_BODY, NULL},
    {"GET", "/catalog/categories/{id}", h_category_get, 0, NULL},
    {"PUT", "/catalog/categories/{id}", h_category_update, CM_ROUTE_BODY, NULL},
    {"DELETE", "/catalog/categories/{id}", h_category_delete, 0, NULL},
    {"POST", "/internal/stock/reserve", h_stock_reserve, CM_ROUTE_BODY, NULL},
    {"POST", "/internal/stock/release", h_stock_release, CM_ROUTE_BODY, NULL},
};
const size_t catalog_nroutes = sizeof catalog_routes / sizeof catalog_routes[0];
