#!/usr/bin/env bash
# Contract suite: the wire contracts in proto/ are sound and the validator CLI
# works. Run from anywhere: `bash tests/contract/suite.sh`. TAP on stdout
# (node's test runner), exit status non-zero on any failure.
#
#   - proto/events: every JSON Schema compiles in strict mode (ajv, draft
#     2020-12), follows the envelope/decimal/id rules, topics.json is
#     consistent, examples validate and invalid examples are rejected;
#   - proto/openapi: every OpenAPI 3.1 document validates, its $refs resolve,
#     errors use the common envelope, money is decimal strings;
#   - tests/contract/validate-event.mjs behaves (used by integration tests).
#
# npm dependencies (exact versions in package-lock.json) are installed with
# `npm ci` only when node_modules is missing or the lockfile changed (a stamp
# file in node_modules remembers the lockfile's hash).
set -uo pipefail
cd "$(dirname "$0")/../.."
DIR=tests/contract

fail_setup() { echo "not ok 1 - contract suite setup: $*"; echo "1..1"; exit 1; }

command -v node >/dev/null || fail_setup "node not installed (Node.js 20+ required)"
command -v npm >/dev/null || fail_setup "npm not installed"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail_setup "Node.js $major found, 20+ required"

stamp=$DIR/node_modules/.contract-lock.sha256
want=$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "# installing npm dependencies (npm ci) in $DIR"
    if ! (cd "$DIR" && npm ci --no-audit --no-fund) >"${TMPDIR:-/tmp}/contract-npm-ci.$$.log" 2>&1; then
        sed 's/^/#   /' "${TMPDIR:-/tmp}/contract-npm-ci.$$.log" | tail -20
        rm -f "${TMPDIR:-/tmp}/contract-npm-ci.$$.log"
        fail_setup "npm ci failed in $DIR"
    fi
    rm -f "${TMPDIR:-/tmp}/contract-npm-ci.$$.log"
    echo "$want" >"$stamp"
fi

exec node --test --test-reporter=tap "$DIR"/*.test.mjs
