# Fixed when every Canary's analysis can fail a bad version: an error-rate or success-rate
# metric with a tight bound, a latency bound, a small failure threshold, and gradual weights.
sc_check() {
    local bad
    bad=$(kq '[ .[] | select(.kind == "Canary") | .metadata.name as $n | .spec.analysis as $a
        | select( ([$a.metrics[]? | select((.name == "request-success-rate" and (.thresholdRange.min // 0) >= 95)
                                        or (.templateRef.name == "error-rate" and (.thresholdRange.max // 100) <= 5))] | length) == 0 )
        | $n ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "every canary is judged on its errors" || cond_fail "every canary is judged on its errors" "not judged on errors: $bad"
    bad=$(kq '[ .[] | select(.kind == "Canary") | .metadata.name as $n | .spec.analysis as $a
        | select( ([$a.metrics[]? | select((.name == "request-duration" or .templateRef.name == "latency-p99") and (.thresholdRange.max // 1e9) <= 1000)] | length) == 0 )
        | $n ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "every canary is judged on its latency" || cond_fail "every canary is judged on its latency" "no sane latency bound: $bad"
    bad=$(kq '[ .[] | select(.kind == "Canary") | select((.spec.analysis.threshold // 0) < 1 or (.spec.analysis.threshold // 0) > 10) | .metadata.name ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "a few failed checks are enough to roll back" || cond_fail "a few failed checks are enough to roll back" "$bad"
    bad=$(kq '[ .[] | select(.kind == "Canary") | .spec.analysis as $a
        | select(($a.maxWeight // 100) > 50 or ($a.stepWeight // 100) > 25 or ($a.stepWeight // 0) <= 0) | .metadata.name ] | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "traffic moves to a canary gradually, never all at once" || cond_fail "traffic moves to a canary gradually, never all at once" "$bad"
}
