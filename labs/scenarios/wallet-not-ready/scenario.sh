# wallet-not-ready: readiness_fail on the wallet; liveness stays fine.
sc_start() {
    fault_add wallet '{"type":"readiness_fail"}' || return 1
    load_start holds "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/holds-load.sh"
}
_probe() { [ "$(http_code "$WALLET_URL/readyz")" = 200 ] || { NOTREADY=$((NOTREADY + 1)); return 1; }; }
sc_check() {
    NOTREADY=0
    probe_window "$LABCTL_WINDOW" 0.3 _probe
    if [ "$NOTREADY" = 0 ]; then cond_ok "the wallet reports ready for ${LABCTL_WINDOW}s ($PROBE_N probes)"
    else cond_fail "the wallet reports ready for ${LABCTL_WINDOW}s" "$NOTREADY of $PROBE_N probes answered not ready"; fi
    cond "the wallet is alive (/healthz)" test "$(http_code "$WALLET_URL/healthz")" = 200
    local c; c=$(hold_cycle)
    case $c in 2*) cond_ok "the wallet still places holds" ;; *) cond_fail "the wallet still places holds" "answered $c" ;; esac
}
sc_reset() { load_stop holds; fault_clear_type wallet readiness_fail; }
