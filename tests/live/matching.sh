#!/usr/bin/env bash
# Live checks of matching on a running lab (tests/live/README.md), through
# its real port: health and readiness (PostgreSQL, Kafka, books loaded),
# the contract metrics of observability/metrics-contract.json, the book of
# every market of markets.json (shape, decimal strings at the market's
# scales, bids descending and asks ascending, depth honoured), and the
# errors (unknown market 404, bad depth 400). Orders reach matching only
# through Kafka; the order flow end to end is trading-api's live check.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh

if [ ! -x build/bin/matching ]; then
    skip "matching live checks" "build/bin/matching not built"
    done_testing
    exit $?
fi
M=${MATCHING_URL:?MATCHING_URL is required}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

check "matching is alive" curl -fsS "$M/healthz"
check "matching is ready (postgres, kafka, books)" bash -c "
    curl -fsS '$M/readyz' | python3 -c '
import json, sys
j = json.load(sys.stdin)
names = {c[\"name\"] for c in j[\"checks\"]}
assert {\"postgres\", \"kafka\", \"books\"} <= names, names
'"
check "exports its contract metrics" bash -c "
    m=\$(curl -fsS '$M/metrics') &&
    for name in matching_commands_total matching_match_latency_seconds matching_book_depth \
                matching_trades_total matching_events_produced_total matching_snapshot_age_seconds \
                matching_snapshot_duration_seconds matching_snapshot_failures_total; do
        grep -q \"^# TYPE \$name \" <<<\"\$m\" || { echo \"missing \$name\" >&2; exit 1; }
    done &&
    grep -q '^matching_book_depth{market=\"BTC-USDT\",side=\"bid\"} ' <<<\"\$m\" &&
    grep -q '^matching_snapshot_age_seconds{market=\"BTC-USDT\"} ' <<<\"\$m\""
check "GET /v1/books/{market} for every market of markets.json" bash -c "
    python3 - '$M' <<'PY'
import json, re, sys, urllib.request
base = sys.argv[1]
for m in json.load(open('services/trading-api/markets.json'))['markets']:
    sym = m['symbol']
    b = json.load(urllib.request.urlopen(f'{base}/v1/books/{sym}?depth=5'))
    assert set(b) == {'market', 'seq', 'ts', 'bids', 'asks'}, b.keys()
    assert b['market'] == sym and isinstance(b['seq'], int) and b['seq'] >= 0
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z', b['ts']), b['ts']
    for side in ('bids', 'asks'):
        lv = b[side]
        assert len(lv) <= 5
        for l in lv:
            assert re.fullmatch(r'\d+\.\d{%d}' % m['quote_scale'], l['price']), l
            assert re.fullmatch(r'\d+\.\d{%d}' % m['base_scale'], l['quantity']), l
            assert isinstance(l['orders'], int) and l['orders'] >= 1
        prices = [float(l['price']) for l in lv]
        assert prices == sorted(prices, reverse=(side == 'bids')), (side, prices)
    if b['bids'] and b['asks']:
        assert float(b['bids'][0]['price']) < float(b['asks'][0]['price']), 'crossed book'
PY"
check "unknown market: 404 not_found" test "$(status "$M/v1/books/NOPE-USDT")" = 404
check "depth=0: 400 invalid_request" test "$(status "$M/v1/books/BTC-USDT?depth=0")" = 400
check "depth=1001: 400 invalid_request" test "$(status "$M/v1/books/BTC-USDT?depth=1001")" = 400
done_testing
