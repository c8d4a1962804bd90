#!/usr/bin/env bash
# Shop demo benchmark (issue 7), loopback, same machine as everything else:
# PostgreSQL, Redis and devkafka from tests/lib/infra.sh in a temp dir, the
# seeded catalog and the order service, then wrk:
#   - cached   GET /catalog/products/{id}, straight to catalog (CACHE_TTL=60s)
#   - the same through build/bin/gateway when it is built (GET /api/products/{id},
#     public_read, with a routes file whose rate limits do not throttle wrk)
#   - uncached GET /catalog/products/{id}, a second catalog with CACHE_TTL=0
#   - POST /orders with a unique Idempotency-Key per request (bench/shop/order.lua),
#     spread over the 34 seeded products in stock, then all for one product
#     (the hot-row case: every reservation queues on that row's lock)
# Services log at info (access log on) to a file, as in the lab.
# Prints:
#   BENCH shop.catalog_cached.throughput <n> req/s
#   BENCH shop.catalog_cached.p99 <ms> ms
#   BENCH shop.catalog_cached_gateway.throughput <n> req/s   (gateway built)
#   BENCH shop.catalog_cached_gateway.p99 <ms> ms            (gateway built)
#   BENCH shop.catalog_uncached.throughput <n> req/s
#   BENCH shop.catalog_uncached.p99 <ms> ms
#   BENCH shop.order_create.throughput <n> req/s
#   BENCH shop.order_create.p99 <ms> ms
#   BENCH shop.order_create_hot.throughput <n> req/s
#   BENCH shop.order_create_hot.p99 <ms> ms
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

# start NAME BIN ENV...: runs a service with ENV on a free port until /readyz
# answers; up to 3 ports are tried (another process may take a port between
# the check and the bind). Sets PORT.
start() {
    local name=$1 bin=$2 pid; shift 2
    for _ in 1 2 3; do
        PORT=$(free_port)
        env "$@" PORT="$PORT" LOG_LEVEL=info ADMIN_TOKEN=bench "$BIN/$bin" >"$TMP/$name.log" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        _infra_wait 30 bash -c "curl -fsS 'http://127.0.0.1:$PORT/readyz' || ! kill -0 $pid" \
            && kill -0 "$pid" 2>/dev/null && return 0
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    echo "bench/shop.sh: $name did not start:" >&2
    tail -5 "$TMP/$name.log" >&2
    return 1
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

start catalog catalog DATABASE_URL="$CATALOG_DB" REDIS_URL="$TEST_REDIS_URL" CACHE_TTL=60s || exit 1
CPORT=$PORT
start catalog-uncached catalog DATABASE_URL="$CATALOG_DB" REDIS_URL="$TEST_REDIS_URL" CACHE_TTL=0 || exit 1
UPORT=$PORT
DATABASE_URL=$CATALOG_DB bash services/catalog/seed.sh >/dev/null
# Enough stock that the order runs never sell out (before anything is cached).
psql "$CATALOG_DB" -qAt -c "UPDATE products SET stock = 1000000 WHERE id <= 34" >/dev/null
start order order DATABASE_URL="$ORDER_DB" REDIS_URL="$TEST_REDIS_URL" \
    KAFKA_BROKERS="$TEST_KAFKA_BROKERS" CATALOG_URL="http://127.0.0.1:$CPORT" || exit 1
OPORT=$PORT

URL=http://127.0.0.1:$CPORT/catalog/products/$PRODUCT
curl -fsS -o /dev/null "$URL" # warm the cache
hits0=$(curl -fsS "http://127.0.0.1:$CPORT/metrics" | awk '/^catalog_cache_requests_total\{result="hit"\}/ { print $2 }')
read -r C_RPS C_P99 C_BAD < <(run_wrk cached -t2 -c"$CONNS" -d"$DURATION" "$URL")
hits1=$(curl -fsS "http://127.0.0.1:$CPORT/metrics" | awk '/^catalog_cache_requests_total\{result="hit"\}/ { print $2 }')
G_RPS="" G_P99="" G_BAD=0
if [ -x "$BIN/gateway" ]; then
    cat >"$TMP/gateway-routes.json" <<'JSON'
{
  "upstreams": {"catalog": {"env": "CATALOG_URL"}},
  "rate_limits": {
    "default": {"user": {"rate": 1000000, "burst": 1000000}, "ip": {"rate": 1000000, "burst": 1000000}},
    "auth": {"ip": {"rate": 1000000, "burst": 1000000}}
  },
  "routes": [
    {"prefix": "/api/products", "upstream": "catalog", "timeout_ms": 3000, "auth": "public_read",
     "rate_limit": "default", "rewrite": "/catalog/products"}
  ]
}
JSON
    if start gateway gateway DATABASE_URL="$(infra_new_db gateway)" REDIS_URL="$TEST_REDIS_URL" \
        JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        GATEWAY_ROUTES_FILE="$TMP/gateway-routes.json" CATALOG_URL="http://127.0.0.1:$CPORT" &&
        curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/products/$PRODUCT"; then
        read -r G_RPS G_P99 G_BAD < <(run_wrk gateway -t2 -c"$CONNS" -d"$DURATION" \
            "http://127.0.0.1:$PORT/api/products/$PRODUCT")
    else
        echo "# the gateway did not serve /api/products/$PRODUCT: no gateway figure"
    fi
fi
read -r U_RPS U_P99 U_BAD < <(run_wrk uncached -t2 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$UPORT/catalog/products/$PRODUCT")
# warm-up (not reported): connection pools, the relay, catalog keep-alives
SHOP_BENCH_PRODUCTS=1-34 wrk -t2 -c"$ORDER_CONNS" -d2s -s bench/shop/order.lua "http://127.0.0.1:$OPORT" >/dev/null
read -r O_RPS O_P99 O_BAD < <(SHOP_BENCH_PRODUCTS=1-34 run_wrk order -t2 -c"$ORDER_CONNS" -d"$DURATION" \
    -s bench/shop/order.lua "http://127.0.0.1:$OPORT")
read -r H_RPS H_P99 H_BAD < <(SHOP_BENCH_PRODUCTS=$PRODUCT-$PRODUCT run_wrk order-hot -t2 -c"$ORDER_CONNS" \
    -d"$DURATION" -s bench/shop/order.lua "http://127.0.0.1:$OPORT")
orders=$(psql "$ORDER_DB" -qAt -c "SELECT count(*) FROM orders")

echo "# load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (a shared box: figures move with it)"
echo "# cached: $(awk -v a="$hits0" -v b="$hits1" 'BEGIN { printf "%.0f", b - a }') cache hits; non-2xx: cached $C_BAD, uncached $U_BAD, order $O_BAD, order-hot $H_BAD; orders written: $orders"
[ -n "$G_RPS" ] && echo "# through the gateway: non-2xx $G_BAD"
echo "BENCH shop.catalog_cached.throughput $C_RPS req/s"
echo "BENCH shop.catalog_cached.p99 $C_P99 ms"
if [ -n "$G_RPS" ]; then
    echo "BENCH shop.catalog_cached_gateway.throughput $G_RPS req/s"
    echo "BENCH shop.catalog_cached_gateway.p99 $G_P99 ms"
fi
echo "BENCH shop.catalog_uncached.throughput $U_RPS req/s"
echo "BENCH shop.catalog_uncached.p99 $U_P99 ms"
echo "BENCH shop.order_create.throughput $O_RPS req/s"
echo "BENCH shop.order_create.p99 $O_P99 ms"
echo "BENCH shop.order_create_hot.throughput $H_RPS req/s"
echo "BENCH shop.order_create_hot.p99 $H_P99 ms"
