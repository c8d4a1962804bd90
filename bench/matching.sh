#!/usr/bin/env bash
# Matching benchmark (make bench-matching; assumes `make build` ran).
# 1. The core: build/bench/matching_core_bench pinned to one core when
#    taskset is available. Scenarios and method: bench/matching/core_bench.c
#    and docs/matching.md.
# 2. The service end to end through devkafka on loopback (a private
#    PostgreSQL + devkafka from tests/lib/infra.sh, stopped on exit):
#    throughput, p99 command-to-trade latency at 10,000 cmd/s, and
#    recovery after SIGKILL with 1,000,000 resting orders. Driven by
#    build/bench/matching_service_bench (bench/matching/service_bench.c).
#    Every load is bounded (MATCHING_BENCH_N commands, 10,000/s for
#    MATCHING_BENCH_SECONDS). MATCHING_BENCH_SERVICE=0 skips this part
#    (MATCHING_BENCH_CORE=0 the first, MATCHING_BENCH_RECOVERY=0 the
#    recovery); MATCHING_BENCH_KAFKA_PROPS adds librdkafka properties to
#    the service's (experiments).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
bin="$BUILD/bench/matching_core_bench"
if [[ ! -x $bin ]]; then
    echo "bench/matching.sh: $bin missing, run make build first" >&2
    exit 1
fi
pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c 1 true 2>/dev/null; then
    pin=(taskset -c 1)
    echo "# pinned to cpu 1 ($(nproc) cpus online)"
else
    echo "# not pinned (taskset unavailable)"
fi
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: compare throughput and throughput_wall)"
[[ ${MATCHING_BENCH_CORE:-1} == 0 ]] || "${pin[@]}" "$bin" "$@"

[[ ${MATCHING_BENCH_SERVICE:-1} == 0 ]] && exit 0
svc_bench="$BUILD/bench/matching_service_bench"
svc="$BUILD/bin/matching"
for b in "$svc_bench" "$svc" "$BUILD/bin/devkafka"; do
    [[ -x $b ]] || { echo "bench/matching.sh: $b missing, run make build first" >&2; exit 1; }
done
N=${MATCHING_BENCH_N:-200000}
SECONDS_AT_RATE=${MATCHING_BENCH_SECONDS:-10}
RESTING=${MATCHING_BENCH_RESTING:-1000000}
# Partitions of the latency run's topics (see "Reading the latency" in
# docs/matching.md: the mock broker's fetch cost grows with the batches a
# partition retains, and batches per partition multiply with partitions).
LAT_PARTS=${MATCHING_BENCH_LATENCY_PARTITIONS:-8}
# Every phase gets topics of its own, made up front (a first produce to an
# unknown topic waits ~1 s for its auto-creation), so no phase reads
# another's history.
INFRA_KAFKA_ARGS="--topic bench.tp.commands:8 --topic bench.tp.events:8 --topic bench.tp.trades:8"
INFRA_KAFKA_ARGS+=" --topic bench.lat.commands:$LAT_PARTS --topic bench.lat.events:$LAT_PARTS"
INFRA_KAFKA_ARGS+=" --topic bench.lat.trades:$LAT_PARTS --topic bench.hop:$LAT_PARTS"
INFRA_KAFKA_ARGS+=" --topic bench.recovery.cmds:8 --topic bench.recovery.events:8"
INFRA_KAFKA_ARGS+=" --topic bench.recovery.trades:8"
export INFRA_KAFKA_ARGS
# shellcheck source=tests/lib/infra.sh
source tests/lib/infra.sh
dir=$(mktemp -d /tmp/bench-matching.XXXXXX)
svc_pid=
cleanup() {
    # (the last service is the load program's child, not ours: no wait)
    if [[ -n $svc_pid ]]; then kill "$svc_pid" 2>/dev/null || true; fi
    infra_stop || true
    # MATCHING_BENCH_LOGS=DIR keeps the service logs (with
    # MATCHING_BENCH_LOG_LEVEL=debug: per-batch apply/produce/commit times)
    if [[ -n ${MATCHING_BENCH_LOGS:-} ]]; then cp "$dir"/*.log "$MATCHING_BENCH_LOGS"/ 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
infra_start "$dir/infra" >/dev/null || { echo "bench/matching.sh: infrastructure did not start" >&2; exit 1; }
brokers=$TEST_KAFKA_BROKERS
port=$(free_port)

# 16 markets with BTC-USDT's rules spread over the command partitions,
# plus BTC-USDT itself for the recovery book.
markets=()
{
    echo '{"markets":['
    for i in $(seq -w 0 15); do
        markets+=("M$i-USDT")
        echo "{\"symbol\":\"M$i-USDT\",\"base_scale\":8,\"quote_scale\":6,\"tick_size\":\"0.010000\",\"lot_size\":\"0.00001000\",\"min_quantity\":\"0.00001000\",\"max_quantity\":\"100.00000000\",\"min_price\":\"0.010000\",\"max_price\":\"10000000.000000\",\"price_band_bps\":1000,\"status\":\"trading\"},"
    done
    echo '{"symbol":"BTC-USDT","base_scale":8,"quote_scale":6,"tick_size":"0.010000","lot_size":"0.00001000","min_quantity":"0.00001000","max_quantity":"100.00000000","min_price":"0.010000","max_price":"10000000.000000","price_band_bps":1000,"status":"trading"}]}'
} >"$dir/markets.json"
MTC_MARKETS=$(IFS=,; echo "${markets[*]}")
export MTC_MARKETS

# The service as the lab runs one matching instance: it owns every
# partition (MATCHING_PARTITIONS=all, no group join), 1 ms fetch wait.
svc_env() { # DB GROUP COMMANDS EVENTS TRADES
    export PORT=$port DATABASE_URL=$1 KAFKA_BROKERS=$brokers MATCHING_GROUP=$2 \
        MATCHING_COMMANDS_TOPIC=$3 MATCHING_EVENTS_TOPIC=$4 MATCHING_TRADES_TOPIC=$5 \
        MATCHING_MARKETS_FILE=$dir/markets.json LOG_LEVEL=${MATCHING_BENCH_LOG_LEVEL:-warn} \
        KAFKA_PROPS="session.timeout.ms=6000;heartbeat.interval.ms=500${MATCHING_BENCH_KAFKA_PROPS:+;$MATCHING_BENCH_KAFKA_PROPS}" \
        MATCHING_SNAPSHOT_INTERVAL=2s MATCHING_PARTITIONS=${MATCHING_BENCH_PARTITIONS-all} \
        MATCHING_FETCH_WAIT_MS=${MATCHING_BENCH_FETCH_WAIT_MS:-1}
}
wait_ready() {
    local i
    for i in $(seq 200); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && return 0
        kill -0 "$svc_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
metric() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
svc_start() { # NAME PREFIX: a fresh database and the PREFIX.* topics
    svc_env "$(infra_new_db "matching_$1")" "bench-$1" "$2.commands" "$2.events" "$2.trades"
    "$svc" >"$dir/matching-$1.log" 2>&1 &
    svc_pid=$!
    wait_ready || { echo "bench/matching.sh: matching did not start" >&2; tail -5 "$dir/matching-$1.log" >&2; exit 1; }
}
svc_stop() {
    echo "# service ($1): in-process apply time per command (matching_match_latency_seconds) mean $(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^matching_match_latency_seconds_sum/ {s+=$2} /^matching_match_latency_seconds_count/ {n+=$2} END {if (n) printf "%.2f us over %d commands", s/n*1e6, n}'); snapshots written: $(metric matching_snapshot_duration_seconds_count)"
    kill "$svc_pid"; wait "$svc_pid" 2>/dev/null || true; svc_pid=
}

echo "# service: $(nproc) cpus shared by the service, devkafka, PostgreSQL and the load program"
svc_start tp bench.tp
"$svc_bench" throughput "$brokers" bench.tp.commands bench.tp.events bench.tp.trades "$N" || true
svc_stop throughput
svc_start lat bench.lat
"$svc_bench" latency "$brokers" bench.lat.commands bench.lat.events bench.lat.trades 10000 \
    "$SECONDS_AT_RATE" || true
svc_stop latency
echo "# latency run: $LAT_PARTS partitions per topic"
# the comparison: one Kafka hop at the same rate, no matching (the service
# path has two hops: command in, trade out)
"$svc_bench" hop "$brokers" bench.hop 10000 "$SECONDS_AT_RATE" || true

[[ ${MATCHING_BENCH_RECOVERY:-1} == 0 ]] && exit 0
# Recovery: a seeded snapshot of RESTING orders, a first start that loads
# it, processes a command and writes its own snapshot, SIGKILL, restart.
db=$(infra_new_db matching_recovery)
svc_env "$db" bench-r0 bench.recovery.cmds bench.recovery.events bench.recovery.trades
"$svc" >"$dir/matching-r0.log" 2>&1 &   # runs the migrations, then stops
svc_pid=$!
wait_ready && kill "$svc_pid"; wait "$svc_pid" 2>/dev/null || true; svc_pid=
"$svc_bench" seed "$brokers" bench.recovery.cmds "$db" "$RESTING"
export MATCHING_GROUP=bench-r1 MATCHING_BENCH_LOG=$dir/matching-r1.log
exec 3< <("$svc_bench" recover "$brokers" bench.recovery.cmds bench.recovery.events "$port" "$svc" 2>&1 | sed 's/^BENCH /# first start: BENCH /')
read -r svc_pid <&3
cat <&3
# wait for a snapshot written by the service itself (the whole book)
for _ in $(seq 300); do
    [[ $(metric matching_snapshot_duration_seconds_count) =~ ^[1-9] ]] && break
    sleep 0.1
done
echo "# recovery: book depth $(metric 'matching_book_depth{market="BTC-USDT",side="bid"}') bids $(metric 'matching_book_depth{market="BTC-USDT",side="ask"}') asks; service snapshot took $(metric matching_snapshot_duration_seconds_sum) s"
kill -KILL "$svc_pid"; wait "$svc_pid" 2>/dev/null || true
export MATCHING_GROUP=bench-r2 MATCHING_BENCH_LOG=$dir/matching-r2.log
exec 3< <("$svc_bench" recover "$brokers" bench.recovery.cmds bench.recovery.events "$port" "$svc" 2>&1)
read -r svc_pid <&3
cat <&3
exit 0
