#!/usr/bin/env bash
# Live checks of the wallet on a running lab (tests/live/README.md): the
# seeded demo balances, a deposit credited by the chain mock's ticker, a
# hold placed and released, a withdrawal signed by wallet-signer and
# completed, isolation of another user's withdrawal, the signer's health.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh

if [ ! -x build/bin/wallet ] || [ ! -x build/bin/wallet-signer ]; then
    skip "wallet live checks" "build/bin/wallet or build/bin/wallet-signer not built"
    done_testing
    exit $?
fi
W=$WALLET_URL
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
metric() { curl -fsS "$W/metrics" | awk -v s="$1" '$1 == s { print $2 }'; }

check "wallet is ready" curl -fsS -o /dev/null "$W/readyz"
check "demo user 1 is seeded with USDT and BTC" bash -c "
    curl -fsS '$W/v1/balances' -H 'X-User-Id: 1' | python3 -c '
import json,sys; b={x[\"asset\"]: x for x in json.load(sys.stdin)[\"balances\"]}
sys.exit(0 if \"USDT\" in b and \"BTC\" in b and float(b[\"BTC\"][\"total\"]) > 0 else 1)'"
check "no identity is 401" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' '$W/v1/balances') = 401 ]"

user=9$RANDOM$RANDOM
dep=$(curl -fsS -X POST "$W/v1/deposits" -H "X-User-Id: $user" -H "Idempotency-Key: live-$user" \
    -d '{"asset":"BTC","amount":"0.5"}' | field '["id"]')
check "a deposit is registered pending" test -n "$dep"
wait_for 20 bash -c "curl -fsS '$W/v1/deposits' -H 'X-User-Id: $user' | grep -q '\"status\" *: *\"credited\"'"
check "the chain mock credits it after its confirmations" \
    bash -c "curl -fsS '$W/v1/balances' -H 'X-User-Id: $user' | grep -q '\"available\" *: *\"0.50000000\"'"
check "the same Idempotency-Key replays the deposit (200)" bash -c "
    [ \$(curl -s -o /dev/null -w '%{http_code}' -X POST '$W/v1/deposits' -H 'X-User-Id: $user' \
        -H 'Idempotency-Key: live-$user' -d '{\"asset\":\"BTC\",\"amount\":\"0.5\"}') = 200 ]"

hold=live-$user
check "a hold is placed (201)" bash -c "
    [ \$(curl -s -o /dev/null -w '%{http_code}' -X POST '$W/internal/holds' \
        -d '{\"hold_id\":\"$hold\",\"user_id\":\"$user\",\"asset\":\"BTC\",\"amount\":\"0.1\"}') = 201 ]"
check "too large a hold is 422 insufficient_funds" bash -c "
    curl -s -X POST '$W/internal/holds' \
        -d '{\"hold_id\":\"$hold-big\",\"user_id\":\"$user\",\"asset\":\"BTC\",\"amount\":\"9\"}' \
        | grep -q insufficient_funds"
check "releasing the hold gives the funds back" bash -c "
    curl -fsS -X DELETE '$W/internal/holds/$hold' | grep -q '\"released\"' &&
    curl -fsS '$W/v1/balances' -H 'X-User-Id: $user' | grep -q '\"held\" *: *\"0.00000000\"'"

wd=$(curl -fsS -X POST "$W/v1/withdrawals" -H 'X-User-Id: 1' -H "Idempotency-Key: live-wd-$user" \
    -d '{"asset":"BTC","amount":"0.001","address":"tb1qdemouser1address0001"}' | field '["id"]')
check "a withdrawal to an allow-listed address is accepted" test -n "$wd"
wait_for 20 bash -c "curl -fsS '$W/v1/withdrawals/$wd' -H 'X-User-Id: 1' | grep -q '\"status\" *: *\"completed\"'"
check "it is signed by wallet-signer, broadcast and completed" \
    bash -c "curl -fsS '$W/v1/withdrawals/$wd' -H 'X-User-Id: 1' | grep -q '\"tx_hash\" *: *\"0x'"
check "another user's withdrawal is 404" bash -c "
    [ \$(curl -s -o /dev/null -w '%{http_code}' '$W/v1/withdrawals/$wd' -H 'X-User-Id: 2') = 404 ]"
check "an address off the allow-list is refused (403)" bash -c "
    [ \$(curl -s -o /dev/null -w '%{http_code}' -X POST '$W/v1/withdrawals' -H 'X-User-Id: 1' \
        -H 'Idempotency-Key: live-wd2-$user' \
        -d '{\"asset\":\"BTC\",\"amount\":\"0.001\",\"address\":\"tb1qnotonthelist0001\"}') = 403 ]"
wait_for 10 bash -c "[ \"\$(curl -fsS '$W/metrics' | awk '\$1 == \"wallet_signer_up\" { print \$2 }')\" = 1 ]"
check "the signer is up (wallet_signer_up 1)" bash -c "[ \"$(metric wallet_signer_up)\" = 1 ]"
check "queue delay histogram is exported" bash -c "curl -fsS '$W/metrics' | grep -q '^wallet_withdrawal_queue_delay_seconds_count [1-9]'"
done_testing
