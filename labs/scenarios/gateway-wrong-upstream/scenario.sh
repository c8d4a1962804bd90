# gateway-wrong-upstream: the gateway restarted with CATALOG_URL on a wrong port.
sc_start() {
    override_set gateway CATALOG_URL "http://127.0.0.1:$((8095 + OFF))"
    gw_apply_overrides || return 1
    load_start shoppers "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/loadgen.sh" get 4 20 "$GATEWAY_URL/api/products/[1-12]"
}
_probe() { [ "$(http_code "$GATEWAY_URL/api/products/2" --interface "$PROBE_IP")" = 200 ] || ERRS=$((ERRS + 1)); }
sc_check() {
    ERRS=0
    local want got
    cond "the gateway is ready" wait_ready gateway 10
    want=$(bash "$REPO_ROOT/scripts/lab.sh" env catalog 2>/dev/null | sed -n 's/^CATALOG_URL=//p')
    got=$(svc_env gateway CATALOG_URL)
    [ -n "$got" ] && [ "$got" = "$want" ] && cond_ok "the running gateway's catalog address is the catalog's" \
        || cond_fail "the running gateway's catalog address is the catalog's" "the running process has a different one"
    probe_window "$LABCTL_WINDOW" 0.3 _probe
    [ "$ERRS" = 0 ] && cond_ok "product pages load through the gateway for ${LABCTL_WINDOW}s ($PROBE_N probes)" \
        || cond_fail "product pages load through the gateway for ${LABCTL_WINDOW}s" "$ERRS of $PROBE_N failed"
}
sc_reset() { load_stop shoppers; drop_overrides gateway; wait_ready gateway 30; }
