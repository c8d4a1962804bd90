# Fixed when every MetricTemplate's query reads only metrics that exist (Istio's standard
# metrics, or the project's contract) and uses Flagger's variables; every templateRef resolves.
sc_check() {
    local known bad
    known=$( { printf '%s\n' istio_requests_total istio_request_duration_milliseconds_bucket istio_request_duration_milliseconds_sum \
        istio_request_duration_milliseconds_count istio_request_bytes_bucket istio_response_bytes_bucket istio_tcp_sent_bytes_total \
        istio_tcp_received_bytes_total istio_tcp_connections_opened_total istio_tcp_connections_closed_total
        jq -r '.[] | .name, (select(.type == "histogram") | .name + "_bucket", .name + "_sum", .name + "_count")' \
            "$REPO_ROOT/observability/metrics-contract.json" 2>/dev/null; } | jq -R . | jq -s -c .)
    bad=$(jq -s -r --argjson known "$known" '[ .[] | select(.kind == "MetricTemplate") | .metadata.name as $n
        | [ .spec.query | scan("[a-zA-Z_:][a-zA-Z0-9_:]*(?=\\s*[{\\[])") ]
        | map(select(. as $m | ["rate","irate","increase","sum","avg","max","min","histogram_quantile","by","without","count"] | index($m) | not))
        | map(select(. as $m | $known | index($m) | not)) | select(length > 0) | "\($n): \(join(" "))" ] | join("; ")' "$K8S_JSON")
    [ -z "$bad" ] && cond_ok "every MetricTemplate reads metrics that exist" || cond_fail "every MetricTemplate reads metrics that exist" "unknown: $bad"
    bad=$(kq '[ .[] | select(.kind == "MetricTemplate") | select((.spec.query | contains("{{ target }}") and contains("{{ namespace }}") and contains("{{ interval }}")) | not) | .metadata.name ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "every MetricTemplate is scoped by Flagger's target, namespace and interval" || cond_fail "every MetricTemplate is scoped by Flagger's target, namespace and interval" "$bad"
    bad=$(kq '[ (.[] | select(.kind == "MetricTemplate") | .metadata.name) ] as $t
        | [ .[] | select(.kind == "Canary") | .spec.analysis.metrics[]? | select(.templateRef) | .templateRef.name | select(. as $x | $t | index($x) | not) ] | unique | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "every Canary's templateRef names a MetricTemplate" || cond_fail "every Canary's templateRef names a MetricTemplate" "$bad"
}
