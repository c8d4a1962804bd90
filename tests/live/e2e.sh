#!/usr/bin/env bash
# The API consumer's journey end to end, over HTTP through the gateway only
# (tests/live/README.md: runs inside tests/lab/suite.sh while a lab is up).
#
#   accounts   register two fresh users (unique emails), duplicate -> 409,
#              an SQL-injection-looking email kept literally, log in (JWT),
#              wrong password -> 401
#   money      deposit through the gateway: the seller's credited by the
#              wallet's admin route (the lab's shortcut), the buyer's by
#              the chain mock's confirmations (with a deadline); a repeated
#              Idempotency-Key -> the same deposit; exact balances
#   trading    at the last trade price (30000 on a fresh lab), inside the
#              spread: a crossing pair of GTC limits (seller rests = maker,
#              buyer crosses = taker), both filled in GET /v1/orders/{id}
#              with exact fills and average price, the trade in /trades,
#              /candles, /ticker, book depth before and after; IOC (rest
#              expired), FOK (nothing traded), market sell by quantity,
#              post-only that would cross (rejected), market buy by
#              quote_amount seen on the SSE stream through the gateway;
#              balances, the ledger and the fee account sys:fees changed
#              exactly as the wallet's fee bps say (exact decimal strings);
#              cancel (DELETE) with the hold released, 409 on a second
#              cancel; order idempotency (200 / 409), insufficient funds
#              (422), cancel-all, order lists (only the caller's)
#   withdraw   the demo user alice withdraws BTC to her seeded allow-listed
#              address, completed, balance down by amount + network fee;
#              another user -> 404; a non-allow-listed address -> 403
#   security   no token / tampered / alg:none / expired / other-key token
#              -> 401 (WWW-Authenticate), another user's order -> 404 (read
#              and cancel), spoofed X-User-Id ignored (orders, balances),
#              X-Request-Id returned, oversized body -> 413
#   ledger     conservation by SQL on the wallet's database: per asset
#              sum(users + sys:fees) = credited deposits - completed
#              withdrawals, held = open holds, postings sum to zero
#
# A step whose services are not built (build/bin/<name>) is skipped loudly;
# a failing step prints the response it got and the end of the relevant
# $LAB_DIR/logs/<service>.log as TAP diagnostics.
cd "$(dirname "$0")/../.."
ROOT=$PWD
source tests/lib/tap.sh

G=${GATEWAY_URL:-}
W=${WALLET_URL:-}
MARKET=BTC-USDT
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ -z "$G" ]; then
    skip "e2e through the gateway" "GATEWAY_URL is not set (run inside tests/lab/suite.sh)"
    done_testing; exit $?
fi
for tool in curl jq python3; do
    if ! command -v $tool >/dev/null; then
        skip "e2e through the gateway" "$tool is missing (scripts/deps.sh installs it)"
        done_testing; exit $?
    fi
done
if [ ! -x build/bin/gateway ]; then
    skip "e2e through the gateway" "build/bin/gateway not built"
    done_testing; exit $?
fi

# ---- helpers ----------------------------------------------------------------

# missing SVC...: prints the services of the list that are not built.
missing() { local s out=""; for s in "$@"; do [ -x "build/bin/$s" ] || out="$out $s"; done; echo "${out# }"; }
# need NAME SVC...: 0 when all are built, else a loud SKIP of NAME and 1.
need() {
    local name=$1; shift
    local m; m=$(missing "$@")
    [ -z "$m" ] && return 0
    skip "$name" "not built: $m (build/bin/)"
    return 1
}

# Every request is remembered (method, URL, status, body) for diagnostics.
: >"$TMP/trace"
# req METHOD PATH TOKEN [BODY] [CURL ARGS...]: sets CODE, BODY and HDRS.
req() {
    local method=$1 path=$2 token=$3 data=${4:-}; shift 4 2>/dev/null || shift $#
    local args=(-s -X "$method" -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' --max-time 10)
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    local try
    for try in 1 2 3 4; do
        CODE=$(curl "${args[@]}" "$@" "$G$path" 2>/dev/null) || CODE=${CODE:-000}
        # Auth routes are limited per address (5/s, burst 20) and other live
        # checks log in too: wait as told (bounded), the limit is not under test.
        [ "$CODE" = 429 ] && [ "${path#/v1/auth/}" != "$path" ] || break
        sleep "$(sed -n 's/^retry-after: *\([0-9]*\).*/\1/ip' "$TMP/h" | head -n 1 | grep . | awk '{print ($1 > 5) ? 5 : $1}' || echo 1)"
    done
    BODY=$(cat "$TMP/b" 2>/dev/null)
    HDRS=$(cat "$TMP/h" 2>/dev/null)
    printf '%s %s%s -> %s %s\n' "$method" "$path" "${data:+ $data}" "$CODE" "${BODY:0:600}" |
        sed 's/"\(access_token\|refresh_token\)":"[^"]*"/"\1":"..."/g' >>"$TMP/trace"
}
# fail NAME SVC...: a failure with the last requests and the services' logs.
fail() {
    local name=$1 s; shift
    not_ok "$name"
    tail -n 6 "$TMP/trace" | sed 's/^/#   /'
    for s in gateway "$@"; do
        [ -n "${LAB_DIR:-}" ] && [ -f "$LAB_DIR/logs/$s.log" ] || continue
        echo "#   --- $LAB_DIR/logs/$s.log: last warnings/errors, then the last lines"
        grep -E '"level" *: *"(warn|error|fatal)"|ERROR|FATAL' "$LAB_DIR/logs/$s.log" | tail -n 4 | cut -c1-400 | sed 's/^/#   /'
        tail -n 4 "$LAB_DIR/logs/$s.log" | cut -c1-400 | sed 's/^/#   /'
    done
}
# result NAME SVCS CONDITION...: ok, or fail with the diagnostics of SVCS.
result() { local name=$1 svcs=$2; shift 2; if "$@"; then ok "$name"; else fail "$name" $svcs; fi; }

# Exact decimals (python's Decimal): dec EXPR; q(x, s) quantizes to s digits
# (half-even, what the services render), up(x, s) rounds up (fees).
dec() {
    python3 -c "
from decimal import Decimal as D, ROUND_CEILING, ROUND_HALF_EVEN, getcontext
getcontext().prec = 60
def q(x, s): return D(x).quantize(D(1).scaleb(-s), rounding=ROUND_HALF_EVEN)
def up(x, s): return D(x).quantize(D(1).scaleb(-s), rounding=ROUND_CEILING)
print($1)"
}
j() { jq -r "$1" <<<"$BODY" 2>/dev/null; }

# balance TOKEN ASSET FIELD: from GET /v1/balances ("0" scaled when absent).
balance() {
    req GET /v1/balances "$1" ""
    local v; v=$(jq -r --arg a "$2" --arg f "$3" '[.balances[]? | select(.asset == $a) | .[$f]][0] // empty' <<<"$BODY" 2>/dev/null)
    if [ -z "$v" ]; then case $2 in USDT) v=0.000000 ;; *) v=0.00000000 ;; esac; fi
    echo "$v"
}

# wait_status TOKEN ORDER_ID STATUS...: polls GET /v1/orders/{id} (WAIT_S, 30 s;
# the first order of a fresh lab waits for matching's Kafka group to settle).
WAIT_S=30
wait_status() {
    local token=$1 id=$2 i st; shift 2
    for i in $(seq 1 $((WAIT_S * 5))); do
        req GET "/v1/orders/$id" "$token" ""
        st=$(j .status)
        for s in "$@"; do [ "$st" = "$s" ] && return 0; done
        sleep 0.2
    done
    return 1
}

# place TOKEN JSON: POST /v1/orders; sets OID (empty unless 202).
place() {
    req POST /v1/orders "$1" "$2"
    OID=""
    [ "$CODE" = 202 ] && OID=$(j .id)
    [ -n "$OID" ]
}

# cfg NAME DEFAULT: the wallet's setting as the lab gives it, else its default.
cfg() {
    local v=""
    [ -n "${LAB_DIR:-}" ] && v=$(LAB_DIR=$LAB_DIR LAB_PORT_OFFSET=${LAB_PORT_OFFSET:-0} bash scripts/lab.sh env wallet 2>/dev/null | sed -n "s/^$1=//p" | tail -n 1)
    echo "${v:-$2}"
}
config_default() { # NAME: the default of cm_config_int(&cfg, "NAME", "N", ...) in wallet/config.c
    grep -o "\"$1\", *\"[0-9]*\"" services/wallet/config.c 2>/dev/null | grep -o '"[0-9]*"$' | tr -d '"'
}
MAKER_BPS=$(cfg MAKER_FEE_BPS "$(config_default MAKER_FEE_BPS)")
TAKER_BPS=$(cfg TAKER_FEE_BPS "$(config_default TAKER_FEE_BPS)")
MAKER_BPS=${MAKER_BPS:-10} TAKER_BPS=${TAKER_BPS:-20}
diag "fees: maker $MAKER_BPS bps, taker $TAKER_BPS bps (wallet configuration)"

# SQL on the wallet's database (conservation, the fee account).
wsql() { psql "$PG_URL/wallet" -qAt -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
have_sql() { [ -n "${PG_URL:-}" ] && command -v psql >/dev/null && [ -x build/bin/wallet ]; }
fees_of() { # ASSET: sys:fees' total as a decimal string
    wsql "SELECT coalesce(sum(a.available + a.held), 0)::numeric / 10 ^ s.scale
          FROM assets s LEFT JOIN accounts a ON a.asset = s.code AND a.owner = 'sys:fees'
          WHERE s.code = '$1' GROUP BY s.scale"
}

run=$(date +%s)$RANDOM
PW_S="e2e-seller-password-$run" PW_B="e2e-buyer-password-$run"
EMAIL_S="e2e-seller-$run@example.com" EMAIL_B="e2e-buyer-$run@example.com"
QTY=0.01

# ---- accounts ------------------------------------------------------------------

req POST /v1/auth/register "" "{\"email\":\"$EMAIL_S\",\"password\":\"$PW_S\"}"
SID=$(j .id)
result "register the seller (201 with an id)" "" test "$CODE" = 201 -a -n "$SID"
req POST /v1/auth/register "" "{\"email\":\"$EMAIL_B\",\"password\":\"$PW_B\"}"
BID=$(j .id)
result "register the buyer (201 with an id)" "" test "$CODE" = 201 -a -n "$BID"
req POST /v1/auth/register "" "{\"email\":\"$EMAIL_B\",\"password\":\"$PW_B\"}"
result "registering the same email again: 409 conflict" "" test "$CODE" = 409

login() { # EMAIL PASSWORD -> token
    req POST /v1/auth/login "" "{\"email\":\"$1\",\"password\":\"$2\"}"
    [ "$CODE" = 200 ] && j .access_token
}
S=$(login "$EMAIL_S" "$PW_S")
result "the seller logs in (JWT access token)" "" test "$(grep -o '\.' <<<"$S" | wc -l)" -eq 2
B=$(login "$EMAIL_B" "$PW_B")
result "the buyer logs in (JWT access token)" "" test "$(grep -o '\.' <<<"$B" | wc -l)" -eq 2
req POST /v1/auth/login "" "{\"email\":\"$EMAIL_B\",\"password\":\"wrong-password-123\"}"
result "a wrong password: 401" "" test "$CODE" = 401

# An email that looks like SQL injection (quotes and = are legal in its
# local part): stored and returned literally, and it logs in.
odd="e2e-x'or'1'='1-$run@example.com"
req POST /v1/auth/register "" "$(jq -cn --arg e "$odd" --arg p "$PW_S" '{email: $e, password: $p}')"
result "an SQL-injection-looking email is stored and returned literally" "" test "$CODE/$(j .email)" = "201/$odd"
req POST /v1/auth/login "" "$(jq -cn --arg e "$odd" --arg p "$PW_S" '{email: $e, password: $p}')"
result "and logs in" "" test "$CODE" = 200 -a -n "$(j '.access_token // empty')"

if [ -z "$S" ] || [ -z "$B" ]; then
    not_ok "no tokens: the rest of the journey cannot run"
    done_testing; exit $?
fi

# ---- money in ------------------------------------------------------------------

DEP_S=1 DEP_B=10000
funded=0
if need "deposits through the gateway" wallet; then
    req POST /v1/deposits "$S" "{\"asset\":\"BTC\",\"amount\":\"$DEP_S\"}" -H "Idempotency-Key: e2e-$run-s"
    dep_s=$(j .id)
    result "the seller deposits $DEP_S BTC through the gateway (201 pending)" wallet \
        test "$CODE" = 201 -a -n "$dep_s" -a "$(j .status)" = pending
    if [ -n "$dep_s" ] && [ -n "${W:-}" ] && [ -n "${ADMIN_TOKEN:-}" ]; then
        code=$(curl -s -o "$TMP/b" -w '%{http_code}' -X POST -H "X-Admin-Token: $ADMIN_TOKEN" "$W/admin/deposits/$dep_s/credit")
        echo "POST wallet /admin/deposits/$dep_s/credit -> $code $(cat "$TMP/b")" >>"$TMP/trace"
        result "the wallet's admin route credits it at once" wallet \
            test "$code" = 200 -a "$(jq -r .status "$TMP/b" 2>/dev/null)" = credited
    else
        skip "the wallet's admin route credits it at once" "WALLET_URL or ADMIN_TOKEN not set"
    fi
    req POST /v1/deposits "$B" "{\"asset\":\"USDT\",\"amount\":\"$DEP_B\"}" -H "Idempotency-Key: e2e-$run-b"
    dep_b=$(j .id)
    result "the buyer deposits $DEP_B USDT through the gateway (201 pending)" wallet test "$CODE" = 201 -a -n "$dep_b"
    # The chain mock confirms once per tick (DEPOSIT_TICK, 1 s) up to 3.
    credited() { req GET /v1/deposits "$B" ""; [ "$(jq -r --arg d "$dep_b" '.items[]? | select(.id == $d) | .status' <<<"$BODY")" = credited ]; }
    got=1; for _ in $(seq 1 60); do credited && { got=0; break; }; sleep 0.5; done
    result "the buyer's deposit is credited after its confirmations (30 s deadline)" wallet test $got = 0
    req POST /v1/deposits "$B" "{\"asset\":\"USDT\",\"amount\":\"$DEP_B\"}" -H "Idempotency-Key: e2e-$run-b"
    result "the same deposit again (same Idempotency-Key and body): 200, the same deposit" wallet test "$CODE/$(j .id)" = "200/$dep_b"
    bs=$(balance "$S" BTC total) bb=$(balance "$B" USDT total)
    result "balances: seller BTC $bs = $DEP_S, buyer USDT $bb = $DEP_B (exact strings)" wallet \
        test "$bs" = "$(dec "q('$DEP_S', 8)")" -a "$bb" = "$(dec "q('$DEP_B', 6)")"
    [ "$bs" = "$(dec "q('$DEP_S', 8)")" ] && [ "$bb" = "$(dec "q('$DEP_B', 6)")" ] && funded=1
fi

# ---- trading -------------------------------------------------------------------

TRADE_SVCS="trading-api matching wallet risk"
traded=0 px=""
book_at() { # SIDE PRICE -> quantity resting there ("0" when none)
    req GET "/v1/markets/$MARKET/book?depth=50" "$S" ""
    local v; v=$(jq -r --arg p "$2" --arg s "$1" '[.[$s][]? | select(.price == $p) | .quantity][0] // "0"' <<<"$BODY" 2>/dev/null)
    echo "${v:-0}"
}
if [ $funded = 0 ]; then
    if [ -x build/bin/wallet ]; then
        not_ok "trading journey: the two users could not be funded (see the deposit steps)"
    else
        skip "trading journey" "not built: wallet (build/bin/): nobody can be funded"
    fi
elif need "trading journey" $TRADE_SVCS; then
    # A price inside the spread and the risk band: at the last trade, moved
    # above the best bid, so our pair only meets itself. Without a trade yet:
    # 30000, the price the other live checks and labctl's probes use (risk's
    # price_band refuses orders 10% away from the last trade: trading at
    # another price here would make them fail).
    req GET "/v1/markets/$MARKET/ticker" "$S" ""
    last=$(j '.last_price // "30000"')
    req GET "/v1/markets/$MARKET/book?depth=50" "$S" ""
    bid=$(j '.bids[0].price // ""') ask=$(j '.asks[0].price // ""')
    px=$(dec "max(q('$last', 6), q('${bid:-0}', 6) + D('0.01'))")
    if [ -n "$ask" ] && [ "$(dec "int(D('$px') >= D('$ask'))")" = 1 ]; then
        diag "no free price between bid $bid and ask $ask near $last"; px=""
    fi
    diag "trading at $px (last ${last}, best bid ${bid:-none}, best ask ${ask:-none})"
    req GET "/v1/markets/$MARKET/trades?limit=1" "$S" ""
    trade_before=$(j '.items[0].id // ""')
    fees_usdt0=$(have_sql && fees_of USDT) fees_btc0=$(have_sql && fees_of BTC)
    ask0=$(book_at asks "$(dec "q('$px', 6)")")
fi
if [ -n "$px" ]; then
    PX=$(dec "q('$px', 6)") QTY8=$(dec "q('$QTY', 8)")
    order() { # SIDE TYPE TIF COID [PRICE] [QTY]
        local p=${5-$PX}
        printf '{"market":"%s","side":"%s","type":"%s"%s,"quantity":"%s","time_in_force":"%s","client_order_id":"%s"}' \
            "$MARKET" "$1" "$2" "${p:+,\"price\":\"$p\"}" "${6:-$QTY}" "$3" "$4"
    }
    # 1. the seller rests, the buyer crosses
    place "$S" "$(order sell limit GTC "e2e-$run-sell1")"; sell1=$OID
    result "the seller's GTC limit sell $QTY @ $PX: 202 pending" "trading-api risk wallet" test -n "$sell1" -a "$(j .status)" = pending
    WAIT_S=60
    result "it rests: open in GET /v1/orders/{id}" "trading-api matching" wait_status "$S" "$sell1" open
    WAIT_S=30
    result "its hold: $QTY BTC held" wallet test "$(balance "$S" BTC held)" = "$(dec "q('$QTY', 8)")"
    ask1=$(book_at asks "$PX")
    result "book depth: the ask at $PX grew by $QTY ($ask0 -> $ask1)" "trading-api matching" \
        test "$(dec "D('$ask1') - D('$ask0') == D('$QTY')")" = True
    place "$B" "$(order buy limit GTC "e2e-$run-buy1")"; buy1=$OID
    result "the buyer's crossing GTC limit buy: 202" "trading-api risk wallet" test -n "$buy1"
    result "the buy is filled (GET /v1/orders/{id})" "trading-api matching" wait_status "$B" "$buy1" filled
    result "its filled_quantity, filled_quote and average_price are exact" trading-api \
        test "$(j .filled_quantity)/$(j .filled_quote)/$(j .average_price)" = "$(dec "q('$QTY', 8)")/$(dec "q(D('$PX') * D('$QTY'), 6)")/$PX"
    result "the sell is filled" "trading-api matching" wait_status "$S" "$sell1" filled
    # Trades travel on their own topic: the read model may show the fills
    # (orders.events) a moment before the trade (trades). Poll, and say how long.
    t0=$(date +%s%N)
    trade_seen() { local i; for i in $(seq 1 75); do
        req GET "/v1/markets/$MARKET/trades?limit=5" "$B" ""
        [ "$(j '.items[0].id // ""')" != "$trade_before" ] &&
            [ "$(j '.items[0] | "\(.price) \(.quantity) \(.taker_side)"')" = "$PX $QTY8 buy" ] && return 0
        sleep 0.2; done; return 1; }
    result "the trade is first in GET /v1/markets/$MARKET/trades ($QTY @ $PX, taker buy)" trading-api trade_seen
    diag "the trade was listed $(( ($(date +%s%N) - t0) / 1000000 )) ms after both orders showed filled"
    trade_ts=$(j '.items[0].ts')
    minute="${trade_ts:0:16}"
    req GET "/v1/markets/$MARKET/candles?interval=1m&limit=5" "$B" ""
    result "a 1m candle for ${minute}Z holds it (close $PX, low <= $PX <= high, volume >= $QTY)" trading-api \
        test "$(jq -r --arg m "$minute" --arg p "$PX" --arg v "$QTY" '
            [.candles[]? | select(.open_time | startswith($m)) |
             (.close == $p) and ((.low|tonumber) <= ($p|tonumber)) and ((.high|tonumber) >= ($p|tonumber)) and ((.volume|tonumber) >= ($v|tonumber))][0]' <<<"$BODY")" = true
    req GET "/v1/markets/$MARKET/ticker" "$B" ""
    result "the ticker's last_price is $PX" trading-api test "$(j .last_price)" = "$PX"
    ask2=$(book_at asks "$PX")
    result "book depth: the ask at $PX is gone again ($ask1 -> $ask2)" "trading-api matching" test "$ask2" = "$ask0"

    # Expected balances: seller maker, buyer taker; fees on what each receives, rounded up.
    NOTIONAL=$(dec "q(D('$PX') * D('$QTY'), 6)")
    FEE_MAKER_Q=$(dec "up(D('$NOTIONAL') * $MAKER_BPS / 10000, 6)")
    FEE_TAKER_Q=$(dec "up(D('$NOTIONAL') * $TAKER_BPS / 10000, 6)")
    FEE_MAKER_B=$(dec "up(D('$QTY') * $MAKER_BPS / 10000, 8)")
    FEE_TAKER_B=$(dec "up(D('$QTY') * $TAKER_BPS / 10000, 8)")
    # settle_ok: balances reach the expected strings (settlement is asynchronous).
    settled() { # S_BTC S_USDT B_BTC B_USDT
        local i got want="$1/$2/$3/$4"
        for i in $(seq 1 50); do
            got="$(balance "$S" BTC total)/$(balance "$S" USDT total)/$(balance "$B" BTC total)/$(balance "$B" USDT total)"
            [ "$got" = "$want" ] && return 0
            sleep 0.2
        done
        echo "got $got, want $want" >>"$TMP/trace"; return 1
    }
    e_sb=$(dec "q(D('$DEP_S') - D('$QTY'), 8)") e_su=$(dec "q(D('$NOTIONAL') - D('$FEE_MAKER_Q'), 6)")
    e_bb=$(dec "q(D('$QTY') - D('$FEE_TAKER_B'), 8)") e_bu=$(dec "q(D('$DEP_B') - D('$NOTIONAL'), 6)")
    result "balances settled exactly: seller BTC $e_sb USDT $e_su (maker fee $FEE_MAKER_Q), buyer BTC $e_bb (taker fee $FEE_TAKER_B) USDT $e_bu" wallet \
        settled "$e_sb" "$e_su" "$e_bb" "$e_bu"
    result "nothing stays held after the fills" wallet \
        test "$(balance "$S" BTC held)/$(balance "$B" USDT held)" = "0.00000000/0.000000"
    traded=1

    # 2. IOC: a buy for twice what rests; the rest expires.
    place "$S" "$(order sell limit GTC "e2e-$run-sell2")"; sell2=$OID
    result "another resting sell $QTY @ $PX is open" "trading-api matching" wait_status "$S" "${sell2:-none}" open
    place "$B" "$(order buy limit IOC "e2e-$run-ioc" "$PX" "$(dec "D('$QTY') * 2")")"; ioc=$OID
    result "IOC buy of $(dec "D('$QTY') * 2"): expired with $QTY filled (end_reason ioc)" "trading-api matching" \
        eval 'wait_status "$B" "${ioc:-none}" expired && [ "$(j .filled_quantity)" = "$QTY8" ] && [ "$(j .end_reason)" = ioc ]'
    result "the resting sell it met is filled" "trading-api matching" wait_status "$S" "${sell2:-none}" filled

    # 3. FOK: more than rests -> nothing trades.
    place "$S" "$(order sell limit GTC "e2e-$run-sell3")"; sell3=$OID
    result "a third resting sell $QTY @ $PX is open" "trading-api matching" wait_status "$S" "${sell3:-none}" open
    place "$B" "$(order buy limit FOK "e2e-$run-fok" "$PX" "$(dec "D('$QTY') * 2")")"; fok=$OID
    result "FOK buy of $(dec "D('$QTY') * 2") against $QTY: expired, nothing filled (end_reason fok)" "trading-api matching" \
        eval 'wait_status "$B" "${fok:-none}" expired && [ "$(j .filled_quantity)" = 0.00000000 ] && [ "$(j .end_reason)" = fok ]'
    req GET "/v1/orders/${sell3:-none}" "$S" ""
    result "the resting sell is untouched by the FOK (open, nothing filled)" trading-api \
        test "$(j .status)/$(j .filled_quantity)" = open/0.00000000
    # The buyer takes it with a GTC (taker), so the seller can trade a market order next.
    place "$B" "$(order buy limit GTC "e2e-$run-buy3")"; buy3=$OID
    result "the buyer takes the third sell" "trading-api matching" \
        eval 'wait_status "$B" "${buy3:-none}" filled && wait_status "$S" "${sell3:-none}" filled'

    # 4. market sell by quantity against a resting buy (seller taker, buyer maker).
    place "$B" "$(order buy limit GTC "e2e-$run-buy4")"; buy4=$OID
    result "the buyer's GTC buy $QTY @ $PX rests (open)" "trading-api matching" wait_status "$B" "${buy4:-none}" open
    place "$S" "$(order sell market IOC "e2e-$run-mkt" "")"; mkt=$OID
    result "market sell of $QTY (IOC): filled at $PX" "trading-api matching" \
        eval 'wait_status "$S" "${mkt:-none}" filled && [ "$(j .average_price)" = "$PX" ]'
    result "the resting buy it met is filled" "trading-api matching" wait_status "$B" "${buy4:-none}" filled

    # 5. post-only that would cross: rejected; then a market buy by quote
    #    amount takes the resting sell, watched on the SSE stream.
    place "$S" "$(order sell limit GTC "e2e-$run-sell5")"; sell5=$OID
    result "a fifth resting sell $QTY @ $PX is open" "trading-api matching" wait_status "$S" "${sell5:-none}" open
    req POST /v1/orders "$B" "{\"market\":\"$MARKET\",\"side\":\"buy\",\"type\":\"limit\",\"price\":\"$PX\",\"quantity\":\"$QTY\",\"time_in_force\":\"GTC\",\"post_only\":true,\"client_order_id\":\"e2e-$run-po\"}"
    po=$([ "$CODE" = 202 ] && j .id)
    result "a post-only buy that would cross: rejected (reject_reason post_only)" "trading-api matching" \
        eval 'wait_status "$B" "${po:-none}" rejected && [ "$(j .reject_reason)" = post_only ]'
    curl -s -N --max-time 15 -D "$TMP/sse.h" -H "Authorization: Bearer $B" -H 'Accept: text/event-stream' \
        "$G/v1/markets/$MARKET/stream" >"$TMP/sse" 2>/dev/null &
    sse=$!
    # Live events only reach a subscriber: wait (5 s) for the stream's head.
    for _ in $(seq 1 25); do grep -qi '^content-type: *text/event-stream' "$TMP/sse.h" 2>/dev/null && break; sleep 0.2; done
    req POST /v1/orders "$B" "{\"market\":\"$MARKET\",\"side\":\"buy\",\"type\":\"market\",\"quote_amount\":\"$NOTIONAL\",\"client_order_id\":\"e2e-$run-mq\"}"
    mq=$([ "$CODE" = 202 ] && j .id)
    result "market buy for $NOTIONAL USDT (quote_amount): filled, $QTY8 at $PX" "trading-api matching" \
        eval 'wait_status "$B" "${mq:-none}" filled && [ "$(j .filled_quantity)/$(j .average_price)" = "$QTY8/$PX" ]'
    result "the resting sell it met is filled" "trading-api matching" wait_status "$S" "${sell5:-none}" filled
    sse_trade() { local i; for i in $(seq 1 40); do grep -q '^event: *trade' "$TMP/sse" && return 0; sleep 0.25; done
        echo "SSE through the gateway got: $(head -c 400 "$TMP/sse" | tr '\n' '|')" >>"$TMP/trace"; return 1; }
    result "the trade arrives on GET /v1/markets/$MARKET/stream through the gateway (event: trade)" "trading-api" sse_trade
    kill "$sse" 2>/dev/null; wait "$sse" 2>/dev/null

    # Five trades of QTY at PX: the seller was maker 4 times (sell1, sell2,
    # sell3, sell5) and taker once (market sell); the buyer the other way round.
    e_sb=$(dec "q(D('$DEP_S') - 5 * D('$QTY'), 8)")
    e_su=$(dec "q(5 * D('$NOTIONAL') - 4 * D('$FEE_MAKER_Q') - D('$FEE_TAKER_Q'), 6)")
    e_bb=$(dec "q(5 * D('$QTY') - 4 * D('$FEE_TAKER_B') - D('$FEE_MAKER_B'), 8)")
    e_bu=$(dec "q(D('$DEP_B') - 5 * D('$NOTIONAL'), 6)")
    result "balances after IOC, FOK, post-only and market orders: seller BTC $e_sb USDT $e_su, buyer BTC $e_bb USDT $e_bu" wallet \
        settled "$e_sb" "$e_su" "$e_bb" "$e_bu"
    result "nothing stays held (market orders' holds released)" wallet \
        test "$(balance "$S" BTC held)/$(balance "$B" USDT held)" = "0.00000000/0.000000"
    ledger_sum() { # TOKEN ASSET: the sum of the user's ledger changes
        req GET "/v1/ledger?asset=$2&limit=500" "$1" ""
        python3 -c 'import json, sys; from decimal import Decimal as D; print(sum((D(i["amount"]) for i in json.load(sys.stdin)["items"]), D(0)))' <<<"$BODY" 2>/dev/null
    }
    result "GET /v1/ledger: the buyer's BTC and USDT postings add up to the balances" wallet \
        test "$(dec "D('$(ledger_sum "$B" BTC)') == D('$e_bb') and D('$(ledger_sum "$B" USDT)') == D('$e_bu')")" = True
    if have_sql; then
        want_q=$(dec "q(D('${fees_usdt0:-0}') + 4 * D('$FEE_MAKER_Q') + D('$FEE_TAKER_Q'), 6)")
        want_b=$(dec "q(D('${fees_btc0:-0}') + 4 * D('$FEE_TAKER_B') + D('$FEE_MAKER_B'), 8)")
        got_q=$(dec "q(D('$(fees_of USDT)'), 6)") got_b=$(dec "q(D('$(fees_of BTC)'), 8)")
        echo "sys:fees USDT $fees_usdt0 -> $got_q (want $want_q), BTC $fees_btc0 -> $got_b (want $want_b)" >>"$TMP/trace"
        result "the fee account sys:fees gained exactly the fees (USDT $want_q, BTC $want_b)" wallet \
            test "$got_q/$got_b" = "$want_q/$want_b"
    else
        skip "the fee account gained exactly the fees" "no PG_URL/psql or wallet not built"
    fi

    # 5. cancel a resting buy below the spread; its hold is released.
    LOW=$(dec "q(D('$PX') * D('0.95'), 2)")
    usdt_av=$(balance "$B" USDT available)
    place "$B" "$(order buy limit GTC "e2e-$run-cancel" "$LOW")"; cxl=$OID
    result "a GTC buy $QTY @ $LOW rests (open)" "trading-api matching" wait_status "$B" "${cxl:-none}" open
    hold=$(dec "q(D('$LOW') * D('$QTY'), 6)")
    result "its hold: $hold USDT held" wallet test "$(balance "$B" USDT held)" = "$hold"
    req DELETE "/v1/orders/${cxl:-none}" "$B" ""
    result "DELETE /v1/orders/{id}: 202" trading-api test "$CODE" = 202
    result "it becomes cancelled" "trading-api matching" wait_status "$B" "${cxl:-none}" cancelled
    released() { local i; for i in $(seq 1 50); do
        [ "$(balance "$B" USDT held)/$(balance "$B" USDT available)" = "0.000000/$usdt_av" ] && return 0; sleep 0.2; done; return 1; }
    result "its hold is released (held 0, available back to $usdt_av)" wallet released
    req DELETE "/v1/orders/${cxl:-none}" "$B" ""
    result "cancelling it again: 409 conflict" trading-api test "$CODE" = 409

    # 6. idempotency, funds, cancel-all, lists
    req POST /v1/orders "$S" "$(order sell limit GTC "e2e-$run-sell1")"
    result "the first sell again (same client_order_id and body): 200, the same order" trading-api \
        test "$CODE/$(j .id)" = "200/$sell1"
    req POST /v1/orders "$S" "$(order sell limit GTC "e2e-$run-sell1" "$PX" "$(dec "D('$QTY') * 2")")"
    result "the same client_order_id with another body: 409 idempotency_conflict" trading-api \
        test "$CODE/$(j .error.code)" = "409/idempotency_conflict"
    req POST /v1/orders "$B" "$(order buy limit GTC "e2e-$run-poor" "$PX" 1)"
    result "a buy beyond the buyer's USDT: 422 insufficient_funds" "trading-api wallet" \
        test "$CODE/$(j .error.code)" = "422/insufficient_funds"
    place "$B" "$(order buy limit GTC "e2e-$run-ca1" "$LOW")"; ca1=$OID
    place "$B" "$(order buy limit GTC "e2e-$run-ca2" "$LOW")"; ca2=$OID
    result "two more resting buys @ $LOW are open" "trading-api matching" \
        eval 'wait_status "$B" "${ca1:-none}" open && wait_status "$B" "${ca2:-none}" open'
    req GET "/v1/orders?market=$MARKET&status=active" "$B" ""
    result "GET /v1/orders?status=active lists exactly those two" trading-api \
        test "$(jq -r '[.items[].id] | sort | join(",")' <<<"$BODY" 2>/dev/null)" = "$(printf '%s\n' "$ca1" "$ca2" | sort | paste -sd,)"
    req DELETE "/v1/orders?market=$MARKET" "$B" ""
    result "DELETE /v1/orders?market=$MARKET (cancel all): 202" trading-api test "$CODE" = 202
    result "both become cancelled" "trading-api matching" \
        eval 'wait_status "$B" "${ca1:-none}" cancelled && wait_status "$B" "${ca2:-none}" cancelled'
    result "their holds are released (held 0, available back to $usdt_av)" wallet released
    req GET "/v1/orders?market=$MARKET&limit=100" "$S" ""
    result "the seller's order list holds only the seller's orders" trading-api \
        test "$(jq -r --arg r "e2e-$run-" '[.items[].client_order_id] | (length == 5) and all(.[]; startswith($r + "sell") or startswith($r + "mkt"))' <<<"$BODY" 2>/dev/null)" = true
elif [ $funded = 1 ] && [ -z "$(missing $TRADE_SVCS)" ]; then
    not_ok "trading journey: no price to trade at (see the diagnostics above)"
fi

# ---- withdrawal (demo user alice, seeded allow-listed address) -------------------

if need "withdrawal to a seeded allow-listed address" wallet wallet-signer; then
    A=$(login alice@example.com alice-lab-password)
    result "the demo user alice logs in (gateway seed)" "" test -n "$A"
    before=$(balance "$A" BTC total)
    req POST /v1/withdrawals "$A" '{"asset":"BTC","amount":"0.001","address":"tb1qdemouser1address0001"}' -H "Idempotency-Key: e2e-$run-wd"
    wd=$(j .id) fee=$(j '.fee // "0.00010000"')
    result "POST /v1/withdrawals 0.001 BTC to her seeded address: 202" "wallet" test "$CODE" = 202 -a -n "$wd"
    done_wd() { local i; for i in $(seq 1 100); do
        req GET "/v1/withdrawals/$wd" "$A" ""; [ "$(j .status)" = completed ] && return 0
        case $(j .status) in failed|rejected) return 1 ;; esac; sleep 0.3; done; return 1; }
    result "it completes (GET /v1/withdrawals/{id}, 30 s)" "wallet wallet-signer" done_wd
    want=$(dec "q(D('$before') - D('0.001') - D('$fee'), 8)")
    result "her BTC total: $before - 0.001 - fee $fee = $want" wallet test "$(balance "$A" BTC total)" = "$want"
    req GET "/v1/withdrawals/$wd" "$B" ""
    result "another user reading it: 404" wallet test "$CODE" = 404
    req POST /v1/withdrawals "$S" '{"asset":"BTC","amount":"0.001","address":"tb1qnotallowlisted0001"}' -H "Idempotency-Key: e2e-$run-wd-bad"
    result "a withdrawal to an address not on the allow-list: 403" wallet test "$CODE" = 403
fi

# ---- security spot checks ----------------------------------------------------------

req GET /v1/balances "" ""
result "no token: 401 with WWW-Authenticate" "" eval '[ "$CODE" = 401 ] && grep -qi "^www-authenticate:" <<<"$HDRS"'
case ${B: -1} in A) t=B ;; *) t=A ;; esac
req GET /v1/balances "${B%?}$t" ""
result "a tampered token: 401" "" test "$CODE" = 401
none=$(printf '%s' '{"alg":"none","typ":"JWT"}' | base64 | tr '+/' '-_' | tr -d '=\n').$(cut -d. -f2 <<<"$B").
req GET /v1/balances "$none" ""
result "an alg:none token: 401" "" test "$CODE" = 401
# HS256 tokens made here with the lab's JWT_SECRET (tests/live/README.md):
# one valid (the control: the construction is right), one expired, one
# signed with another key.
mkjwt() { # SECRET SUB EXP_OFFSET_SECONDS
    python3 - "$@" <<'PY'
import base64, hashlib, hmac, json, sys, time, os
secret, sub, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": sub, "roles": ["user"], "iat": now - 120, "exp": now + off,
                       "iss": "exchange-lab", "aud": "exchange-lab", "jti": os.urandom(8).hex()}).encode())
sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
if [ -n "${JWT_SECRET:-}" ] && [ -n "${BID:-}" ]; then
    req GET /v1/balances "$(mkjwt "$JWT_SECRET" "$BID" 300)" ""
    if [ "$CODE" = 200 ]; then
        ok "a token made with the lab's key is accepted (control for the next two)"
        req GET /v1/balances "$(mkjwt "$JWT_SECRET" "$BID" -60)" ""
        result "an expired token: 401" "" test "$CODE" = 401
        req GET /v1/balances "$(mkjwt "not-the-lab-key-$run" "$BID" 300)" ""
        result "a token signed with another key: 401" "" test "$CODE" = 401
    else
        skip "expired / other-key tokens" "a token made with JWT_SECRET (HS256, iss/aud exchange-lab) is refused ($CODE): the lab signs differently"
    fi
else
    skip "expired / other-key tokens" "JWT_SECRET not set"
fi
req GET /v1/balances "$B" "" -H "X-Request-Id: e2e-$run"
result "X-Request-Id is kept and returned" "" grep -qi "^x-request-id: *e2e-$run" <<<"$HDRS"
if [ -n "${sell1:-}" ]; then
    req GET "/v1/orders/$sell1" "$B" ""
    result "another user's order: 404" trading-api test "$CODE" = 404
    req DELETE "/v1/orders/$sell1" "$B" ""
    result "cancelling another user's order: 404" trading-api test "$CODE" = 404
    req GET "/v1/orders/$sell1" "$B" "" -H "X-User-Id: $SID" -H "X-User-Roles: admin"
    result "a spoofed X-User-Id (the owner's id) is ignored: still 404" trading-api test "$CODE" = 404
else
    skip "another user's order: 404" "no order placed (see above)"
fi
if [ -x build/bin/wallet ] && [ -n "${SID:-}" ]; then
    want=$(balance "$B" USDT total)
    req GET /v1/balances "$B" "" -H "X-User-Id: $SID"
    result "a spoofed X-User-Id on /v1/balances: the caller's own balances" wallet \
        test "$(jq -r '[.balances[]? | select(.asset == "USDT") | .total][0] // "0.000000"' <<<"$BODY")" = "$want" -a "$CODE" = 200
else
    skip "a spoofed X-User-Id on /v1/balances" "wallet not built or no registered user"
fi
head -c $((1048576 + 16)) /dev/zero | tr '\0' 'a' >"$TMP/big"
code=$(curl -s -o "$TMP/b" -w '%{http_code}' --max-time 20 -X POST -H "Authorization: Bearer $B" \
    -H 'Content-Type: application/json' --data-binary @"$TMP/big" "$G/v1/orders")
echo "POST /v1/orders (1 MiB + 16 bytes) -> $code $(head -c 300 "$TMP/b")" >>"$TMP/trace"
result "a body over 1 MiB: 413 payload_too_large" "" test "$code/$(jq -r .error.code "$TMP/b" 2>/dev/null)" = 413/payload_too_large

# ---- conservation (SQL on the wallet's database) -------------------------------------

if have_sql; then
    out=$(wsql "
      WITH own AS (
        SELECT asset, sum(available + held) AS amt FROM accounts
        WHERE owner NOT IN ('sys:deposits', 'sys:withdrawals') GROUP BY asset),
      dep AS (SELECT asset, sum(amount) AS amt FROM deposits WHERE status = 'credited' GROUP BY asset),
      wd AS (SELECT asset, sum(amount) AS amt FROM withdrawals WHERE status = 'completed' GROUP BY asset)
      SELECT s.code, coalesce(own.amt, 0), coalesce(dep.amt, 0), coalesce(wd.amt, 0)
      FROM assets s LEFT JOIN own ON own.asset = s.code LEFT JOIN dep ON dep.asset = s.code
                    LEFT JOIN wd ON wd.asset = s.code
      WHERE coalesce(own.amt, 0) <> coalesce(dep.amt, 0) - coalesce(wd.amt, 0)")
    echo "conservation violations (asset, users+fees, credited deposits, completed withdrawals): ${out:-none}" >>"$TMP/trace"
    result "conservation: per asset sum(users + sys:fees) = credited deposits - completed withdrawals" wallet test -z "$out"
    out=$(wsql "
      SELECT a.owner, a.asset, a.held, coalesce(h.rem, 0) FROM accounts a
      LEFT JOIN (SELECT user_id, asset, sum(remaining) AS rem FROM holds WHERE status <> 'released'
                 GROUP BY user_id, asset) h ON h.user_id = a.owner AND h.asset = a.asset
      WHERE a.held <> coalesce(h.rem, 0)")
    echo "held <> open holds: ${out:-none}" >>"$TMP/trace"
    result "every account's held equals its open holds" wallet test -z "$out"
    out=$(wsql "SELECT asset, sum(amount) FROM postings GROUP BY asset HAVING sum(amount) <> 0")
    echo "unbalanced postings: ${out:-none}" >>"$TMP/trace"
    result "the journal balances per asset (postings sum to zero)" wallet test -z "$out"
else
    skip "conservation by SQL" "PG_URL or psql missing, or wallet not built"
fi

done_testing
