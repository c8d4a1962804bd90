#!/usr/bin/env bash
# Infra suite (docs/development.md): offline validation of k8s/, argocd/,
# policy/, terraform/, the Dockerfiles and .github/workflows/images.yml.
# Prints TAP on stdout (node's test runner); npm's output goes to stderr.
# Run from anywhere: bash tests/infra/suite.sh
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

fail() { echo "1..1"; echo "not ok 1 - infra suite: $*"; exit 1; }

command -v node >/dev/null 2>&1 || fail "node not found (apt-get install nodejs npm; Node.js >= 20)"
command -v npm >/dev/null 2>&1 || fail "npm not found (apt-get install npm)"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || fail "Node.js >= 20 required, found $(node -v)"

# npm ci only when node_modules is missing or package-lock.json changed.
stamp="$here/node_modules/.package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -d "$here/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$here" && npm ci --no-audit --no-fund >&2) || fail "npm ci failed in tests/infra"
    echo "$want" > "$stamp"
fi

if ! command -v kubectl >/dev/null 2>&1; then
    echo "# SKIP kubectl not found (install kubectl >= 1.27 with kustomize v5: https://kubernetes.io/docs/tasks/tools/): render, schema-of-rendered and cross-reference checks are NOT run"
fi

# One render per kustomization per run, shared by the test files.
INFRA_RENDER_CACHE="$(mktemp -d)" || fail "mktemp"
export INFRA_RENDER_CACHE
trap 'rm -rf "$INFRA_RENDER_CACHE"' EXIT

cd "$root" || fail "cannot cd to $root"
# Two files at a time: most of the wait is kubectl and process start-up.
node --test --test-concurrency=2 --test-reporter=tap "$here"/tests/*.test.mjs
