#!/usr/bin/env bash
# Reference fix: take spec.replicas out of Git (drop the patch); the HPA owns the count.
# Usage: solution.sh [WORKSPACE] (default: labctl's workspace for this scenario)
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
w=${1:-$LAB_DIR/labs/work/k8s-argocd-replicas-outofsync}
sed -i '/catalog-replicas.yaml/d; /^patches:$/d' "$w/kustomization.yaml"
rm -f "$w/catalog-replicas.yaml"
kubectl kustomize "$w" >/dev/null
