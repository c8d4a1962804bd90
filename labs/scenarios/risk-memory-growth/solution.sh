#!/usr/bin/env bash
# Reference fix: mitigate with a restart (memory back), after having noted the cause (a memory_growth fault).
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
supervisorctl -c "$SUPERVISOR_CONF" restart risk
for _ in $(seq 1 60); do curl -fsS "$RISK_URL/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
