# wallet-settlement-lag: trades keep coming while the wallet, restarted with a
# mistyped WALLET_TRADES_TOPIC, settles none of them.
sc_start() {
    override_set wallet WALLET_TRADES_TOPIC exchange.trade
    if wrapper_installed wallet || lab_reads_overrides; then svc_restart wallet; else use_overrides wallet || return 1; fi
    wait_ready wallet 30 || return 1
    load_start trades "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/trade-load.sh"
}
sc_check() {
    export LAB_T1 LAB_T2; LAB_T1=$(mint_jwt 1); LAB_T2=$(mint_jwt 2)
    local t0 s0 t1 s1 end id st l
    cond "the wallet is ready" wait_ready wallet 10
    [ "$(svc_env wallet WALLET_TRADES_TOPIC || echo exchange.trades)" = exchange.trades ] \
        && cond_ok "the wallet reads trades where matching writes them" \
        || cond_fail "the wallet reads trades where matching writes them" "the running wallet listens elsewhere"
    t0=$(metric matching 'matching_trades_total'); s0=$(metric wallet 'wallet_settlements_total{result="applied"}')
    id=$(trade_pair)
    end=$(( $(date +%s) + LABCTL_WINDOW + 8 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        t1=$(metric matching 'matching_trades_total'); s1=$(metric wallet 'wallet_settlements_total{result="applied"}')
        st=$(order_status "$id")
        [ "$st" = filled ] && awk -v a="$t0" -v b="$t1" -v c="$s0" -v d="$s1" 'BEGIN { exit !(d - c >= b - a && b > a) }' && break
        sleep 0.5
    done
    if awk -v a="$t0" -v b="$t1" -v c="$s0" -v d="$s1" 'BEGIN { exit !(d - c >= b - a && b > a) }'; then
        cond_ok "every new trade is settled within seconds"
    else
        cond_fail "every new trade is settled within seconds" "$(awk -v a="$t0" -v b="$t1" -v c="$s0" -v d="$s1" 'BEGIN { printf "%d trades, %d settled", b - a, d - c }')"
    fi
    l=$(lag wallet exchange.trades)
    [ "${l:-0}" -le 5 ] && cond_ok "no backlog of trades waits for settlement" || cond_fail "no backlog of trades waits for settlement" "$l trades behind"
}
sc_reset() { load_stop trades; drop_overrides wallet; wait_ready wallet 30; }
