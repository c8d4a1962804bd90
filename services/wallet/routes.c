/*
 * The wallet's routes (health, metrics and the fault/loglevel admin routes
 * come from libcommon). The /v1 routes come through the gateway with
 * X-User-Id; the /internal routes are for trading-api; the /admin routes
 * need ADMIN_TOKEN.
 */
#include "wallet.h"
#include "common/banned.h"

const struct cm_http_route wallet_routes[] = {
    {"GET", "/v1/balances", h_balances, 0, NULL},
    {"GET", "/v1/ledger", h_ledger, 0, NULL},
    {"POST", "/v1/deposits", h_deposit_create, CM_ROUTE_BODY, NULL},
    {"GET", "/v1/deposits", h_deposits_list, 0, NULL},
    {"POST", "/v1/withdrawals", h_withdrawal_create, CM_ROUTE_BODY, NULL},
    {"GET", "/v1/withdrawals/{id}", h_withdrawal_get, 0, NULL},
    {"POST", "/internal/holds", h_hold_place, CM_ROUTE_BODY, NULL},
    {"GET", "/internal/holds/{id}", h_hold_get, 0, NULL},
    {"DELETE", "/internal/holds/{id}", h_hold_release, 0, NULL},
    {"POST", "/admin/deposits/{id}/credit", h_deposit_credit, CM_ROUTE_ADMIN, NULL},
    {"POST", "/admin/withdrawals/{id}/approve", h_withdrawal_approve, CM_ROUTE_ADMIN, NULL},
    {"POST", "/admin/addresses", h_address_add, CM_ROUTE_ADMIN | CM_ROUTE_BODY, NULL},
};
const size_t wallet_nroutes = sizeof wallet_routes / sizeof wallet_routes[0];
