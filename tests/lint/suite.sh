#!/usr/bin/env bash
# The house style gates as tests: clang-format and cppcheck (make lint),
# and the banned-functions header included by every C source.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh
if command -v clang-format >/dev/null && command -v cppcheck >/dev/null; then
    check "make lint: clang-format and cppcheck are clean" bash scripts/lint.sh
else
    skip "make lint" "clang-format or cppcheck not installed (apt-get install clang-format cppcheck)"
fi
missing=$(git ls-files '*.c' | xargs grep -L '#include "common/banned.h"' || true)
[ -z "$missing" ] && ok "every C source includes common/banned.h" \
    || { not_ok "every C source includes common/banned.h"; echo "$missing" | sed 's/^/#   /'; }
done_testing
