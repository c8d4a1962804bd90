# checkout-timeout-inversion: stock reservation legitimately takes 1.5 s
# (latency fault on catalog, kept on); the gateway gives checkout 1 s while
# the order service waits up to CATALOG_TIMEOUT (2 s) plus one retry.
sc_start() {
    lab_product_id >/dev/null || return 1
    fault_add catalog '{"type":"latency","route":"/internal/stock/reserve","ms":1500}' || return 1
    gw_override_routes '(.routes[] | select(.prefix == "/api/orders") | .timeout_ms) = 1000' || return 1
    load_start checkouts "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/checkout-load.sh"
}
_probe() {
    local c; c=$(checkout_cycle)
    case $c in 2*) ;; *) BAD="a checkout answered $c"; return 1 ;; esac
}
sc_check() {
    BAD=""
    local gw_to cat_to pending
    cond "the gateway is ready" wait_ready gateway 10
    if fault_present catalog '.type == "latency"'; then
        cond_ok "stock reservation is still slow (the scenario keeps it so: fix what waits on it)"
    else
        cond_fail "stock reservation is still slow (the scenario keeps it so: fix what waits on it)" \
            "the slow dependency was removed; labctl reset $ID and fix the timeouts instead"
    fi
    gw_to=$(jq -r '[.routes[] | select(.prefix == "/api/orders")][0].timeout_ms // 5000' "$(gw_routes_file)" 2>/dev/null)
    cat_to=$(duration_ms "$(svc_env order CATALOG_TIMEOUT || true)"); cat_to=${cat_to:-2000}
    if [ -n "$gw_to" ] && [ "$gw_to" -gt $((2 * cat_to)) ]; then
        cond_ok "the edge waits longer for checkout than the order service waits for stock, retry included"
    else
        cond_fail "the edge waits longer for checkout than the order service waits for stock, retry included" \
            "an outer timeout shorter than the inner one (and its retry) answers before the work ends"
    fi
    export LAB_SHOP_TOKEN; LAB_SHOP_TOKEN=$(mint_jwt "$LAB_SHOP_USER")
    load_stop checkouts; sleep 2; cancel_lab_orders
    probe_window "$LABCTL_WINDOW" 0.2 _probe
    [ -z "$BAD" ] && cond_ok "checkouts through the gateway succeed for ${LABCTL_WINDOW}s ($PROBE_N)" \
        || cond_fail "checkouts through the gateway succeed for ${LABCTL_WINDOW}s" "$BAD"
    sleep 2
    pending=$(curl -s -m 5 -H "X-User-Id: $LAB_SHOP_USER" -H 'X-User-Roles: user' "$ORDER_URL/orders/user/$LAB_SHOP_USER?limit=50" \
        | jq '[.items[]? | select(.status == "pending")] | length' 2>/dev/null)
    [ "${pending:-1}" = 0 ] && cond_ok "no order was created behind a customer's back" \
        || cond_fail "no order was created behind a customer's back" "${pending:-?} order(s) exist that the customer was told failed"
    load_start checkouts "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/checkout-load.sh"
}
sc_reset() {
    load_stop checkouts
    fault_clear_type catalog latency
    drop_overrides gateway; wait_ready gateway 30
    sleep 1; cancel_lab_orders
}
