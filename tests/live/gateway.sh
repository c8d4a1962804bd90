#!/usr/bin/env bash
# Live checks of the gateway on a running lab (tests/live/README.md): the
# seeded demo users log in, tokens are required and verified, refresh
# tokens rotate, and each upstream answers through its public prefix
# (skipped, loudly, when that service is not built).
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/lib/tap.sh
source tests/lib/tap.sh

if [ ! -x build/bin/gateway ]; then
    skip "gateway live checks" "build/bin/gateway not built"
    done_testing
    exit $?
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
G=$GATEWAY_URL
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
code() { curl -sS -o "$TMP/body" -w '%{http_code}' "$@"; }

check "gateway is ready" curl -fsS "$G/readyz"
c=$(code -X POST "$G/v1/auth/login" -d '{"email":"alice@example.com","password":"alice-lab-password"}')
if [ "$c" = 200 ]; then ok "seeded alice logs in"; else not_ok "seeded alice logs in (got $c)"; sed 's/^/#   /' "$TMP/body"; fi
ACCESS=$(field '["access_token"]' <"$TMP/body" 2>/dev/null)
REFRESH=$(field '["refresh_token"]' <"$TMP/body" 2>/dev/null)
AUTH="Authorization: Bearer $ACCESS"
check "alice's token says sub 1" bash -c "
    python3 -c 'import base64,json,sys; p=sys.argv[1].split(\".\")[1]; p+=\"=\"*(-len(p)%4); sys.exit(0 if json.loads(base64.urlsafe_b64decode(p))[\"sub\"]==\"1\" else 1)' '$ACCESS'"
check "wrong password is 401" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -X POST '$G/v1/auth/login' -d '{\"email\":\"alice@example.com\",\"password\":\"not-her-password\"}') = 401 ]"
check "no token on /v1/balances is 401 with WWW-Authenticate" bash -c "
    curl -sS -D - -o /dev/null '$G/v1/balances' | tr -d '\r' | grep -qi '^WWW-Authenticate: Bearer'"
check "a tampered token is 401" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer ${ACCESS%?}x' '$G/v1/balances') = 401 ]"
check "JWKS answers (empty with HS256)" bash -c "curl -fsS '$G/.well-known/jwks.json' | grep -q '\"keys\"'"

c=$(code -X POST "$G/v1/auth/refresh" -d "{\"refresh_token\":\"$REFRESH\"}")
if [ "$c" = 200 ]; then ok "refresh rotates"; else not_ok "refresh rotates (got $c)"; fi
c=$(code -X POST "$G/v1/auth/refresh" -d "{\"refresh_token\":\"$REFRESH\"}")
if [ "$c" = 401 ]; then ok "a rotated refresh token is refused"; else not_ok "a rotated refresh token is refused (got $c)"; fi

email="live-$RANDOM$RANDOM@example.com"
check "register a new account (201) and log in" bash -c "
    [ \$(curl -sS -o /dev/null -w '%{http_code}' -X POST '$G/v1/auth/register' -d '{\"email\":\"$email\",\"password\":\"live-password-123\"}') = 201 ] &&
    curl -fsS -X POST '$G/v1/auth/login' -d '{\"email\":\"$email\",\"password\":\"live-password-123\"}' | grep -q access_token"

# Through each upstream, when it is built.
through() { # NAME SERVICE PATH [curl args...]
    local name=$1 svc=$2 path=$3
    shift 3
    if [ ! -x "build/bin/$svc" ]; then skip "$name" "build/bin/$svc not built"; return; fi
    local c
    c=$(code "$@" "$G$path")
    if [ "$c" = 200 ]; then ok "$name"; else not_ok "$name (got $c)"; head -c 300 "$TMP/body" | sed 's/^/#   /'; fi
}
through "GET /v1/balances through the gateway (wallet)" wallet /v1/balances -H "$AUTH"
through "GET /v1/markets through the gateway (trading-api)" trading-api /v1/markets -H "$AUTH"
through "GET /v1/orders through the gateway (trading-api)" trading-api "/v1/orders?market=BTC-USDT" -H "$AUTH"
through "GET /api/products without a token (catalog, public read)" catalog "/api/products?limit=2"
through "GET /api/orders/user/1 as alice (order)" order /api/orders/user/1 -H "$AUTH"
if [ -x build/bin/catalog ]; then
    check "POST /api/products needs a token (401)" bash -c "[ \$(curl -sS -o /dev/null -w '%{http_code}' -X POST -d '{}' '$G/api/products') = 401 ]"
fi
check "rate-limit headers on proxied answers" bash -c "
    curl -sS -D - -o /dev/null -H '$AUTH' '$G/v1/balances' | tr -d '\r' | grep -qi '^X-RateLimit-Limit:'"
check "metrics: limiter on Redis (fallback 0) and auth failures counted" bash -c "
    m=\$(curl -fsS '$G/metrics'); echo \"\$m\" | grep -qx 'gateway_ratelimit_fallback 0' &&
    echo \"\$m\" | grep -q '^gateway_auth_failures_total{reason=\"missing\"} [1-9]'"
done_testing
