#!/usr/bin/env bash
# Reference fix: select the labels the order Services really carry (Flagger copies the Canary's primary labels).
# Usage: solution.sh [WORKSPACE]
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
w=${1:-$LAB_DIR/labs/work/k8s-servicemonitor-silent}
cat >"$w/servicemonitor-order.yaml" <<'YAML'
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: order
  namespace: exchange
spec:
  selector:
    matchLabels:
      exchange-lab.io/service: order
      exchange-lab.io/scrape: "true"
YAML
kubectl kustomize "$w" >/dev/null
