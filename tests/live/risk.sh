#!/usr/bin/env bash
# Live checks of the risk service on a running lab (tests/live/README.md):
# probes, the rules in effect, pre-trade decisions, contract metrics, the
# consumer's group membership, and the block key's round trip through
# unblock (and through the gateway when it is up).
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh

if [ ! -x build/bin/risk ]; then
    skip "risk live checks" "build/bin/risk not built"
    done_testing
    exit $?
fi
AUTH="Authorization: Bearer $ADMIN_TOKEN"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

check "risk /healthz answers 200" curl -fsS -o /dev/null "$RISK_URL/healthz"
check "risk /readyz answers 200 (redis reachable)" curl -fsS -o /dev/null "$RISK_URL/readyz"
check "GET /admin/rules lists the rules file (order_rate among them)" bash -c "
    curl -fsS -H '$AUTH' '$RISK_URL/admin/rules' | python3 -c '
import json,sys; d=json.load(sys.stdin); ids=[r[\"id\"] for r in d[\"rules\"]]
sys.exit(0 if \"order_rate\" in ids and len(ids) >= 7 and d[\"loaded_at\"] else 1)'"
check "GET /admin/rules needs the admin token" bash -c "
    [ \$(curl -s -o /dev/null -w '%{http_code}' '$RISK_URL/admin/rules') = 401 ]"

user=9$RANDOM$RANDOM
body='{"user_id":"'$user'","market":"BTC-USDT","side":"buy","type":"limit","price":"30000.000000","quantity":"0.00150000"}'
check "POST /v1/pretrade allows a small order of a new user" bash -c "
    curl -fsS -H 'Content-Type: application/json' -d '$body' '$RISK_URL/v1/pretrade' | grep -q '\"decision\":\"allow\"'"
big='{"user_id":"'$user'","market":"BTC-USDT","side":"buy","type":"limit","price":"30000.000000","quantity":"99.00000000"}'
check "POST /v1/pretrade denies an order over max_notional with the rule id" bash -c "
    curl -fsS -H 'Content-Type: application/json' -d '$big' '$RISK_URL/v1/pretrade' | grep -q '\"rule_id\":\"max_notional\"'"
check "POST /v1/pretrade refuses a malformed request with 400" bash -c "
    [ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{\"user_id\":\"x\"}' '$RISK_URL/v1/pretrade') = 400 ]"
check "GET /admin/users/{id}/risk answers zeros for a user never seen" bash -c "
    curl -fsS -H '$AUTH' '$RISK_URL/admin/users/$user/risk' | grep -q '\"open_orders\":0'"

metrics=$(curl -fsS "$RISK_URL/metrics")
for m in risk_rule_hits_total risk_decisions_total risk_decision_duration_seconds \
         risk_users_blocked_total risk_blocked_users risk_webhook_failures_total; do
    if grep -q "^# TYPE $m " <<<"$metrics"; then ok "metric $m is exported"; else not_ok "metric $m is exported"; fi
done
check "the consumer joined: kafka_consumer_lag has exchange.orders.events partitions" \
    wait_for 15 bash -c "curl -fsS '$RISK_URL/metrics' | grep -q '^kafka_consumer_lag{topic=\"exchange.orders.events\"'"

# The block key round trip: set by hand (as risk does), lifted by unblock.
key="risk:blocked:$user"
redis-cli -u "$REDIS_URL" SET "$key" '{"rule":"live-test","reason":"tests/live/risk.sh"}' PX 60000 >/dev/null
gw_user=
if [ -n "${GATEWAY_URL:-}" ] && curl -fsS -o /dev/null "$GATEWAY_URL/readyz" 2>/dev/null; then
    email="risk-live-$RANDOM$RANDOM@example.com"
    cred='{"email":"'$email'","password":"risk live test password"}'
    gw_user=$(curl -fsS -H 'Content-Type: application/json' -d "$cred" "$GATEWAY_URL/v1/auth/register" | json 'd["id"]' 2>/dev/null)
    token=$(curl -fsS -H 'Content-Type: application/json' -d "$cred" "$GATEWAY_URL/v1/auth/login" | json 'd["access_token"]' 2>/dev/null)
fi
if [ -n "$gw_user" ] && [ -n "$token" ]; then
    gkey="risk:blocked:$gw_user"
    redis-cli -u "$REDIS_URL" SET "$gkey" '{"rule":"live-test","reason":"tests/live/risk.sh"}' PX 60000 >/dev/null
    order='{"market":"BTC-USDT","side":"buy","type":"limit","price":"30000.000000","quantity":"0.00100000","client_order_id":"live-'$RANDOM'"}'
    check "the gateway refuses a blocked user's order with 403 account_blocked" bash -c "
        curl -s -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' -d '$order' '$GATEWAY_URL/v1/orders' | grep -q account_blocked"
    check "POST /admin/users/{id}/unblock removes the gateway user's block key" bash -c "
        curl -fsS -X POST -H '$AUTH' '$RISK_URL/admin/users/$gw_user/unblock' | grep -q '\"blocked\":false' &&
        [ \"\$(redis-cli -u '$REDIS_URL' EXISTS '$gkey')\" = 0 ]"
    check "after unblock the gateway no longer answers account_blocked" bash -c "
        ! curl -s -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' -d '$order' '$GATEWAY_URL/v1/orders' | grep -q account_blocked"
else
    skip "gateway 403 for a blocked user" "gateway not reachable at ${GATEWAY_URL:-(unset)}"
fi
check "POST /admin/users/{id}/unblock removes the block key" bash -c "
    curl -fsS -X POST -H '$AUTH' '$RISK_URL/admin/users/$user/unblock' | grep -q '\"blocked\":false' &&
    [ \"\$(redis-cli -u '$REDIS_URL' EXISTS '$key')\" = 0 ]"

done_testing
