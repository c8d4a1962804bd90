#!/usr/bin/env bash
# Shop demo benchmark (issue 7), loopback, same machine as everything else:
# PostgreSQL, Redis and devkafka from tests/lib/infra.sh in a temp dir, the
# seeded catalog and the order service, then wrk:
#   - cached   GET /catalog/products/{id}, straight to catalog (CACHE_TTL=60s)
#   - uncached GET /catalog/products/{id}, a second catalog with CACHE_TTL=0
#   - POST /orders with a unique Idempotency-Key per request (bench/shop/order.lua)
# Services log at info (access log on) to a file, as in the lab.
# Prints:
#   BENCH shop.catalog_cached.throughput <n> req/s
#   BENCH shop.catalog_cached.p99 <ms> ms
#   BENCH shop.catalog_uncached.throughput <n> req/s
#   BENCH shop.catalog_uncached.p99 <ms> ms
#   BENCH shop.order_create.throughput <n> req/s
#   BENCH shop.order_create.p99 <ms> ms
# Figures are reported, never asserted. Everything started is stopped on
# exit (trap), failure included.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BIN=$ROOT/$BUILD/bin
DURATION=${SHOP_BENCH_DURATION:-5s}
CONNS=${SHOP_BENCH_CONNS:-64}
ORDER_CONNS=${SHOP_BENCH_ORDER_CONNS:-16}
PRODUCT=18 # seeded "Mug"

for tool in wrk curl psql redis-server; do
    command -v "$tool" >/dev/null || { echo "bench/shop.sh: $tool not installed (make deps)" >&2; exit 1; }
done
for b in catalog order devkafka; do
    [ -x "$BIN/$b" ] || { echo "bench/shop.sh: $BIN/$b missing (make build)" >&2; exit 1; }
done

source tests/lib/infra.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shopbench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    infra_stop
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

INFRA_BIN_DIR=$BIN infra_start "$TMP/infra" >/dev/null || { echo "bench/shop.sh: fixture did not start" >&2; exit 1; }
CATALOG_DB=$(infra_new_db catalog)
ORDER_DB=$(infra_new_db shop_order)

# start NAME PORT ENV...: runs a service with ENV until /readyz answers.
start() {
    local name=$1 port=$2 bin=$3; shift 3
    env "$@" PORT="$port" LOG_LEVEL=info ADMIN_TOKEN=bench "$BIN/$bin" >"$TMP/$name.log" 2>&1 &
    PIDS+=("$!")
    _infra_wait 30 curl -fsS "http://127.0.0.1:$port/readyz" \
        || { echo "bench/shop.sh: $name did not start:" >&2; tail -5 "$TMP/$name.log" >&2; exit 1; }
}

# wrk output -> "<req/s> <p99 ms> <non-2xx>"
run_wrk() { # NAME WRK-ARGS...
    local name=$1 out; shift
    out=$(wrk --latency "$@")
    echo "$out" >"$TMP/wrk.$name.txt"
    echo "$out" | awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000; else if (unit == "m") v = v * 60000
            p99 = v
        }
        / Non-2xx or 3xx responses:/ { bad = $NF }
        END { printf "%.0f %.3f %d\n", rps, p99, bad }'
}

CPORT=$(free_port); start catalog "$CPORT" catalog DATABASE_URL="$CATALOG_DB" REDIS_URL="$TEST_REDIS_URL" CACHE_TTL=60s
UPORT=$(free_port); start catalog-uncached "$UPORT" catalog DATABASE_URL="$CATALOG_DB" REDIS_URL="$TEST_REDIS_URL" CACHE_TTL=0
DATABASE_URL=$CATALOG_DB bash services/catalog/seed.sh >/dev/null
# Enough stock that the order run never sells out (through the API: the
# write invalidates the cache).
curl -fsS -o /dev/null -X PUT -H 'X-User-Id: bench' -H 'X-User-Roles: admin' \
    -d '{"stock":1000000}' "http://127.0.0.1:$CPORT/catalog/products/$PRODUCT"
OPORT=$(free_port); start order "$OPORT" order DATABASE_URL="$ORDER_DB" REDIS_URL="$TEST_REDIS_URL" \
    KAFKA_BROKERS="$TEST_KAFKA_BROKERS" CATALOG_URL="http://127.0.0.1:$CPORT"

URL=http://127.0.0.1:$CPORT/catalog/products/$PRODUCT
curl -fsS -o /dev/null "$URL" # warm the cache
hits0=$(curl -fsS "http://127.0.0.1:$CPORT/metrics" | awk '/^catalog_cache_requests_total\{result="hit"\}/ { print $2 }')
read -r C_RPS C_P99 C_BAD < <(run_wrk cached -t2 -c"$CONNS" -d"$DURATION" "$URL")
hits1=$(curl -fsS "http://127.0.0.1:$CPORT/metrics" | awk '/^catalog_cache_requests_total\{result="hit"\}/ { print $2 }')
read -r U_RPS U_P99 U_BAD < <(run_wrk uncached -t2 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$UPORT/catalog/products/$PRODUCT")
read -r O_RPS O_P99 O_BAD < <(SHOP_BENCH_PRODUCT=$PRODUCT run_wrk order -t2 -c"$ORDER_CONNS" -d"$DURATION" \
    -s bench/shop/order.lua "http://127.0.0.1:$OPORT")
orders=$(psql "$ORDER_DB" -qAt -c "SELECT count(*) FROM orders")

echo "# load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (a shared box: figures move with it)"
echo "# cached: $(awk -v a="$hits0" -v b="$hits1" 'BEGIN { printf "%.0f", b - a }') cache hits; non-2xx: cached $C_BAD, uncached $U_BAD, order $O_BAD; orders written: $orders"
[ -x "$BIN/gateway" ] && echo "# build/bin/gateway exists but is not part of this run: figures are direct to catalog"
echo "BENCH shop.catalog_cached.throughput $C_RPS req/s"
echo "BENCH shop.catalog_cached.p99 $C_P99 ms"
echo "BENCH shop.catalog_uncached.throughput $U_RPS req/s"
echo "BENCH shop.catalog_uncached.p99 $U_P99 ms"
echo "BENCH shop.order_create.throughput $O_RPS req/s"
echo "BENCH shop.order_create.p99 $O_P99 ms"
