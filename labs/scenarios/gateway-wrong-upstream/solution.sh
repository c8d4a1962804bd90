#!/usr/bin/env bash
# Reference fix: correct the gateway's CATALOG_URL override and restart the gateway.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
f=$LAB_DIR/overrides/gateway.env
sed -i "s#^CATALOG_URL=.*#CATALOG_URL=$CATALOG_URL#" "$f"
supervisorctl -c "$SUPERVISOR_CONF" restart gateway
for _ in $(seq 1 60); do curl -fsS "$GATEWAY_URL/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
