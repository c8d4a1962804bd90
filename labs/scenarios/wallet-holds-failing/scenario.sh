# wallet-holds-failing: 30 % of hold placements answer 503.
sc_start() {
    fault_add wallet '{"type":"error","route":"/internal/holds","rate":0.3,"status":503}' || return 1
    load_start holds "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/holds-load.sh"
}
_probe() { local c; c=$(hold_cycle); case $c in 5*|000) FAILS=$((FAILS + 1)); return 1 ;; esac; }
sc_check() {
    FAILS=0
    cond "wallet is ready" wait_ready wallet 5
    probe_window "$LABCTL_WINDOW" 0.05 _probe
    if [ "$FAILS" = 0 ]; then cond_ok "every hold placement succeeds for ${LABCTL_WINDOW}s ($PROBE_N placed)"
    else cond_fail "every hold placement succeeds for ${LABCTL_WINDOW}s" "$FAILS of $PROBE_N answered 5xx"; fi
}
sc_reset() { load_stop holds; fault_clear_type wallet error; }
