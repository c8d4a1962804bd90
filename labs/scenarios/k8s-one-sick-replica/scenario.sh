# Fixed when every in-mesh destination (DestinationRules and Canary traffic policies) ejects a
# replica that keeps failing, without ejecting them all.
sc_check() {
    local bad
    bad=$(kq '[ ( .[] | select(.kind == "DestinationRule") | {n: ("DestinationRule/" + .metadata.name), o: .spec.trafficPolicy.outlierDetection} ),
                ( .[] | select(.kind == "Canary") | {n: ("Canary/" + .metadata.name), o: .spec.service.trafficPolicy.outlierDetection} )
              | select(.o == null
                       or ((.o.consecutive5xxErrors // .o.consecutiveGatewayErrors // 0) < 1)
                       or ((.o.consecutive5xxErrors // .o.consecutiveGatewayErrors // 0) > 10)
                       or (.o.baseEjectionTime == null)) | .n ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "every destination ejects a replica that keeps failing" || cond_fail "every destination ejects a replica that keeps failing" "$bad"
    bad=$(kq '[ ( .[] | select(.kind == "DestinationRule") | {n: ("DestinationRule/" + .metadata.name), o: .spec.trafficPolicy.outlierDetection} ),
                ( .[] | select(.kind == "Canary") | {n: ("Canary/" + .metadata.name), o: .spec.service.trafficPolicy.outlierDetection} )
              | select(.o != null and ((.o.maxEjectionPercent // 10) > 50 or (.o.maxEjectionPercent // 10) < 1)) | .n ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "ejection never takes out most of a service" || cond_fail "ejection never takes out most of a service" "$bad"
}
