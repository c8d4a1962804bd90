# redis-down-cache: Redis stopped under the catalog's cache-aside.
sc_start() {
    ctl stop redis >/dev/null || return 1
    load_start shoppers "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/loadgen.sh" get 4 20 "$(shop_products_url)/[1-12]"
}
_probe() { [ "$(http_code "$(shop_products_url)/4" --interface "$PROBE_IP")" = 200 ] || ERRS=$((ERRS + 1)); }
sc_check() {
    ERRS=0
    local e0 e1 h0 h1
    cond "Redis answers" redis-cli -p "$(redis_port)" ping
    e0=$(metric catalog 'catalog_cache_requests_total{result="error"}'); h0=$(metric catalog 'catalog_cache_requests_total{result="hit"}')
    probe_window "$LABCTL_WINDOW" 0.3 _probe
    e1=$(metric catalog 'catalog_cache_requests_total{result="error"}'); h1=$(metric catalog 'catalog_cache_requests_total{result="hit"}')
    if awk -v a="$e0" -v b="$e1" 'BEGIN { exit !(b - a == 0) }'; then cond_ok "the catalog's cache lookups do not fail"
    else cond_fail "the catalog's cache lookups do not fail" "$(awk -v a="$e0" -v b="$e1" 'BEGIN { print b - a }') errors in ${LABCTL_WINDOW}s"; fi
    if awk -v a="$h0" -v b="$h1" 'BEGIN { exit !(b - a > 0) }'; then cond_ok "repeated product reads are served from the cache"
    else cond_fail "repeated product reads are served from the cache" "no cache hit in ${LABCTL_WINDOW}s"; fi
    [ "$ERRS" = 0 ] && cond_ok "product pages load" || cond_fail "product pages load" "$ERRS failed probes"
    if svc_built gateway; then
        local fb; fb=$(metric gateway gateway_ratelimit_fallback)
        awk -v v="$fb" 'BEGIN { exit !(v == 0) }' && cond_ok "the gateway's rate limiter uses its shared store" \
            || cond_fail "the gateway's rate limiter uses its shared store" "still on its local fallback"
    fi
}
sc_reset() { load_stop shoppers; ctl start redis >/dev/null 2>&1 || true; }
