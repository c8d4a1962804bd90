#!/usr/bin/env bash
# HTTP stack throughput/latency against nginx (the ceiling), same run, same
# machine, loopback: wrk -t2 -c64 -d5s --latency on
#   - build/bench/http_bench_server: our stack with routing, metrics and the
#     JSON access log on (written to /dev/null), one trivial JSON route;
#   - nginx (Debian nginx-light) serving a small static JSON file,
#     access_log off, worker_processes auto, private prefix in a temp dir.
# Prints:
#   BENCH http.server.throughput <req/s> req/s
#   BENCH http.server.p99 <ms> ms
#   BENCH nginx.static.throughput <req/s> req/s
# and nothing else on stdout (context lines, "# ...", go to stderr).
# Figures are reported, never asserted. Every process started is stopped
# on exit (trap), failure included.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
SERVER="$ROOT/$BUILD/bench/http_bench_server"
DURATION=${HTTP_BENCH_DURATION:-5s}
CONNS=${HTTP_BENCH_CONNS:-64}
THREADS=${HTTP_BENCH_THREADS:-2}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "bench/http.sh: $tool not installed (make deps)" >&2; exit 1; }
done
[ -x "$NGINX" ] || { echo "bench/http.sh: nginx not installed (make deps)" >&2; exit 1; }
[ -x "$SERVER" ] || { echo "bench/http.sh: $SERVER missing (make build)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/httpbench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p _
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    return 1
}
# Polls url until it answers; fails if pid dies or after 10 s.
wait_http() {
    local url=$1 pid=$2 end=$((SECONDS + 10))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ $SECONDS -lt $end ] || return 1
        sleep 0.05
    done
}
# start NAME URL_PATH CMD...: runs CMD (with @PORT@ replaced by a free
# port) until URL_PATH answers; up to 3 ports are tried (another process
# may take a port between the check and the bind). Sets PORT and PID.
start() {
    local name=$1 path=$2 _
    shift 2
    for _ in 1 2 3; do
        PORT=$(free_port)
        "${@//@PORT@/$PORT}" >"$TMP/$name.out" 2>&1 &
        PID=$!
        PIDS+=("$PID")
        wait_http "http://127.0.0.1:$PORT$path" "$PID" && return 0
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    done
    echo "bench/http.sh: $name did not start:" >&2
    cat "$TMP/$name.out" >&2
    return 1
}
# wrk output -> "<req/s> <p99 ms>"
run_wrk() {
    local out
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$1")
    echo "$out" >"$TMP/wrk.$2.txt"
    echo "$out" | awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000; else if (unit == "m") v = v * 60000
            p99 = v
        }
        / Non-2xx or 3xx responses:/ { bad = $NF }
        END {
            if (bad > 0) print "bench/http.sh: " bad " non-2xx responses" > "/dev/stderr"
            printf "%.0f %.3f\n", rps, p99
        }'
}

# --- our server
start server /healthz "$SERVER" @PORT@ "$THREADS" /dev/null
SPORT=$PORT SPID=$PID
curl -fsS -o /dev/null "http://127.0.0.1:$SPORT/v1/ping"
read -r S_RPS S_P99 < <(run_wrk "http://127.0.0.1:$SPORT/v1/ping" server)
kill -TERM "$SPID"
wait "$SPID" || echo "bench/http.sh: server exited non-zero on SIGTERM" >&2

# --- nginx ceiling
mkdir -p "$TMP/nginx/www" "$TMP/nginx/logs" "$TMP/nginx/tmp"
printf '{"ok":true}' >"$TMP/nginx/www/ping.json"
# Run as root, nginx workers drop to an unprivileged user: let them read.
chmod a+rx "$TMP" "$TMP/nginx" "$TMP/nginx/www"
chmod a+r "$TMP/nginx/www/ping.json"
# The listen port goes in with -g, so one config serves every attempt.
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
    default_type application/json;
    keepalive_requests 1000000;
    include $TMP/nginx/listen.conf;
}
CONF
start_nginx() {
    printf 'server { listen 127.0.0.1:%s; root %s; }\n' "$1" "$TMP/nginx/www" >"$TMP/nginx/listen.conf"
    exec "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" -g "daemon off;"
}
start nginx /ping.json start_nginx @PORT@
NPORT=$PORT
read -r N_RPS N_P99 < <(run_wrk "http://127.0.0.1:$NPORT/ping.json" nginx)

echo "BENCH http.server.throughput $S_RPS req/s"
echo "BENCH http.server.p99 $S_P99 ms"
echo "BENCH nginx.static.throughput $N_RPS req/s"
awk -v s="$S_RPS" -v n="$N_RPS" -v p="$N_P99" \
    'BEGIN { if (n > 0) printf "# server/nginx = %.0f%% (target >= 35%%); nginx p99 %s ms\n", 100 * s / n, p }' >&2
# Both sides share the machine with wrk (and anything else running): say so.
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg), cpus: $(nproc)" >&2
