# Shared by suite.sh and check-live-metrics.sh: makes sure the npm packages
# of check.mjs (yaml, @prometheus-io/lezer-promql) are installed from the
# lockfile. Returns non-zero, with the reason on stderr, if they cannot be.
OBS_TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

obs_node_ready() {
    command -v node >/dev/null 2>&1 || { echo "node is not installed (make deps)" >&2; return 1; }
    if [ ! -f "$OBS_TEST_DIR/node_modules/@prometheus-io/lezer-promql/package.json" ] ||
       [ ! -f "$OBS_TEST_DIR/node_modules/yaml/package.json" ]; then
        command -v npm >/dev/null 2>&1 || { echo "npm is not installed (make deps)" >&2; return 1; }
        (cd "$OBS_TEST_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
            { echo "npm ci in tests/observability failed (no npm registry?)" >&2; return 1; }
    fi
}
