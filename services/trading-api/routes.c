/* trading-api's routes (health, metrics and /admin come from libcommon). */
#include "trading.h"
#include "common/banned.h"

const struct cm_http_route trading_routes[] = {
    {"GET", "/v1/markets", h_markets_list, 0, NULL},
    {"GET", "/v1/markets/{market}/trades", h_market_trades, 0, NULL},
    {"GET", "/v1/markets/{market}/candles", h_market_candles, 0, NULL},
    {"GET", "/v1/markets/{market}/book", h_market_book, 0, NULL},
    {"GET", "/v1/markets/{market}/ticker", h_market_ticker, 0, NULL},
    {"GET", "/v1/markets/{market}/stream", h_market_stream, CM_ROUTE_NO_LOG, NULL},
    {"POST", "/v1/orders", h_order_place, CM_ROUTE_BODY, NULL},
    {"GET", "/v1/orders", h_orders_list, 0, NULL},
    {"DELETE", "/v1/orders", h_orders_cancel_all, 0, NULL},
    {"GET", "/v1/orders/{id}", h_order_get, 0, NULL},
    {"DELETE", "/v1/orders/{id}", h_order_cancel, 0, NULL},
    {"GET", "/internal/orders/{id}", h_internal_order, 0, NULL},
};
const size_t trading_nroutes = sizeof trading_routes / sizeof trading_routes[0];
