# order-db-pool-exhausted: a forgotten "report export" session holds an ACCESS
# EXCLUSIVE lock on orders inside an open transaction; parallel readers pile
# up on it until the order service's pool (12) is all in use.
_pg() { psql "$PG_URL/shop_order" -qAtX -c "$1" 2>/dev/null; }
sc_start() {
    mkdir -p "$(load_dir)"
    setsid bash -c '(echo "BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE; SELECT 1;"; sleep "$1") | PGAPPNAME=report-export psql -qAtX "$2" >/dev/null' \
        labctl-blocker "$LABCTL_LOAD_SECONDS" "$PG_URL/shop_order" </dev/null >/dev/null 2>&1 &
    echo $! >"$(load_dir)/blocker.pid"
    for _ in $(seq 1 50); do
        [ "$(_pg "select count(*) from pg_stat_activity where application_name = 'report-export' and state like 'idle in transaction%'")" = 1 ] && break
        sleep 0.1
    done
    # Bursts of 8 concurrent readers (the shop's "My orders" page), one burst at a time.
    load_start readers "$LABCTL_LOAD_SECONDS" bash -c 'for i in 1 2 3 4 5 6 7 8; do
        curl -s -o /dev/null -m 12 -H "X-User-Id: $2" -H "X-User-Roles: user" "$1/orders/user/$2" & done; wait; sleep 0.5' \
        labctl-readers "$ORDER_URL" "$LAB_SHOP_USER"
}
_probe() {
    local size in_use c
    size=${POOL_SIZE:-12}
    # A service whose workers all wait on the pool cannot even answer /metrics.
    in_use=$(curl -s -m 2 "$ORDER_URL/metrics" | awk '/^db_pool_connections\{state="in_use"\}/ { print int($2) }')
    in_use=${in_use:-$size}
    [ "$in_use" -gt "${MAX_IN_USE:-0}" ] && MAX_IN_USE=$in_use
    c=$(HTTP_TIMEOUT=2 http_code "$ORDER_URL/orders/user/$LAB_SHOP_USER" -H "X-User-Id: $LAB_SHOP_USER" -H 'X-User-Roles: user')
    [ "$c" = 200 ] || { SLOW=$((SLOW + 1)); return 1; }
}
sc_check() {
    SLOW=0 MAX_IN_USE=0
    POOL_SIZE=$(svc_env order DB_POOL_SIZE || true); POOL_SIZE=${POOL_SIZE:-12}
    local n t
    n=$(_pg "select count(*) from pg_stat_activity where datname = current_database() and state like 'idle in transaction%' and now() - state_change > interval '3 seconds'")
    [ "${n:-1}" = 0 ] && cond_ok "no session sits in an abandoned transaction on the shop's database" \
        || cond_fail "no session sits in an abandoned transaction on the shop's database" "${n:-?} session(s)"
    t=$(_pg "show idle_in_transaction_session_timeout")
    t=$(duration_ms "${t:-0}")
    if [ -n "$t" ] && [ "$t" -gt 0 ] && [ "$t" -le 600000 ]; then cond_ok "the database ends abandoned transactions by itself"
    else cond_fail "the database ends abandoned transactions by itself" "nothing stops the next forgotten session doing the same"; fi
    probe_window "$LABCTL_WINDOW" 0.3 _probe
    [ "$SLOW" = 0 ] && cond_ok "order history answers within 2s for ${LABCTL_WINDOW}s ($PROBE_N probes)" \
        || cond_fail "order history answers within 2s for ${LABCTL_WINDOW}s" "$SLOW of $PROBE_N slow or failed"
    [ "$MAX_IN_USE" -lt "$POOL_SIZE" ] && cond_ok "the order service's connection pool has room" \
        || cond_fail "the order service's connection pool has room" "all $POOL_SIZE connections in use"
}
sc_reset() {
    load_stop readers; load_stop blocker
    _pg "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'report-export'" >/dev/null
    psql "$PG_URL/postgres" -qAtX -c "ALTER DATABASE shop_order RESET idle_in_transaction_session_timeout" >/dev/null 2>&1
    wait_ready order 20
}
