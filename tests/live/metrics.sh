#!/usr/bin/env bash
# Every metric the alert rules and dashboards read is exported by the
# running services (a live scrape, not a hand-kept list), and Prometheus
# scrapes every built service.
cd "$(dirname "$0")/../.."
source tests/lib/tap.sh

sources=()
missing=()
for pair in gateway:GATEWAY_URL trading-api:TRADING_API_URL matching:MATCHING_URL \
            wallet:WALLET_URL risk:RISK_URL catalog:CATALOG_URL order:ORDER_URL; do
    name=${pair%%:*} var=${pair#*:}
    if [ -x "build/bin/$name" ]; then
        sources+=("$name=${!var}/metrics")
    else
        missing+=("$name")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    skip "every metric read by rules and dashboards is exported" \
        "services not built yet: ${missing[*]} (their metrics cannot be scraped)"
    # What the built services export must still match the contract's labels.
fi
if [ ${#sources[@]} -gt 0 ]; then
    out=$(bash tests/observability/check-live-metrics.sh "${sources[@]}" 2>&1); rc=$?
    if [ ${#missing[@]} -eq 0 ]; then
        [ $rc -eq 0 ] && ok "every metric read by rules and dashboards is exported" \
            || { not_ok "every metric read by rules and dashboards is exported"; echo "$out" | tail -20 | sed 's/^/#   /'; }
    else
        # Partial stack: only an unreachable service (exit 2) is a failure here.
        [ $rc -ne 2 ] && ok "built services answer /metrics in Prometheus format (${#sources[@]})" \
            || { not_ok "built services answer /metrics"; echo "$out" | tail -10 | sed 's/^/#   /'; }
    fi
fi

if [ -n "${PROMETHEUS_URL:-}" ] && command -v prometheus >/dev/null; then
    for s in "${sources[@]}"; do
        name=${s%%=*}
        check "Prometheus scrapes $name (up == 1)" wait_for 45 bash -c \
            "curl -fsS '$PROMETHEUS_URL/api/v1/query?query=up%7Bjob%3D%22$name%22%7D' | grep -q '\"1\"\]'"
    done
    # Rules load from the repository, and recording rules produce series
    # once two scrapes exist (15 s apart).
    check "Prometheus loaded the repository's rule groups" bash -c \
        "curl -fsS '$PROMETHEUS_URL/api/v1/rules' | jq -e '[.data.groups[]] | length > 0' >/dev/null"
    check "recording rules produce series (job:http_requests:rate1m)" wait_for 90 bash -c \
        "curl -fsS '$PROMETHEUS_URL/api/v1/query?query=count(job:http_requests:rate1m)' | jq -e '.data.result | length > 0' >/dev/null"
fi
done_testing
