# gateway-flood-one-client: the public class's per-IP limit was "raised for a
# load test" (100000/s); one client (127.0.0.9) sends ~40 requests/s.
FLOOD_IP=127.0.0.9
sc_start() {
    gw_override_routes '.rate_limits.public.ip = {"rate": 100000, "burst": 200000}' || return 1
    load_start shoppers "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/loadgen.sh" get 3 20 "$GATEWAY_URL/api/products/[1-12]"
    load_start flood "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/loadgen.sh" get 40 100 "$GATEWAY_URL/api/products/[1-36]" --interface "$FLOOD_IP"
}
_probe() {
    local c; c=$(http_code "$GATEWAY_URL/api/products/5" --interface "$PROBE_IP")
    [ "$c" = 200 ] || { LEGIT_BAD="$c"; return 1; }
}
sc_check() {
    LEGIT_BAD=""
    local f cls rate burst r0 r1
    cond "the gateway is ready" wait_ready gateway 10
    f=$(gw_routes_file)
    cls=$(jq -r '[.routes[] | select(.prefix == "/api/products")][0].rate_limit // "default"' "$f" 2>/dev/null)
    rate=$(jq -r --arg c "$cls" '.rate_limits[$c].ip.rate // empty' "$f" 2>/dev/null)
    burst=$(jq -r --arg c "$cls" '.rate_limits[$c].ip.burst // empty' "$f" 2>/dev/null)
    if [ -n "$rate" ] && awk -v r="$rate" -v b="$burst" 'BEGIN { exit !(r <= 20 && b <= 100) }'; then
        cond_ok "public product routes have a per-client limit no single client can ride"
    else
        cond_fail "public product routes have a per-client limit no single client can ride" \
            "a shopper needs at most a few requests per second; the running limit lets one client take far more"
    fi
    # The flood keeps running during the window: it must be refused, shoppers not.
    load_running flood || load_start flood 60 bash "$LABS_ROOT/lib/loadgen.sh" get 40 100 "$GATEWAY_URL/api/products/[1-36]" --interface "$FLOOD_IP"
    r0=$(metric gateway 'gateway_ratelimit_rejections_total{scope="ip"}')
    probe_window "$LABCTL_WINDOW" 0.5 _probe
    r1=$(metric gateway 'gateway_ratelimit_rejections_total{scope="ip"}')
    awk -v a="$r0" -v b="$r1" 'BEGIN { exit !(b > a) }' && cond_ok "the flooding client is refused (429) during the window" \
        || cond_fail "the flooding client is refused (429) during the window" "no request was refused"
    [ -z "$LEGIT_BAD" ] && cond_ok "an ordinary shopper is served for ${LABCTL_WINDOW}s ($PROBE_N probes)" \
        || cond_fail "an ordinary shopper is served for ${LABCTL_WINDOW}s" "a shopper got $LEGIT_BAD"
}
sc_reset() { load_stop flood; load_stop shoppers; drop_overrides gateway; wait_ready gateway 30; }
