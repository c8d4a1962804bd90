#!/usr/bin/env bash
# Fuzz smoke: every libFuzzer target runs briefly; a crash fails the suite.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh
if ! command -v clang >/dev/null; then
    skip "fuzz smoke" "clang not installed (apt-get install clang libclang-rt-14-dev)"
    done_testing; exit 0
fi
for f in fuzz/fuzz_*.c; do
    n=$(basename "$f" .c); n=${n#fuzz_}
    check "fuzz_$n runs ${FUZZ_SMOKE_SECONDS:-5}s without a crash" bash scripts/fuzz.sh "${FUZZ_SMOKE_SECONDS:-5}" "$n"
done
done_testing
