#!/usr/bin/env bash
# Reference fix: a per-client (per-IP) limit on the public class, in the routes file the gateway runs with; restart.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
f=$(sed -n 's/^GATEWAY_ROUTES_FILE=//p' "$LAB_DIR/overrides/gateway.env")
jq '.rate_limits.public.ip = {"rate": 10, "burst": 20}' "$f" >"$f.new" && mv "$f.new" "$f"
supervisorctl -c "$SUPERVISOR_CONF" restart gateway
for _ in $(seq 1 60); do curl -fsS "$GATEWAY_URL/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
sleep 3   # the flooder's bucket drains
