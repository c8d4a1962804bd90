#!/usr/bin/env bash
# Reference fix: give checkout at the edge more time than the inner hop's timeout and retry (5 s > 2 x 2 s).
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
f=$(sed -n 's/^GATEWAY_ROUTES_FILE=//p' "$LAB_DIR/overrides/gateway.env")
jq '(.routes[] | select(.prefix == "/api/orders") | .timeout_ms) = 5000' "$f" >"$f.new" && mv "$f.new" "$f"
supervisorctl -c "$SUPERVISOR_CONF" restart gateway
for _ in $(seq 1 60); do curl -fsS "$GATEWAY_URL/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
