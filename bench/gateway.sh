#!/usr/bin/env bash
# Gateway proxy throughput against nginx proxying the same upstream, same
# run, same machine, loopback: wrk -t2 -c64 --latency, 3 interleaved
# slices of 3 s per side (GATEWAY_BENCH_ROUNDS, GATEWAY_BENCH_DURATION) on
#   - build/bin/gateway: JWT (HS256) verified, Redis token-bucket rate limit
#     (Lua, one round trip) and the JSON access log on every request, then
#     the upstream call through common/http_client.h (pooled keep-alive);
#   - nginx (Debian nginx-light), worker_processes auto, access_log off,
#     proxy_pass to the same upstream with an upstream keepalive pool;
#   - the upstream: build/bin/gateway-echo's GET /ping ({"ok":true}).
# Prints:
#   BENCH gateway.proxy.throughput <req/s> req/s
#   BENCH gateway.proxy.p99 <ms> ms
#   BENCH nginx.proxy.throughput <req/s> req/s
#   BENCH nginx.proxy.p99 <ms> ms
# and nothing else on stdout (context, "# ...", on stderr). Figures are
# reported, never asserted. PostgreSQL and Redis come from tests/lib/infra.sh;
# every process started is stopped on exit (trap), failure included.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
GATEWAY="$ROOT/$BUILD/bin/gateway"
ECHO="$ROOT/$BUILD/bin/gateway-echo"
DURATION=${GATEWAY_BENCH_DURATION:-3s}
ROUNDS=${GATEWAY_BENCH_ROUNDS:-3}
CONNS=${GATEWAY_BENCH_CONNS:-64}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

for tool in wrk curl psql redis-server; do
    command -v "$tool" >/dev/null || { echo "bench/gateway.sh: $tool not installed (make deps)" >&2; exit 1; }
done
[ -x "$NGINX" ] || { echo "bench/gateway.sh: nginx not installed (make deps)" >&2; exit 1; }
for b in "$GATEWAY" "$ECHO"; do
    [ -x "$b" ] || { echo "bench/gateway.sh: $b missing (make build)" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gwbench.XXXXXX")
PIDS=()
# shellcheck source=tests/lib/infra.sh
source tests/lib/infra.sh
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    infra_stop >/dev/null 2>&1 || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local p _
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    return 1
}
# Polls url until it answers; fails if pid dies or after 20 s.
wait_http() {
    local url=$1 pid=$2 end=$((SECONDS + 20))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ $SECONDS -lt $end ] || return 1
        sleep 0.05
    done
}
# start NAME URL_PATH CMD...: runs CMD (@PORT@ replaced by a free port)
# until URL_PATH answers; up to 3 ports are tried. Sets PORT and PID.
start() {
    local name=$1 path=$2 _
    shift 2
    for _ in 1 2 3; do
        PORT=$(pick_port)
        "${@//@PORT@/$PORT}" >"$TMP/$name.out" 2>&1 &
        PID=$!
        PIDS+=("$PID")
        wait_http "http://127.0.0.1:$PORT$path" "$PID" && return 0
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    done
    echo "bench/gateway.sh: $name did not start:" >&2
    tail -20 "$TMP/$name.out" >&2
    return 1
}
# wrk output -> "<req/s> <p99 ms>"
run_wrk() {
    local out
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$1")
    echo "$out" >"$TMP/wrk.$2.txt"
    echo "$out" | awk -v who="$2" '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000; else if (unit == "m") v = v * 60000
            p99 = v
        }
        / Non-2xx or 3xx responses:/ { bad = $NF }
        / Socket errors:/ { print "bench/gateway.sh: " who ": " $0 > "/dev/stderr" }
        END {
            if (bad > 0) print "bench/gateway.sh: " who ": " bad " non-2xx responses" > "/dev/stderr"
            printf "%.0f %.3f\n", rps, p99
        }'
}

infra_start "$TMP/infra" >/dev/null 2>&1 || { echo "bench/gateway.sh: PostgreSQL/Redis did not start" >&2; exit 1; }
DB=$(infra_new_db gateway_bench)

# --- the upstream both proxies share
start echo /ping "$ECHO" @PORT@ 2
EPORT=$PORT

# --- the gateway
start_gateway() {
    PORT=$1 DATABASE_URL=$DB REDIS_URL=$TEST_REDIS_URL ECHO_URL="http://127.0.0.1:$EPORT" \
        GATEWAY_ROUTES_FILE="${GATEWAY_BENCH_ROUTES:-$ROOT/bench/gateway/routes.json}" MIGRATIONS_DIR="$ROOT/services/gateway/migrations" \
        JWT_SECRET=bench-secret-0123456789abcdef0123456789 GATEWAY_PWHASH=fast \
        HTTP_THREADS=${GATEWAY_BENCH_THREADS:-16} LOG_LEVEL=info exec "$GATEWAY" >/dev/null
}
start gateway /readyz start_gateway @PORT@
GPORT=$PORT GPID=$PID
G=http://127.0.0.1:$GPORT
curl -fsS -o /dev/null -X POST "$G/v1/auth/register" -d '{"email":"bench@example.com","password":"bench-password-1234"}'
TOKEN=$(curl -fsS -X POST "$G/v1/auth/login" -d '{"email":"bench@example.com","password":"bench-password-1234"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$G/v1/ping"

# --- nginx proxying the same upstream
mkdir -p "$TMP/nginx/logs" "$TMP/nginx/tmp"
chmod a+rx "$TMP" "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    keepalive_requests 1000000;
    upstream echo {
        server 127.0.0.1:$EPORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    include $TMP/nginx/listen.conf;
}
CONF
start_nginx() {
    printf 'server { listen 127.0.0.1:%s; location /v1/ping { proxy_pass http://echo/ping; proxy_http_version 1.1; proxy_set_header Connection ""; } location = /healthz { return 200; } }\n' \
        "$1" >"$TMP/nginx/listen.conf"
    exec "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" -g "daemon off;"
}
start nginx /healthz start_nginx @PORT@
NPORT=$PORT
curl -fsS -o /dev/null "http://127.0.0.1:$NPORT/v1/ping"

# Interleaved slices (gateway, nginx, gateway, ...) so both sides see the
# same background load on a shared machine; req/s is the mean of the
# slices, p99 their median.
G_ALL="" N_ALL=""
for round in $(seq 1 "$ROUNDS"); do
    G_ALL+="$(run_wrk "$G/v1/ping" "gateway.$round")"$'\n'
    N_ALL+="$(run_wrk "http://127.0.0.1:$NPORT/v1/ping" "nginx.$round")"$'\n'
done
summarise() { # lines "<rps> <p99>" -> "<mean rps> <median p99>"
    local rps p99
    rps=$(awk 'NF == 2 { r += $1; n++ } END { printf "%.0f", r / n }' <<<"$1")
    p99=$(awk 'NF == 2 { print $2 }' <<<"$1" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    echo "$rps $p99"
}
read -r G_RPS G_P99 < <(summarise "$G_ALL")
read -r N_RPS N_P99 < <(summarise "$N_ALL")
echo "# slices (req/s p99): gateway $(awk '{ printf "%s/%s ", $1, $2 }' <<<"$G_ALL")nginx $(awk '{ printf "%s/%s ", $1, $2 }' <<<"$N_ALL")" >&2
kill -TERM "$GPID"
wait "$GPID" 2>/dev/null || echo "bench/gateway.sh: gateway exited non-zero on SIGTERM" >&2

echo "BENCH gateway.proxy.throughput $G_RPS req/s"
echo "BENCH gateway.proxy.p99 $G_P99 ms"
echo "BENCH nginx.proxy.throughput $N_RPS req/s"
echo "BENCH nginx.proxy.p99 $N_P99 ms"
awk -v g="$G_RPS" -v n="$N_RPS" \
    'BEGIN { if (n > 0) printf "# gateway/nginx = %.0f%% (target >= 50%%)\n", 100 * g / n }' >&2
echo "# wrk -t2 -c$CONNS, $ROUNDS x $DURATION per side, interleaved; load average at end: $(cut -d' ' -f1-3 /proc/loadavg), cpus: $(nproc)" >&2
