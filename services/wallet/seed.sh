#!/usr/bin/env bash
# Demo money for the wallet: users "1" and "2" (the gateway's demo users)
# get balances through deposits credited at once by the admin endpoint,
# and allow-listed withdrawal addresses. Idempotent: fixed Idempotency-Keys
# make a second run replay the same deposits. The lab runs it once the
# wallet is ready, with the service's environment (PORT, ADMIN_TOKEN).
set -euo pipefail
: "${PORT:?PORT is required}" "${ADMIN_TOKEN:?ADMIN_TOKEN is required}"
W="http://127.0.0.1:$PORT"

deposit() { # USER ASSET AMOUNT
    local out id
    out=$(curl -fsS -X POST "$W/v1/deposits" -H "X-User-Id: $1" \
        -H "Idempotency-Key: seed-$1-$2" -H 'Content-Type: application/json' \
        -d "{\"asset\":\"$2\",\"amount\":\"$3\"}")
    id=$(printf '%s' "$out" | sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
    curl -fsS -X POST "$W/admin/deposits/$id/credit" -H "X-Admin-Token: $ADMIN_TOKEN" >/dev/null
}

allow() { # USER ASSET ADDRESS
    curl -fsS -X POST "$W/admin/addresses" -H "X-Admin-Token: $ADMIN_TOKEN" \
        -H 'Content-Type: application/json' \
        -d "{\"user_id\":\"$1\",\"asset\":\"$2\",\"address\":\"$3\"}" >/dev/null
}

for u in 1 2; do
    deposit "$u" USDT 100000
    deposit "$u" BTC 5
    deposit "$u" ETH 50
    allow "$u" BTC "tb1qdemouser${u}address0001"
    allow "$u" ETH "0x000000000000000000000000000000000000000$u"
    allow "$u" USDT "0x000000000000000000000000000000000000000$u"
done
echo "wallet: seeded users 1 and 2 (USDT 100000, BTC 5, ETH 50) and allow-listed addresses"
