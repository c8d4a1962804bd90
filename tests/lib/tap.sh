# TAP helpers for shell test scripts: source it, call ok/not_ok/check, then done_testing.
# Output goes to stdout as `ok N - name` / `not ok N - name`, which tests/run.sh counts.
_tap_n=0
_tap_failed=0

ok()      { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok()  { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
skip()    { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP ${2:-no reason given}"; }
diag()    { echo "# $*"; }

# check NAME COMMAND...: one result from a command's exit status (its output shown as diagnostics on failure).
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name"; printf '%s\n' "$out" | tail -20 | sed 's/^/#   /'; fi
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds or the deadline passes.
wait_for() {
    local deadline=$(( $(date +%s%N) / 1000000 + ${1%.*} * 1000 )); shift
    until "$@" >/dev/null 2>&1; do
        [ $(( $(date +%s%N) / 1000000 )) -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

done_testing() { echo "1..$_tap_n"; [ "$_tap_failed" -eq 0 ]; }

# subtest NAME COMMAND...: runs a TAP-speaking program and folds its results
# into this script's stream (renumbered, its plan checked), so one suite can
# run many scripts. A crash or a short plan becomes a failure here.
subtest() {
    local name=$1; shift
    local out rc line plan="" seen=0
    out=$("$@" 2>&1); rc=$?
    while IFS= read -r line; do
        case $line in
        "ok "[0-9]*)     ok "$name: ${line#ok * - }"; seen=$((seen + 1)) ;;
        "not ok "[0-9]*) not_ok "$name: ${line#not ok * - }"; seen=$((seen + 1)) ;;
        1..[0-9]*)       plan=${line#1..} ;;
        *)               echo "# $line" ;;
        esac
    done <<<"$out"
    if [ -n "$plan" ] && [ "$plan" -gt "$seen" ]; then not_ok "$name: planned $plan, ran $seen"; fi
    if [ "$rc" -ne 0 ] && [ "$_tap_failed" -eq 0 ]; then not_ok "$name: exited $rc"; fi
    return 0
}
