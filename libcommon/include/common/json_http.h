#ifndef COMMON_JSON_HTTP_H
#define COMMON_JSON_HTTP_H
/*
 * JSON requests and responses for handlers (see http_server.h).
 *
 * Errors use one envelope everywhere:
 *   {"error":{"code":"insufficient_funds","message":"...","request_id":"..."}}
 * with the HTTP status that fits. Codes the server itself uses:
 *   400 invalid_json, invalid_request 401 unauthorized   403 forbidden
 *   404 not_found                     405 method_not_allowed
 *   413 payload_too_large             500 internal       503 service_unavailable
 *   (fault injection: the configured status with its usual code)
 * Services add their own codes (insufficient_funds 422, conflict 409...).
 */
#include <cjson/cJSON.h>

#include "common/http_server.h"

/* Parses the body as JSON once; the tree is owned by the request (freed on
 * completion; do not free it). On bad or empty JSON it replies 400
 * invalid_json itself and returns NULL: the handler just returns. Needs a
 * CM_ROUTE_BODY route. */
cJSON *cm_http_req_json(struct cm_http_req *r);

/* Consumes body (freed here, also on failure). 0 / -1. */
int cm_http_reply_json(struct cm_http_req *r, int status, cJSON *body);
/* json is copied as is (already rendered). */
int cm_http_reply_json_str(struct cm_http_req *r, int status, const char *json);
/* The error envelope; message is printf-formatted, request_id filled in. */
int cm_http_reply_error(struct cm_http_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
