#include "support.h"

#include <stdio.h>
#include <string.h>

#include "common/banned.h"

void evlog_init(struct evlog *l, uint64_t first_seq)
{
    l->n = 0;
    l->total = 0;
    l->hash = ME_HASH_INIT;
    l->last_seq = first_seq - 1;
    l->seq_errors = 0;
}

void evlog_clear(struct evlog *l)
{
    l->n = 0;
}

void evlog_emit(void *ctx, const struct me_event *ev)
{
    struct evlog *l = ctx;
    if (ev->seq != l->last_seq + 1)
        l->seq_errors++;
    l->last_seq = ev->seq;
    l->hash = me_event_hash(l->hash, ev);
    l->total++;
    if (l->n < EVLOG_MAX)
        l->ev[l->n++] = *ev;
}

void evlog_dump(const struct evlog *l)
{
    char line[512];
    for (size_t i = 0; i < l->n; i++) {
        me_event_format(&l->ev[i], line, sizeof(line));
        fprintf(stderr, "  %s\n", line);
    }
}

struct me_rules test_rules(void)
{
    struct me_rules r = {0};
    r.base_scale = 3;
    r.stp_default = ME_STP_NONE;
    r.tick = 100;
    r.lot = 10;
    r.min_qty = 20;
    r.max_qty = 1000000000;
    r.min_price = 100;
    r.max_price = 1000000000000;
    r.order_capacity = 64;
    return r;
}

struct me_cmd cmd_limit(uint64_t id, uint64_t user, int side, int64_t price, int64_t qty, int tif)
{
    struct me_cmd c = {0};
    c.type = ME_CMD_PLACE;
    c.order_type = ME_LIMIT;
    c.side = (uint8_t)side;
    c.tif = (uint8_t)tif;
    c.order_id = id;
    c.user_id = user;
    c.price = price;
    c.qty = qty;
    c.ts = id * 10;
    return c;
}

struct me_cmd cmd_market(uint64_t id, uint64_t user, int side, int64_t qty, int64_t quote, int tif)
{
    struct me_cmd c = {0};
    c.type = ME_CMD_PLACE;
    c.order_type = ME_MARKET;
    c.side = (uint8_t)side;
    c.tif = (uint8_t)tif;
    c.order_id = id;
    c.user_id = user;
    c.qty = qty;
    c.quote = quote;
    c.ts = id * 10;
    return c;
}

struct me_cmd cmd_cancel(uint64_t id, uint64_t user)
{
    struct me_cmd c = {0};
    c.type = ME_CMD_CANCEL;
    c.order_id = id;
    c.user_id = user;
    return c;
}

struct me_cmd cmd_cancel_all(uint64_t user)
{
    struct me_cmd c = {0};
    c.type = ME_CMD_CANCEL_ALL;
    c.user_id = user;
    return c;
}
