#!/usr/bin/env bash
# Reference fix: Istio exports request duration in milliseconds; read that histogram (the threshold is in ms too).
# Usage: solution.sh [WORKSPACE]
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
w=${1:-$LAB_DIR/labs/work/k8s-metrictemplate-no-values}
cat >"$w/latency-template.yaml" <<'YAML'
- op: replace
  path: /spec/query
  value: |
    histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))
YAML
kubectl kustomize "$w" >/dev/null
