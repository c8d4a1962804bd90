#!/usr/bin/env bash
# trading-api benchmark, loopback, on this (shared, 2-core) machine:
# PostgreSQL, Redis and devkafka from tests/lib/infra.sh in a temp dir,
# trading_standin as risk and wallet (the real wallet needs funded users and
# its own database; risk is not built yet), and build/bin/trading-api with
# its relay and consumer running, logging at info (access log on) to a file.
#
# Load: bench/trading/load.c, open loop at TRADING_BENCH_RATE (1000)
# orders/s for TRADING_BENCH_SECONDS (10) over TRADING_BENCH_CONNS (32)
# keep-alive connections; latency from each request's scheduled send time.
# With build/bin/matching built, the real matching service runs too (own
# database, same devkafka, markets.json) and crossing pairs measure order
# accepted (the buy's 202) -> trade visible in GET /v1/orders/{id}
# (status filled), TRADING_BENCH_PAIRS (50) pairs/s for the same duration.
# Prints:
#   BENCH trading.order_post.p99 <ms> ms
#   BENCH trading.order_post.rate <n> req/s    (the rate achieved)
#   BENCH trading.order_to_trade.p99 <ms> ms   (only with build/bin/matching)
# Figures are reported, never asserted. Everything started is stopped on
# exit (trap), failure included.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/bin
RATE=${TRADING_BENCH_RATE:-1000}
SECONDS_=${TRADING_BENCH_SECONDS:-10}
CONNS=${TRADING_BENCH_CONNS:-32}
PAIRS=${TRADING_BENCH_PAIRS:-50}

for b in bin/trading-api bin/devkafka bench/trading_standin bench/trading_load; do
    [ -x "$ROOT/$BUILD/$b" ] || { echo "bench/trading.sh: $BUILD/$b missing (make build)" >&2; exit 1; }
done

source tests/lib/infra.sh
WORK=$(mktemp -d /tmp/bench-trading.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    infra_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

infra_start "$WORK/infra" >/dev/null
DB=$(infra_new_db trading_bench)
SPORT=$(free_port)
STANDIN_PORT=$SPORT "$ROOT/$BUILD/bench/trading_standin" >"$WORK/standin.log" 2>&1 &
PIDS+=($!)
MPORT=$SPORT
if [ -x "$BIN/matching" ]; then
    MPORT=$(free_port)
    MDB=$(infra_new_db matching_bench)
    # fetch.wait.max.ms: librdkafka's 500 ms default holds an empty fetch
    # that long on devkafka, which would dominate the command -> event hop.
    env PORT="$MPORT" DATABASE_URL="$MDB" KAFKA_BROKERS="$TEST_KAFKA_BROKERS" \
        KAFKA_PROPS="session.timeout.ms=6000;heartbeat.interval.ms=500;fetch.wait.max.ms=5" LOG_LEVEL=warn \
        "$BIN/matching" >"$WORK/matching.log" 2>&1 &
    PIDS+=($!)
    _infra_wait 20 curl -sf "http://127.0.0.1:$MPORT/readyz" || {
        echo "bench/trading.sh: matching did not become ready" >&2; tail -20 "$WORK/matching.log" >&2; exit 1; }
fi
PORT=$(free_port)
env PORT="$PORT" DATABASE_URL="$DB" REDIS_URL="$TEST_REDIS_URL" KAFKA_BROKERS="$TEST_KAFKA_BROKERS" \
    KAFKA_PROPS="session.timeout.ms=6000;heartbeat.interval.ms=500" \
    RISK_URL="http://127.0.0.1:$SPORT" WALLET_URL="http://127.0.0.1:$SPORT" \
    MATCHING_URL="http://127.0.0.1:$MPORT" LOG_LEVEL=info \
    "$BIN/trading-api" >"$WORK/trading-api.log" 2>&1 &
PIDS+=($!)
_infra_wait 20 curl -sf "http://127.0.0.1:$PORT/readyz" || {
    echo "bench/trading.sh: trading-api did not become ready" >&2; tail -20 "$WORK/trading-api.log" >&2; exit 1; }

# Warm-up (connections, plans, pools), then the measured run.
"$ROOT/$BUILD/bench/trading_load" "$PORT" 200 1 8 warm >/dev/null || true
OUT=$("$ROOT/$BUILD/bench/trading_load" "$PORT" "$RATE" "$SECONDS_" "$CONNS" run) || true
echo "# order_post: $OUT (target $RATE/s, $CONNS connections, ${SECONDS_}s; stand-in risk+wallet)" >&2
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)" >&2
P99=$(awk '{for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1)}' <<<"$OUT")
ACH=$(awk '{for (i = 1; i < NF; i++) if ($i == "rate") print $(i + 1)}' <<<"$OUT")
PENDING=$(psql -At "$DB" -c "SELECT count(*) FROM outbox WHERE published_at IS NULL")
echo "# outbox rows still unpublished right after the run: $PENDING" >&2
echo "BENCH trading.order_post.p99 ${P99:-nan} ms"
echo "BENCH trading.order_post.rate ${ACH:-0} req/s"
if [ -x "$BIN/matching" ]; then
    # Warm-up: both consumer groups join (a few seconds on devkafka) before
    # the first pair can trade; wait for one to go through.
    for _ in 1 2 3 4 5 6; do
        W=$("$ROOT/$BUILD/bench/trading_load" "$PORT" 1 1 1 "warm$RANDOM" trade 2>/dev/null) || true
        case $W in *"ok 1 "*) break ;; esac
    done
    OUT=$("$ROOT/$BUILD/bench/trading_load" "$PORT" "$PAIRS" "$SECONDS_" 4 pairs trade) || true
    echo "# order_to_trade: $OUT (pairs/s $PAIRS, real matching, polling GET /v1/orders/{id} every 1 ms)" >&2
    P99=$(awk '{for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1)}' <<<"$OUT")
    echo "BENCH trading.order_to_trade.p99 ${P99:-nan} ms"
else
    echo "# trading.order_to_trade skipped: matching service not built"
fi
