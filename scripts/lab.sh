#!/usr/bin/env bash
# The local lab: PostgreSQL, Redis, devkafka, Prometheus and every built
# service under supervisord, all under one run directory.
#
#   lab.sh up       start (or complete) the lab; harmless when already up
#   lab.sh down     stop everything; fails if a process of the lab survives
#   lab.sh status   what runs
#   lab.sh env      print the environment services get (for debugging)
#
# Settings (environment): LAB_DIR (default ./run), LAB_PORT_OFFSET (added
# to every port; tests use it to run a second lab beside yours).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source tests/lib/infra.sh

LAB_DIR=$(mkdir -p "${LAB_DIR:-$ROOT/run}" && cd "${LAB_DIR:-$ROOT/run}" && pwd)
OFF=${LAB_PORT_OFFSET:-0}
PG_PORT=$((15432 + OFF))
REDIS_PORT=$((16379 + OFF))
PROM_PORT=$((19090 + OFF))
SUPERVISOR_PORT=$((19001 + OFF))
BIN=${LAB_BIN_DIR:-$ROOT/build/bin}

# name port database (must stay in sync with docs/architecture.md's table)
SERVICES="gateway:8080:gateway trading-api:8081:trading matching:8082:matching
wallet:8083:wallet risk:8084:risk catalog:8085:catalog order:8086:shop_order"

svc_port() { local s; for s in $SERVICES; do [ "${s%%:*}" = "$1" ] && { s=${s#*:}; echo $(( ${s%%:*} + OFF )); return; }; done; }
svc_db()   { local s; for s in $SERVICES; do [ "${s%%:*}" = "$1" ] && { echo "${s##*:}"; return; }; done; }

ctl() { supervisorctl -c "$LAB_DIR/supervisord.conf" "$@"; }
running() { [ -f "$LAB_DIR/supervisord.pid" ] && kill -0 "$(cat "$LAB_DIR/supervisord.pid")" 2>/dev/null; }

secrets() {
    # Generated once per run directory, never committed.
    if [ ! -f "$LAB_DIR/secrets.env" ]; then
        umask 077
        {
            echo "ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
            echo "JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
            echo "SIGNER_KEK=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        } >"$LAB_DIR/secrets.env"
    fi
}

# The environment every service gets (12-factor); services ignore the rest.
service_env() { # NAME
    local name=$1
    source "$LAB_DIR/secrets.env"
    cat <<ENV
SERVICE_NAME=$name
PORT=$(svc_port "$name")
BIND_ADDR=127.0.0.1
LOG_LEVEL=${LOG_LEVEL:-info}
DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/$(svc_db "$name")
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
KAFKA_BROKERS=$(cat "$LAB_DIR/kafka.bootstrap" 2>/dev/null)
KAFKA_CONTROL_PORT=$(cat "$LAB_DIR/kafka.control" 2>/dev/null)
KAFKA_PROPS=session.timeout.ms=6000;heartbeat.interval.ms=500;fetch.wait.max.ms=10
ADMIN_TOKEN=$ADMIN_TOKEN
JWT_ALG=HS256
JWT_SECRET=$JWT_SECRET
JWT_ISSUER=exchange-lab
JWT_AUDIENCE=exchange-lab
SIGNER_SOCKET=$LAB_DIR/signer.sock
GATEWAY_URL=http://127.0.0.1:$(svc_port gateway)
TRADING_API_URL=http://127.0.0.1:$(svc_port trading-api)
MATCHING_URL=http://127.0.0.1:$(svc_port matching)
WALLET_URL=http://127.0.0.1:$(svc_port wallet)
RISK_URL=http://127.0.0.1:$(svc_port risk)
CATALOG_URL=http://127.0.0.1:$(svc_port catalog)
ORDER_URL=http://127.0.0.1:$(svc_port order)
ENV
    # Key material reaches the signer alone: the wallet must not be able to sign.
    if [ "$name" = wallet-signer ]; then
        echo "SIGNER_KEK=$SIGNER_KEK"
        echo "SIGNER_KEY_FILE=$LAB_DIR/signer.keys"
    fi
    # A service may add its own lab settings (KEY=VALUE lines, $LAB_DIR allowed).
    local extra="services/$name/lab.env"
    [ "$name" = wallet-signer ] && extra=services/wallet/signer/lab.env
    [ -f "$extra" ] && LAB_DIR=$LAB_DIR envsubst <"$extra" | grep -E '^[A-Z_][A-Z0-9_]*='
    # An operator's (or a learner's) changes for this run: later lines win.
    [ -f "$LAB_DIR/overrides/$name.env" ] && grep -E '^[A-Z_][A-Z0-9_]*=' "$LAB_DIR/overrides/$name.env"
    return 0
}

# Supervisor runs this for each service: the Kafka address is only known once devkafka is up.
exec_service() { # NAME
    local name=$1 bin=$BIN/$1
    _infra_wait 30 test -s "$LAB_DIR/kafka.bootstrap" || true
    set -a
    eval "$(service_env "$name" | sed 's/^\([A-Z_0-9]*\)=\(.*\)$/\1='"'"'\2'"'"'/')"
    set +a
    exec "$bin"
}

write_config() {
    local conf=$LAB_DIR/supervisord.conf prom_cfg
    mkdir -p "$LAB_DIR/logs" "$LAB_DIR/prometheus"
    cat >"$conf" <<CONF
[supervisord]
logfile=$LAB_DIR/logs/supervisord.log
pidfile=$LAB_DIR/supervisord.pid
childlogdir=$LAB_DIR/logs
user=$(id -un)

[unix_http_server]
file=$LAB_DIR/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$LAB_DIR/supervisor.sock

[program:postgres]
command=$PG_BIN/postgres -D $PG_HOME/data -p $PG_PORT -k $PG_HOME -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300
$([ "$(id -u)" -eq 0 ] && echo "user=postgres")
priority=10
stopsignal=INT
stdout_logfile=$LAB_DIR/logs/postgres.log
redirect_stderr=true

[program:redis]
command=redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir $LAB_DIR
priority=10
stdout_logfile=$LAB_DIR/logs/redis.log
redirect_stderr=true

[program:devkafka]
command=$BIN/devkafka --bootstrap-file $LAB_DIR/kafka.bootstrap --control-file $LAB_DIR/kafka.control
priority=10
stdout_logfile=$LAB_DIR/logs/devkafka.log
redirect_stderr=true
CONF
    prom_cfg=$ROOT/observability/prometheus/prometheus-local.yml
    if [ -f "$prom_cfg" ] && command -v prometheus >/dev/null; then
        # Scrape targets carry the same offset as the services.
        sed -E "s/127\.0\.0\.1:80(8[0-6])/127.0.0.1:__PORT\1__/g; s/localhost:80(8[0-6])/127.0.0.1:__PORT\1__/g" "$prom_cfg" \
            | awk -v off="$OFF" '{ while (match($0, /__PORT8[0-6]__/)) { p = substr($0, RSTART + 6, 2) + 8000 + off; $0 = substr($0, 1, RSTART - 1) p substr($0, RSTART + RLENGTH) } print }' \
            >"$LAB_DIR/prometheus.yml"
        # rule_files are relative to the original file's directory.
        sed -i "s#^\(\s*-\s*\)\(\.\./\|\./\)\?\(rules/\)#\1$ROOT/observability/prometheus/\3#" "$LAB_DIR/prometheus.yml"
        cat >>"$conf" <<CONF

[program:prometheus]
command=prometheus --config.file=$LAB_DIR/prometheus.yml --storage.tsdb.path=$LAB_DIR/prometheus --web.listen-address=127.0.0.1:$PROM_PORT --storage.tsdb.retention.time=1d
priority=20
stdout_logfile=$LAB_DIR/logs/prometheus.log
redirect_stderr=true
CONF
    fi
    local s name
    for name in wallet-signer $(for s in $SERVICES; do echo "${s%%:*}"; done); do
        [ -x "$BIN/$name" ] || continue
        cat >>"$conf" <<CONF

[program:$name]
command=bash $ROOT/scripts/lab.sh exec $name
environment=LAB_DIR="$LAB_DIR",LAB_PORT_OFFSET="$OFF",LAB_BIN_DIR="$BIN",EXLAB_SUPERVISED="$LAB_DIR"
priority=$([ "$name" = wallet-signer ] && echo 25 || echo 30)
stopsignal=TERM
stopwaitsecs=20
startsecs=1
autostart=false
autorestart=true
stdout_logfile=$LAB_DIR/logs/$name.log
redirect_stderr=true
CONF
    done
}

init_postgres() {
    PG_HOME=$(pg_home "$LAB_DIR") && pg_init "$PG_HOME" || exit 1
    echo "$PG_HOME" >"$LAB_DIR/pg.home"
}

# fresh=1 on a cold start: devkafka keeps its log in memory only, so state
# derived from an earlier run's topics (matching's snapshots and offsets,
# consumers' applied seqs, outboxes) would disagree with the new, empty
# log. A lab's data lives as long as the lab: every cold start is a fresh,
# re-seeded exchange.
create_databases() { # fresh
    local s db url="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    _infra_wait 60 psql "$url" -qAt -c "select 1" || { echo "lab: PostgreSQL not ready" >&2; exit 1; }
    for s in $SERVICES; do
        db=${s##*:}
        [ "$1" = 1 ] && PGOPTIONS="-c client_min_messages=warning" \
            psql "$url" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
        psql "$url" -qAt -c "select 1 from pg_database where datname='$db'" | grep -q 1 \
            || psql "$url" -q -c "CREATE DATABASE \"$db\"" >/dev/null
    done
}

wait_ready() {
    local name port failed=0
    for name in $(for s in $SERVICES; do echo "${s%%:*}"; done); do
        [ -x "$BIN/$name" ] || continue
        port=$(svc_port "$name")
        if _infra_wait 60 curl -fsS "http://127.0.0.1:$port/readyz"; then
            printf '  %-12s ready    http://127.0.0.1:%s\n' "$name" "$port"
        else
            printf '  %-12s NOT READY (see %s)\n' "$name" "$LAB_DIR/logs/$name.log"
            failed=1
        fi
    done
    return $failed
}

seed() {
    local f name
    for f in services/*/seed.sh; do
        [ -f "$f" ] || continue
        name=$(basename "$(dirname "$f")")
        [ -x "$BIN/$name" ] || continue
        ( set -a; eval "$(service_env "$name" | sed 's/^\([A-Z_0-9]*\)=\(.*\)$/\1='"'"'\2'"'"'/')"; set +a
          LAB_DIR=$LAB_DIR bash "$f" ) >>"$LAB_DIR/logs/seed.log" 2>&1 \
            || echo "  seed of $name failed (see $LAB_DIR/logs/seed.log)"
    done
}

up() {
    [ -x "$BIN/devkafka" ] || { echo "lab: $BIN/devkafka is not built (run make build)" >&2; exit 1; }
    secrets
    local fresh=0
    if running; then
        echo "lab already running in $LAB_DIR; starting anything stopped"
        ctl start all >/dev/null || true
    else
        init_postgres
        write_config
        fresh=1
        rm -f "$LAB_DIR/kafka.bootstrap" "$LAB_DIR/kafka.control"
        supervisord -c "$LAB_DIR/supervisord.conf"
    fi
    _infra_wait 30 test -s "$LAB_DIR/kafka.bootstrap" || { echo "lab: devkafka did not start" >&2; exit 1; }
    create_databases "$fresh"
    # Services start once their databases exist (they migrate at start).
    local p
    [ "$fresh" = 1 ] && for p in wallet-signer $(for sv in $SERVICES; do echo "${sv%%:*}"; done); do
        [ -x "$BIN/$p" ] && { ctl start "$p" >/dev/null || echo "lab: $p did not start (see $LAB_DIR/logs/$p.log)"; }
    done
    _infra_wait 30 redis-cli -p "$REDIS_PORT" ping || { echo "lab: Redis did not start" >&2; exit 1; }
    local rc=0
    wait_ready || rc=1
    seed
    source "$LAB_DIR/secrets.env"
    cat <<MSG

Exchange Lab is up (run directory: $LAB_DIR, logs in $LAB_DIR/logs).
  PostgreSQL  postgresql://postgres@127.0.0.1:$PG_PORT/
  Redis       redis://127.0.0.1:$REDIS_PORT
  Kafka       $(cat "$LAB_DIR/kafka.bootstrap")  (devkafka, librdkafka's mock cluster)
  Prometheus  http://127.0.0.1:$PROM_PORT
  Admin token in $LAB_DIR/secrets.env

Try:  curl -s http://127.0.0.1:$(svc_port gateway)/healthz
MSG
    [ -f "$ROOT/docs/try-it.md" ] && echo "More: docs/try-it.md"
    return $rc
}

# Processes of this lab: by command line (infra) or by environment (services).
lab_pids() {
    local f pid
    for f in /proc/[0-9]*; do
        pid=${f#/proc/}
        [ "$pid" = $$ ] && continue
        if tr '\0' '\n' 2>/dev/null <"$f/cmdline" | grep -qF -e "$LAB_DIR/" -e "${PG_HOME:-$LAB_DIR}/" ||
           tr '\0' '\n' 2>/dev/null <"$f/environ" | grep -qxF -- "EXLAB_SUPERVISED=$LAB_DIR"; then
            echo "$pid"
        fi
    done | tr '\n' ' '
}

down() {
    PG_HOME=$(cat "$LAB_DIR/pg.home" 2>/dev/null || echo "$LAB_DIR/pg")
    if running; then
        local pid; pid=$(cat "$LAB_DIR/supervisord.pid")
        ctl shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
        _infra_wait 60 bash -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null || true
    fi
    # Anything still holding the run directory is a stray: report and kill it.
    local strays
    strays=$(lab_pids)
    if [ -n "$strays" ]; then
        echo "lab: stray processes after shutdown: $strays" >&2
        kill -9 $strays 2>/dev/null || true
        return 1
    fi
    echo "lab stopped ($LAB_DIR)"
}

status() {
    if running; then ctl status || true; else echo "lab is not running ($LAB_DIR)"; fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
env) secrets; service_env "${2:-gateway}" ;;
exec) exec_service "$2" ;;
*) echo "usage: lab.sh up|down|status|env [service]" >&2; exit 2 ;;
esac
