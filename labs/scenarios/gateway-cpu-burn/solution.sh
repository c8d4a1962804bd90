#!/usr/bin/env bash
# Reference fix: stop the CPU burner in the gateway.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "$GATEWAY_URL/admin/faults/cpu_burn"; echo
