#!/usr/bin/env bash
# Risk service benchmark (issue 6), loopback, on the shared 2-core machine:
# Redis and devkafka from tests/lib/infra.sh in a temp dir, the real risk
# binary, and build/bench/risk_bench:
#   - stream: N events (order.accepted / trade / order.cancelled, 5,000
#     users, 32 markets) produced to topics of 16 partitions before risk
#     starts; throughput = events applied per second, read from
#     risk_events_total while risk works through the backlog (from the
#     first applied event to the last);
#   - pre-trade: open-loop POST /v1/pretrade at a fixed rate (2,000/s by
#     default) for a few seconds on keep-alive connections; latency from
#     each request's scheduled start, so a stall is not hidden;
#   - the pure rules engine in process (events/s, JSON parsing included).
# Prints:
#   BENCH risk.stream.throughput <n> events/s
#   BENCH risk.stream.per_cpu_second <n> events/s  (events per CPU-second of risk)
#   BENCH risk.pretrade.p99 <ms> ms        (and p50, the achieved rate)
#   BENCH risk.engine.throughput <n> events/s
# Figures are reported, never asserted. Everything started is stopped on
# exit (trap), failure included.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/bin
EVENTS=${RISK_BENCH_EVENTS:-200000}
RATE=${RISK_BENCH_RATE:-2000}
SECONDS_=${RISK_BENCH_SECONDS:-5}
PARTS=${RISK_BENCH_PARTITIONS:-32}

for tool in curl redis-server python3; do
    command -v "$tool" >/dev/null || { echo "bench/risk.sh: $tool not installed (make deps)" >&2; exit 1; }
done
for b in "$BIN/risk" "$BIN/devkafka" "$ROOT/$BUILD/bench/risk_bench"; do
    [ -x "$b" ] || { echo "bench/risk.sh: $b missing (make build)" >&2; exit 1; }
done

source tests/lib/infra.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/riskbench.XXXXXX")
RISK_PID=
cleanup() {
    if [ -n "$RISK_PID" ]; then
        kill "$RISK_PID" 2>/dev/null || true
        wait "$RISK_PID" 2>/dev/null || true
    fi
    infra_stop
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

INFRA_BIN_DIR=$BIN infra_start "$TMP/infra" >/dev/null || { echo "bench/risk.sh: fixture did not start" >&2; exit 1; }
control() { # one devkafka control command (docs/kafka.md)
    exec 3<>"/dev/tcp/127.0.0.1/$TEST_KAFKA_CONTROL_PORT"
    echo "$*" >&3
    head -c 200 <&3 >/dev/null || true
    exec 3<&- 3>&-
}
# $PARTS partitions each: devkafka keeps ~5 MiB per partition (docs/kafka.md)
# and its fetches slow down as a partition log grows; 128 market keys spread them.
for t in bench.risk.orders bench.risk.trades bench.risk.wallet bench.risk.alerts; do
    control "topic-create $t $PARTS"
done

"$ROOT/$BUILD/bench/risk_bench" produce "$TEST_KAFKA_BROKERS" bench.risk.orders bench.risk.trades "$EVENTS"

PORT=$(free_port)
metric() { curl -fsS "http://127.0.0.1:$PORT/metrics" | awk -v s="$1" '$1 == s { print $2 }'; }
# LOG_LEVEL=warn: the shipped rules log hits, the access log is info.
env RISK_KAFKA_CONSUMER_PROPS="${RISK_KAFKA_CONSUMER_PROPS:-fetch.wait.max.ms=10;queued.min.messages=200000}" PORT="$PORT" REDIS_URL="$TEST_REDIS_URL" KAFKA_BROKERS="$TEST_KAFKA_BROKERS" \
    KAFKA_PROPS="session.timeout.ms=6000;heartbeat.interval.ms=500" \
    ADMIN_TOKEN=bench LOG_LEVEL=warn HTTP_THREADS=2 \
    RISK_TOPIC_ORDERS=bench.risk.orders RISK_TOPIC_TRADES=bench.risk.trades \
    RISK_TOPIC_WALLET=bench.risk.wallet RISK_TOPIC_ALERTS=bench.risk.alerts \
    RISK_RULES_FILE=services/risk/rules.json RISK_SNAPSHOT_INTERVAL=5s \
    "$BIN/risk" >"$TMP/risk.log" 2>&1 &
RISK_PID=$!
_infra_wait 30 curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null \
    || { echo "bench/risk.sh: risk did not start:" >&2; tail -5 "$TMP/risk.log" >&2; exit 1; }

# Wait for the first applied event (the group join takes ~3 s), then time the backlog.
applied() { local v; v=$(metric 'risk_events_total{result="applied"}'); echo "${v%%.*}"; }
deadline=$((SECONDS + 60))
while :; do
    a0=$(applied); a0=${a0:-0}
    [ "$a0" -gt 0 ] && break
    [ $SECONDS -lt $deadline ] || { echo "bench/risk.sh: risk consumed nothing" >&2; tail -5 "$TMP/risk.log" >&2; exit 1; }
    sleep 0.02
done
cpu() { awk '{ print $14 + $15 }' "/proc/$RISK_PID/stat"; } # utime + stime, clock ticks
c0=$(cpu)
t0=$(date +%s%N)
while :; do
    a=$(applied); a=${a:-0}
    # applied + duplicates (an order id seen twice) + malformed = everything consumed
    c=$(metric 'kafka_consumed_total{topic="bench.risk.orders"}'); d=$(metric 'kafka_consumed_total{topic="bench.risk.trades"}')
    c=${c:-0}; d=${d:-0}
    [ "$(( ${c%%.*} + ${d%%.*} ))" -ge "$EVENTS" ] && break
    [ $SECONDS -lt $deadline ] || { echo "bench/risk.sh: only $a of $EVENTS events applied" >&2; break; }
    sleep 0.02
done
t1=$(date +%s%N)
c1=$(cpu)
python3 -c "import sys; a0,a,t0,t1=map(int,sys.argv[1:]); print('BENCH risk.stream.throughput %d events/s' % ((a-a0)*1e9/(t1-t0)))" "$a0" "$a" "$t0" "$t1"
# The same backlog per CPU-second risk itself used (load-independent on a shared box).
python3 -c "import sys,os; a0,a,c0,c1=map(int,sys.argv[1:]); hz=os.sysconf('SC_CLK_TCK'); print('BENCH risk.stream.per_cpu_second %d events/s' % ((a-a0)*hz/max(c1-c0,1)))" "$a0" "$a" "$c0" "$c1"
echo "# events by result: $(curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '/^risk_events_total/ { printf "%s ", $0 }')"
echo "# stream: $((a - a0)) of $EVENTS events timed ($a0 applied before the clock started); load $(cut -d' ' -f1-3 /proc/loadavg)"

# Pre-trade at a fixed rate (the state holds the stream's history).
read -r achieved p50 p99 errors < <("$ROOT/$BUILD/bench/risk_bench" pretrade "$PORT" "$RATE" "$SECONDS_")
echo "BENCH risk.pretrade.p99 $p99 ms"
echo "BENCH risk.pretrade.p50 $p50 ms"
echo "BENCH risk.pretrade.rate $achieved decisions/s"
# Inside risk (parse + decide + render), from its histogram: the bucket bound holding the 99th percentile.
curl -fsS "http://127.0.0.1:$PORT/metrics" | python3 -c '
import sys
b = [(float(l.split("le=\"")[1].split("\"")[0].replace("+Inf", "inf")), float(l.split()[-1]))
     for l in sys.stdin if l.startswith("risk_decision_duration_seconds_bucket")]
n = b[-1][1] if b else 0
le = next((x for x, c in b if c >= 0.99 * n), float("inf")) if n else float("nan")
print("BENCH risk.pretrade.server_p99 %s ms" % ("%.3f" % (le * 1000) if le != float("inf") else "+Inf"))
print("# server-side: %d decisions; p99 <= the bucket bound above" % n)'
echo "# pretrade: target $RATE/s for ${SECONDS_}s, $errors errors (client-side latency incl. loopback HTTP)"

"$ROOT/$BUILD/bench/risk_bench" engine services/risk/rules.json 300000
echo "# load $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores)"
