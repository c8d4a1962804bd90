#!/usr/bin/env bash
# Reference fix: clear the readiness_fail fault on the wallet.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "$WALLET_URL/admin/faults/readiness_fail"; echo
