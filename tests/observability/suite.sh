#!/usr/bin/env bash
# Observability suite: rules, alerts, dashboards, provisioning, Helm values,
# runbooks and the live-metrics checker, all offline. Prints TAP.
#   bash tests/observability/suite.sh        (from the repository root)
# Needs promtool (Debian package prometheus) and node/npm (make deps);
# amtool (package prometheus-alertmanager) and kubectl are optional: their
# checks report # SKIP with the reason when they are missing.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh
source tests/observability/lib.sh

OBS=observability
PROM=$OBS/prometheus
T=tests/observability
tmp=$(mktemp -d)
trap '[ -n "${am_pid:-}" ] && kill "$am_pid" 2>/dev/null; [ -n "${srv_pid:-}" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

have_promtool=0; command -v promtool >/dev/null 2>&1 && have_promtool=1
have_node=0; node_why=$(obs_node_ready 2>&1) && have_node=1

# The real Prometheus with the lab's config, fed the fixture scrapes: mostly
# waiting for scrapes and evaluations, so it runs in the background.
live_prom=0
if [ $have_node -eq 1 ] && command -v prometheus >/dev/null 2>&1; then
    mkdir -p "$tmp/prom"
    (node $T/live-prometheus.mjs $T/fixtures/live "$tmp/prom" >"$tmp/prom.out" 2>&1; echo $? >"$tmp/prom.rc") &
    live_prom=1
fi

# ------------------------------------------------------------ Prometheus
if [ $have_promtool -eq 1 ]; then
    # The unit tests are the slowest part: run them on the other core meanwhile.
    promtool test rules $PROM/tests/*.yml >"$tmp/unit.out" 2>&1 &
    unit_pid=$!
    check "promtool check rules: every rule file" promtool check rules $PROM/rules/*.yml
    check "promtool check config: prometheus-local.yml (with its rule files)" promtool check config $PROM/prometheus-local.yml
    # The unit tests must be able to fail: a copy whose TargetDown waits 10
    # minutes instead of 1 must break them.
    mkdir -p "$tmp/mut/rules" "$tmp/mut/tests"
    cp $PROM/rules/*.yml "$tmp/mut/rules/"; cp $PROM/tests/*.yml "$tmp/mut/tests/"
    sed -i '/alert: TargetDown/,/for:/ s/for: 1m/for: 10m/' "$tmp/mut/rules/alerts.yml"
    if grep -q 'for: 10m' "$tmp/mut/rules/alerts.yml" && ! promtool test rules "$tmp/mut/tests/alerts_test.yml" >/dev/null 2>&1; then
        ok "promtool tests catch a changed alert (TargetDown for: 10m)"
    else
        not_ok "promtool tests catch a changed alert (TargetDown for: 10m)"
    fi
    for f in $T/fixtures/live/*.prom; do
        check "fixture $(basename "$f") is valid exposition format (promtool check metrics)" bash -c "promtool check metrics < '$f'"
    done
else
    for n in "check rules" "test rules" "check config" "tests catch a changed alert" "check metrics on fixtures"; do
        skip "promtool $n" "promtool not installed (Debian package prometheus; make deps)"
    done
fi

if [ $have_promtool -eq 1 ]; then
    if wait $unit_pid; then ok "promtool test rules: every alert fires and stays silent as tested"
    else not_ok "promtool test rules: every alert fires and stays silent as tested"; sed 's/^/#   /' "$tmp/unit.out" | tail -40; fi
fi

if [ $live_prom -eq 1 ]; then
    wait_for 90 test -s "$tmp/prom.rc"
    subtest "live Prometheus" bash -c "cat '$tmp/prom.out'; exit \$(cat '$tmp/prom.rc' 2>/dev/null || echo 1)"
else
    skip "live Prometheus with prometheus-local.yml" "prometheus or node not installed"
fi

# ---------------------------------------------------------- Alertmanager
AM=$OBS/alertmanager/alertmanager.yml
if command -v amtool >/dev/null 2>&1; then
    check "amtool check-config: alertmanager.yml and its templates" amtool check-config $AM
    route_is() { # LABELS... RECEIVER
        local want=${*: -1} got
        got=$(amtool config routes test --config.file=$AM "${@:1:$#-1}" 2>/dev/null)
        [ "$got" = "$want" ] || { echo "labels ${*:1:$#-1} go to '$got', want '$want'"; return 1; }
    }
    check "severity=page routes to slack-pager" route_is severity=page alertname=TargetDown job=wallet slack-pager
    check "severity=ticket routes to slack-tickets" route_is severity=ticket alertname=RedisDown slack-tickets
    check "severity=info routes to slack-lab" route_is severity=info alertname=FaultInjectionActive slack-lab
    check "Slack template renders" amtool template render --template.glob="$OBS/alertmanager/templates/*.tmpl" \
        --template.text='{{ template "exchange.slack.title" . }}{{ template "exchange.slack.text" . }}'
    # Inhibition, for real: a private Alertmanager on loopback with this
    # configuration, fed alerts over its API.
    if command -v prometheus-alertmanager >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
        am_port=""
        for try in 1 2 3 4 5; do
            p=$((20000 + RANDOM % 20000))
            mkdir -p "$tmp/am$try"
            prometheus-alertmanager --config.file=$AM --storage.path="$tmp/am$try" \
                --web.listen-address=127.0.0.1:$p --cluster.listen-address= >"$tmp/am$try/log" 2>&1 &
            am_pid=$!
            if wait_for 10 bash -c "kill -0 $am_pid 2>/dev/null || exit 0; curl -fsS http://127.0.0.1:$p/-/ready" &&
               curl -fsS "http://127.0.0.1:$p/-/ready" >/dev/null 2>&1; then am_port=$p; break; fi
            kill "$am_pid" 2>/dev/null; wait "$am_pid" 2>/dev/null
        done
        if [ -n "$am_port" ]; then
            subtest "inhibition" node $T/inhibition.mjs "http://127.0.0.1:$am_port"
        else
            not_ok "Alertmanager starts on loopback with alertmanager.yml"; tail -5 "$tmp"/am*/log | sed 's/^/#   /'
        fi
        kill "$am_pid" 2>/dev/null; wait "$am_pid" 2>/dev/null
    else
        skip "inhibition rules against a running Alertmanager" "prometheus-alertmanager or node not installed"
    fi
else
    skip "inhibition rules against a running Alertmanager" "prometheus-alertmanager not installed"
    for n in "check-config" "routes page" "routes ticket" "routes info" "template render"; do
        skip "amtool $n" "amtool not installed (Debian package prometheus-alertmanager)"
    done
fi

# ------------------------------------------------- checks with check.mjs
CHECKS=(
    "contract:metrics-contract.json is well formed, labels bounded"
    "readme:observability/README.md documents every contract metric"
    "sources:libcommon and services register contract metrics with the contract's type and labels"
    "prom-config:prometheus-local.yml scrapes the 7 services on 127.0.0.1:8080-8086, rules relative"
    "rules-meta:every alert has severity, summary, description, runbook_url"
    "runbooks:every alert has a runbook (meaning, check, mitigate) and every runbook an alert"
    "tests-cover:every alert rule has a promtool test that fires it and one that keeps it silent"
    "eval-order:promtool tests fix the rule group evaluation order"
    "metrics-known:every metric in rules and dashboards parses (lezer-promql) and is in the contract or recorded"
    "labels-known:every label matcher names a label the metric has"
    "dashboards:dashboards valid (8 present, unique uids and panel ids, layout, queries)"
    "dashboard-vars:every dashboard variable used is defined and every one defined is used"
    "datasources:panel datasources resolve to provisioned ones; Loki->Tempo and Tempo->Loki links; Helm agrees"
    "loki-labels:Loki panels select on labels Alloy sets; Alloy extracts the JSON log fields"
    "alertmanager:Alertmanager routes every severity; inhibitions name real alerts; TargetDown inhibits SLO alerts"
    "helm:Helm values for loki, tempo, grafana, alloy parse; dashboards ConfigMaps carry the sidecar label"
)
if [ $have_node -eq 1 ]; then
    subtest "check.mjs" node $T/check.mjs tap "${CHECKS[@]}"

    if [ $have_promtool -eq 1 ]; then
        check "every dashboard PromQL expression parses (promtool check rules)" \
            bash -c "node $T/check.mjs exprs '$tmp/exprs' >/dev/null && promtool check rules '$tmp/exprs/dashboard-exprs.yml'"
    else
        skip "every dashboard PromQL expression parses (promtool)" "promtool not installed"
    fi
    check "prometheus/k8s/prometheusrules.yaml matches rules/*.yml (regenerate: see its header)" \
        bash -c "node $T/check.mjs prometheusrule | diff $PROM/k8s/prometheusrules.yaml -"
    check "dashboards/*.json are what grafana/generate.mjs writes" \
        bash -c "node $OBS/grafana/generate.mjs --out '$tmp/gen' && diff -r $OBS/grafana/dashboards '$tmp/gen'"

    # The checker must catch mistakes: break a copy of the tree, expect a complaint.
    mutant() { # NAME CHECK EXPECTED-TEXT SCRIPT(run in the copy)
        local name=$1 c=$2 want=$3 script=$4 d="$tmp/m.$RANDOM" out
        mkdir -p "$d/docs"; cp -r $OBS "$d/"; cp -r docs/runbooks "$d/docs/"
        (cd "$d" && eval "$script")
        out=$(OBS_CHECK_ROOT=$d node $T/check.mjs "$c" 2>&1)
        if [ $? -ne 0 ] && grep -qF -- "$want" <<<"$out"; then ok "checker catches $name"
        else not_ok "checker catches $name"; sed 's/^/#   /' <<<"$out" | tail -5; fi
    }
    mutant "a dashboard metric missing from the contract" metrics-known "metric wallet_signer_upp" \
        "sed -i 's/min(wallet_signer_up)/min(wallet_signer_upp)/' observability/grafana/dashboards/wallet-withdrawals.json"
    mutant "a label the metric does not have" labels-known "has no label markt" \
        "sed -i 's/matching_snapshot_age_seconds{market=~/matching_snapshot_age_seconds{markt=~/' observability/grafana/dashboards/matching-engine.json"
    mutant "a PromQL syntax error" metrics-known "syntax error" \
        "sed -i 's/sum(job:http_requests:rate5m)/sum(job:http_requests:rate5m/' observability/grafana/dashboards/exchange-overview.json"
    mutant "a duplicate panel id" dashboards "panel id 2 used twice" \
        "sed -i '0,/\"id\": 3,/s//\"id\": 2,/' observability/grafana/dashboards/risk.json"
    mutant "an undefined dashboard variable" dashboard-vars "variable \$markets is used but not defined" \
        "sed -i 's/matching_trades_total{market=~\\\\\"\$market\\\\\"}/matching_trades_total{market=~\\\\\"\$markets\\\\\"}/' observability/grafana/dashboards/matching-engine.json"
    mutant "an alert without its runbook" runbooks "runbook missing: docs/runbooks/redis-down.md" \
        "rm docs/runbooks/redis-down.md"
    mutant "an unprovisioned datasource" datasources "is not provisioned" \
        "sed -i '0,/\"uid\": \"loki\"/s//\"uid\": \"loki-old\"/' observability/grafana/dashboards/risk.json"
    mutant "a Loki query on an unbounded label" loki-labels "Loki label request_id is not set by Alloy" \
        "sed -i 's/{service=\\\\\"risk\\\\\"}/{service=\\\\\"risk\\\\\", request_id=\\\\\"x\\\\\"}/' observability/grafana/dashboards/risk.json"
    mutant "a service registering a contract metric with other labels" sources "wallet_holds_total has labels \"outcome\"" \
        "mkdir -p services/wallet && printf '%s\\n' 'static void m(void) { cm_metric_counter(\"wallet_holds_total\", \"Holds.\", \"outcome\"); }' > services/wallet/metrics.c"
    mutant "an unbounded label in the contract" contract "label user_id is unbounded" \
        "sed -i 's/\"labels\": \\[\"result\"\\], \"service\": \"wallet\"/\"labels\": [\"result\", \"user_id\"], \"service\": \"wallet\"/' observability/metrics-contract.json"
else
    for c in "${CHECKS[@]}"; do skip "${c#*:}" "$node_why"; done
    skip "dashboard PromQL parses" "$node_why"
    skip "dashboards match generate.mjs" "$node_why"
fi

# --------------------------------------------------- kustomize rendering
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    check "kubectl kustomize observability/grafana: one labelled ConfigMap per dashboard" bash -c "
        out=\$(kubectl kustomize $OBS/grafana) || exit 1
        n=\$(grep -c '^kind: ConfigMap' <<<\"\$out\"); want=\$(ls $OBS/grafana/dashboards/*.json | wc -l)
        l=\$(grep -c 'grafana_dashboard: \"1\"' <<<\"\$out\")
        [ \"\$n\" -eq \"\$want\" ] && [ \"\$l\" -eq \"\$want\" ] || { echo \"\$n ConfigMaps, \$l labelled, \$want dashboards\"; exit 1; }"
    check "kubectl kustomize observability/prometheus/k8s: one PrometheusRule per rule file" bash -c "
        out=\$(kubectl kustomize $PROM/k8s) || exit 1
        n=\$(grep -c '^kind: PrometheusRule' <<<\"\$out\"); want=\$(ls $PROM/rules/*.yml | wc -l)
        [ \"\$n\" -eq \"\$want\" ] || { echo \"\$n PrometheusRules for \$want rule files\"; exit 1; }"
else
    skip "kubectl kustomize observability/grafana" "kubectl not installed"
    skip "kubectl kustomize observability/prometheus/k8s" "kubectl not installed"
fi

# ------------------------------------------------ check-live-metrics.sh
LIVE=$T/check-live-metrics.sh
if [ $have_node -eq 1 ]; then
    check "check-live-metrics: passes on a complete set of scrape dumps" bash $LIVE $T/fixtures/live
    mkdir -p "$tmp/broken"; cp $T/fixtures/live/*.prom "$tmp/broken/"
    sed -i '/^wallet_signer_up/d' "$tmp/broken/wallet.prom"
    sed -i '/^kafka_consumer_lag/d' "$tmp/broken"/*.prom
    out=$(bash $LIVE "$tmp/broken" 2>&1); rc=$?
    missing=$(sed -n 's/^missing: \([a-z_]*\) .*/\1/p' <<<"$out" | tr '\n' ' ')
    if [ $rc -eq 1 ] && [ "$missing" = "kafka_consumer_lag wallet_signer_up " ]; then
        ok "check-live-metrics: fails naming exactly the metrics no dump exports"
    else
        not_ok "check-live-metrics: fails naming exactly the metrics no dump exports (rc $rc, missing: $missing)"
        sed 's/^/#   /' <<<"$out" | head -10
    fi
    mkdir -p "$tmp/relabelled"; cp $T/fixtures/live/*.prom "$tmp/relabelled/"
    sed -i 's/^wallet_holds_total{result=/wallet_holds_total{outcome=/' "$tmp/relabelled/wallet.prom"
    check "check-live-metrics: labels that differ from the contract are a warning..." \
        bash -c "out=\$(bash $LIVE '$tmp/relabelled') && grep -q 'warning: wallet: wallet_holds_total has labels {outcome}, the contract says {result}' <<<\"\$out\""
    check "...and a failure with --strict" \
        bash -c "! bash $LIVE --strict '$tmp/relabelled' >/dev/null"
    # Live URLs: serve the dumps over HTTP on loopback.
    node -e '
        const http = require("http"), fs = require("fs"), dir = process.argv[1];
        const s = http.createServer((q, r) => {
            try { r.end(fs.readFileSync(dir + "/" + q.url.replace(/^\/|\/metrics$/g, "") + ".prom")); }
            catch { r.statusCode = 404; r.end(); }
        }).listen(0, "127.0.0.1", () => console.log(s.address().port));
        setTimeout(() => process.exit(0), 60000);' "$T/fixtures/live" >"$tmp/port" &
    srv_pid=$!
    wait_for 5 test -s "$tmp/port"
    port=$(cat "$tmp/port")
    urls=()
    for s in gateway trading-api matching wallet risk catalog order; do urls+=("$s=http://127.0.0.1:$port/$s/metrics"); done
    check "check-live-metrics: scrapes live URLs" bash $LIVE "${urls[@]}"
    out=$(bash $LIVE "wallet=http://127.0.0.1:$port/nothing/metrics" 2>&1); rc=$?
    [ $rc -eq 2 ] && ok "check-live-metrics: an unreachable service is an error (exit 2)" \
        || { not_ok "check-live-metrics: an unreachable service is an error (exit $rc)"; echo "# $out"; }
    kill "$srv_pid" 2>/dev/null; srv_pid=
else
    skip "check-live-metrics" "$node_why"
fi

done_testing
