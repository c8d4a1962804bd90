#!/usr/bin/env bash
# Reference fix: remove the wallet's error fault on the hold route.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "$WALLET_URL/admin/faults/error"; echo
