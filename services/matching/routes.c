/* The matching service's HTTP routes: read-only book depth. /healthz,
 * /readyz, /metrics and the admin routes are libcommon's built-in routes. */
#include <stddef.h>

#include "common/http_server.h"
#include "matching.h"
#include "common/banned.h"

const struct cm_http_route mt_routes[] = {
    {"GET", "/v1/books/{market}", handle_get_book, 0, NULL},
};
const size_t mt_nroutes = sizeof mt_routes / sizeof mt_routes[0];
