#!/usr/bin/env bash
# Wallet benchmark (issue 4), loopback, same machine as everything else:
# PostgreSQL, Redis and devkafka from tests/lib/infra.sh in a temp dir,
# wallet-signer and wallet, then build/bench/wallet_bench:
#   - settlement: N trades produced to a private trades topic at once; time
#     from the first produce until all N are in processed_events (settled)
#   - holds: POST /internal/holds with wrk (bench/wallet/hold.lua), 32
#     connections paced to offer about HOLD_RATE/s over 100 funded users;
#     the achieved rate is printed beside the p99 (closed loop: a server
#     slower than the offered rate lowers the rate, not the p99); after a
#     VACUUM ANALYZE and a 1 s unmeasured warm-up at the same rate
#   - withdrawals: POST /v1/withdrawals at WD_RATE/s; p95 of request ->
#     broadcast from the wallet's own timestamps (the SLO's definition)
# Prints:
#   BENCH wallet.settlement.throughput <n> trades/s
#   BENCH wallet.hold.p99 <ms> ms
#   BENCH wallet.withdraw.queue_delay.p95 <ms> ms
# Figures are reported, never asserted. Everything started is stopped on
# exit (trap), failure included.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/bin
TRADES=${WALLET_BENCH_TRADES:-20000} # devkafka keeps ~5 MiB per partition: stay well below
HOLD_RATE=${WALLET_BENCH_HOLD_RATE:-2000}
HOLD_CONNS=${WALLET_BENCH_HOLD_CONNS:-32}
WD_RATE=${WALLET_BENCH_WD_RATE:-200}
SECS=${WALLET_BENCH_SECS:-5}

for tool in curl psql redis-server; do
    command -v "$tool" >/dev/null || { echo "bench/wallet.sh: $tool not installed (make deps)" >&2; exit 1; }
done
for b in bin/wallet bin/wallet-signer bin/devkafka bench/wallet_bench; do
    [ -x "$ROOT/$BUILD/$b" ] || { echo "bench/wallet.sh: $BUILD/$b missing (make build)" >&2; exit 1; }
done

source tests/lib/infra.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/walletbench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    infra_stop
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

INFRA_BIN_DIR=$BIN infra_start "$TMP/infra" >/dev/null || { echo "bench/wallet.sh: fixture did not start" >&2; exit 1; }
DB=$(infra_new_db wallet)
ADMIN=bench-admin
export SIGNER_SOCKET=$TMP/signer.sock SIGNER_KEY_FILE=$TMP/signer.keys
SIGNER_KEK=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') "$BIN/wallet-signer" >"$TMP/signer.log" 2>&1 &
PIDS+=($!)
_infra_wait 10 test -S "$SIGNER_SOCKET" || { echo "bench/wallet.sh: signer did not start" >&2; exit 1; }

TOPIC=bench.trades.$$
# A private trades topic with 16 partitions (devkafka's control port):
# the mock trims each partition after a few MiB, so the burst is spread.
CTRL=$(cat "$TMP/infra/kafka.control" 2>/dev/null || true)
if [ -n "$CTRL" ] && curl -fsS -X POST "http://127.0.0.1:$CTRL/topic-create/$TOPIC/16" >/dev/null 2>&1; then
    export BENCH_PARTITIONS=16
else
    echo "bench/wallet.sh: could not create $TOPIC with 16 partitions; using 4" >&2
    export BENCH_PARTITIONS=4
fi
# A free port may be taken between free_port and bind: try up to 3.
for attempt in 1 2 3; do
    PORT=$(free_port)
    env PORT="$PORT" DATABASE_URL="$DB" REDIS_URL="$TEST_REDIS_URL" KAFKA_BROKERS="$TEST_KAFKA_BROKERS" \
        ADMIN_TOKEN=$ADMIN WALLET_TRADES_TOPIC="$TOPIC" WALLET_ORDERS_TOPIC="bench.orders.$$" \
        WALLET_EVENTS_TOPIC="bench.wallet.events.$$" WALLET_CONSUMER_GROUP="bench-$$" \
        WITHDRAW_STREAM="bench:withdrawals:$$" HOLD_RECONCILE_AFTER=1h \
        WITHDRAW_DAILY_LIMIT_USDT=100000000 WITHDRAW_APPROVAL_ABOVE_USDT=100000000 \
        HTTP_THREADS="${WALLET_BENCH_HTTP_THREADS:-4}" \
        "$BIN/wallet" >"$TMP/wallet.log" 2>&1 &
    WPID=$!
    W=http://127.0.0.1:$PORT
    if _infra_wait 20 curl -fsS "$W/readyz"; then
        PIDS+=($WPID)
        break
    fi
    kill "$WPID" 2>/dev/null || true
    wait "$WPID" 2>/dev/null || true
    [ "$attempt" = 3 ] && { echo "bench/wallet.sh: wallet not ready; log:" >&2; tail -20 "$TMP/wallet.log" >&2; exit 1; }
done

deposit() { # USER ASSET AMOUNT
    local id
    id=$(curl -fsS -X POST "$W/v1/deposits" -H "X-User-Id: $1" -d "{\"asset\":\"$2\",\"amount\":\"$3\"}" \
        | sed -n 's/.*"id" *: *"\([^"]*\)".*/\1/p')
    curl -fsS -X POST "$W/admin/deposits/$id/credit" -H "X-Admin-Token: $ADMIN" >/dev/null
}
deposit 1 USDT 100000000
deposit 2 BTC 100
deposit 1 BTC 100
deposit 2 USDT 100000000
# 100 more users for the hold load (deposits credited in SQL: the same
# functions the endpoints call).
psql "$DB" -qAt -c "SELECT count(wallet_credit_deposit(split_part(wallet_create_deposit(u::text,
    'bench', 'USDT', 1000000000000, NULL, 1), ':', 2))) FROM generate_series(1000, 1099) u" >/dev/null
curl -fsS -X POST "$W/admin/addresses" -H "X-Admin-Token: $ADMIN" \
    -d '{"user_id":"1","asset":"USDT","address":"0x0000000000000000000000000000000000000001"}' >/dev/null
# The two orders every bench trade settles against (both users buy and sell).
curl -fsS -X POST "$W/internal/holds" -d '{"hold_id":"1","user_id":"1","asset":"USDT","amount":"1000000"}' >/dev/null
curl -fsS -X POST "$W/internal/holds" -d '{"hold_id":"2","user_id":"2","asset":"BTC","amount":"50"}' >/dev/null
# Odd trades: taker 1 buys from maker 2; even: taker 2 sells to maker 1 -
# buyer's order is always "1" (user 1), seller's always "2" (user 2).
# The topic must exist before the wallet's consumer can fetch from it.
export WALLET_URL=$W DATABASE_URL=$DB KAFKA_BROKERS=$TEST_KAFKA_BROKERS BENCH_TRADES_TOPIC=$TOPIC
"$ROOT/$BUILD/bench/wallet_bench" settle 4 >/dev/null 2>&1 || true # warm-up: topic, group join

echo "wallet bench: settlement of $TRADES trades" >&2
TPS=$("$ROOT/$BUILD/bench/wallet_bench" settle "$TRADES")
# Each phase starts from a quiet database: settlement's 20,000 trades leave
# work for autovacuum (postings, journal, processed_events), which would
# otherwise run, at its own moment, inside the hold phase.
psql "$DB" -qc "VACUUM ANALYZE" >/dev/null
echo "wallet bench: holds at about $HOLD_RATE/s for ${SECS}s (wrk, $HOLD_CONNS paced connections)" >&2
if command -v wrk >/dev/null; then
    # 1 s at the same rate first, not measured: each pooled connection
    # prepares the hold statement and compiles its functions on first use.
    wrk -t2 -c"$HOLD_CONNS" -d1s -s bench/wallet/hold.lua "$W" -- "$HOLD_RATE" "$HOLD_CONNS" >/dev/null 2>&1 || true
    P99=$(wrk -t2 -c"$HOLD_CONNS" -d"${SECS}s" -s bench/wallet/hold.lua "$W" -- "$HOLD_RATE" "$HOLD_CONNS" | tail -1)
else
    "$ROOT/$BUILD/bench/wallet_bench" holds "$HOLD_RATE" 1 >/dev/null 2>&1 || true
    P99=$("$ROOT/$BUILD/bench/wallet_bench" holds "$HOLD_RATE" "$SECS")
fi
echo "wallet bench: withdrawals at $WD_RATE/s for ${SECS}s" >&2
P95=$("$ROOT/$BUILD/bench/wallet_bench" withdraw "$WD_RATE" "$SECS")

echo "BENCH wallet.settlement.throughput $TPS trades/s"
echo "BENCH wallet.hold.p99 $P99 ms"
echo "BENCH wallet.withdraw.queue_delay.p95 $P95 ms"
echo "wallet bench: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
