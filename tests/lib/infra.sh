# The integration fixture: a private PostgreSQL cluster, a Redis server and
# devkafka (librdkafka's mock cluster), all on loopback under one directory.
#
#   source tests/lib/infra.sh
#   infra_start DIR     # starts everything, exports TEST_PG_ADMIN_URL,
#                       # TEST_REDIS_URL, TEST_KAFKA_BROKERS, INFRA_DIR
#   infra_new_db NAME   # creates an empty database, prints its URL
#   infra_stop          # stops everything started (idempotent)
#
# Callers install `trap infra_stop EXIT` so a failure still tears it down.
# The lab (scripts/lab.sh) reuses the same functions with fixed ports.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

# Runs a PostgreSQL tool as an unprivileged user: initdb refuses root.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 30000 ))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    return 1
}

_infra_wait() { # SECONDS COMMAND...: poll until success or deadline
    local end=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.1
    done
}

# pg_home DIR: the directory holding PostgreSQL's files for DIR, created and
# owned by the server's user. It is DIR/pg when that user can reach it; as
# root under a private parent (/root, mktemp -d) it cannot, so the files
# live in /var/tmp under a name derived from DIR instead.
pg_home() {
    local dir=$1 home
    mkdir -p "$dir"
    home=$dir/pg
    if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
        home=/var/tmp/exlab-pg-$(printf '%s' "$dir" | md5sum | cut -c1-16)
    fi
    mkdir -p "$home"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$home"
    chmod 755 "$home"
    echo "$home"
}

pg_init() { # HOME
    [ -f "$1/data/PG_VERSION" ] && return 0
    as_pg "$PG_BIN/initdb" -D "$1/data" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$1/initdb.log" 2>&1 || { cat "$1/initdb.log" >&2; return 1; }
}

pg_start() { # DIR PORT
    local dir=$1 port=$2 home
    home=$(pg_home "$dir") && pg_init "$home" || return 1
    echo "$home" >"$dir/pg.home"
    as_pg "$PG_BIN/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 \
        -o "-p $port -k $home -c listen_addresses=127.0.0.1 -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
            -c shared_buffers=128MB" start >/dev/null \
        || { tail -20 "$home/server.log" >&2; return 1; }
}

pg_stop() { # DIR
    local home
    home=$(cat "$1/pg.home" 2>/dev/null) || return 0
    [ -f "$home/data/postmaster.pid" ] && \
        as_pg "$PG_BIN/pg_ctl" -D "$home/data" -m fast -w -t 30 stop >/dev/null 2>&1
    case $home in /var/tmp/exlab-pg-*) rm -rf "$home" ;; esac
    rm -f "$1/pg.home"
}

redis_start() { # DIR PORT
    redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$1/redis.pid" --logfile "$1/redis.log" --dir "$1" \
        || return 1
    _infra_wait 10 redis-cli -p "$2" ping
}

redis_stop() { # DIR
    [ -f "$1/redis.pid" ] || return 0
    kill "$(cat "$1/redis.pid")" 2>/dev/null || true
    rm -f "$1/redis.pid"
}

kafka_start() { # DIR [extra devkafka args...]
    local dir=$1; shift
    local bin=${INFRA_BIN_DIR:-build/bin}/devkafka
    [ -x "$bin" ] || { echo "infra: $bin not built" >&2; return 1; }
    rm -f "$dir/kafka.bootstrap" "$dir/kafka.control"
    "$bin" --bootstrap-file "$dir/kafka.bootstrap" --control-file "$dir/kafka.control" "$@" \
        >"$dir/devkafka.log" 2>&1 &
    echo $! >"$dir/devkafka.pid"
    _infra_wait 20 test -s "$dir/kafka.bootstrap" || { tail -5 "$dir/devkafka.log" >&2; return 1; }
}

kafka_stop() { # DIR
    [ -f "$1/devkafka.pid" ] || return 0
    local pid; pid=$(cat "$1/devkafka.pid")
    kill "$pid" 2>/dev/null && _infra_wait 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null
    rm -f "$1/devkafka.pid"
}

# INFRA_KAFKA_ARGS: extra devkafka arguments (e.g. "--topic bench.x:2"); a
# topic made up front avoids the ~1 s auto-creation of a first produce.
infra_start() { # DIR
    INFRA_DIR=$1
    mkdir -p "$INFRA_DIR"
    local pg_port redis_port
    pg_port=$(free_port) && redis_port=$(free_port) || return 1
    pg_start "$INFRA_DIR" "$pg_port" || { echo "infra: PostgreSQL did not start" >&2; return 1; }
    export TEST_PG_ADMIN_URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
    redis_start "$INFRA_DIR" "$redis_port" || { echo "infra: Redis did not start" >&2; return 1; }
    export TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
    INFRA_REDIS_PORT=$redis_port
    # shellcheck disable=SC2086 # word splitting intended
    if kafka_start "$INFRA_DIR" ${INFRA_KAFKA_ARGS:-}; then
        TEST_KAFKA_BROKERS=$(cat "$INFRA_DIR/kafka.bootstrap")
        # devkafka's fault controls (broker down/up, rtt, request errors): docs/kafka.md
        _infra_wait 5 test -s "$INFRA_DIR/kafka.control"
        TEST_KAFKA_CONTROL_PORT=$(cat "$INFRA_DIR/kafka.control" 2>/dev/null)
        export TEST_KAFKA_BROKERS TEST_KAFKA_CONTROL_PORT
    else
        echo "infra: devkafka did not start; Kafka tests will fail" >&2
    fi
    export INFRA_DIR
}

infra_new_db() { # NAME -> prints URL
    local name=$1
    PGOPTIONS="-c client_min_messages=warning" psql "$TEST_PG_ADMIN_URL" -qAt -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS \"$name\"" -c "CREATE DATABASE \"$name\"" >/dev/null || return 1
    echo "${TEST_PG_ADMIN_URL%/postgres}/$name"
}

infra_flush_redis() { redis-cli -p "$INFRA_REDIS_PORT" flushall >/dev/null 2>&1; }

infra_stop() {
    [ -n "${INFRA_DIR:-}" ] || return 0
    kafka_stop "$INFRA_DIR"
    redis_stop "$INFRA_DIR"
    pg_stop "$INFRA_DIR"
}
