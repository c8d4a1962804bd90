/* JSON bodies and the error envelope for handlers. */
#include "common/json_http.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "http_internal.h"
#include "common/banned.h"

static const char json_type[] = "application/json";

cJSON *cm_http_req_json(struct cm_http_req *r)
{
    if (r->json)
        return r->json;
    size_t len;
    const char *body = cm_http_req_body(r, &len);
    const char *end = NULL;
    cJSON *j = len ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : NULL;
    if (j && end) {
        /* Only whitespace may follow the value. */
        while (end < body + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
            end++;
        if (end != body + len) {
            cJSON_Delete(j);
            j = NULL;
        }
    }
    if (!j) {
        cm_http_reply_error(r, 400, "invalid_json",
                            len ? "request body is not valid JSON" : "request body is empty");
        return NULL;
    }
    r->json = j;
    return j;
}

int cm_http_reply_json(struct cm_http_req *r, int status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!s)
        return -1;
    return http_reply_owned(r, status, json_type, s, strlen(s));
}

int cm_http_reply_json_str(struct cm_http_req *r, int status, const char *json)
{
    return cm_http_reply(r, status, json_type, json, json ? strlen(json) : 0);
}

int cm_http_reply_error(struct cm_http_req *r, int status, const char *code, const char *fmt, ...)
{
    struct cm_buf msg, out;
    cm_buf_init(&msg, 4096);
    cm_buf_init(&out, 16384);
    va_list ap;
    va_start(ap, fmt);
    cm_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    cm_buf_puts(&out, "{\"error\":{\"code\":\"");
    cm_buf_json_escape(&out, code ? code : "error");
    cm_buf_puts(&out, "\",\"message\":\"");
    cm_buf_json_escape(&out, msg.data ? msg.data : "");
    cm_buf_puts(&out, "\",\"request_id\":\"");
    cm_buf_json_escape(&out, r->request_id);
    int rc = cm_buf_puts(&out, "\"}}");
    cm_buf_release(&msg);
    if (rc < 0) {
        cm_buf_release(&out);
        return -1;
    }
    size_t len;
    char *s = cm_buf_detach(&out, &len);
    return http_reply_owned(r, status, json_type, s, len);
}
