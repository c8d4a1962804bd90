#!/usr/bin/env bash
# Reference fix: outlier detection back on risk's DestinationRule (tuned, not removed).
# Usage: solution.sh [WORKSPACE]
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
w=${1:-$LAB_DIR/labs/work/k8s-one-sick-replica}
cat >"$w/risk-no-outlier.yaml" <<'YAML'
- op: add
  path: /spec/trafficPolicy/outlierDetection
  value:
    consecutive5xxErrors: 5
    interval: 10s
    baseEjectionTime: 30s
    maxEjectionPercent: 50
YAML
kubectl kustomize "$w" >/dev/null
