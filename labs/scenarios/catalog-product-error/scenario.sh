# catalog-product-error: an error fault on one product's raw path.
BAD_PRODUCT=7
sc_start() {
    fault_add catalog "{\"type\":\"error\",\"route\":\"/catalog/products/$BAD_PRODUCT\",\"status\":500}" || return 1
    load_start shoppers "$LABCTL_LOAD_SECONDS" bash "$LABS_ROOT/lib/loadgen.sh" get 4 20 "$(shop_products_url)/[1-12]"
}
_probe() {
    local a b
    a=$(http_code "$(shop_products_url)/$BAD_PRODUCT" --interface "$PROBE_IP")
    b=$(http_code "$(shop_products_url)/3" --interface "$PROBE_IP")
    [ "$a" = 200 ] || BAD_SEEN="the reported product answered $a"
    [ "$b" = 200 ] || OTHER_SEEN="another product answered $b"
    [ "$a" = 200 ] && [ "$b" = 200 ]
}
sc_check() {
    BAD_SEEN="" OTHER_SEEN=""
    cond "catalog is ready" wait_ready catalog 5
    probe_window "$LABCTL_WINDOW" 0.2 _probe
    if [ -z "$BAD_SEEN" ]; then cond_ok "the reported product page loads for ${LABCTL_WINDOW}s ($PROBE_N probes)"
    else cond_fail "the reported product page loads for ${LABCTL_WINDOW}s" "$BAD_SEEN"; fi
    if [ -z "$OTHER_SEEN" ]; then cond_ok "other product pages still load"
    else cond_fail "other product pages still load" "$OTHER_SEEN"; fi
}
sc_reset() { load_stop shoppers; fault_clear_type catalog error; }
