# matching-orders-stuck: matching's consumers are paused (kafka_pause); commands pile up.
sc_start() {
    fault_add matching '{"type":"kafka_pause"}' || return 1
    load_start trades "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/trade-load.sh"
}
sc_check() {
    export LAB_T1 LAB_T2; LAB_T1=$(mint_jwt 1); LAB_T2=$(mint_jwt 2)
    local p l end ok=1
    p=$(metric matching kafka_consumer_paused)
    awk -v v="$p" 'BEGIN { exit !(v == 0) }' && cond_ok "the matching engine consumes its commands" \
        || cond_fail "the matching engine consumes its commands" "it does not fetch"
    end=$(( $(date +%s) + LABCTL_WINDOW ))
    while [ "$(date +%s)" -lt "$end" ] || [ $ok = 1 -a -z "${did:-}" ]; do
        did=1
        trade_filled_within 5 || { ok=0; break; }
    done
    [ $ok = 1 ] && cond_ok "a crossing pair trades within 5s, for ${LABCTL_WINDOW}s" || cond_fail "a crossing pair trades within 5s, for ${LABCTL_WINDOW}s" "a fresh order stayed pending"
    l=$(lag matching exchange.orders.commands)
    [ "${l:-1}" -le 5 ] && cond_ok "no backlog of commands waits for the engine" || cond_fail "no backlog of commands waits for the engine" "$l commands behind"
}
sc_reset() { load_stop trades; fault_clear_type matching kafka_pause; }
