#!/usr/bin/env bash
# Reference fix: remove the error fault on the catalog (only that type).
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "$CATALOG_URL/admin/faults/error"
echo
