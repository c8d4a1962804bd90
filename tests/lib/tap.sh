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
