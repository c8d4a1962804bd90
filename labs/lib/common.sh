# labctl's shared helpers: where the lab is, admin calls, probes, config
# overrides, background load, and the condition list a check reports.
# Sourced by labs/labctl and by every scenario's scenario.sh / solution.sh.

LABS_ROOT=${LABS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
REPO_ROOT=${REPO_ROOT:-$(cd "$LABS_ROOT/.." && pwd)}

# ---- where the lab is (same derivation as scripts/lab.sh)
lab_init_env() {
    LAB_DIR=${LAB_DIR:-$REPO_ROOT/run}
    [ -d "$LAB_DIR" ] && LAB_DIR=$(cd "$LAB_DIR" && pwd)
    OFF=${LAB_PORT_OFFSET:-0}
    LAB_BIN_DIR=${LAB_BIN_DIR:-$REPO_ROOT/build/bin}
    : "${GATEWAY_URL:=http://127.0.0.1:$((8080 + OFF))}"
    : "${TRADING_API_URL:=http://127.0.0.1:$((8081 + OFF))}"
    : "${MATCHING_URL:=http://127.0.0.1:$((8082 + OFF))}"
    : "${WALLET_URL:=http://127.0.0.1:$((8083 + OFF))}"
    : "${RISK_URL:=http://127.0.0.1:$((8084 + OFF))}"
    : "${CATALOG_URL:=http://127.0.0.1:$((8085 + OFF))}"
    : "${ORDER_URL:=http://127.0.0.1:$((8086 + OFF))}"
    : "${PROMETHEUS_URL:=http://127.0.0.1:$((19090 + OFF))}"
    : "${REDIS_URL:=redis://127.0.0.1:$((16379 + OFF))}"
    : "${PG_URL:=postgresql://postgres@127.0.0.1:$((15432 + OFF))}"
    if [ -z "${ADMIN_TOKEN:-}" ] && [ -r "$LAB_DIR/secrets.env" ]; then
        ADMIN_TOKEN=$(sed -n 's/^ADMIN_TOKEN=//p' "$LAB_DIR/secrets.env")
    fi
    if [ -z "${JWT_SECRET:-}" ] && [ -r "$LAB_DIR/secrets.env" ]; then
        JWT_SECRET=$(sed -n 's/^JWT_SECRET=//p' "$LAB_DIR/secrets.env")
    fi
    ADMIN_TOKEN=${ADMIN_TOKEN:-} JWT_SECRET=${JWT_SECRET:-}
    STATE_DIR=$LAB_DIR/labs
    LABCTL_WINDOW=${LABCTL_WINDOW:-30}
    LABCTL_LOAD_SECONDS=${LABCTL_LOAD_SECONDS:-900}
    export LAB_DIR LAB_PORT_OFFSET=$OFF LAB_BIN_DIR GATEWAY_URL TRADING_API_URL MATCHING_URL WALLET_URL \
        RISK_URL CATALOG_URL ORDER_URL PROMETHEUS_URL REDIS_URL PG_URL ADMIN_TOKEN JWT_SECRET \
        STATE_DIR LABCTL_WINDOW LABCTL_LOAD_SECONDS
}

# URL of a service by name.
svc_url() {
    case $1 in
    gateway) echo "$GATEWAY_URL" ;; trading-api) echo "$TRADING_API_URL" ;;
    matching) echo "$MATCHING_URL" ;; wallet) echo "$WALLET_URL" ;; risk) echo "$RISK_URL" ;;
    catalog) echo "$CATALOG_URL" ;; order) echo "$ORDER_URL" ;; *) return 1 ;;
    esac
}
LAB_SERVICES="gateway trading-api matching wallet risk catalog order"
# A service counts when its binary is built and, for a running lab, the lab runs it.
svc_built() {
    [ -x "$LAB_BIN_DIR/$1" ] || return 1
    [ -f "$LAB_DIR/supervisord.conf" ] || return 0
    grep -qx "\[program:$1\]" "$LAB_DIR/supervisord.conf"
}
built_services() { local s; for s in $LAB_SERVICES; do svc_built "$s" && echo "$s"; done; }
redis_port() { local p=${REDIS_URL##*:}; echo "${p%%/*}"; }

say()  { printf '%s\n' "$*"; }
warn() { printf 'labctl: %s\n' "$*" >&2; }
die()  { printf 'labctl: %s\n' "$*" >&2; exit "${2:-2}"; }

# ---- supervisor
ctl() { supervisorctl -c "$LAB_DIR/supervisord.conf" "$@"; }
lab_running() { [ -f "$LAB_DIR/supervisord.pid" ] && kill -0 "$(cat "$LAB_DIR/supervisord.pid")" 2>/dev/null; }
svc_pid() { local p; p=$(ctl pid "$1" 2>/dev/null) && [ "${p:-0}" -gt 0 ] 2>/dev/null && echo "$p"; }
# svc_env NAME VAR: the value a running service was started with (/proc).
svc_env() {
    local pid; pid=$(svc_pid "$1") || return 1
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n "s/^$2=//p" | head -1
}

# ---- HTTP
# http_code URL [curl args...]: the status (000 when no answer).
http_code() { local u=$1; shift; curl -s -o /dev/null -m "${HTTP_TIMEOUT:-5}" -w '%{http_code}' "$@" "$u" 2>/dev/null || true; }
admin() { # METHOD SERVICE PATH [BODY]
    local m=$1 u; u=$(svc_url "$2") || return 1
    curl -s -m 5 -X "$m" -H "Authorization: Bearer $ADMIN_TOKEN" ${4:+-H 'Content-Type: application/json' -d "$4"} "$u$3"
}
fault_add()        { admin POST "$1" /admin/faults "$2" | grep -q '"id"'; }
fault_clear_type() { admin DELETE "$1" "/admin/faults/$2" >/dev/null; }
fault_list()       { admin GET "$1" /admin/faults; }
# fault_present SERVICE JQ-FILTER: 0 if a fault matching the filter is active.
fault_present()    { fault_list "$1" | jq -e "[.faults[] | select($2)] | length > 0" >/dev/null 2>&1; }

# metric SERVICE 'name{label="v"}': sum of the matching samples of /metrics (0 if none).
metric() {
    local u; u=$(svc_url "$1") || return 1
    curl -s -m 5 "$u/metrics" | awk -v want="$2" '
        BEGIN { n = index(want, "{"); name = n ? substr(want, 1, n - 1) : want
                sel = n ? substr(want, n + 1, length(want) - n - 1) : ""; cnt = split(sel, parts, ",") }
        /^#/ { next }
        { split($0, f, " "); s = f[1]; v = f[2]
          b = index(s, "{"); sn = b ? substr(s, 1, b - 1) : s
          if (sn != name) next
          okk = 1; for (i = 1; i <= cnt; i++) if (parts[i] != "" && index(s, parts[i]) == 0) okk = 0
          if (okk) sum += v }
        END { printf "%.6f\n", sum + 0 }'
}

# prom_query EXPR: the first value of an instant query at the lab's Prometheus ("" if none).
prom_query() { curl -s -m 5 --data-urlencode "query=$1" "$PROMETHEUS_URL/api/v1/query" | jq -r '.data.result[0].value[1] // empty' 2>/dev/null; }

# mint_jwt SUB [ROLES]: an access token the gateway accepts (HS256 with the lab's JWT_SECRET).
mint_jwt() {
    local sub=$1 roles=${2:-user} now h p s
    now=$(date +%s)
    _b64u() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
    h=$(printf '{"alg":"HS256","typ":"JWT"}' | _b64u)
    p=$(printf '{"sub":"%s","iss":"exchange-lab","aud":"exchange-lab","iat":%d,"exp":%d,"jti":"labctl-%d-%d","roles":["%s"]}' \
        "$sub" "$now" $((now + 3600)) "$now" "$RANDOM" "$roles" | _b64u)
    s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -mac HMAC -macopt "key:$JWT_SECRET" -binary | _b64u)
    printf '%s.%s.%s\n' "$h" "$p" "$s"
}

# ---- configuration overrides: $LAB_DIR/overrides/<service>.env (KEY=VALUE lines)
# applied on top of the lab's environment when the service (re)starts, through
# labs/lib/exec-service.sh (installed in the lab's supervisord.conf on first use).
override_file() { echo "$LAB_DIR/overrides/$1.env"; }
override_set() { # SERVICE KEY VALUE
    local f; f=$(override_file "$1"); mkdir -p "$(dirname "$f")"; touch "$f"
    grep -v "^$2=" "$f" >"$f.tmp" || true
    echo "$2=$3" >>"$f.tmp"; mv "$f.tmp" "$f"
}
override_del() { local f; f=$(override_file "$1"); [ -f "$f" ] || return 0; grep -v "^$2=" "$f" >"$f.tmp" || true; mv "$f.tmp" "$f"; }
# lab.sh may one day read the overrides itself; until then the wrapper does.
lab_reads_overrides() { grep -q 'overrides/' "$REPO_ROOT/scripts/lab.sh" 2>/dev/null; }
wrapper_installed() { grep -q "labs/lib/exec-service.sh $1\$" "$LAB_DIR/supervisord.conf" 2>/dev/null; }
# use_overrides SERVICE: make SERVICE start through the override-aware wrapper (restarts it once).
use_overrides() {
    local s=$1
    lab_reads_overrides && return 0
    wrapper_installed "$s" && return 0
    sed -i "s#^command=bash .*/scripts/lab.sh exec $s\$#command=bash $LABS_ROOT/lib/exec-service.sh $s#" "$LAB_DIR/supervisord.conf"
    if ! wrapper_installed "$s"; then
        warn "cannot apply configuration overrides to $s: its supervisor program is not 'bash .../scripts/lab.sh exec $s'"
        return 1
    fi
    ctl reread >/dev/null && ctl update "$s" >/dev/null
}
# drop_overrides SERVICE: back to the lab's own command line (restarts it if it changed).
drop_overrides() {
    local s=$1 changed=0
    rm -f "$(override_file "$s")"
    if wrapper_installed "$s"; then
        sed -i "s#^command=bash $LABS_ROOT/lib/exec-service.sh $s\$#command=bash $REPO_ROOT/scripts/lab.sh exec $s#" "$LAB_DIR/supervisord.conf"
        ctl reread >/dev/null; ctl update "$s" >/dev/null; changed=1
    fi
    return 0
}
svc_restart() { ctl restart "$1" >/dev/null; }
# wait_ready SERVICE [SECONDS]
wait_ready() {
    local u t=${2:-30} end; u=$(svc_url "$1") || return 1
    end=$(( $(date +%s) + t ))
    while [ "$(date +%s)" -lt "$end" ]; do
        [ "$(http_code "$u/readyz")" = 200 ] && return 0
        sleep 0.3
    done
    return 1
}

# ---- background load (bounded; loopback only). Each generator runs in its
# own session so labctl can stop exactly what it started (pid files).
load_dir() { echo "$STATE_DIR/load"; }
# load_start NAME SECONDS COMMAND...: runs COMMAND repeatedly until SECONDS pass.
load_start() {
    local name=$1 secs=$2; shift 2
    mkdir -p "$(load_dir)"
    load_stop "$name"
    # Ends at its deadline, or as soon as the lab's supervisor is gone (make down).
    setsid bash -c 'end=$(( $(date +%s) + $1 )); sup=$2; shift 2
        while [ "$(date +%s)" -lt "$end" ] && { [ -z "$sup" ] || kill -0 "$(cat "$sup" 2>/dev/null)" 2>/dev/null; }; do
            "$@" || sleep 0.5
        done' \
        labctl-load "$secs" "$([ -f "$LAB_DIR/supervisord.pid" ] && echo "$LAB_DIR/supervisord.pid")" "$@" \
        >>"$(load_dir)/$name.log" 2>&1 </dev/null &
    echo $! >"$(load_dir)/$name.pid"
}
load_stop() {
    local f; f="$(load_dir)/$1.pid"
    [ -f "$f" ] || return 0
    local pid; pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}
load_stop_all() { local f; for f in "$(load_dir)"/*.pid; do [ -f "$f" ] && load_stop "$(basename "$f" .pid)"; done; return 0; }

# ---- the conditions of a check: cond_ok / cond_fail NAME [DETAIL]
COND_NAMES=() COND_OK=() COND_DETAIL=()
cond_ok()   { COND_NAMES+=("$1"); COND_OK+=(1); COND_DETAIL+=("${2:-}"); }
cond_fail() { COND_NAMES+=("$1"); COND_OK+=(0); COND_DETAIL+=("${2:-}"); }
# cond NAME COMMAND...: one condition from a command's exit status.
cond() { local n=$1; shift; if "$@" >/dev/null 2>&1; then cond_ok "$n"; else cond_fail "$n"; fi; }
cond_failed() { local v; for v in "${COND_OK[@]}"; do [ "$v" = 0 ] && return 0; done; return 1; }

# probe_window SECONDS INTERVAL FUNC: calls FUNC every INTERVAL seconds for
# SECONDS; PROBE_N counts calls, PROBE_BAD those that returned non-zero.
probe_window() {
    local secs=$1 iv=$2 fn=$3 end
    PROBE_N=0 PROBE_BAD=0
    end=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
    while :; do
        PROBE_N=$((PROBE_N + 1))
        "$fn" || PROBE_BAD=$((PROBE_BAD + 1))
        [ $(( $(date +%s%N) / 1000000 )) -ge "$end" ] && break
        sleep "$iv"
    done
}

# ---- the shop as a user reaches it: through the gateway when it is built.
shop_products_url() { if svc_built gateway; then echo "$GATEWAY_URL/api/products"; else echo "$CATALOG_URL/catalog/products"; fi; }
# A probe from its own loopback address so per-client limits see it apart.
PROBE_IP=${PROBE_IP:-127.0.0.2}

# hold_cycle: one hold placed and released on the wallet the way trading-api
# does it (user 2 of the seed, 1 USDT). Prints the placement's status.
hold_cycle() {
    local id="labctl-$$-$RANDOM$RANDOM" c
    c=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"hold_id\":\"$id\",\"user_id\":\"2\",\"asset\":\"USDT\",\"amount\":\"1.000000\"}" "$WALLET_URL/internal/holds")
    [ "$c" = 201 ] || [ "$c" = 200 ] && curl -s -o /dev/null -m 5 -X DELETE "$WALLET_URL/internal/holds/$id"
    echo "$c"
}

# CPU seconds (utime + stime) and resident KiB of a lab service, from /proc.
svc_cpu_s() { local pid; pid=$(svc_pid "$1") || return 1; awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$pid/stat"; }
svc_rss_kb() { local pid; pid=$(svc_pid "$1") || return 1; awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }

# ---- shop checkouts as a lab customer (user 900001), on a product of the
# lab's own with plenty of stock, so scenarios never empty the demo shop.
LAB_SHOP_USER=900001
lab_product_id() {
    local f="$STATE_DIR/product.id" id
    if [ -s "$f" ]; then
        id=$(cat "$f")
        [ "$(http_code "$CATALOG_URL/catalog/products/$id")" = 200 ] && { echo "$id"; return 0; }
    fi
    mkdir -p "$STATE_DIR"
    id=$(curl -s -m 5 -X POST -H 'Content-Type: application/json' -H 'X-User-Id: 3' -H 'X-User-Roles: admin' \
        -d '{"name":"Lab Widget","price":"1.00","stock":1000000,"description":"labctl checkout probe"}' \
        "$CATALOG_URL/catalog/products" | jq -r '.id // empty')
    [ -n "$id" ] || return 1
    echo "$id" >"$f"; echo "$id"
}
# checkout_cycle: one order through the gateway (then cancelled). Prints
# "<status> <seconds>" of the creation.
checkout_cycle() {
    local pid tok body out code t id
    pid=$(lab_product_id) || { echo "000 0"; return 1; }
    tok=${LAB_SHOP_TOKEN:-$(mint_jwt "$LAB_SHOP_USER")}
    body="{\"items\":[{\"product_id\":\"$pid\",\"quantity\":1}],\"shipping_address\":{\"name\":\"Lab\",\"line1\":\"1 Loop St\",\"city\":\"Localhost\",\"postal_code\":\"12345\",\"country\":\"DE\"}}"
    out=$(curl -s -m 15 -w '\n%{http_code} %{time_total}' -X POST -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' -H "Idempotency-Key: labctl-$$-$RANDOM$RANDOM" \
        --interface "$PROBE_IP" -d "$body" "$GATEWAY_URL/api/orders")
    code=$(tail -1 <<<"$out")
    id=$(head -n -1 <<<"$out" | jq -r '.id // empty' 2>/dev/null)
    [ -n "$id" ] && curl -s -o /dev/null -m 10 -X PUT -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        --interface "$PROBE_IP" -d '{"status":"cancelled"}' "$GATEWAY_URL/api/orders/$id/status"
    echo "$code"
}
# Orders of the lab customer left pending (a timed-out checkout still
# creates its order): cancel them, straight at the order service.
cancel_lab_orders() {
    local id
    for id in $(curl -s -m 5 -H "X-User-Id: $LAB_SHOP_USER" -H 'X-User-Roles: user' "$ORDER_URL/orders/user/$LAB_SHOP_USER?limit=50" \
            | jq -r '.items[]? | select(.status == "pending") | .id' 2>/dev/null); do
        curl -s -o /dev/null -m 5 -X PUT -H "X-User-Id: $LAB_SHOP_USER" -H 'X-User-Roles: user' -H 'Content-Type: application/json' \
            -d '{"status":"cancelled"}' "$ORDER_URL/orders/$id/status"
    done
}

# ---- the gateway's routes file, as the running gateway sees it.
gw_routes_file() {
    local f; f=$(svc_env gateway GATEWAY_ROUTES_FILE)
    [ -n "$f" ] || f=services/gateway/routes.json
    case $f in /*) ;; *) f=$REPO_ROOT/$f ;; esac
    echo "$f"
}
# gw_override_routes JQ-FILTER: the gateway runs on a copy of its routes file,
# $LAB_DIR/overrides/gateway-routes.json, changed by the filter; restarted.
gw_override_routes() {
    mkdir -p "$LAB_DIR/overrides"
    jq "$1" "$REPO_ROOT/services/gateway/routes.json" >"$LAB_DIR/overrides/gateway-routes.json" || return 1
    override_set gateway GATEWAY_ROUTES_FILE "$LAB_DIR/overrides/gateway-routes.json"
    gw_apply_overrides
}
gw_apply_overrides() {
    if wrapper_installed gateway || lab_reads_overrides; then svc_restart gateway; else use_overrides gateway || return 1; fi
    wait_ready gateway 30
}
load_running() { local f; f="$(load_dir)/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
# duration_ms 2s|1500ms|1m: milliseconds (as the services parse durations).
duration_ms() {
    case $1 in
    *ms) echo "${1%ms}" ;; *min) echo $(( ${1%min} * 60000 )) ;; *d) echo $(( ${1%d} * 86400000 )) ;;
    *s) echo $(( ${1%s} * 1000 )) ;; *m) echo $(( ${1%m} * 60000 )) ;;
    *h) echo $(( ${1%h} * 3600000 )) ;; *[!0-9]*|'') echo "" ;; *) echo "$1" ;;
    esac
}

# ---- exchange trades: a crossing pair between the seeded users 1 (sells) and
# 2 (buys), small enough to leave their balances alone for hours.
# trade_pair: prints the buy order's id.
trade_pair() {
    local s="lab-$$-$RANDOM$RANDOM" t1 t2 body
    t1=${LAB_T1:-$(mint_jwt 1)} t2=${LAB_T2:-$(mint_jwt 2)}
    # At the last trade price: risk refuses prices far from it (price band).
    local px
    px=$(curl -s -m 5 -H "Authorization: Bearer $t2" "$GATEWAY_URL/v1/markets/BTC-USDT/ticker" \
        | jq -r '.last_price // empty' 2>/dev/null)
    body='"market":"BTC-USDT","type":"limit","price":"'"${px:-30000.00}"'","quantity":"0.0001","time_in_force":"GTC"'
    curl -s -o /dev/null -m 5 -X POST -H "Authorization: Bearer $t1" -H 'Content-Type: application/json' \
        -d "{$body,\"side\":\"sell\",\"client_order_id\":\"$s-s\"}" "$GATEWAY_URL/v1/orders"
    curl -s -m 5 -X POST -H "Authorization: Bearer $t2" -H 'Content-Type: application/json' \
        -d "{$body,\"side\":\"buy\",\"client_order_id\":\"$s-b\"}" "$GATEWAY_URL/v1/orders" | jq -r '.id // empty'
}
# order_status ID (of user 2)
order_status() { curl -s -m 5 -H "Authorization: Bearer ${LAB_T2:-$(mint_jwt 2)}" "$GATEWAY_URL/v1/orders/$1" | jq -r '.status // empty'; }
# trade_filled_within SECONDS: a fresh pair trades within SECONDS.
trade_filled_within() {
    local id end st
    id=$(trade_pair); [ -n "$id" ] || return 1
    end=$(( $(date +%s) + $1 ))
    while [ "$(date +%s)" -le "$end" ]; do
        st=$(order_status "$id"); [ "$st" = filled ] && return 0
        sleep 0.3
    done
    return 1
}
# lag SERVICE TOPIC: the service's consumer lag summed over partitions.
lag() { metric "$1" "kafka_consumer_lag{topic=\"$2\"}" | awk '{ printf "%d\n", $1 }'; }
