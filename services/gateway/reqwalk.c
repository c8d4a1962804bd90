/*
 * Enumerating a request's headers and query arguments, which a proxy needs
 * and common/http_server.h does not offer (it answers lookups by name only).
 *
 * This is the one place that reaches into libcommon's private request
 * struct (for its libmicrohttpd connection). Proposed instead, in
 * libcommon: cm_http_req_foreach_header / cm_http_req_foreach_query (see
 * docs/gateway.md, "Gaps"); when they exist this file goes away.
 */
#include <microhttpd.h>

#include "../../libcommon/src/http_internal.h"
#include "gateway.h"
#include "common/banned.h"

struct walk {
    gw_kv_fn fn;
    void *ctx;
};

static enum MHD_Result visit(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct walk *w = cls;
    return w->fn(w->ctx, key, value) == 0 ? MHD_YES : MHD_NO;
}

static int walk_kind(struct cm_http_req *r, enum MHD_ValueKind kind, gw_kv_fn fn, void *ctx)
{
    if (!r || !r->conn || !fn)
        return -1;
    struct walk w = {fn, ctx};
    MHD_get_connection_values(r->conn, kind, visit, &w);
    return 0;
}

int gw_req_foreach_header(struct cm_http_req *r, gw_kv_fn fn, void *ctx)
{
    return walk_kind(r, MHD_HEADER_KIND, fn, ctx);
}

int gw_req_foreach_query(struct cm_http_req *r, gw_kv_fn fn, void *ctx)
{
    return walk_kind(r, MHD_GET_ARGUMENT_KIND, fn, ctx);
}
