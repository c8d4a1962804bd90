# Fixed when every Deployment with a readiness probe waits for endpoints to drop it before
# it stops listening (preStop sleep or DRAIN_DELAY >= 3 s), and its grace period covers that
# wait plus the drain timeout (docs/http.md "Shutdown").
sc_check() {
    local rows bad="" short="" name pre delay drain grace
    rows=$(jq -s -r '
        ( [ .[] | select(.kind == "ConfigMap") | {key: .metadata.name, value: (.data // {})} ] | from_entries ) as $cm
        | .[] | select(.kind == "Deployment") | .metadata.name as $n | .spec.template.spec as $s
        | ($s.containers[0]) as $c
        | select($c.readinessProbe)
        | ([ $c.envFrom[]? | .configMapRef.name // empty | $cm[.] // {} ] | add // {}) as $env
        | [ $n,
            ($c.lifecycle.preStop.sleep.seconds // ($c.lifecycle.preStop.exec.command // [] | map(select(test("^[0-9]+$"))) | .[0] // 0 | tonumber)),
            ($env.DRAIN_DELAY // "0"), ($env.DRAIN_TIMEOUT_SECONDS // "10"), ($s.terminationGracePeriodSeconds // 30) ] | @tsv' "$K8S_JSON") || { cond_fail "the Deployments can be inspected" "jq failed"; return 0; }
    [ -n "$rows" ] || { cond_fail "the Deployments can be inspected" "no Deployment with a readiness probe"; return 0; }
    while IFS=$'\t' read -r name pre delay drain grace; do
        [ -n "$name" ] || continue
        delay=$(( $(duration_ms "$delay") / 1000 ))
        [ $((pre + delay)) -ge 3 ] || bad="$bad $name"
        [ "$grace" -ge $((pre + delay + drain + 1)) ] || short="$short $name"
    done <<<"$rows"
    [ -z "$bad" ] && cond_ok "pods keep serving until endpoints stop sending them traffic" || cond_fail "pods keep serving until endpoints stop sending them traffic" "stop at once:$bad"
    [ -z "$short" ] && cond_ok "the grace period covers the wait and the drain of in-flight requests" || cond_fail "the grace period covers the wait and the drain of in-flight requests" "killed mid-drain:$short"
}
