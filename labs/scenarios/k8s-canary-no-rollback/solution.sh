#!/usr/bin/env bash
# Reference fix: give the trading-api canary a real analysis again (as the other canaries have).
# Usage: solution.sh [WORKSPACE]
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
w=${1:-$LAB_DIR/labs/work/k8s-canary-no-rollback}
cat >"$w/canary-analysis.yaml" <<'YAML'
- op: replace
  path: /spec/analysis
  value:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
        interval: 1m
      - name: request-duration
        thresholdRange: {max: 500}
        interval: 1m
      - name: error-rate
        templateRef: {name: error-rate}
        thresholdRange: {max: 1}
        interval: 1m
      - name: latency-p99
        templateRef: {name: latency-p99}
        thresholdRange: {max: 500}
        interval: 1m
YAML
kubectl kustomize "$w" >/dev/null
