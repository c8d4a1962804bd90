#!/usr/bin/env bash
# Reference fix: keep the preStop wait and a grace period longer than preStop + drain timeout (as the other services).
# Usage: solution.sh [WORKSPACE]
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
w=${1:-$LAB_DIR/labs/work/k8s-rollout-no-drain}
cat >"$w/wallet-fast-shutdown.yaml" <<'YAML'
- op: add
  path: /spec/template/spec/containers/0/lifecycle
  value: {preStop: {sleep: {seconds: 5}}}
- op: replace
  path: /spec/template/spec/terminationGracePeriodSeconds
  value: 30
YAML
kubectl kustomize "$w" >/dev/null
