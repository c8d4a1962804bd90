/*
 * Admin routes (CM_ROUTE_ADMIN: ADMIN_TOKEN): the rules in effect, a
 * user's risk state, lifting a block.
 */
#include <inttypes.h>

#include "common/json_http.h"
#include "common/log.h"
#include "../risk.h"
#include "common/banned.h"

void handle_admin_rules(struct cm_http_req *r)
{
    pthread_rwlock_rdlock(&risk_lock);
    cJSON *o = risk_rules_json(risk_engine_rules(risk_engine));
    pthread_rwlock_unlock(&risk_lock);
    cm_http_reply_json(r, 200, o);
}

static int user_param(struct cm_http_req *r, uint64_t *id)
{
    if (risk_parse_user(cm_http_req_param(r, "id"), id) == 0)
        return 0;
    cm_http_reply_error(r, 404, "not_found", "user ids are strings of digits");
    return -1;
}

void handle_admin_user(struct cm_http_req *r)
{
    uint64_t id;
    if (user_param(r, &id) < 0)
        return;
    pthread_rwlock_rdlock(&risk_lock);
    cJSON *o = risk_engine_user_json(risk_engine, id, risk_now_ms());
    pthread_rwlock_unlock(&risk_lock);
    cm_http_reply_json(r, 200, o);
}

void handle_admin_unblock(struct cm_http_req *r)
{
    uint64_t id;
    if (user_param(r, &id) < 0)
        return;
    /* Redis first: if the key cannot be removed the user stays blocked
     * everywhere (gateway included), and the caller can retry. */
    if (actions_unblock(id, "admin") < 0) {
        cm_http_reply_error(r, 503, "service_unavailable", "redis unavailable; retry");
        return;
    }
    pthread_rwlock_wrlock(&risk_lock);
    int was = risk_engine_unblock(risk_engine, id);
    cJSON *o = risk_engine_user_json(risk_engine, id, risk_now_ms());
    pthread_rwlock_unlock(&risk_lock);
    events_mark_dirty();
    cm_info("risk: user %" PRIu64 " unblocked by admin%s", id, was ? "" : " (was not blocked)");
    cm_http_reply_json(r, 200, o);
}
