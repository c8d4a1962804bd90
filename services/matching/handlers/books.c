/*
 * GET /v1/books/{market}?depth=N: aggregated levels, best first, from the
 * copy the consumer thread publishes after each batch (events.c
 * books_publish), so a read never touches the live book.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/decimal.h"
#include "common/json_http.h"
#include "../matching.h"
#include "common/banned.h"

static int levels(struct cm_buf *b, const char *name, const struct me_depth_level *v, size_t n,
                  const struct mt_market *mk)
{
    int rc = cm_buf_printf(b, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        rc |= cm_buf_puts(b, i ? ",{\"price\":\"" : "{\"price\":\"") |
              cm_decimal_append(b, v[i].price, mk->quote_scale) |
              cm_buf_puts(b, "\",\"quantity\":\"") |
              cm_decimal_append(b, v[i].qty, mk->base_scale) |
              cm_buf_printf(b, "\",\"orders\":%" PRIu32 "}", v[i].count);
    }
    return rc | cm_buf_puts(b, "]");
}

void handle_get_book(struct cm_http_req *req)
{
    const char *sym = cm_http_req_param(req, "market");
    struct mt_market *mk = sym ? mt_market_find(sym, strlen(sym)) : NULL;
    if (!mk) {
        cm_http_reply_error(req, 404, "not_found", "unknown market");
        return;
    }
    long depth = 20;
    const char *q = cm_http_req_query(req, "depth");
    if (q) {
        char *end;
        depth = strtol(q, &end, 10);
        if (!*q || *end || depth < 1 || depth > MT_DEPTH_MAX) {
            cm_http_reply_error(req, 400, "invalid_request", "depth must be an integer 1..%d",
                                MT_DEPTH_MAX);
            return;
        }
    }
    if (!events_books_loaded()) {
        cm_http_reply_error(req, 503, "service_unavailable", "books are loading");
        return;
    }
    /* Copy under the lock, render outside it. */
    static __thread struct me_depth_level bids[MT_DEPTH_MAX], asks[MT_DEPTH_MAX];
    pthread_mutex_lock(&mk->depth.mu);
    size_t nb = mk->depth.nb < (size_t)depth ? mk->depth.nb : (size_t)depth;
    size_t na = mk->depth.na < (size_t)depth ? mk->depth.na : (size_t)depth;
    memcpy(bids, mk->depth.bids, nb * sizeof *bids);
    memcpy(asks, mk->depth.asks, na * sizeof *asks);
    uint64_t seq = mk->depth.seq;
    char ts[sizeof mk->depth.ts];
    memcpy(ts, mk->depth.ts, sizeof ts);
    pthread_mutex_unlock(&mk->depth.mu);
    if (!ts[0]) /* nothing applied since start: the epoch, not a made-up time */
        memcpy(ts, "1970-01-01T00:00:00Z", sizeof "1970-01-01T00:00:00Z");

    struct cm_buf b;
    cm_buf_init(&b, 1u << 20);
    int rc = cm_buf_printf(&b, "{\"market\":\"%s\",\"seq\":%" PRIu64 ",\"ts\":\"%s\"", mk->symbol,
                           seq, ts) |
             levels(&b, "bids", bids, nb, mk) | levels(&b, "asks", asks, na, mk) |
             cm_buf_puts(&b, "}");
    if (rc)
        cm_http_reply_error(req, 500, "internal", "cannot render the book");
    else
        cm_http_reply(req, 200, "application/json", b.data, b.len);
    cm_buf_release(&b);
}
