# risk-memory-growth: memory_growth 2 MB/s (capped at 160 MB) in risk.
sc_start() { fault_add risk '{"type":"memory_growth","mb_per_s":2,"max_mb":160}'; }
sc_check() {
    local r0 r1 grow
    cond "risk is ready" wait_ready risk 10
    r0=$(svc_rss_kb risk) || { cond_fail "risk is running"; return; }
    sleep "$LABCTL_WINDOW"
    r1=$(svc_rss_kb risk) || { cond_fail "risk is running"; return; }
    grow=$(( (r1 - r0) / 1024 ))
    if [ "$grow" -lt 2 ]; then cond_ok "resident memory is flat over ${LABCTL_WINDOW}s (${grow} MiB)"
    else cond_fail "resident memory is flat over ${LABCTL_WINDOW}s" "grew ${grow} MiB"; fi
    if [ "$r1" -lt $((64 * 1024)) ]; then cond_ok "resident memory is back to its normal size ($((r1 / 1024)) MiB)"
    else cond_fail "resident memory is back to its normal size" "$((r1 / 1024)) MiB"; fi
}
sc_reset() { fault_clear_type risk memory_growth; }
