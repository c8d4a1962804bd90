#!/usr/bin/env bash
# labctl's own tests (no lab needed): argument handling, the scenario
# catalogue, hint progression on a fake run directory, the override
# wrapper, and every Kubernetes scenario offline (broken variant fails its
# check, the reference fix passes, the repository's dev overlay passes).
# The local scenarios run end to end in tests/live/labs.sh on a whole lab.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh
ROOT=$PWD
LABCTL=$ROOT/labs/labctl
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/labctl-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
export LAB_DIR=$T/run LAB_PORT_OFFSET=29999
mkdir -p "$LAB_DIR"
unset ADMIN_TOKEN JWT_SECRET GATEWAY_URL CATALOG_URL WALLET_URL ORDER_URL RISK_URL TRADING_API_URL MATCHING_URL PROMETHEUS_URL REDIS_URL PG_URL

# ---- arguments
check "labctl --help exits 0 and shows the commands" bash -c "'$LABCTL' --help | grep -q 'labctl check <id>'"
"$LABCTL" >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] && ok "no command: usage, exit 2" || not_ok "no command: usage, exit 2 (got $rc)"
"$LABCTL" frobnicate >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] && ok "unknown command: exit 2" || not_ok "unknown command: exit 2 (got $rc)"
"$LABCTL" start >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] && ok "start without an id: exit 2" || not_ok "start without an id: exit 2 (got $rc)"
out=$("$LABCTL" check no-such-scenario 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "no scenario" <<<"$out" && ok "an unknown id is refused by name" || not_ok "an unknown id is refused by name (rc $rc: $out)"
"$LABCTL" hint '../../etc' >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] && ok "an id with a path is refused" || not_ok "an id with a path is refused (got $rc)"
"$LABCTL" --window abc list >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] && ok "a non-numeric --window is refused" || not_ok "a non-numeric --window is refused (got $rc)"
"$LABCTL" list --bogus >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] && ok "an unknown option is refused" || not_ok "an unknown option is refused (got $rc)"

# ---- the catalogue
ids=$(for d in labs/scenarios/*/; do basename "$d"; done)
n=$(echo "$ids" | wc -l)
[ "$n" -ge 12 ] && ok "at least 12 scenarios ($n)" || not_ok "at least 12 scenarios ($n)"
list=$("$LABCTL" list 2>&1)
missing=""; for id in $ids; do grep -q "^$id " <<<"$list" || missing="$missing $id"; done
[ -z "$missing" ] && ok "labctl list shows every scenario" || not_ok "labctl list shows every scenario (missing:$missing)"
check "labctl list --json is a JSON array of every scenario with id, title, level, kind, symptom" \
    bash -c "'$LABCTL' list --json | jq -e 'length == $n and all(.[]; (.id|type)==\"string\" and (.title|length)>0 and (.level|IN(1,2,3)) and (.kind|IN(\"local\",\"kubernetes\")) and (.symptom|length)>20)'"
# A symptom is what a user reports, never the cause.
leaky=$("$LABCTL" list --json | jq -r '.[] | select(.symptom | test("fault|inject|/admin|readiness_fail|kafka_pause|cpu_burn|memory_growth|drop_dependency|outlier|idle in transaction|rate.?limit|timeout_ms|CATALOG_URL|replicas|ServiceMonitor|MetricTemplate|preStop"; "i")) | .id')
[ -z "$leaky" ] && ok "no symptom names its cause" || not_ok "no symptom names its cause: $leaky"
for id in $ids; do
    d=labs/scenarios/$id
    errs=""
    jq -e --arg id "$id" '.id == $id and (.look | length) >= 2' "$d/scenario.json" >/dev/null 2>&1 || errs="$errs scenario.json"
    [ -s "$d/README.md" ] && grep -q '^## What was reported' "$d/README.md" && grep -q '^## How to reason' "$d/README.md" || errs="$errs README.md"
    [ "$(grep -c '^## Hint' "$d/hints.md" 2>/dev/null)" -ge 2 ] || errs="$errs hints.md"
    [ -x "$d/solution.sh" ] && bash -n "$d/solution.sh" || errs="$errs solution.sh"
    bash -n "$d/scenario.sh" 2>/dev/null && grep -q '^sc_check()' "$d/scenario.sh" || errs="$errs scenario.sh"
    if [ "$(jq -r .kind "$d/scenario.json")" = local ]; then
        grep -q '^sc_start()' "$d/scenario.sh" && grep -q '^sc_reset()' "$d/scenario.sh" || errs="$errs start/reset"
    else
        [ -f "$d/k8s/kustomization.yaml" ] && grep -q '\.\./\.\./\.\./\.\./k8s/' "$d/k8s/kustomization.yaml" || errs="$errs k8s/kustomization.yaml"
    fi
    [ -z "$errs" ] && ok "$id: scenario.json, README, hints, solution and check are in place" || not_ok "$id: incomplete:$errs"
done
undoc=""; for id in $ids; do grep -q "\`$id\`" docs/labs.md || undoc="$undoc $id"; done
[ -z "$undoc" ] && ok "docs/labs.md lists every scenario" || not_ok "docs/labs.md lists every scenario (missing:$undoc)"
levels=$("$LABCTL" list --json | jq -r '[.[].level] | unique | join(",")')
[ "$levels" = "1,2,3" ] && ok "scenarios at every level (1, 2, 3)" || not_ok "scenarios at every level (got $levels)"

# ---- hints progress one at a time, per scenario, and reset starts over
id=catalog-product-error
h1=$("$LABCTL" hint $id); h2=$("$LABCTL" hint $id); h3=$("$LABCTL" hint $id); h4=$("$LABCTL" hint $id)
[ "$(grep -c '^## Hint' <<<"$h1")" = 1 ] && ok "first hint call shows one hint" || not_ok "first hint call shows one hint"
[ "$(grep -c '^## Hint' <<<"$h2")" = 2 ] && grep -q 'hint 2 of' <<<"$h2" && ok "second call shows the next one" || not_ok "second call shows the next one"
grep -q 'last hint' <<<"$h3" && [ "$(grep -c '^## Hint' <<<"$h4")" = "$(grep -c '^## Hint' <<<"$h3")" ] \
    && ok "after the last hint it stays at the last" || not_ok "after the last hint it stays at the last"
[ "$(cat "$LAB_DIR/labs/hints.$id")" = 3 ] && ok "hint state lives under \$LAB_DIR/labs" || not_ok "hint state lives under \$LAB_DIR/labs"
"$LABCTL" reset $id >/dev/null 2>&1
[ "$(grep -c '^## Hint' <<<"$("$LABCTL" hint $id)")" = 1 ] && ok "reset <id> starts the hints over" || not_ok "reset <id> starts the hints over"
[ "$(grep -c '^## Hint' <<<"$("$LABCTL" hint wallet-not-ready)")" = 1 ] && ok "hints are counted per scenario" || not_ok "hints are counted per scenario"

# ---- no lab: start refuses and says why; status and env still work
out=$("$LABCTL" start catalog-product-error 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "not running" <<<"$out" && ok "start refuses when the lab is not running, and says so" || not_ok "start refuses without a lab (rc $rc: $out)"
[ ! -f "$LAB_DIR/labs/active" ] && ok "a refused start leaves no active scenario" || not_ok "a refused start leaves no active scenario"
"$LABCTL" check wallet-not-ready >/dev/null 2>&1; rc=$?
{ [ $rc -eq 2 ] || [ $rc -eq 3 ]; } && ok "check of a local scenario without a lab: exit 2 (or 3 when not built), never 0" || not_ok "check without a lab (got $rc)"
check "status reports a stopped lab" bash -c "'$LABCTL' status | grep -q 'not running'"
check "env derives URLs from LAB_PORT_OFFSET like scripts/lab.sh" bash -c "'$LABCTL' env | grep -qx 'export GATEWAY_URL=http://127.0.0.1:38079'"
check "reset is safe without a lab, twice" bash -c "'$LABCTL' reset && '$LABCTL' reset"

# ---- helpers
source labs/lib/common.sh
[ "$(duration_ms 2s)" = 2000 ] && [ "$(duration_ms 1500ms)" = 1500 ] && [ "$(duration_ms 1min)" = 60000 ] && [ "$(duration_ms 0)" = 0 ] \
    && ok "durations parse as the services and PostgreSQL write them" || not_ok "durations parse"

# ---- the override wrapper: lab env, then $LAB_DIR/overrides/<name>.env on top
W=$T/wrap; mkdir -p "$W/bin" "$W/run/overrides"
printf '#!/bin/sh\nenv\n' >"$W/bin/catalog"; chmod +x "$W/bin/catalog"
echo "127.0.0.1:1" >"$W/run/kafka.bootstrap"
printf 'CATALOG_URL=http://127.0.0.1:1\nCACHE_TTL=7s\nSOME_FILE=$LAB_DIR/x.json\n' >"$W/run/overrides/catalog.env"
out=$(LAB_DIR=$W/run LAB_BIN_DIR=$W/bin LAB_PORT_OFFSET=0 bash labs/lib/exec-service.sh catalog 2>&1)
grep -qx 'CATALOG_URL=http://127.0.0.1:1' <<<"$out" && grep -qx 'CACHE_TTL=7s' <<<"$out" && grep -qx "SOME_FILE=$W/run/x.json" <<<"$out" \
    && grep -qx 'PORT=8085' <<<"$out" && ok "exec-service.sh applies the lab's env, then the overrides" || not_ok "exec-service.sh applies the overrides: $(head -5 <<<"$out")"

# ---- Kubernetes scenarios, offline
k8s_ids=$(for id in $ids; do [ "$(jq -r .kind labs/scenarios/$id/scenario.json)" = kubernetes ] && echo "$id"; done)
if ! command -v kubectl >/dev/null; then
    for id in $k8s_ids; do skip "$id offline" "kubectl is not installed (kustomize v5 needed)"; done
else
    # validate NAME DIR: the render passes tests/infra's schemas (skipped, loudly, without them).
    validate() {
        local out rc
        kubectl kustomize "$2" 2>/dev/null | yq -c 'select(. != null)' >"$T/render.jsonl" || { not_ok "$1 (render failed)"; return; }
        out=$(node labs/lib/validate-k8s.mjs "$T/render.jsonl" 2>&1); rc=$?
        case $rc in 0) ok "$1" ;; 3) skip "$1" "$out" ;; *) not_ok "$1"; echo "$out" | head -5 | sed 's/^/#   /' ;; esac
    }
    for id in $k8s_ids; do
        if ! "$LABCTL" start "$id" >/dev/null 2>&1; then not_ok "$id: start prepares a workspace"; continue; fi
        ok "$id: start prepares a workspace"
        out=$("$LABCTL" check "$id" --json 2>&1); rc=$?
        [ $rc -eq 1 ] && jq -e '.fixed == false and any(.conditions[]; .ok == false)' <<<"$out" >/dev/null \
            && ok "$id: the broken variant fails its check" || not_ok "$id: the broken variant fails its check (rc $rc) $out"
        validate "$id: the broken variant validates like the rest of k8s/" "$LAB_DIR/labs/work/$id"
        bash "labs/scenarios/$id/solution.sh" >/dev/null 2>&1
        validate "$id: the fixed variant validates like the rest of k8s/" "$LAB_DIR/labs/work/$id"
        out=$("$LABCTL" check "$id" 2>&1); rc=$?
        [ $rc -eq 0 ] && ok "$id: the reference fix passes" || { not_ok "$id: the reference fix passes (rc $rc)"; echo "$out" | sed 's/^/#   /'; }
        out=$("$LABCTL" check "$id" --target k8s/overlays/dev 2>&1); rc=$?
        [ $rc -eq 0 ] && ok "$id: the repository's dev overlay passes the same check" || { not_ok "$id: the dev overlay passes (rc $rc)"; echo "$out" | sed 's/^/#   /'; }
        "$LABCTL" reset "$id" >/dev/null 2>&1
        [ ! -d "$LAB_DIR/labs/work/$id" ] && ok "$id: reset removes the workspace" || not_ok "$id: reset removes the workspace"
    done
fi
done_testing
