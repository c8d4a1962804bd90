#!/usr/bin/env bash
# Learner labs end to end on the running lab (tests/lab/suite.sh): for every
# local scenario, `labctl start` -> `check` fails -> the reference solution
# -> `check` passes -> `reset` -> the lab is healthy again. Scenarios whose
# services are not built are skipped, loudly. Kubernetes scenarios are
# checked offline in tests/labs/suite.sh.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh
LABCTL=$PWD/labs/labctl
export LABCTL_WINDOW=${LABCTL_WINDOW:-2} LABCTL_LOAD_SECONDS=${LABCTL_LOAD_SECONDS:-120}
: "${LAB_DIR:?run inside tests/lab/suite.sh, which sets LAB_DIR and the URLs}"

# labctl refuses to break an unhealthy lab; then there is nothing to test here
# (one failure with the reason, every scenario skipped, loudly).
unhealthy=""
if ! out=$("$LABCTL" reset 2>&1); then
    not_ok "the lab is healthy before the first scenario"; echo "$out" | sed 's/^/#   /'
    unhealthy=$(grep -m1 '^  - ' <<<"$out" | sed 's/^  - //')
fi
for d in labs/scenarios/*/; do
    id=$(basename "$d")
    [ "$(jq -r .kind "$d/scenario.json")" = local ] || continue
    missing=""
    for s in $(jq -r '.services[]?' "$d/scenario.json"); do [ -x "build/bin/$s" ] || missing="$missing $s"; done
    if [ -n "$missing" ]; then skip "$id" "${missing# } not built"; continue; fi
    if [ -n "$unhealthy" ]; then skip "$id" "the lab is not in its steady state (${unhealthy:-see above})"; continue; fi
    t0=$(date +%s)
    out=$("$LABCTL" start "$id" 2>&1); rc=$?
    if [ $rc -ne 0 ]; then not_ok "$id: start (exit $rc)"; echo "$out" | tail -8 | sed 's/^/#   /'; "$LABCTL" reset >/dev/null 2>&1; continue; fi
    ok "$id: start"
    sleep 1
    out=$("$LABCTL" check "$id" 2>&1); rc=$?
    [ $rc -eq 1 ] && ok "$id: check fails while broken" || { not_ok "$id: check fails while broken (exit $rc)"; echo "$out" | sed 's/^/#   /'; }
    sol=$(bash "$d/solution.sh" 2>&1); rc=$?
    [ $rc -eq 0 ] || { diag "$id: solution.sh exited $rc"; echo "$sol" | tail -5 | sed 's/^/#   /'; }
    out=$("$LABCTL" check "$id" 2>&1); rc=$?
    [ $rc -eq 0 ] && ok "$id: check passes after the reference fix" || { not_ok "$id: check passes after the reference fix (exit $rc)"; echo "$out" | sed 's/^/#   /'; }
    out=$("$LABCTL" reset "$id" 2>&1); rc=$?
    [ $rc -eq 0 ] && ok "$id: reset leaves a healthy lab ($(( $(date +%s) - t0 ))s)" || { not_ok "$id: reset leaves a healthy lab (exit $rc)"; echo "$out" | sed 's/^/#   /'; "$LABCTL" reset >/dev/null 2>&1; }
done
check "a second reset is harmless" "$LABCTL" reset
left=$(for f in "$LAB_DIR"/labs/load/*.pid; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && basename "$f"; done)
[ -z "$left" ] && ok "no background load survives reset" || not_ok "no background load survives reset: $left"
done_testing
