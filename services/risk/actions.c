/*
 * Actions for rule hits: a risk.alert event (and user.blocked /
 * user.unblocked) on the alerts topic, a Slack-shaped webhook POST, and
 * the Redis block key.
 *
 * The webhook never blocks the stream: hits are rendered and queued
 * (bounded, RISK_WEBHOOK_QUEUE; a full queue drops and counts a failure)
 * and one thread delivers them with retries and backoff (the HTTP
 * client's, RISK_WEBHOOK_RETRIES on connection errors, timeouts, 502-504).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/decimal.h"
#include "common/http_client.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "risk.h"
#include "common/banned.h"

static struct cm_kafka_producer *producer;

/* ---- webhook queue ----------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **items;
    size_t cap, head, n;
    int stop, running;
    pthread_t thread;
    struct cm_http_client *client;
    char path[1024];
} wq = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *webhook_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&wq.mu);
        while (!wq.n && !wq.stop)
            pthread_cond_wait(&wq.cv, &wq.mu);
        if (!wq.n) { /* stopping and drained */
            pthread_mutex_unlock(&wq.mu);
            return NULL;
        }
        char *body = wq.items[wq.head];
        wq.head = (wq.head + 1) % wq.cap;
        wq.n--;
        pthread_mutex_unlock(&wq.mu);

        struct cm_http_request req = {.method = "POST",
                                      .path = wq.path,
                                      .body = body,
                                      .body_len = strlen(body),
                                      .content_type = "application/json",
                                      .idempotent = 1};
        struct cm_http_response resp;
        int rc = cm_http_client_do(wq.client, &req, &resp);
        if (rc < 0 || resp.status < 200 || resp.status >= 300) {
            cm_counter_add(risk_m.webhook_fail, 1);
            cm_warn("risk: webhook delivery failed after %d attempts (%s, status %ld)",
                    resp.attempts, cm_http_client_outcome_name(resp.outcome), resp.status);
        } else {
            cm_counter_add(risk_m.webhook_sent, 1);
        }
        cm_http_response_release(&resp);
        free(body);
    }
}

static void webhook_enqueue(char *body)
{
    if (!body)
        return;
    pthread_mutex_lock(&wq.mu);
    if (!wq.running || wq.n == wq.cap) {
        int running = wq.running;
        pthread_mutex_unlock(&wq.mu);
        free(body);
        if (running) {
            cm_counter_add(risk_m.webhook_fail, 1);
            cm_warn("risk: webhook queue full (%zu), alert dropped", wq.cap);
        }
        return;
    }
    wq.items[(wq.head + wq.n) % wq.cap] = body;
    wq.n++;
    pthread_cond_signal(&wq.cv);
    pthread_mutex_unlock(&wq.mu);
}

/* "http://host:port/a/b" -> base "http://host:port", path "/a/b". */
static int split_url(const char *url, char *base, size_t basesz, char *path, size_t pathsz)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    const char *slash = strchr(p + 3, '/');
    size_t n = slash ? (size_t)(slash - url) : strlen(url);
    if (n >= basesz)
        return -1;
    snprintf(base, basesz, "%.*s", (int)n, url);
    snprintf(path, pathsz, "%s", slash ? slash : "/");
    return 0;
}

static int webhook_start(void)
{
    if (!*risk_cfg.webhook_url)
        return 0;
    char base[1024];
    if (split_url(risk_cfg.webhook_url, base, sizeof base, wq.path, sizeof wq.path) < 0) {
        cm_error("risk: RISK_WEBHOOK_URL %s is not a URL", risk_cfg.webhook_url);
        return -1;
    }
    struct cm_http_client_config cc = {
        .name = "risk-webhook",
        .base_url = base,
        .timeout_ms = risk_cfg.webhook_timeout_ms,
        .deadline_ms = risk_cfg.webhook_timeout_ms * (risk_cfg.webhook_retries + 1) +
                       risk_cfg.webhook_backoff_ms * 4 * (risk_cfg.webhook_retries + 1),
        .max_retries =
            risk_cfg.webhook_retries ? risk_cfg.webhook_retries : CM_HTTP_CLIENT_NO_RETRY,
        .backoff_base_ms = risk_cfg.webhook_backoff_ms,
        .backoff_max_ms = risk_cfg.webhook_backoff_ms * 8,
        .breaker_off = 1,
    };
    wq.client = cm_http_client_new(&cc);
    wq.cap = (size_t)risk_cfg.webhook_queue;
    wq.items = calloc(wq.cap, sizeof *wq.items);
    if (!wq.client || !wq.items)
        return -1;
    if (pthread_create(&wq.thread, NULL, webhook_main, NULL) != 0)
        return -1;
    wq.running = 1;
    return 0;
}

static void webhook_stop(void)
{
    pthread_mutex_lock(&wq.mu);
    int running = wq.running;
    wq.stop = 1;
    pthread_cond_broadcast(&wq.cv);
    pthread_mutex_unlock(&wq.mu);
    if (running)
        pthread_join(wq.thread, NULL);
    pthread_mutex_lock(&wq.mu);
    wq.running = 0;
    for (; wq.n; wq.n--, wq.head = (wq.head + 1) % wq.cap)
        free(wq.items[wq.head]);
    pthread_mutex_unlock(&wq.mu);
    free(wq.items);
    wq.items = NULL;
    cm_http_client_free(wq.client);
    wq.client = NULL;
}

/* ---- events ------------------------------------------------------------ */

static void add_now(cJSON *o)
{
    char ts[RISK_TS_MAX];
    risk_format_ts(risk_now_ms(), ts, sizeof ts);
    cJSON_AddStringToObject(o, "ts", ts);
}

static int valid_event_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

static void event_id(char *out, size_t n, const char *prefix, const struct risk_hit *h)
{
    if (h->source_event_id[0] && valid_event_id(h->source_event_id))
        snprintf(out, n, "%s-%s-%s", prefix, h->source_event_id, h->rule_id);
    else
        snprintf(out, n, "%s-%" PRIu64 "-%s-%" PRId64, prefix, h->user_id, h->rule_id,
                 risk_now_ms());
    out[128] = '\0'; /* the contract's event_id is at most 128 characters */
}

static void publish(cJSON *ev, uint64_t user)
{
    char *text = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (!text)
        return;
    char key[24];
    snprintf(key, sizeof key, "%" PRIu64, user);
    struct cm_kafka_out m = {.topic = risk_cfg.topic_alerts,
                             .key = key,
                             .key_len = strlen(key),
                             .value = text,
                             .value_len = strlen(text)};
    if (cm_kafka_produce(producer, &m, NULL, NULL) < 0)
        cm_warn("risk: cannot enqueue an event on %s", risk_cfg.topic_alerts);
    free(text);
}

static void fmt_value(char *out, size_t n, enum risk_kind k, int64_t v)
{
    cm_decimal_format(v, risk_kind_is_amount(k) ? RISK_SCALE : 0, out, n);
}

static void publish_alert(const struct risk_hit *h)
{
    char id[256], user[24], obs[CM_DECIMAL_STR_MAX], th[CM_DECIMAL_STR_MAX];
    event_id(id, sizeof id, "risk", h);
    snprintf(user, sizeof user, "%" PRIu64, h->user_id);
    fmt_value(obs, sizeof obs, h->kind, h->observed);
    fmt_value(th, sizeof th, h->kind, h->threshold);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "risk.alert");
    cJSON_AddNumberToObject(ev, "version", 1);
    cJSON_AddStringToObject(ev, "id", id);
    add_now(ev);
    cJSON_AddStringToObject(ev, "user_id", user);
    cJSON_AddStringToObject(ev, "rule_id", h->rule_id);
    cJSON_AddStringToObject(ev, "severity", risk_severity_name(h->severity));
    cJSON_AddStringToObject(ev, "action", risk_action_name(h->action));
    if (h->market[0])
        cJSON_AddStringToObject(ev, "market", h->market);
    cJSON_AddStringToObject(ev, "observed", obs);
    cJSON_AddStringToObject(ev, "threshold", th);
    cJSON_AddStringToObject(ev, "message", h->message[0] ? h->message : h->rule_id);
    if (h->source_event_id[0] && valid_event_id(h->source_event_id))
        cJSON_AddStringToObject(ev, "source_event_id", h->source_event_id);
    publish(ev, h->user_id);
}

static void publish_blocked(const struct risk_hit *h, int64_t until_ms)
{
    char id[256], user[24], until[RISK_TS_MAX];
    event_id(id, sizeof id, "risk-block", h);
    snprintf(user, sizeof user, "%" PRIu64, h->user_id);
    risk_format_ts(until_ms, until, sizeof until);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "user.blocked");
    cJSON_AddNumberToObject(ev, "version", 1);
    cJSON_AddStringToObject(ev, "id", id);
    add_now(ev);
    cJSON_AddStringToObject(ev, "user_id", user);
    cJSON_AddStringToObject(ev, "rule_id", h->rule_id);
    cJSON_AddStringToObject(ev, "until", until);
    cJSON_AddStringToObject(ev, "message", h->message[0] ? h->message : h->rule_id);
    publish(ev, h->user_id);
}

char *actions_slack_body(const struct risk_hit *h)
{
    char text[512], obs[CM_DECIMAL_STR_MAX], th[CM_DECIMAL_STR_MAX];
    fmt_value(obs, sizeof obs, h->kind, h->observed);
    fmt_value(th, sizeof th, h->kind, h->threshold);
    const char *what = h->action == RA_BLOCK      ? "blocked"
                       : h->action == RA_SIMULATE ? "would block (simulate)"
                                                  : "alert";
    snprintf(text, sizeof text, "[%s] risk rule %s: %s user %" PRIu64 "%s%s: %s",
             risk_severity_name(h->severity), h->rule_id, what, h->user_id,
             h->market[0] ? " on " : "", h->market, h->message);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", text);
    cJSON *blocks = cJSON_AddArrayToObject(o, "blocks");
    cJSON *sec = cJSON_CreateObject();
    cJSON_AddStringToObject(sec, "type", "section");
    cJSON *t = cJSON_AddObjectToObject(sec, "text");
    cJSON_AddStringToObject(t, "type", "mrkdwn");
    cJSON_AddStringToObject(t, "text", text);
    cJSON *fields = cJSON_AddArrayToObject(sec, "fields");
    const char *kv[][2] = {{"Rule", h->rule_id},
                           {"Action", risk_action_name(h->action)},
                           {"Observed", obs},
                           {"Threshold", th}};
    for (size_t i = 0; i < 4; i++) {
        char f[160];
        snprintf(f, sizeof f, "*%s*\n%s", kv[i][0], kv[i][1]);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "type", "mrkdwn");
        cJSON_AddStringToObject(x, "text", f);
        cJSON_AddItemToArray(fields, x);
    }
    cJSON_AddItemToArray(blocks, sec);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return body;
}

const char *actions_label(enum risk_action a)
{
    return a == RA_BLOCK ? "block" : a == RA_SIMULATE ? "would_block" : "alert";
}

void actions_fire(const struct risk_hit *h)
{
    const char *label = actions_label(h->action);
    cm_counter_add(risk_m.rule_hits, 1, h->rule_id, label);
    if (h->action == RA_SIMULATE)
        cm_warn("risk: would block user %" PRIu64 " (rule %s, simulate): %s", h->user_id,
                h->rule_id, h->message);
    else
        cm_info("risk: rule %s %s user %" PRIu64 ": %s", h->rule_id,
                h->action == RA_BLOCK ? "blocks" : "alerts on", h->user_id, h->message);
    publish_alert(h);
    if (h->action == RA_BLOCK && h->newly_blocked) {
        int64_t ttl = h->block_ttl_s * 1000, until = risk_now_ms() + ttl;
        if (store_block(h->user_id, h->rule_id, h->message, ttl, until) < 0)
            cm_error("risk: cannot set the block key of user %" PRIu64 " (pre-trade still denies)",
                     h->user_id);
        cm_counter_add(risk_m.users_blocked, 1);
        publish_blocked(h, until);
    }
    if (wq.client)
        webhook_enqueue(actions_slack_body(h));
}

int actions_unblock(uint64_t user, const char *by)
{
    if (store_unblock(user) < 0)
        return -1;
    char id[96], uid[24];
    snprintf(id, sizeof id, "risk-unblock-%" PRIu64 "-%" PRId64, user, risk_now_ms());
    snprintf(uid, sizeof uid, "%" PRIu64, user);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "user.unblocked");
    cJSON_AddNumberToObject(ev, "version", 1);
    cJSON_AddStringToObject(ev, "id", id);
    add_now(ev);
    cJSON_AddStringToObject(ev, "user_id", uid);
    cJSON_AddStringToObject(ev, "by", by);
    publish(ev, user);
    return 0;
}

int actions_start(void)
{
    struct cm_kafka_config kc = {
        .brokers = risk_cfg.kafka_brokers, .client_id = "risk", .props = risk_cfg.kafka_props};
    char err[256];
    producer = cm_kafka_producer_open(&kc, err, sizeof err);
    if (!producer) {
        cm_error("risk: kafka producer: %s", err);
        return -1;
    }
    if (webhook_start() < 0) {
        cm_error("risk: cannot start the webhook sender");
        return -1;
    }
    return 0;
}

void actions_stop(void)
{
    webhook_stop();
    if (producer && cm_kafka_producer_close(producer, 5000) < 0)
        cm_warn("risk: some alert events were not delivered before exit");
    producer = NULL;
}
