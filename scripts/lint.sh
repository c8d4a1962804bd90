#!/usr/bin/env bash
# clang-format (check only) and cppcheck over the C sources.
set -uo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h')
rc=0
echo "== clang-format"
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files || rc=1
echo "== cppcheck"
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
    --inline-suppr --suppress=missingIncludeSystem -Ilibcommon/include $files || rc=1
exit $rc
