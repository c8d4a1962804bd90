# Fixed when no Deployment that an HPA scales (or a Flagger Canary targets) sets spec.replicas in Git.
sc_check() {
    local bad
    bad=$(kq '[ (.[] | select(.kind == "HorizontalPodAutoscaler") | .spec.scaleTargetRef.name) ] as $scaled
        | [ .[] | select(.kind == "Deployment" and (.metadata.name as $n | $scaled | index($n)) and (.spec.replicas != null)) | .metadata.name ]
        | join(", ")' | tr -d '"')
    [ -z "$bad" ] && cond_ok "Git leaves the replica count of autoscaled Deployments to their autoscaler" \
        || cond_fail "Git leaves the replica count of autoscaled Deployments to their autoscaler" "a field both Git and a controller own: $bad"
    local hpa; hpa=$(kq '[.[] | select(.kind == "HorizontalPodAutoscaler" and .spec.scaleTargetRef.name == "catalog")] | length')
    [ "$hpa" -ge 1 ] && cond_ok "the catalog is still autoscaled" \
        || cond_fail "the catalog is still autoscaled" "removing the autoscaler is not the fix"
}
