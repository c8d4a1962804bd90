# gateway-cpu-burn: background threads burn 0.5 CPU in the gateway.
sc_start() {
    fault_add gateway '{"type":"cpu_burn","millicores":500,"duration_s":3600}' || return 1
    load_start shoppers "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/loadgen.sh" get 4 20 "$(shop_products_url)/[1-12]"
}
_probe() { [ "$(http_code "$(shop_products_url)/3" --interface "$PROBE_IP")" = 200 ] || ERRS=$((ERRS + 1)); }
sc_check() {
    ERRS=0
    local c0 c1 t0 t1 used
    cond "the gateway is ready" wait_ready gateway 5
    c0=$(svc_cpu_s gateway); t0=$(date +%s%N)
    # At least 4 s of CPU accounting: on a busy machine a short sample is noise.
    probe_window "$(( LABCTL_WINDOW < 4 ? 4 : LABCTL_WINDOW ))" 0.5 _probe
    c1=$(svc_cpu_s gateway); t1=$(date +%s%N)
    used=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f", (b - a) / ((t1 - t0) / 1e9) }')
    if awk -v u="$used" 'BEGIN { exit !(u < 0.04) }'; then cond_ok "the edge's CPU use is back to normal (${used} cores)"
    else cond_fail "the edge's CPU use is back to normal" "${used} cores used at a few requests per second"; fi
    [ "$ERRS" = 0 ] && cond_ok "the shop answers through the gateway" || cond_fail "the shop answers through the gateway" "$ERRS failed probes"
}
sc_reset() { load_stop shoppers; fault_clear_type gateway cpu_burn; }
