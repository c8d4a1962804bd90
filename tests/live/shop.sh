#!/usr/bin/env bash
# Live checks of the shop demo on a running lab (tests/live/README.md):
# seeded catalog, cache hits, an order's whole life through the real ports,
# its pub/sub message (valid against proto/events), stock returned on cancel;
# when the gateway is built, a product read and a registered user's order
# through it.
cd "$(dirname "$0")/../.." || exit 1
source tests/lib/tap.sh

if [ ! -x build/bin/catalog ] || [ ! -x build/bin/order ]; then
    skip "shop live checks" "build/bin/catalog or build/bin/order not built"
    done_testing
    exit $?
fi
TMP=$(mktemp -d)
SUB_PID=
trap '[ -n "$SUB_PID" ] && kill "$SUB_PID" 2>/dev/null; rm -rf "$TMP"' EXIT

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
metric() { curl -fsS "$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'; }
PRODUCT=18 # seeded "Mug", 500 in stock

check "catalog is seeded (a category tree and dozens of products)" bash -c "
    [ \$(curl -fsS '$CATALOG_URL/catalog/categories' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"categories\"]))') -ge 10 ] &&
    [ \$(curl -fsS '$CATALOG_URL/catalog/products?limit=100' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"items\"]))') -ge 30 ]"
check "category filter takes subcategories (Computers includes Laptops)" bash -c "
    curl -fsS '$CATALOG_URL/catalog/products?category=2&limit=100' | grep -q '\"name\":\"Ultrabook 13\"'"

curl -fsS -o /dev/null "$CATALOG_URL/catalog/products/$PRODUCT"
h0=$(metric "$CATALOG_URL" 'catalog_cache_requests_total{result="hit"}')
curl -fsS -o /dev/null "$CATALOG_URL/catalog/products/$PRODUCT"
h1=$(metric "$CATALOG_URL" 'catalog_cache_requests_total{result="hit"}')
# (>=: lab traffic may read through the cache at the same time)
check "a repeated product read is a cache hit" python3 -c "import sys; sys.exit(0 if float('$h1') >= float('${h0:-0}') + 1 else 1)"

# Subscribe before the order exists; redis-cli prints each message.
# (The subscriber lives until the trap ends it: a loaded lab is slow.)
timeout 120 redis-cli -u "$REDIS_URL" SUBSCRIBE orders:status >"$TMP/sub.txt" 2>&1 &
SUB_PID=$!
wait_for 5 grep -q subscribe "$TMP/sub.txt"

user=7$RANDOM$RANDOM # user ids are the gateway's: digits
key=k-$RANDOM$RANDOM
body="{\"items\":[{\"product_id\":$PRODUCT,\"quantity\":2}],\"shipping_address\":{\"name\":\"Live\",\"line1\":\"1 Test St\",\"city\":\"Lab\",\"postal_code\":\"1\",\"country\":\"DE\"}}"
stock0=$(curl -fsS "$CATALOG_URL/catalog/products/$PRODUCT" | jq_ 'd["stock"]')
code=$(curl -sS -o "$TMP/order.json" -w '%{http_code}' -H "X-User-Id: $user" -H "Idempotency-Key: $key" -d "$body" "$ORDER_URL/orders")
[ "$code" = 201 ] && ok "POST /orders creates an order (201)" || { not_ok "POST /orders creates an order (got $code)"; sed 's/^/#   /' "$TMP/order.json"; echo; }
id=$(jq_ 'd["id"]' <"$TMP/order.json" 2>/dev/null)
check "the total is exact (2 x 12.50 = 25.00 USD)" grep -q '"total":"25.00"' "$TMP/order.json"
check "stock was reserved" bash -c "[ \$(curl -fsS '$CATALOG_URL/catalog/products/$PRODUCT' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"stock\"])') -eq $((stock0 - 2)) ]"
check "a retry with the same Idempotency-Key returns the same order (200)" bash -c "
    curl -sS -w '%{http_code}' -H 'X-User-Id: $user' -H 'Idempotency-Key: $key' -d '$body' '$ORDER_URL/orders' | grep -q '\"id\":\"$id\",.*200\$'"
check "the same key with another body is 409 idempotency_conflict" bash -c "
    curl -sS -H 'X-User-Id: $user' -H 'Idempotency-Key: $key' -d '${body/\"quantity\":2/\"quantity\":3}' '$ORDER_URL/orders' | grep -q idempotency_conflict"
check "another user cannot see it (404)" bash -c "
    [ \$(curl -sS -o /dev/null -w '%{http_code}' -H 'X-User-Id: 424242' '$ORDER_URL/orders/$id') = 404 ]"
check "the owner may not mark it paid (403)" bash -c "
    [ \$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'X-User-Id: $user' -d '{\"status\":\"paid\"}' '$ORDER_URL/orders/$id/status') = 403 ]"
check "an admin marks it paid (pending -> paid)" bash -c "
    curl -fsS -X PUT -H 'X-User-Id: 1' -H 'X-User-Roles: admin' -d '{\"status\":\"paid\"}' '$ORDER_URL/orders/$id/status' | grep -q '\"status\":\"paid\"'"
check "an illegal transition is 409 (paid -> delivered)" bash -c "
    [ \$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'X-User-Id: 1' -H 'X-User-Roles: admin' -d '{\"status\":\"delivered\"}' '$ORDER_URL/orders/$id/status') = 409 ]"
check "cancel returns the stock" bash -c "
    curl -fsS -X PUT -H 'X-User-Id: $user' -d '{\"status\":\"cancelled\"}' '$ORDER_URL/orders/$id/status' | grep -q '\"status\":\"cancelled\"' &&
    [ \$(curl -fsS '$CATALOG_URL/catalog/products/$PRODUCT' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"stock\"])') -eq $stock0 ]"
# Each change once or more (delivery is at least once): creation, paid, cancelled.
check "the status changes reached Redis pub/sub orders:status" \
    wait_for 30 bash -c "
        grep '\"order_id\":\"$id\",' '$TMP/sub.txt' >'$TMP/mine.txt' &&
        grep -q '\"from\":null,\"to\":\"pending\"' '$TMP/mine.txt' &&
        grep -q '\"from\":\"pending\",\"to\":\"paid\"' '$TMP/mine.txt' &&
        grep -q '\"from\":\"paid\",\"to\":\"cancelled\"' '$TMP/mine.txt'"
grep "\"order_id\":\"$id\"," "$TMP/sub.txt" >"$TMP/events.jsonl"
if command -v node >/dev/null && [ -d tests/contract/node_modules ]; then
    check "those events validate against proto/events (shop.orders.events)" \
        node tests/contract/validate-event.mjs --topic shop.orders.events "$TMP/events.jsonl"
else
    skip "those events validate against proto/events" "node or tests/contract/node_modules missing"
fi
check "shop_orders_total counts them" bash -c "
    curl -fsS '$ORDER_URL/metrics' | grep -q '^shop_orders_total{status=\"cancelled\"} [1-9]'"

if [ -x build/bin/gateway ] && curl -fsS -o /dev/null "$GATEWAY_URL/readyz" 2>/dev/null; then
    code=$(curl -sS -o "$TMP/gw.json" -w '%{http_code}' "$GATEWAY_URL/api/products/$PRODUCT")
    if [ "$code" = 200 ]; then
        check "the gateway routes /api/products to catalog" grep -q '"name":"Mug"' "$TMP/gw.json"
    else
        skip "the gateway routes /api/products to catalog" "GET /api/products/$PRODUCT through the gateway answered $code (its routing/auth is not the shop's)"
    fi
    # A real user: register, log in, order with the bearer token; the
    # gateway turns the JWT into X-User-Id for the order service.
    email=shop-$RANDOM$RANDOM@example.com
    pw="correct horse battery staple"
    curl -sS -o "$TMP/reg.json" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$pw\"}" "$GATEWAY_URL/v1/auth/register"
    token=$(curl -sS -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"password\":\"$pw\"}" \
        "$GATEWAY_URL/v1/auth/login" | jq_ 'd["access_token"]' 2>/dev/null)
    gw_user=$(jq_ 'd["id"]' <"$TMP/reg.json" 2>/dev/null)
    if [ -n "$token" ] && [ -n "$gw_user" ]; then
        code=$(curl -sS -o "$TMP/gw-order.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
            -H "Idempotency-Key: gw-$key" -H 'Content-Type: application/json' -d "$body" "$GATEWAY_URL/api/orders")
        if [ "$code" = 201 ] && grep -q "\"user_id\":\"$gw_user\"" "$TMP/gw-order.json"; then
            ok "an order through the gateway belongs to the token's user (201)"
        else
            not_ok "an order through the gateway belongs to the token's user (got $code)"
            sed 's/^/#   /' "$TMP/gw-order.json"; echo
        fi
        gw_id=$(jq_ 'd["id"]' <"$TMP/gw-order.json" 2>/dev/null)
        check "the user reads it back through the gateway" bash -c "
            curl -fsS -H 'Authorization: Bearer $token' '$GATEWAY_URL/api/orders/$gw_id' | grep -q '\"id\":\"$gw_id\"'"
        check "and gives the stock back by cancelling it" bash -c "
            curl -fsS -X PUT -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \
                -d '{\"status\":\"cancelled\"}' '$GATEWAY_URL/api/orders/$gw_id/status' | grep -q '\"status\":\"cancelled\"'"
    else
        skip "an order through the gateway" "could not register/log in through the gateway ($(head -c 200 "$TMP/reg.json"))"
    fi
else
    skip "the gateway routes /api/products to catalog" "gateway not built or not ready"
fi
done_testing
