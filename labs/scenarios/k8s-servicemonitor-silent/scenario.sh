# Fixed when every ServiceMonitor selects the labels of a Service that exists (rendered, or
# made by Flagger from a Canary's primary labels) on a port name that Service has.
sc_check() {
    local bad
    bad=$(kq '
        ( [ .[] | select(.kind == "Service") | {labels: (.metadata.labels // {}), ports: [.spec.ports[]?.name]} ]
          + [ .[] | select(.kind == "Canary") | {labels: (.spec.service.primary.labels // {}), ports: [.spec.service.portName // "http"]} ] ) as $svcs
        | [ .[] | select(.kind == "ServiceMonitor")
            | . as $sm
            | ($sm.spec.selector.matchLabels // {}) as $sel
            | [ $svcs[] | select(.labels as $l | $sel | to_entries | all(.key as $k | .value == $l[$k]))
                        | select(.ports as $p | [$sm.spec.endpoints[]?.port] | all(. as $x | $p | index($x))) ] as $hit
            | select(($hit | length) == 0) | $sm.metadata.name ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "every ServiceMonitor selects a Service that exists, on a port it has" \
        || cond_fail "every ServiceMonitor selects a Service that exists, on a port it has" "selects nothing: $bad"
    local n; n=$(kq '[.[] | select(.kind == "ServiceMonitor")] | length')
    [ "$n" -ge 7 ] && cond_ok "every service still has its ServiceMonitor" || cond_fail "every service still has its ServiceMonitor" "$n found"
}
