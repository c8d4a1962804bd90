#!/usr/bin/env bash
# The local lab as a newcomer uses it: `make up` twice, then `make down`,
# in a private run directory on offset ports so a developer's lab is untouched.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh
source tests/lib/infra.sh

export LAB_DIR=${TEST_TMPDIR:-$(mktemp -d)}/lab
# An offset whose every port is free, below the kernel's ephemeral range
# (32768+) so outgoing connections cannot take them meanwhile.
for _ in $(seq 1 50); do
    LAB_PORT_OFFSET=$((1000 + RANDOM % 5000))
    busy=0
    for p in 8080 8081 8082 8083 8084 8085 8086 15432 16379 19090; do
        port_in_use $((p + LAB_PORT_OFFSET)) && { busy=1; break; }
    done
    [ $busy -eq 0 ] && break
done
export LAB_PORT_OFFSET
trap 'bash scripts/lab.sh down >/dev/null 2>&1; h=$(cat "$LAB_DIR/pg.home" 2>/dev/null); case $h in /var/tmp/exlab-pg-*) rm -rf "$h";; esac' EXIT

out=$(bash scripts/lab.sh up 2>&1); rc=$?
[ $rc -eq 0 ] && ok "lab up succeeds" || { not_ok "lab up succeeds (exit $rc)"; echo "$out" | tail -20 | sed 's/^/#   /'; }
sup_pid=$(cat "$LAB_DIR/supervisord.pid" 2>/dev/null)

check "PostgreSQL answers with one database per service" \
    bash -c "psql 'postgresql://postgres@127.0.0.1:$((15432 + LAB_PORT_OFFSET))/postgres' -qAt \
        -c \"select count(*) from pg_database where datname in ('gateway','trading','matching','wallet','risk','catalog','shop_order')\" | grep -qx 7"
check "Redis answers" redis-cli -p $((16379 + LAB_PORT_OFFSET)) ping
check "devkafka wrote its bootstrap address" test -s "$LAB_DIR/kafka.bootstrap"
port=8080
for svc in gateway trading-api matching wallet risk catalog order; do
    port=$((port + 1)); svc_port=$((port - 1 + LAB_PORT_OFFSET))
    if [ -x build/bin/$svc ]; then
        check "$svc is ready on :$svc_port" curl -fsS "http://127.0.0.1:$svc_port/readyz"
    fi
done
if [ -f observability/prometheus/prometheus-local.yml ] && command -v prometheus >/dev/null; then
    check "Prometheus is ready" wait_for 30 curl -fsS "http://127.0.0.1:$((19090 + LAB_PORT_OFFSET))/-/ready"
fi

# Checks that need the whole stack running (end-to-end flows, live metrics,
# learner labs) live in tests/live/*.sh; each gets the lab's addresses.
set -a
source "$LAB_DIR/secrets.env"
GATEWAY_URL=http://127.0.0.1:$((8080 + LAB_PORT_OFFSET))
TRADING_API_URL=http://127.0.0.1:$((8081 + LAB_PORT_OFFSET))
MATCHING_URL=http://127.0.0.1:$((8082 + LAB_PORT_OFFSET))
WALLET_URL=http://127.0.0.1:$((8083 + LAB_PORT_OFFSET))
RISK_URL=http://127.0.0.1:$((8084 + LAB_PORT_OFFSET))
CATALOG_URL=http://127.0.0.1:$((8085 + LAB_PORT_OFFSET))
ORDER_URL=http://127.0.0.1:$((8086 + LAB_PORT_OFFSET))
PROMETHEUS_URL=http://127.0.0.1:$((19090 + LAB_PORT_OFFSET))
REDIS_URL=redis://127.0.0.1:$((16379 + LAB_PORT_OFFSET))
PG_URL=postgresql://postgres@127.0.0.1:$((15432 + LAB_PORT_OFFSET))
KAFKA_BROKERS=$(cat "$LAB_DIR/kafka.bootstrap")
set +a
for t in tests/live/*.sh; do
    [ -f "$t" ] && subtest "$(basename "$t" .sh)" bash "$t"
done

out=$(bash scripts/lab.sh up 2>&1); rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$LAB_DIR/supervisord.pid")" = "$sup_pid" ]; then
    ok "a second lab up is harmless (same supervisor, exit 0)"
else
    not_ok "a second lab up is harmless (exit $rc)"; echo "$out" | tail -5 | sed 's/^/#   /'
fi

check "lab down succeeds and reports no stray process" bash scripts/lab.sh down
strays=$(for f in /proc/[0-9]*; do
    { tr '\0' '\n' <"$f/cmdline" | grep -qF -- "$LAB_DIR/" || tr '\0' '\n' <"$f/environ" | grep -qxF -- "EXLAB_SUPERVISED=$LAB_DIR"; } 2>/dev/null && echo "${f#/proc/}"
done | grep -vx "$$" | tr '\n' ' ')
[ -z "$strays" ] && ok "no process of the lab survives down" || not_ok "no process of the lab survives down: $strays"
check "ports are released" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$((16379 + LAB_PORT_OFFSET))) 2>/dev/null"
done_testing
