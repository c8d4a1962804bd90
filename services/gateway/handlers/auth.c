/*
 * Accounts and tokens: POST /v1/auth/{register,login,refresh,logout} and
 * GET /.well-known/jwks.json (proto/openapi/gateway.yaml).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/json_http.h"
#include "common/log.h"
#include "../gateway.h"
#include "common/banned.h"

/* Body members: exactly the allowed ones, all strings. NULL when it has
 * replied 400. */
static cJSON *body_object(struct cm_http_req *r, const char *const *allowed)
{
    cJSON *j = cm_http_req_json(r);
    if (!j)
        return NULL;
    if (!cJSON_IsObject(j)) {
        cm_http_reply_error(r, 400, "bad_request", "body must be a JSON object");
        return NULL;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, j)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(m->string, *a) == 0)
                ok = 1;
        if (!ok) {
            cm_http_reply_error(r, 400, "bad_request", "unknown member \"%.64s\"", m->string);
            return NULL;
        }
        if (!cJSON_IsString(m)) {
            cm_http_reply_error(r, 400, "bad_request", "%s must be a string", m->string);
            return NULL;
        }
    }
    for (const char *const *a = allowed; *a; a++)
        if (!cJSON_GetObjectItemCaseSensitive(j, *a)) {
            cm_http_reply_error(r, 400, "bad_request", "%s is required", *a);
            return NULL;
        }
    return j;
}

static const char *str(const cJSON *j, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(j, name)->valuestring;
}

static int limit_auth(struct cm_http_req *r, const char *subject)
{
    struct gw_app *app = cm_http_req_ctx(r);
    return gw_rate_limit(r, app, app->routes.auth_class, subject, 0);
}

void auth_register(struct cm_http_req *r)
{
    static const char *const members[] = {"email", "password", NULL};
    if (limit_auth(r, NULL) < 0)
        return;
    cJSON *j = body_object(r, members);
    if (!j)
        return;
    char email[GW_EMAIL_MAX + 1];
    const char *why = NULL;
    if (gw_email_normalize(str(j, "email"), email, sizeof email, &why) < 0 ||
        gw_password_check(str(j, "password"), &why) < 0) {
        cm_http_reply_error(r, 400, "bad_request", "%s", why);
        return;
    }
    char hash[crypto_pwhash_STRBYTES];
    if (gw_pwhash(str(j, "password"), hash, sizeof hash) < 0) {
        cm_http_reply_error(r, 500, "internal", "cannot hash the password");
        return;
    }
    struct store_user u;
    int rc = store_user_create(email, hash, &u);
    if (rc == STORE_CONFLICT) {
        cm_http_reply_error(r, 409, "conflict", "this email is already registered");
        return;
    }
    if (rc != STORE_OK) {
        cm_http_reply_error(r, 503, "unavailable", "accounts are unavailable, try again");
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "id", u.id);
    cJSON_AddStringToObject(out, "email", u.email);
    cJSON_AddStringToObject(out, "created_at", u.created_at);
    cm_log_kv(CM_LOG_INFO, "user registered", "user_id", u.id, (const char *)NULL);
    cm_http_reply_json(r, 201, out);
}

/* Access + refresh token for u. The refresh token starts a new family
 * unless rotated is set (the store already wrote it). */
static void reply_tokens(struct cm_http_req *r, const struct store_user *u, const char *refresh)
{
    struct gw_app *app = cm_http_req_ctx(r);
    char *access = gw_tokens_issue(app->tokens, u->id, u->roles);
    if (!access) {
        cm_http_reply_error(r, 500, "internal", "cannot issue a token");
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "access_token", access);
    cJSON_AddStringToObject(out, "token_type", "Bearer");
    cJSON_AddNumberToObject(out, "expires_in", (double)gw_tokens_access_ttl(app->tokens));
    cJSON_AddStringToObject(out, "refresh_token", refresh);
    cJSON_AddNumberToObject(out, "refresh_expires_in", (double)gw_tokens_refresh_ttl(app->tokens));
    free(access);
    cm_http_set_header(r, "Cache-Control", "no-store");
    cm_http_reply_json(r, 200, out);
}

static void bad_credentials(struct cm_http_req *r, const char *msg)
{
    cm_http_set_header(r, "WWW-Authenticate", "Bearer realm=\"exchange-lab\"");
    cm_http_reply_error(r, 401, "unauthorized", "%s", msg);
}

void auth_login(struct cm_http_req *r)
{
    static const char *const members[] = {"email", "password", NULL};
    cJSON *j = body_object(r, members);
    if (!j)
        return;
    char email[GW_EMAIL_MAX + 1];
    const char *pw = str(j, "password");
    int valid = gw_email_normalize(str(j, "email"), email, sizeof email, NULL) == 0 &&
                strlen(pw) <= 4 * GW_PASSWORD_MAX;
    /* Per address and per account: guessing one account's password from
     * many addresses is limited too. */
    if (limit_auth(r, valid ? email : NULL) < 0)
        return;
    if (!valid) {
        bad_credentials(r, "invalid email or password");
        return;
    }
    struct store_user u;
    int rc = store_user_by_email(email, &u);
    if (rc == STORE_ERR) {
        cm_http_reply_error(r, 503, "unavailable", "accounts are unavailable, try again");
        return;
    }
    /* Unknown emails cost a verify too, so timing does not tell them apart. */
    if (gw_pwverify(rc == STORE_OK ? u.password_hash : NULL, pw) != 1) {
        bad_credentials(r, "invalid email or password");
        return;
    }
    char tok[64], hash[65];
    struct gw_app *app = cm_http_req_ctx(r);
    if (gw_refresh_new(tok, sizeof tok, hash, sizeof hash) < 0 ||
        store_refresh_issue(u.id, hash, gw_tokens_refresh_ttl(app->tokens)) != STORE_OK) {
        cm_http_reply_error(r, 503, "unavailable", "accounts are unavailable, try again");
        return;
    }
    cm_log_kv(CM_LOG_INFO, "login", "user_id", u.id, (const char *)NULL);
    reply_tokens(r, &u, tok);
}

void auth_refresh(struct cm_http_req *r)
{
    static const char *const members[] = {"refresh_token", NULL};
    if (limit_auth(r, NULL) < 0)
        return;
    cJSON *j = body_object(r, members);
    if (!j)
        return;
    const char *old = str(j, "refresh_token");
    if (!*old || strlen(old) > 512) {
        cm_http_reply_error(r, 400, "bad_request", "refresh_token must be 1 to 512 characters");
        return;
    }
    struct gw_app *app = cm_http_req_ctx(r);
    char old_hash[65], tok[64], hash[65];
    gw_refresh_hash(old, old_hash, sizeof old_hash);
    if (gw_refresh_new(tok, sizeof tok, hash, sizeof hash) < 0) {
        cm_http_reply_error(r, 500, "internal", "cannot make a token");
        return;
    }
    struct store_user u;
    int rc = store_refresh_rotate(old_hash, hash, gw_tokens_refresh_ttl(app->tokens), &u);
    switch (rc) {
    case STORE_OK: reply_tokens(r, &u, tok); return;
    case STORE_REUSED:
        cm_log_kv(CM_LOG_WARN, "refresh token reuse: session revoked", (const char *)NULL);
        bad_credentials(r, "refresh token already used; the session has been revoked");
        return;
    case STORE_NOTFOUND:
    case STORE_REVOKED: bad_credentials(r, "invalid or expired refresh token"); return;
    default: cm_http_reply_error(r, 503, "unavailable", "accounts are unavailable, try again");
    }
}

void auth_logout(struct cm_http_req *r)
{
    static const char *const members[] = {"refresh_token", NULL};
    if (limit_auth(r, NULL) < 0)
        return;
    cJSON *j = body_object(r, members);
    if (!j)
        return;
    const char *tok = str(j, "refresh_token");
    if (!*tok || strlen(tok) > 512) {
        cm_http_reply_error(r, 400, "bad_request", "refresh_token must be 1 to 512 characters");
        return;
    }
    char hash[65];
    gw_refresh_hash(tok, hash, sizeof hash);
    if (store_refresh_revoke(hash) != STORE_OK) {
        cm_http_reply_error(r, 503, "unavailable", "accounts are unavailable, try again");
        return;
    }
    cm_http_reply(r, 204, NULL, "", 0);
}

void auth_jwks(struct cm_http_req *r)
{
    struct gw_app *app = cm_http_req_ctx(r);
    struct cm_buf b;
    cm_buf_init(&b, 64 * 1024);
    if (gw_tokens_jwks(app->tokens, &b) < 0) {
        cm_buf_release(&b);
        cm_http_reply_error(r, 500, "internal", "cannot render the key set");
        return;
    }
    cm_http_set_header(r, "Cache-Control", "public, max-age=300");
    cm_http_reply(r, 200, "application/json", b.data, b.len);
    cm_buf_release(&b);
}
