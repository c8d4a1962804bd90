#!/usr/bin/env bash
# Runs the test suites and prints, as its last line, `N passed, N failed`.
#
#   tests/run.sh                 every suite (what `make test` runs)
#   tests/run.sh SUITE...        some: unit unit-asan unit-valgrind integration <dir>
#
# Every test program speaks TAP (see docs/development.md). Counting rules:
# a top-level `ok` passes, `not ok` fails, `ok ... # SKIP` is skipped; a
# program that exits non-zero without a failure counts one failure; results
# missing against its `1..N` plan count as failures.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source tests/lib/infra.sh

BUILD=${BUILD:-build}
LOGDIR=$BUILD/test-logs
# Per program; the lab suite runs the whole stack and every learner scenario.
TIMEOUT=${TEST_TIMEOUT:-1200}
mkdir -p "$LOGDIR"

PASSED=0 FAILED=0 SKIPPED=0
FAILURES=()

# count FILE EXIT NAME: adds a program's TAP results to the totals.
count() {
    local file=$1 rc=$2 name=$3 p f s plan seen
    # A SKIP directive wins over ok / not ok (cmocka writes "not ok N # SKIP").
    p=$(grep -cE '^ok [0-9]+' "$file" | tr -d ' ')
    s=$(grep -cE '^(not )?ok [0-9]+.*# *(SKIP|skip)' "$file" | tr -d ' ')
    local sn; sn=$(grep -cE '^not ok [0-9]+.*# *(SKIP|skip)' "$file" | tr -d ' ')
    f=$(grep -cE '^not ok [0-9]+' "$file" | tr -d ' ')
    f=$((f - sn))
    p=$((p - (s - sn)))
    plan=$(grep -oE '^1\.\.[0-9]+' "$file" | tail -1 | cut -d. -f3)
    seen=$((p + s + f))
    if [ -n "$plan" ] && [ "$plan" -gt "$seen" ]; then
        echo "#   $name: plan said $plan, saw $seen" >>"$file"
        f=$((f + plan - seen))
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "#   $name: exited $rc without reporting a failure" >>"$file"
        f=1
    fi
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
    if [ "$f" -gt 0 ]; then
        FAILURES+=("$name")
        printf '  FAIL %-50s %d passed, %d failed (log: %s)\n' "$name" "$p" "$f" "$file"
        grep -vE '^ok [0-9]+' "$file" | tail -40 | sed 's/^/       /'
    else
        printf '  ok   %-50s %d passed%s\n' "$name" "$p" "$([ "$s" -gt 0 ] && echo ", $s skipped")"
        grep -E '# *(SKIP|skip)' "$file" | sed 's/^/       /'
    fi
}

# run NAME COMMAND...: runs one program with a time limit, then counts it.
run() {
    local name=$1; shift
    local log="$LOGDIR/${name//\//_}.log" rc
    CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$TIMEOUT" "$@" >"$log" 2>&1 </dev/null
    rc=$?
    [ $rc -eq 124 ] && echo "#   timed out after ${TIMEOUT}s" >>"$log"
    count "$log" "$rc" "$name"
}

suite_unit_dir() { # LABEL DIR [WRAPPER...]
    local label=$1 dir=$2; shift 2
    local t
    [ -d "$dir" ] || return 0
    for t in "$dir"/*; do
        [ -x "$t" ] && [ -f "$t" ] || continue
        run "$label/$(basename "$t")" "$@" "$t"
    done
}

INFRA_UP=0
need_infra() {
    [ $INFRA_UP -eq 1 ] && return 0
    INFRA_TMP=$(mktemp -d /tmp/exlab-test.XXXXXX)
    trap 'infra_stop; rm -rf "$INFRA_TMP"' EXIT
    echo "== starting the fixture (PostgreSQL, Redis, devkafka) in $INFRA_TMP"
    if ! infra_start "$INFRA_TMP/infra"; then
        echo "  FAIL fixture did not start" ; FAILED=$((FAILED + 1)); FAILURES+=("fixture")
        return 1
    fi
    export TEST_BIN_DIR=$ROOT/$BUILD/bin
    INFRA_UP=1
}

# fixture_env NAME: prints env assignments giving a program a fresh database,
# a flushed Redis and a scratch directory of its own.
fixture_env() {
    local db tmp
    db=$(infra_new_db "t_$(echo "$1" | tr -c 'a-zA-Z0-9_\n' _ | tr A-Z a-z | cut -c1-50)") || db=""
    infra_flush_redis
    tmp=$(mktemp -d "$INFRA_TMP/t.XXXXXX")
    echo "TEST_DATABASE_URL=$db TEST_TMPDIR=$tmp"
}

suite_integration() {
    need_infra || return 0
    local t name
    for t in "$BUILD"/tests/integration/* tests/integration/*.sh; do
        [ -f "$t" ] || continue
        name=$(basename "$t" .sh)
        # shellcheck disable=SC2046
        case $t in
        *.sh) run "integration/$name" env $(fixture_env "$name") bash "$t" ;;
        *) [ -x "$t" ] && run "integration/$name" env $(fixture_env "$name") "$t" ;;
        esac
    done
}

suite_dir() { # NAME: tests/NAME/suite.sh
    need_infra || return 0
    # shellcheck disable=SC2046
    run "$1" env $(fixture_env "$1") bash "tests/$1/suite.sh"
}

VALGRIND="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"

suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
    # contract first among the rest: it installs the event validator that
    # integration tests pipe produced events through.
    suites=(unit unit-asan unit-valgrind)
    [ -f tests/contract/suite.sh ] && suites+=(contract)
    suites+=(integration)
    for s in tests/*/suite.sh; do
        s=$(basename "$(dirname "$s")")
        [ "$s" = contract ] || suites+=("$s")
    done
fi

start=$(date +%s)
for s in "${suites[@]}"; do
    echo "== $s"
    case $s in
    unit) suite_unit_dir unit "$BUILD/tests/unit" ;;
    unit-asan) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        suite_unit_dir unit-asan "build/asan/tests/unit" ;;
    unit-valgrind) suite_unit_dir unit-valgrind "$BUILD/tests/unit" $VALGRIND ;;
    integration) suite_integration ;;
    *) if [ -f "tests/$s/suite.sh" ]; then suite_dir "$s"; else
           echo "  FAIL unknown suite $s"; FAILED=$((FAILED + 1)); fi ;;
    esac
done

echo
echo "took $(( $(date +%s) - start ))s; logs in $LOGDIR"
[ ${#FAILURES[@]} -gt 0 ] && echo "failed: ${FAILURES[*]}"
[ "$SKIPPED" -gt 0 ] && echo "$SKIPPED skipped (reasons above)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
