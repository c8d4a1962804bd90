#!/usr/bin/env bash
# Reference fix: resume matching's consumers (clear the kafka_pause fault) and let the backlog drain.
set -euo pipefail
eval "$("$(dirname "$0")/../../labctl" env)"
curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "$MATCHING_URL/admin/faults/kafka_pause"; echo
for _ in $(seq 1 30); do
    curl -s "$MATCHING_URL/metrics" | awk '/^kafka_consumer_lag\{topic="exchange.orders.commands"/ { s += $2 } END { exit !(s == 0) }' && break
    sleep 0.5
done
