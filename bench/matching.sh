#!/usr/bin/env bash
# Matching core benchmark (make bench-matching; assumes `make build` ran).
# Runs build/bench/matching_core_bench pinned to one core when taskset is
# available and prints its BENCH lines. Scenarios and method: see
# bench/matching/core_bench.c and docs/matching.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
bin="$BUILD/bench/matching_core_bench"
if [[ ! -x $bin ]]; then
    echo "bench/matching.sh: $bin missing, run make build first" >&2
    exit 1
fi
pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c 1 true 2>/dev/null; then
    pin=(taskset -c 1)
    echo "# pinned to cpu 1 ($(nproc) cpus online)"
else
    echo "# not pinned (taskset unavailable)"
fi
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: compare throughput and throughput_wall)"
exec "${pin[@]}" "$bin" "$@"
